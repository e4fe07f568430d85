/*
 * seen.h — which sequence numbers of one stream were seen (internal).
 *
 * The lineage dedup of an input keeps one per origin source.  Every seq
 * <= low was seen; the seqs in [base, base + nbits) are a ring of bits
 * (seq s at bit s % nbits), set if seen.  The ring grows up to a horizon
 * and then slides forward, forgetting its oldest bits, so memory stays
 * bounded when a gap never fills (a source's stream split over several
 * deduplicating inputs, messages filtered out upstream).  A seq that
 * fell between low and base can no longer be checked: it is reported as
 * forgotten, for the caller to deliver, never as seen, so the horizon
 * can cost a duplicate but not a loss.
 */
#ifndef SLI_LINK_SEEN_H
#define SLI_LINK_SEEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct sli_seen {
	uint64_t  low;     /* every seq <= low was seen */
	uint64_t  base;    /* first seq the ring holds */
	uint64_t *bits;    /* the ring, nbits bits */
	size_t    nbits;   /* a power of two, at most horizon */
	size_t    horizon; /* a power of two, >= 64 */
} sli_seen;

enum {
	SLI_SEEN_DUP = 0,       /* seen before */
	SLI_SEEN_NEW = 1,       /* new, now remembered */
	SLI_SEEN_FORGOTTEN = 2, /* behind the horizon (or out of memory):
	                           unknown, deliver it */
};

/* An empty set (seqs start at 1); horizon: a power of two >= 64. */
void sli_seen_init(sli_seen *s, size_t horizon);
void sli_seen_fini(sli_seen *s);

/* Checks seq (nonzero) and remembers it: one of the SLI_SEEN_ values. */
int sli_seen_add(sli_seen *s, uint64_t seq);

#endif /* SLI_LINK_SEEN_H */

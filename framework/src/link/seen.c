/*
 * seen.c — which sequence numbers of one stream were seen.  See seen.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "link/seen.h"

#define SEEN_WORD(s, q) ((s)->bits[((q) & ((s)->nbits - 1)) / 64])
#define SEEN_MASK(q)    ((uint64_t) 1 << ((q) % 64))
#define SEEN_FIRST      4096 /* bits of a new ring */

void
sli_seen_init(sli_seen *s, size_t horizon)
{
	memset(s, 0, sizeof(*s));
	s->base = 1;
	s->horizon = horizon;
}

void
sli_seen_fini(sli_seen *s)
{
	free(s->bits);
	s->bits = NULL;
	s->nbits = 0;
}

/* Regrows the ring to nbits, keeping its bits.  false: out of memory. */
static bool
seen_grow(sli_seen *s, size_t nbits)
{
	uint64_t *nb = calloc(nbits / 64, sizeof(*nb));

	if (nb == NULL)
		return (false);
	for (uint64_t q = s->base; s->bits != NULL && q < s->base + s->nbits;
	    q++)
		if (SEEN_WORD(s, q) & SEEN_MASK(q))
			nb[(q & (nbits - 1)) / 64] |= SEEN_MASK(q);
	free(s->bits);
	s->bits = nb;
	s->nbits = nbits;
	return (true);
}

int
sli_seen_add(sli_seen *s, uint64_t seq)
{
	if (seq <= s->low)
		return (SLI_SEEN_DUP);
	if (seq < s->base)
		return (SLI_SEEN_FORGOTTEN);
	if (seq >= s->base + s->nbits) {
		size_t n = s->nbits ? s->nbits :
		    s->horizon < SEEN_FIRST ? s->horizon : SEEN_FIRST;
		while (seq >= s->base + n && n < s->horizon)
			n *= 2;
		if (n != s->nbits && !seen_grow(s, n))
			return (SLI_SEEN_FORGOTTEN); /* cannot remember */
		if (seq >= s->base + s->nbits) {
			/* Slide: forget the oldest bits. */
			uint64_t nbase = seq - s->nbits + 1;
			if (nbase - s->base >= s->nbits)
				memset(s->bits, 0, s->nbits / 8);
			else
				for (uint64_t q = s->base; q < nbase; q++)
					SEEN_WORD(s, q) &= ~SEEN_MASK(q);
			s->base = nbase;
		}
	}
	if (SEEN_WORD(s, seq) & SEEN_MASK(seq))
		return (SLI_SEEN_DUP);
	SEEN_WORD(s, seq) |= SEEN_MASK(seq);
	/* Pull the contiguous run above low into it. */
	while (s->low + 1 == s->base &&
	    (SEEN_WORD(s, s->base) & SEEN_MASK(s->base))) {
		SEEN_WORD(s, s->base) &= ~SEEN_MASK(s->base);
		s->low++;
		s->base++;
	}
	return (SLI_SEEN_NEW);
}

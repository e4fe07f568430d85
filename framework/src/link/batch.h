/*
 * batch.h — the fast path for Batch frames (internal).
 *
 * Writes the canonical encoding of a Batch frame straight from message
 * views, and reads that canonical encoding back into views that point
 * into the frame's bytes, with no allocation per message.  Frames that
 * are not in canonical form go through sli_frame_decode (frame.h).
 */
#ifndef SLI_LINK_BATCH_H
#define SLI_LINK_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "link/frame.h"

/* One message of a batch, viewed. */
typedef struct sli_bmsg {
	uint64_t       seq;     /* nonzero, consecutive within a batch */
	uint64_t       lin_src; /* lineage (both 0: none) */
	uint64_t       lin_seq;
	const uint8_t *payload; /* len bytes (not owned) */
	size_t         len;
} sli_bmsg;

/* Lengths sli_batch_size works out for sli_batch_write. */
typedef struct sli_batch_plan {
	size_t body;   /* bytes of the Batch message */
	size_t deltas; /* bytes of its packed lineage_seq_delta */
} sli_batch_plan;

/* Bytes of the canonical Frame{batch} holding msgs[0..n); fills *plan. */
size_t sli_batch_size(const sli_bmsg *msgs, size_t n, sli_batch_plan *plan);

/* Writes it to out (sli_batch_size bytes, with the plan that call
 * filled); returns the bytes written.  The caller guarantees the rules of
 * frame.h (n >= 1, consecutive seqs, one lineage source for all messages
 * or none, nonzero lineage seqs, sizes within the limits). */
size_t sli_batch_write(const sli_bmsg *msgs, size_t n,
    const sli_batch_plan *plan, uint8_t *out);

/*
 * If buf[0..len) is a Batch frame in canonical form that obeys every rule
 * of frame.h under lim, stores views of its messages in *msgs (grown with
 * realloc; *cap is its size) and their count in *np, and returns 0.
 * Returns 1 for anything else: the caller must then use sli_frame_decode,
 * which accepts or refuses it with a message.  Views point into buf.
 */
int sli_batch_view(const void *buf, size_t len, const sli_frame_limits *lim,
    sli_bmsg **msgs, size_t *cap, size_t *np);

#endif /* SLI_LINK_BATCH_H */

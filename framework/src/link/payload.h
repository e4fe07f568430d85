/*
 * payload.h — where message payloads live (internal).
 *
 * A payload is either malloc'd on its own (sl_msg.block == NULL) or lies
 * in a shared block: the bytes of one received batch, or a slab that
 * sl_msg_alloc carves small payloads from.  A block counts the messages
 * pointing into it and is freed when the last one is released, on
 * whatever thread that happens.
 */
#ifndef SLI_LINK_PAYLOAD_H
#define SLI_LINK_PAYLOAD_H

#include <stdatomic.h>
#include <stddef.h>

#include "sluice/link.h"

/* The header of a shared block; the bytes follow it. */
struct sli_payload {
	_Alignas(16) atomic_int refs; /* messages (and allocators) holding
	                                 it; aligned so the bytes after the
	                                 header are too */
};

/* A block of size payload bytes held n times, or NULL. */
sli_payload *sli_payload_new(size_t size, int n);

/* The first payload byte of b. */
static inline unsigned char *
sli_payload_bytes(sli_payload *b)
{
	return ((unsigned char *) (b + 1));
}

/* Frees m's data (or drops its reference to its block); m->data and
 * m->block become NULL. */
void sli_payload_release(sl_msg *m);
/* The same for m[0..n), one reference count update per run of messages
 * sharing a buffer. */
void sli_payload_release_many(sl_msg *m, size_t n);

/* Blocks allocated and not yet freed, in the whole process (for tests:
 * a slab lives on while its thread carves from it). */
long sli_payload_live(void);

#endif /* SLI_LINK_PAYLOAD_H */

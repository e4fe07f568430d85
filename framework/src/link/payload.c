/*
 * payload.c — shared payload blocks and the slab allocator behind
 * sl_msg_alloc.
 *
 * malloc and free of one small buffer per message cost more than the
 * rest of a send (glibc's thread caches hold a few buffers of a size,
 * and a link keeps thousands in flight until they are acknowledged).
 * So each thread carves small payloads one after another from a slab of
 * its own; a slab is freed once the thread moved on to a new one and
 * every message carved from it was released.
 *
 * Counting without an atomic per carve: a new slab starts with
 * PL_BIAS references, all owned by its thread.  Each carve hands one of
 * them to the message, without touching the counter; when the thread
 * retires the slab it drops the PL_BIAS - carved it still owns at once.
 * Messages drop theirs one by one, and whoever brings the count to zero
 * frees the slab.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link/payload.h"
#include "sluice/error.h"

#define PL_SLAB  (64 * 1024)   /* bytes of payload per slab */
#define PL_SMALL (PL_SLAB / 16) /* larger payloads get a block each */
#define PL_ALIGN 8              /* payloads start 8-byte aligned */
#define PL_BIAS  (1 << 30)      /* a slab's initial references */

/* The slab a thread carves from. */
typedef struct pl_cursor {
	sli_payload   *slab;    /* NULL: none yet */
	unsigned char *next;    /* first free byte */
	unsigned char *end;     /* end of the slab */
	int            carved;  /* references handed to messages */
} pl_cursor;

static _Thread_local pl_cursor pl_cur;
static pthread_key_t           pl_key;
static pthread_once_t          pl_once = PTHREAD_ONCE_INIT;
static atomic_long             pl_live;

sli_payload *
sli_payload_new(size_t size, int n)
{
	sli_payload *b;

	if (size > SIZE_MAX - sizeof(*b) ||
	    (b = malloc(sizeof(*b) + size)) == NULL)
		return (NULL);
	atomic_init(&b->refs, n);
	atomic_fetch_add_explicit(&pl_live, 1, memory_order_relaxed);
	return (b);
}

long
sli_payload_live(void)
{
	return (atomic_load(&pl_live));
}

static void
pl_unref(sli_payload *b, int n)
{
	if (atomic_fetch_sub_explicit(&b->refs, n, memory_order_acq_rel) ==
	    n) {
		atomic_fetch_sub_explicit(&pl_live, 1, memory_order_relaxed);
		free(b);
	}
}

void
sli_payload_release(sl_msg *m)
{
	if (m->block != NULL)
		pl_unref(m->block, 1);
	else
		free(m->data);
	m->block = NULL;
	m->data = NULL;
}

void
sli_payload_release_many(sl_msg *m, size_t n)
{
	for (size_t i = 0; i < n; ) {
		sli_payload *b = m[i].block;
		size_t       j = i + 1;

		if (b == NULL) {
			free(m[i].data);
		} else {
			while (j < n && m[j].block == b) {
				m[j].block = NULL;
				m[j].data = NULL;
				j++;
			}
			pl_unref(b, (int) (j - i));
		}
		m[i].block = NULL;
		m[i].data = NULL;
		i = j;
	}
}

/* Gives up the calling thread's slab (it is freed once its messages
 * are). */
static void
pl_retire(pl_cursor *c)
{
	if (c->slab != NULL)
		pl_unref(c->slab, PL_BIAS - c->carved);
	memset(c, 0, sizeof(*c));
}

/* A thread that carved payloads exits: retire its slab. */
static void
pl_thread_exit(void *arg)
{
	(void) arg;
	pl_retire(&pl_cur);
}

static void
pl_init(void)
{
	(void) pthread_key_create(&pl_key, pl_thread_exit);
}

int
sl_msg_alloc(sl_msg *m, size_t len)
{
	pl_cursor *c = &pl_cur;
	size_t     sz = (len + PL_ALIGN - 1) & ~(size_t) (PL_ALIGN - 1);

	memset(m, 0, sizeof(*m));
	m->len = len;
	if (len == 0)
		return (0);
	if (len > PL_SMALL || sz < len) {
		if ((m->block = sli_payload_new(len, 1)) == NULL)
			return (SL_ENOMEM);
		m->data = sli_payload_bytes(m->block);
		return (0);
	}
	if (c->slab == NULL || sz > (size_t) (c->end - c->next) ||
	    c->carved == PL_BIAS - 1) {
		sli_payload *s;

		if (c->slab == NULL) {
			/* The first slab of this thread: have it retired
			 * when the thread exits. */
			(void) pthread_once(&pl_once, pl_init);
			(void) pthread_setspecific(pl_key, c);
		}
		if ((s = sli_payload_new(PL_SLAB, PL_BIAS)) == NULL)
			return (SL_ENOMEM);
		pl_retire(c);
		c->slab = s;
		c->next = sli_payload_bytes(s);
		c->end = c->next + PL_SLAB;
	}
	m->block = c->slab;
	m->data = c->next;
	c->next += sz;
	c->carved++;
	return (0);
}

/*
 * chan.h — channel internals shared by chan.c and select.c (internal).
 */
#ifndef SLI_CHAN_H
#define SLI_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "sched/wait.h"
#include "sluice/chan.h"

/* A blocked sender or receiver: one per case of a blocked select. */
typedef struct sli_chwaiter {
	struct sli_chwaiter *next;   /* toward the tail of the queue */
	struct sli_chwaiter *prev;   /* toward the head */
	sli_wait            *wait;   /* the blocked party */
	int                  index;  /* its source index (select case) */
	void                *elem;   /* send: the value; recv: destination */
	bool                 ok;     /* out: value moved (false: closed) */
	bool                 queued; /* still linked */
} sli_chwaiter;

typedef struct sli_chq {
	sli_chwaiter *head;
	sli_chwaiter *tail;
} sli_chq;

struct sl_chan {
	atomic_int lock;      /* guards everything below */
	atomic_int refs;      /* references (sl_chan_retain) */
	size_t     elem_size; /* bytes per element */
	size_t     cap;       /* buffer slots */
	size_t     len;       /* buffered elements */
	size_t     head;      /* index of the oldest buffered element */
	bool       closed;
	sli_chq    recvq;     /* blocked receivers */
	sli_chq    sendq;     /* blocked senders */
	char      *buf;       /* cap * elem_size bytes, after the struct */
};

void sli_chq_push(sli_chq *q, sli_chwaiter *e);
void sli_chq_remove(sli_chq *q, sli_chwaiter *e);

/* With ch->lock held: completes a send or receive if it can proceed now.
 * Returns true if it did; *ok false means the channel was closed (for a
 * send that is an error the caller reports). */
bool sli_chan_send_locked(sl_chan *ch, const void *elem, bool *ok);
bool sli_chan_recv_locked(sl_chan *ch, void *elem, bool *ok);

/*
 * Bulk forms for the link layer, one lock round for many elements:
 * receive up to max elements into elems (stopping when none is ready,
 * or at a closed and drained channel), or send elems[0..n) in order as
 * far as they go without blocking (stopping at a full or closed
 * channel).  Return how many moved.  Never block.
 */
size_t sli_chan_tryrecv_many(sl_chan *ch, void *elems, size_t max);
size_t sli_chan_trysend_many(sl_chan *ch, const void *elems, size_t n);

/* Go-style abort on misuse of a closed channel, if enabled. */
void sli_chan_misuse(const char *what);

/* Reads $SLUICE_PANIC again for sl_main, as the other variables are,
 * unless the program chose with sl_chan_set_panic: SL_EINVAL, with a
 * message on stderr, if it is neither 0 nor 1. */
int sli_chan_panic_check(void);

#endif /* SLI_CHAN_H */

/*
 * wait.h — how blocking operations park and wake goroutines (internal).
 *
 * Every blocking operation (channel, select, mutex, WaitGroup, sleep, ...)
 * is one sli_wait on the blocked party's stack.  The wait may be ended by
 * several sources: any of its wait-queue entries (a case index >= 0), its
 * deadline (SLI_WAIT_TIMEOUT) or its context (SLI_WAIT_CANCELED).  Sources
 * race with sli_wait_claim(); only the winner completes the operation and
 * then calls sli_wait_wake().  The blocked party may be a goroutine (it
 * parks, its worker runs others) or a plain thread (it waits on a condition
 * variable), which is what lets channels be used from foreign threads.
 *
 * The pattern (one lock shown; select holds several):
 *
 *	sli_wait w;
 *	sli_wait_init(&w);
 *	sli_lock(&obj->lock);
 *	... fast path, or enqueue an entry pointing at &w ...
 *	int r = sli_wait_block(&w, ctx, deadline, "mutex", obj,
 *	    sli_unlock_cb, &obj->lock);        // releases the lock, parks
 *	if (r < 0) { lock; dequeue our entry if still queued; unlock; }
 *
 * A waker, holding obj->lock, takes an entry off the queue and
 *
 *	if (sli_wait_claim(e->wait, e->index)) {
 *		complete e; sli_wait_wake(e->wait);
 *	}
 *	else { entry lost the race: skip it }
 */
#ifndef SLI_WAIT_H
#define SLI_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/runtime.h"

#define SLI_WAIT_PENDING  (-1) /* nothing has ended the wait yet */
#define SLI_WAIT_TIMEOUT  (-2) /* the deadline passed */
#define SLI_WAIT_CANCELED (-3) /* the context was done */
#define SLI_WAIT_ABANDONED (-4) /* sl_main returned: its goroutine is gone */

/* Goroutine park handshake in sli_wait.woken. */
enum { SLI_WS_RUNNING = 0, SLI_WS_PARKED = 1, SLI_WS_WOKEN = 2 };

typedef struct sli_g      sli_g;
typedef struct sli_timer  sli_timer;
typedef struct sli_wait   sli_wait;

/* A timer in the scheduler's heap.  fn runs on a worker thread (outside
 * any goroutine) and must not block.  A periodic timer (period > 0) goes
 * back in the heap after each run, at its next multiple of period after
 * now (late runs are dropped, not bunched), until stopped.  A one-shot
 * timer's fn may instead set when and again, to run once more then
 * (unless stopped meanwhile). */
struct sli_timer {
	int64_t     when;    /* deadline, sl_now() clock */
	int64_t     period;  /* 0: one-shot */
	void      (*fn)(sli_timer *); /* called when due */
	void      (*done)(sli_timer *); /* or NULL: called once a one-shot
	                         timer has run, or when sl_main drops it
	                         unrun; the timer is then idle and done may
	                         free it */
	void       *arg;     /* for fn */
	int         heapidx; /* index in the heap, -1 if not queued, -2 if
	                         in the overflow list */
	sli_timer  *ovnext, *ovprev; /* in the overflow list (timer.c) */
	bool        stopreq; /* stopped while fn ran: do not requeue */
	bool        again;   /* set by fn: run again at when */
	atomic_int  state;   /* SLI_TIMER_* */
};

enum { SLI_TIMER_IDLE = 0, SLI_TIMER_QUEUED, SLI_TIMER_RUNNING };

/* Queues t (which must be idle) to fire at t->when.  0, or SL_ESTATE
 * without a scheduler; it never fails for want of memory. */
int sli_timer_start(sli_timer *t);
/* True on a thread while it runs a timer's fn: code that may run there
 * must not stop that timer, nor wait for anything. */
bool sli_timer_in_fn(void);
/* From t's fn: starts fn(arg) in a goroutine, and if there is no memory
 * for one, has t run again SLI_TIMER_RETRY_NS later to try again.
 * Returns sl_go's result. */
#define SLI_TIMER_RETRY_NS (1000 * 1000)
int sli_timer_go(sli_timer *t, void (*fn)(void *), void *arg);
/* Removes t if queued; if its fn is running on another thread, waits for
 * it to return.  After this, t is idle and fn will not touch it.  True if
 * t was still to fire: queued, or periodic. */
bool sli_timer_stop(sli_timer *t);

/* Registration of a wait with a context (see context/ctx.h). */
typedef struct sli_ctxwatch {
	struct sli_ctxwatch *next, *prev; /* in the context's watcher list */
	sli_wait            *wait;        /* claimed with SLI_WAIT_CANCELED */
	sl_ctx              *ctx;         /* where it is registered, or NULL */
} sli_ctxwatch;

struct sli_wait {
	atomic_int      fired;  /* SLI_WAIT_PENDING, or the winning source */
	atomic_int      woken;  /* goroutine: SLI_WS_*; thread: 1 once woken */
	sli_g          *g;      /* the parked goroutine, NULL for a thread */
	pthread_mutex_t *tmu;   /* thread parker (per-thread, lazily made) */
	pthread_cond_t  *tcv;
	sli_timer       timer;  /* the deadline */
	sli_ctxwatch    cw;     /* the context registration */
};

/* Prepares w for the calling goroutine or thread. */
void sli_wait_init(sli_wait *w);

/* Tries to end w with source; true if this caller won the race. */
static inline bool
sli_wait_claim(sli_wait *w, int source)
{
	int expect = SLI_WAIT_PENDING;
	return (atomic_compare_exchange_strong_explicit(&w->fired, &expect,
	    source, memory_order_acq_rel, memory_order_acquire));
}

/* What a blocking call returns for the source that ended its wait: 0 for a
 * wait-queue entry (>= 0), SL_ETIMEDOUT for the deadline, the context's
 * error (SL_ECANCELED if it has none yet) for the context. */
int sli_wait_err(int fired, sl_ctx *ctx);

/* Wakes the owner of w (whose wait the caller has claimed). */
void sli_wait_wake(sli_wait *w);

/* The wait parked goroutine g blocks in (sli_wait_block), or NULL. */
sli_wait *sli_wait_of(sli_g *g);

/*
 * Contract for unlock: when it is non-NULL, every source that can end the
 * wait other than ctx and deadline must hold the lock that unlock releases
 * while it claims and wakes (true of all wait queues).  Waits with no such
 * lock (a thread pool job) pass unlock NULL.
 *
 * Arms the deadline (SL_FOREVER: none) and the context (NULL: none), calls
 * unlock(arg) once the caller is safely parked, and sleeps until some
 * source claims w.  Returns the winning source.  If ctx is already done or
 * the deadline already passed, claims that at once (unless already claimed)
 * and does not sleep; unlock is still called.  reason/obj describe the
 * wait for sl_dump_goroutines and deadlock reports.
 */
int sli_wait_block(sli_wait *w, sl_ctx *ctx, int64_t deadline,
    const char *reason, const void *obj, void (*unlock)(void *), void *arg);

/* Wait-queue entry used by sync primitives: a FIFO of these in
 * struct sli_waitq (sluice/sync.h), manipulated under the object's lock. */
typedef struct sli_waiter {
	struct sli_waiter *next; /* toward the tail */
	struct sli_waiter *prev; /* toward the head */
	sli_wait          *wait; /* the blocked party */
	int                kind; /* user tag (e.g. reader/writer) */
	bool               queued; /* still linked in the queue */
} sli_waiter;

/*
 * Wakes collected under an object's lock and delivered after it is
 * released: a woken party may free the object (a WaitGroup on its stack,
 * a mutex inside a struct) as soon as it runs, so the waker must not touch
 * the object after the wake.  Entries must already be off their queue and
 * claimed.
 */
typedef struct sli_wakelist {
	sli_waiter *head;
	sli_waiter *tail;
} sli_wakelist;

#define SLI_WAKELIST_INIT { NULL, NULL }
void sli_wakelist_add(sli_wakelist *l, sli_waiter *e);
void sli_wakelist_wake(sli_wakelist *l);

struct sli_waitq;
void        sli_waitq_push(struct sli_waitq *q, sli_waiter *e);
sli_waiter *sli_waitq_pop(struct sli_waitq *q); /* NULL if empty */
void        sli_waitq_remove(struct sli_waitq *q, sli_waiter *e);
sli_waiter *sli_waitq_peek(struct sli_waitq *q);

/* Context hooks implemented by context/ctx.c: register w to be claimed
 * with SLI_WAIT_CANCELED when ctx is done.  Returns 0, or the ctx error if
 * ctx is already done (nothing registered).  ctx NULL or never-done: 0. */
int  sli_ctx_watch(sl_ctx *ctx, sli_ctxwatch *cw);
void sli_ctx_unwatch(sli_ctxwatch *cw);

#endif /* SLI_WAIT_H */

/*
 * waitgroup.c — sl_waitgroup: Go's sync.WaitGroup.
 *
 * The counter is atomic: an add that leaves it above zero is one atomic
 * add, with no lock (done() from many goroutines at once would otherwise
 * all queue on the spinlock).  The queue of waiters sits under the
 * spinlock.  A waiter reads the counter under the spinlock and queues
 * itself only if it is not zero; an add that brings it to zero takes the
 * spinlock and, if it is still zero (a new add may have come in between,
 * whose own zero will wake them), claims every queued waiter and wakes
 * them, in queue order, once the spinlock is dropped.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/sync.h"
#include "core/lock.h"
#include "sched/wait.h"

/*
 * Adds delta to the counter.  On reaching zero, releases all waiters.
 * A negative counter is a bug: aborts with Go's message.
 */
void
sl_waitgroup_add(sl_waitgroup *wg, int64_t delta)
{
	sli_waiter  *e;
	sli_wakelist wl = SLI_WAKELIST_INIT;
	int64_t      v;

	v = atomic_fetch_add_explicit(&wg->count, delta,
	    memory_order_acq_rel) + delta;
	if (v < 0) {
		fputs("sluice: fatal error: sync: negative WaitGroup counter\n",
		    stderr);
		fflush(stderr);
		abort();
	}
	if (v > 0 || delta == 0)
		return;

	sli_lock(&wg->lock);
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
		while ((e = sli_waitq_pop(&wg->waiters)) != NULL) {
			if (sli_wait_claim(e->wait, 0))
				sli_wakelist_add(&wl, e);
		}
	}
	sli_unlock(&wg->lock);
	/* A waiter may free wg as soon as it runs. */
	sli_wakelist_wake(&wl);
}

/* sl_waitgroup_add(wg, -1). */
void
sl_waitgroup_done(sl_waitgroup *wg)
{
	sl_waitgroup_add(wg, -1);
}

/*
 * Waits until the counter is zero (returns at once if it is), at most
 * until deadline and until ctx is done.  Returns 0, SL_ETIMEDOUT or
 * sl_ctx_err(ctx).
 */
int
sl_waitgroup_wait_ctx(sl_waitgroup *wg, sl_ctx *ctx, int64_t deadline)
{
	sli_wait w;
	sli_waiter e;
	int r;

	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0)
		return (0);
	sli_lock(&wg->lock);
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
		sli_unlock(&wg->lock);
		return (0);
	}
	sli_wait_init(&w);
	e.wait = &w;
	e.kind = 0;
	sli_waitq_push(&wg->waiters, &e);
	r = sli_wait_block(&w, ctx, deadline, "sync.WaitGroup.Wait", wg,
	    sli_unlock_cb, &wg->lock);
	if (r == 0)
		return (0);

	sli_lock(&wg->lock);
	if (e.queued)
		sli_waitq_remove(&wg->waiters, &e);
	sli_unlock(&wg->lock);
	if (r == SLI_WAIT_TIMEOUT)
		return (SL_ETIMEDOUT);
	r = sl_ctx_err(ctx);
	return (r != 0 ? r : SL_ECANCELED);
}

/* Waits until the counter is zero, as long as it takes. */
void
sl_waitgroup_wait(sl_waitgroup *wg)
{
	(void) sl_waitgroup_wait_ctx(wg, NULL, SL_FOREVER);
}

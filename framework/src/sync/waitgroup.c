/*
 * waitgroup.c — sl_waitgroup: Go's sync.WaitGroup.
 *
 * The counter and the queue of waiters sit under the object's spinlock.
 * When an add brings the counter to zero every queued waiter is claimed
 * and woken, in queue order, before the spinlock is dropped.
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

	sli_lock(&wg->lock);
	wg->count += delta;
	if (wg->count < 0) {
		sli_unlock(&wg->lock);
		fputs("sluice: fatal error: sync: negative WaitGroup counter\n",
		    stderr);
		fflush(stderr);
		abort();
	}
	if (wg->count == 0) {
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

	sli_lock(&wg->lock);
	if (wg->count == 0) {
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
	return (sli_wait_err(r, ctx));
}

/* Waits until the counter is zero, as long as it takes. */
void
sl_waitgroup_wait(sl_waitgroup *wg)
{
	(void) sl_waitgroup_wait_ctx(wg, NULL, SL_FOREVER);
}

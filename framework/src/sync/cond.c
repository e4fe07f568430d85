/*
 * cond.c — sl_cond: Go's sync.Cond over an sl_mutex.
 *
 * A waiter queues itself before it unlocks the mutex, so a signaler (who
 * locks the mutex after that unlock, changes the state, then signals)
 * cannot miss it; a signal that comes before the waiter has parked claims
 * its wait all the same, and the park returns at once.  Signal pops waiters
 * until it claims one still waiting (those that timed out or were canceled
 * lose the claim and are skipped, so a signal is not wasted on them); the
 * wakes happen after the spinlock is dropped.  A woken waiter takes the
 * mutex again, by the mutex's own FIFO.
 */
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/sync.h"
#include "core/lock.h"
#include "sched/wait.h"

int
sl_cond_wait_ctx(sl_cond *c, sl_mutex *mu, sl_ctx *ctx, int64_t deadline)
{
	sli_wait   w;
	sli_waiter e;
	int        r;

	sli_wait_init(&w);
	e.wait = &w;
	e.kind = 0;
	sli_lock(&c->lock);
	sli_waitq_push(&c->waiters, &e);
	sli_unlock(&c->lock);
	sl_mutex_unlock(mu);
	/* A signal may claim w from here on, before we park: sli_wait_block
	 * then returns at once (no lock to hand it: unlock is NULL). */
	r = sli_wait_block(&w, ctx, deadline, "sync.Cond.Wait", c, NULL,
	    NULL);
	if (r != 0) {
		/* Timed out or canceled: nobody can claim us any more. */
		sli_lock(&c->lock);
		if (e.queued)
			sli_waitq_remove(&c->waiters, &e);
		sli_unlock(&c->lock);
	}
	sl_mutex_lock(mu);
	return (sli_wait_err(r, ctx));
}

void
sl_cond_wait(sl_cond *c, sl_mutex *mu)
{
	(void) sl_cond_wait_ctx(c, mu, NULL, SL_FOREVER);
}

/* Wakes up to max waiters (0: all). */
static void
cond_wake(sl_cond *c, int max)
{
	sli_wakelist wl = SLI_WAKELIST_INIT;
	sli_waiter  *e;
	int          n = 0;

	sli_lock(&c->lock);
	while ((max == 0 || n < max) &&
	    (e = sli_waitq_pop(&c->waiters)) != NULL) {
		if (!sli_wait_claim(e->wait, 0))
			continue; /* it timed out or was canceled */
		sli_wakelist_add(&wl, e);
		n++;
	}
	sli_unlock(&c->lock);
	sli_wakelist_wake(&wl);
}

void
sl_cond_signal(sl_cond *c)
{
	cond_wake(c, 1);
}

void
sl_cond_broadcast(sl_cond *c)
{
	cond_wake(c, 0);
}

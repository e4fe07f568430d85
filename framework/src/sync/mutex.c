/*
 * mutex.c — sl_mutex: Go's sync.Mutex with FIFO handoff.
 *
 * `locked` is the lock word: 0 free, 1 held, 2 held and the queue may be
 * non-empty.  Uncontended lock and unlock are one CAS each.  A locker that
 * finds the mutex held takes the spinlock, marks the word 2 and queues
 * itself; an unlocker that finds 2 takes the spinlock and hands ownership
 * straight to the first queued waiter whose wait it can claim (the word
 * stays non-zero, so nobody barges in between), skipping waiters that
 * timed out or were canceled.  Only when no waiter takes it does the word
 * return to 0.  The invariant is that while the queue is non-empty the
 * word is 2; the word only moves 1 -> 2 and 0 -> 1/2 under the spinlock.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/sync.h"
#include "core/lock.h"
#include "sched/wait.h"

enum { MU_FREE = 0, MU_HELD = 1, MU_CONTENDED = 2 };

static void
mu_fatal(const char *msg)
{
	fprintf(stderr, "sluice: fatal error: sync: %s\n", msg);
	fflush(stderr);
	abort();
}

/*
 * Tries to take mu with the spinlock held: true if it was free.  Otherwise
 * makes sure the word says MU_CONTENDED, so that the holder's unlock will
 * look at the queue, and returns false.
 */
static bool
mu_take_or_mark(sl_mutex *mu)
{
	int s = atomic_load_explicit(&mu->locked, memory_order_relaxed);

	for (;;) {
		if (s == MU_FREE) {
			int want = mu->waiters.head != NULL ?
			    MU_CONTENDED : MU_HELD;
			if (atomic_compare_exchange_weak_explicit(&mu->locked,
			    &s, want, memory_order_acquire,
			    memory_order_relaxed))
				return (true);
		} else if (s == MU_HELD) {
			if (atomic_compare_exchange_weak_explicit(&mu->locked,
			    &s, MU_CONTENDED, memory_order_relaxed,
			    memory_order_relaxed))
				return (false);
		} else {
			return (false);
		}
	}
}

/*
 * Acquires mu, waiting at most until deadline (SL_FOREVER: no limit) and
 * until ctx (NULL: none) is done.  A free mutex is taken even if ctx is
 * already done.  Returns 0 with mu held, SL_ETIMEDOUT, or sl_ctx_err(ctx);
 * on error mu is not held by the caller.
 */
int
sl_mutex_lock_ctx(sl_mutex *mu, sl_ctx *ctx, int64_t deadline)
{
	int expect = MU_FREE;
	sli_wait w;
	sli_waiter e;
	int r;

	if (atomic_compare_exchange_strong_explicit(&mu->locked, &expect,
	    MU_HELD, memory_order_acquire, memory_order_relaxed))
		return (0);

	sli_lock(&mu->lock);
	if (mu_take_or_mark(mu)) {
		sli_unlock(&mu->lock);
		return (0);
	}
	sli_wait_init(&w);
	e.wait = &w;
	e.kind = 0;
	sli_waitq_push(&mu->waiters, &e);
	r = sli_wait_block(&w, ctx, deadline, "sync.Mutex.Lock", mu,
	    sli_unlock_cb, &mu->lock);
	if (r == 0)
		return (0); /* the unlocker handed us ownership */

	/* Timed out or canceled: nobody can claim us any more. */
	sli_lock(&mu->lock);
	if (e.queued)
		sli_waitq_remove(&mu->waiters, &e);
	sli_unlock(&mu->lock);
	return (sli_wait_err(r, ctx));
}

/*
 * Acquires mu, waiting as long as it takes.
 */
void
sl_mutex_lock(sl_mutex *mu)
{
	(void) sl_mutex_lock_ctx(mu, NULL, SL_FOREVER);
}

/*
 * Acquires mu if it is free right now.  Never waits.
 */
bool
sl_mutex_trylock(sl_mutex *mu)
{
	int expect = MU_FREE;

	return (atomic_compare_exchange_strong_explicit(&mu->locked, &expect,
	    MU_HELD, memory_order_acquire, memory_order_relaxed));
}

/*
 * Releases mu, which any party may do (as in Go, ownership is not tied to
 * a goroutine).  If waiters are queued, the first one still waiting
 * becomes the owner.  Aborts if mu is not locked.
 */
void
sl_mutex_unlock(sl_mutex *mu)
{
	int expect = MU_HELD;
	sli_waiter *e;

	if (atomic_compare_exchange_strong_explicit(&mu->locked, &expect,
	    MU_FREE, memory_order_release, memory_order_relaxed))
		return;
	if (expect == MU_FREE)
		mu_fatal("unlock of unlocked mutex");

	sli_lock(&mu->lock);
	while ((e = sli_waitq_pop(&mu->waiters)) != NULL) {
		sli_wait *w = e->wait;

		if (!sli_wait_claim(w, 0))
			continue; /* it timed out or was canceled */
		/* Hand over: the word stays non-zero throughout. */
		atomic_store_explicit(&mu->locked,
		    mu->waiters.head != NULL ? MU_CONTENDED : MU_HELD,
		    memory_order_release);
		sli_unlock(&mu->lock);
		/* The new owner may free mu as soon as it runs. */
		sli_wait_wake(w);
		return;
	}
	atomic_store_explicit(&mu->locked, MU_FREE, memory_order_release);
	sli_unlock(&mu->lock);
}

/*
 * rwmutex.c — sl_rwmutex: Go's sync.RWMutex.
 *
 * All state (active readers, writer flag, FIFO of waiters) sits under the
 * object's spinlock.  A newcomer gets in at once only if nobody is queued
 * ahead of it, so a waiting writer holds back later readers and cannot be
 * starved.  Whenever the mutex may have become available (a release, or a
 * queued waiter giving up) rw_grant admits, from the queue head, either
 * one writer or a run of consecutive readers.  Granting means claiming
 * the waiter's wait and updating the counts for it before waking it, so
 * ownership is handed over without a window for barging.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/sync.h"
#include "core/lock.h"
#include "sched/wait.h"

enum { RW_READER = 1, RW_WRITER = 2 };

static void
rw_fatal(const char *msg)
{
	fprintf(stderr, "sluice: fatal error: sync: %s\n", msg);
	fflush(stderr);
	abort();
}

/*
 * With rw->lock held: admits waiters from the queue head as far as the
 * current holders allow.  Waiters whose claim fails (they are timing out
 * or being canceled) are dropped from the queue and skipped.
 */
static void
rw_grant(sl_rwmutex *rw, sli_wakelist *wl)
{
	sli_waiter *e;

	while ((e = sli_waitq_peek(&rw->waiters)) != NULL) {
		sli_wait *w = e->wait;

		if (rw->writer)
			return;
		if (e->kind == RW_WRITER) {
			if (rw->readers > 0)
				return;
			sli_waitq_remove(&rw->waiters, e);
			if (!sli_wait_claim(w, 0))
				continue;
			rw->writer = true;
			sli_wakelist_add(wl, e);
			return;
		}
		sli_waitq_remove(&rw->waiters, e);
		if (!sli_wait_claim(w, 0))
			continue;
		rw->readers++;
		sli_wakelist_add(wl, e);
	}
}

/*
 * Queues the caller as kind and parks it; rw->lock is held on entry and
 * released.  Returns 0 once granted, else SL_ETIMEDOUT or the ctx error
 * (the caller then holds nothing).
 */
static int
rw_wait(sl_rwmutex *rw, int kind, sl_ctx *ctx, int64_t deadline)
{
	sli_wait     w;
	sli_waiter   e;
	sli_wakelist wl = SLI_WAKELIST_INIT;
	int          r;

	sli_wait_init(&w);
	e.wait = &w;
	e.kind = kind;
	sli_waitq_push(&rw->waiters, &e);
	r = sli_wait_block(&w, ctx, deadline, kind == RW_WRITER ?
	    "sync.RWMutex.Lock" : "sync.RWMutex.RLock", rw, sli_unlock_cb,
	    &rw->lock);
	if (r == 0)
		return (0);

	sli_lock(&rw->lock);
	if (e.queued) {
		sli_waitq_remove(&rw->waiters, &e);
		/* We may have been what held back those behind us. */
		rw_grant(rw, &wl);
	}
	sli_unlock(&rw->lock);
	sli_wakelist_wake(&wl);
	return (sli_wait_err(r, ctx));
}

/*
 * With rw->lock held: takes the lock as kind if that needs no wait, which
 * is only when nobody is queued (a newcomer never overtakes a waiter).
 */
static bool
rw_take_now(sl_rwmutex *rw, int kind)
{
	if (rw->writer || rw->waiters.head != NULL)
		return (false);
	if (kind == RW_READER) {
		rw->readers++;
		return (true);
	}
	if (rw->readers > 0)
		return (false);
	rw->writer = true;
	return (true);
}

/* Takes the lock as kind if rw_take_now can; false otherwise. */
static bool
rw_try(sl_rwmutex *rw, int kind)
{
	bool ok;

	sli_lock(&rw->lock);
	ok = rw_take_now(rw, kind);
	sli_unlock(&rw->lock);
	return (ok);
}

bool
sl_rwmutex_tryrlock(sl_rwmutex *rw)
{
	return (rw_try(rw, RW_READER));
}

bool
sl_rwmutex_trylock(sl_rwmutex *rw)
{
	return (rw_try(rw, RW_WRITER));
}

/*
 * Takes a read lock, waiting at most until deadline and until ctx is done.
 * Returns 0 (held), SL_ETIMEDOUT or sl_ctx_err(ctx) (not held).
 */
int
sl_rwmutex_rlock_ctx(sl_rwmutex *rw, sl_ctx *ctx, int64_t deadline)
{
	sli_lock(&rw->lock);
	if (rw_take_now(rw, RW_READER)) {
		sli_unlock(&rw->lock);
		return (0);
	}
	return (rw_wait(rw, RW_READER, ctx, deadline));
}

/* Takes a read lock, waiting as long as it takes. */
void
sl_rwmutex_rlock(sl_rwmutex *rw)
{
	(void) sl_rwmutex_rlock_ctx(rw, NULL, SL_FOREVER);
}

/*
 * Drops one read lock; the last reader out lets a queued writer in.
 * Aborts if no read lock is held.
 */
void
sl_rwmutex_runlock(sl_rwmutex *rw)
{
	sli_wakelist wl = SLI_WAKELIST_INIT;

	sli_lock(&rw->lock);
	if (rw->readers <= 0) {
		sli_unlock(&rw->lock);
		rw_fatal("RUnlock of unlocked RWMutex");
	}
	if (--rw->readers == 0)
		rw_grant(rw, &wl);
	sli_unlock(&rw->lock);
	sli_wakelist_wake(&wl);
}

/*
 * Takes the write lock, waiting at most until deadline and until ctx is
 * done.  Returns 0 (held), SL_ETIMEDOUT or sl_ctx_err(ctx) (not held).
 */
int
sl_rwmutex_lock_ctx(sl_rwmutex *rw, sl_ctx *ctx, int64_t deadline)
{
	sli_lock(&rw->lock);
	if (rw_take_now(rw, RW_WRITER)) {
		sli_unlock(&rw->lock);
		return (0);
	}
	return (rw_wait(rw, RW_WRITER, ctx, deadline));
}

/* Takes the write lock, waiting as long as it takes. */
void
sl_rwmutex_lock(sl_rwmutex *rw)
{
	(void) sl_rwmutex_lock_ctx(rw, NULL, SL_FOREVER);
}

/*
 * Drops the write lock and admits the next writer or the run of readers
 * at the queue head.  Aborts if the write lock is not held.
 */
void
sl_rwmutex_unlock(sl_rwmutex *rw)
{
	sli_wakelist wl = SLI_WAKELIST_INIT;

	sli_lock(&rw->lock);
	if (!rw->writer) {
		sli_unlock(&rw->lock);
		rw_fatal("Unlock of unlocked RWMutex");
	}
	rw->writer = false;
	rw_grant(rw, &wl);
	sli_unlock(&rw->lock);
	sli_wakelist_wake(&wl);
}

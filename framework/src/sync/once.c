/*
 * once.c — sl_once: Go's sync.Once.
 *
 * The done flag is the fast path (one acquire load once fn has run).  The
 * first callers serialise on the embedded mutex; the one that finds done
 * still clear runs fn, and the others wait on the mutex until it returns.
 */
#include "sluice/sync.h"

/*
 * Runs fn(arg) if no call on once has run it yet; returns only after it
 * has returned (in whichever caller ran it).
 */
void
sl_once_do(sl_once *once, sl_fn fn, void *arg)
{
	if (atomic_load_explicit(&once->done, memory_order_acquire))
		return;
	sl_mutex_lock(&once->mu);
	if (!atomic_load_explicit(&once->done, memory_order_relaxed)) {
		fn(arg);
		atomic_store_explicit(&once->done, 1, memory_order_release);
	}
	sl_mutex_unlock(&once->mu);
}

/*
 * timer.c — the scheduler's timers: one binary min-heap for the process.
 *
 * No thread per timer: workers fire due timers between goroutines, and an
 * idle worker sleeps until the earliest deadline.  A timer is a struct the
 * caller owns (usually inside an sli_wait on a goroutine's stack);
 * sli_timer_stop guarantees that once it returns the callback will not
 * touch the timer again, waiting out a callback already running elsewhere.
 */
#include <stdlib.h>

#include "core/lock.h"
#include "sched/sched.h"
#include "sluice/error.h"

static struct {
	atomic_int    lock;  /* guards the heap */
	sli_timer   **heap;  /* heap[0] is the earliest */
	int           len;
	int           cap;
	_Atomic int64_t next; /* heap[0]->when, or INT64_MAX */
} tm = { .next = INT64_MAX };

static bool
tm_less(int a, int b)
{
	return (tm.heap[a]->when < tm.heap[b]->when);
}

static void
tm_swap(int a, int b)
{
	sli_timer *t = tm.heap[a];

	tm.heap[a] = tm.heap[b];
	tm.heap[b] = t;
	tm.heap[a]->heapidx = a;
	tm.heap[b]->heapidx = b;
}

static void
tm_up(int i)
{
	while (i > 0 && tm_less(i, (i - 1) / 2)) {
		tm_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
tm_down(int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < tm.len && tm_less(l, m))
			m = l;
		if (r < tm.len && tm_less(r, m))
			m = r;
		if (m == i)
			return;
		tm_swap(i, m);
		i = m;
	}
}

static void
tm_remove_at(int i)
{
	tm.len--;
	if (i != tm.len) {
		tm.heap[i] = tm.heap[tm.len];
		tm.heap[i]->heapidx = i;
		tm_down(i);
		tm_up(i);
	}
}

static void
tm_update_next(void)
{
	atomic_store(&tm.next, tm.len ? tm.heap[0]->when : INT64_MAX);
}

/* Puts t in the heap (under tm.lock): 0, with *earliest telling whether it
 * is now first, or SL_ENOMEM. */
static int
tm_insert(sli_timer *t, bool *earliest)
{
	if (tm.len == tm.cap) {
		int         ncap = tm.cap ? tm.cap * 2 : 64;
		sli_timer **n = realloc(tm.heap, sizeof(*n) * (size_t) ncap);
		if (n == NULL)
			return (SL_ENOMEM);
		tm.heap = n;
		tm.cap = ncap;
	}
	atomic_store(&t->state, SLI_TIMER_QUEUED);
	t->heapidx = tm.len;
	tm.heap[tm.len++] = t;
	tm_up(t->heapidx);
	*earliest = tm.heap[0] == t;
	tm_update_next();
	return (0);
}

int
sli_timer_start(sli_timer *t)
{
	int64_t when = t->when; /* t may run and move once in the heap */
	bool    earliest;
	int     err;

	if (!atomic_load(&sli_S.running))
		return (SL_ESTATE);
	sli_lock(&tm.lock);
	t->stopreq = false;
	err = tm_insert(t, &earliest);
	sli_unlock(&tm.lock);
	if (err == 0 && earliest)
		sli_sched_timer_added(when);
	return (err);
}

bool
sli_timer_stop(sli_timer *t)
{
	bool active = false;

	sli_lock(&tm.lock);
	switch (atomic_load(&t->state)) {
	case SLI_TIMER_QUEUED:
		tm_remove_at(t->heapidx);
		t->heapidx = -1;
		atomic_store(&t->state, SLI_TIMER_IDLE);
		tm_update_next();
		active = true;
		break;
	case SLI_TIMER_RUNNING:
		t->stopreq = true; /* seen under the lock after fn returns */
		active = t->period > 0;
		break;
	}
	sli_unlock(&tm.lock);
	/* A plain thread may have taken the last thing the workers were
	 * waiting for: one of them must look again, or a deadlock would
	 * wait out the stopped deadline (a goroutine's worker looks anyway
	 * when it runs out of work). */
	if (active && sli_self() == NULL)
		sli_sched_poke();
	while (atomic_load_explicit(&t->state, memory_order_acquire) ==
	    SLI_TIMER_RUNNING)
		sli_cpu_relax();
	return (active);
}

int64_t
sli_timers_next(void)
{
	return (atomic_load_explicit(&tm.next, memory_order_relaxed));
}

bool
sli_timers_pending(void)
{
	return (sli_timers_next() != INT64_MAX);
}

/*
 * After t's fn returned: a periodic timer not stopped meanwhile goes back
 * in the heap at its next period after now; anything else (or a periodic
 * timer the heap has no room for) becomes idle, and then gets its done
 * callback, which may free it.
 */
static void
tm_after_run(sli_timer *t)
{
	void  (*done)(sli_timer *) = NULL;
	bool    requeued = false, earliest = false;
	int64_t next = 0;

	sli_lock(&tm.lock);
	if (t->period > 0 && !t->stopreq) {
		int64_t at = sl_now();

		t->when += t->period;
		if (t->when <= at)
			t->when += ((at - t->when) / t->period + 1) * t->period;
		next = t->when;
		requeued = tm_insert(t, &earliest) == 0;
	}
	if (!requeued) {
		done = t->done;
		atomic_store_explicit(&t->state, SLI_TIMER_IDLE,
		    memory_order_release);
	}
	sli_unlock(&tm.lock);
	if (done != NULL)
		done(t);
	else if (earliest)
		sli_sched_timer_added(next); /* t may be gone: not t->when */
}

bool
sli_timers_run(int64_t now)
{
	bool ran = false;

	for (;;) {
		sli_timer *t;

		sli_lock(&tm.lock);
		if (tm.len == 0 || tm.heap[0]->when > now) {
			sli_unlock(&tm.lock);
			return (ran);
		}
		t = tm.heap[0];
		tm_remove_at(0);
		t->heapidx = -1;
		atomic_store(&t->state, SLI_TIMER_RUNNING);
		tm_update_next();
		sli_unlock(&tm.lock);

		t->fn(t);
		tm_after_run(t);
		ran = true;
	}
}

/* Drops every queued timer (the scheduler is stopping) and the heap;
 * those with a done callback get it, so self-owned timers are freed. */
void
sli_timers_reset(void)
{
	sli_timer **heap;
	int         ndone = 0;

	sli_lock(&tm.lock);
	heap = tm.heap;
	for (int i = 0; i < tm.len; i++) {
		sli_timer *t = heap[i];

		t->heapidx = -1;
		atomic_store(&t->state, SLI_TIMER_IDLE);
		if (t->done != NULL)
			heap[ndone++] = t; /* i >= ndone: already visited */
	}
	tm.heap = NULL;
	tm.len = tm.cap = 0;
	tm_update_next();
	sli_unlock(&tm.lock);
	for (int i = 0; i < ndone; i++)
		heap[i]->done(heap[i]);
	free(heap);
}

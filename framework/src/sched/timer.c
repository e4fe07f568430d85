/*
 * timer.c — the scheduler's timers: one binary min-heap for the process.
 *
 * No thread per timer: workers fire due timers between goroutines, and an
 * idle worker sleeps until the earliest deadline.  A timer is a struct the
 * caller owns (usually inside an sli_wait on a goroutine's stack);
 * sli_timer_stop guarantees that once it returns the callback will not
 * touch the timer again, waiting out a callback already running elsewhere.
 *
 * Starting a timer never fails for want of memory: a wait whose deadline
 * could not be armed would wait for ever, and a ticker would stop.  A timer
 * the heap has no room for (its array cannot grow) goes on an unsorted
 * overflow list instead, which is scanned for its earliest; that list is
 * empty unless memory ran out.
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
	sli_timer    *ov;    /* the overflow list */
	_Atomic int64_t next; /* the earliest when, or INT64_MAX */
} tm = { .next = INT64_MAX };

int sli_timer_heap_max;

/* Set while this thread runs a timer's fn. */
static __thread bool tm_in_fn;

bool
sli_timer_in_fn(void)
{
	return (tm_in_fn);
}

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

/* The earliest queued timer, or NULL. */
static sli_timer *
tm_first(void)
{
	sli_timer *first = tm.len ? tm.heap[0] : NULL;

	for (sli_timer *t = tm.ov; t != NULL; t = t->ovnext)
		if (first == NULL || t->when < first->when)
			first = t;
	return (first);
}

static void
tm_update_next(void)
{
	sli_timer *first = tm_first();

	atomic_store(&tm.next, first != NULL ? first->when : INT64_MAX);
}

/* Takes the queued t out of the heap or the overflow list. */
static void
tm_remove(sli_timer *t)
{
	if (t->heapidx >= 0) {
		tm_remove_at(t->heapidx);
	} else {
		if (t->ovprev != NULL)
			t->ovprev->ovnext = t->ovnext;
		else
			tm.ov = t->ovnext;
		if (t->ovnext != NULL)
			t->ovnext->ovprev = t->ovprev;
		t->ovnext = t->ovprev = NULL;
	}
	t->heapidx = -1;
}

/* Makes room for one more timer in the heap; false if it cannot. */
static bool
tm_grow(void)
{
	int         ncap = tm.cap ? tm.cap * 2 : 64;
	int         max = sli_timer_heap_max;
	sli_timer **n;

	if (max > 0 && ncap > max)
		ncap = max;
	if (ncap <= tm.cap || (n = realloc(tm.heap,
	    sizeof(*n) * (size_t) ncap)) == NULL)
		return (false);
	tm.heap = n;
	tm.cap = ncap;
	return (true);
}

/* Queues t (under tm.lock), in the heap if it has room or can grow, else
 * on the overflow list; *earliest tells whether t is now first. */
static void
tm_insert(sli_timer *t, bool *earliest)
{
	int64_t before = atomic_load(&tm.next);

	atomic_store(&t->state, SLI_TIMER_QUEUED);
	if (tm.len < tm.cap || tm_grow()) {
		t->heapidx = tm.len;
		tm.heap[tm.len++] = t;
		tm_up(t->heapidx);
	} else {
		t->heapidx = -2;
		t->ovprev = NULL;
		t->ovnext = tm.ov;
		if (tm.ov != NULL)
			tm.ov->ovprev = t;
		tm.ov = t;
	}
	*earliest = t->when < before;
	tm_update_next();
}

int
sli_timer_start(sli_timer *t)
{
	int64_t when = t->when; /* t may run and move once in the heap */
	bool    earliest;

	if (!atomic_load(&sli_S.running))
		return (SL_ESTATE);
	sli_lock(&tm.lock);
	t->stopreq = false;
	t->again = false;
	tm_insert(t, &earliest);
	sli_unlock(&tm.lock);
	if (earliest)
		sli_sched_timer_added(when);
	return (0);
}

int
sli_timer_go(sli_timer *t, void (*fn)(void *), void *arg)
{
	int err = sl_go(fn, arg);

	if (err == SL_ENOMEM) {
		t->when = sl_now() + SLI_TIMER_RETRY_NS;
		t->again = true;
	}
	return (err);
}

bool
sli_timer_stop(sli_timer *t)
{
	bool active = false;

	sli_lock(&tm.lock);
	switch (atomic_load(&t->state)) {
	case SLI_TIMER_QUEUED:
		tm_remove(t);
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
 * in the heap at its next period after now, and a one-shot timer whose fn
 * asked to run again at its new when; anything else becomes idle, and then
 * gets its done callback, which may free it.
 */
static void
tm_after_run(sli_timer *t)
{
	void  (*done)(sli_timer *) = NULL;
	bool    requeued = false, earliest = false;
	int64_t next = 0;

	sli_lock(&tm.lock);
	if ((t->period > 0 || t->again) && !t->stopreq) {
		if (t->period > 0) {
			int64_t at = sl_now();

			t->when += t->period;
			if (t->when <= at)
				t->when += ((at - t->when) / t->period + 1) *
				    t->period;
		}
		t->again = false;
		next = t->when;
		tm_insert(t, &earliest);
		requeued = true;
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
		t = tm_first();
		if (t == NULL || t->when > now) {
			sli_unlock(&tm.lock);
			return (ran);
		}
		tm_remove(t);
		atomic_store(&t->state, SLI_TIMER_RUNNING);
		t->again = false;
		tm_update_next();
		sli_unlock(&tm.lock);

		tm_in_fn = true;
		t->fn(t);
		tm_in_fn = false;
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
	sli_timer  *ov, *ovdone = NULL;
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
	/* The overflow list: those with a done callback are chained anew
	 * by ovnext, read before done may free them. */
	ov = tm.ov;
	while (ov != NULL) {
		sli_timer *t = ov;

		ov = t->ovnext;
		t->heapidx = -1;
		t->ovprev = NULL;
		t->ovnext = NULL;
		atomic_store(&t->state, SLI_TIMER_IDLE);
		if (t->done != NULL) {
			t->ovnext = ovdone;
			ovdone = t;
		}
	}
	tm.ov = NULL;
	tm.heap = NULL;
	tm.len = tm.cap = 0;
	tm_update_next();
	sli_unlock(&tm.lock);
	for (int i = 0; i < ndone; i++)
		heap[i]->done(heap[i]);
	while (ovdone != NULL) {
		sli_timer *t = ovdone;

		ovdone = t->ovnext;
		t->ovnext = NULL;
		t->done(t);
	}
	free(heap);
}

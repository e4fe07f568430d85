/*
 * test_timer.c — time: sl_now is monotonic, sl_sleep sleeps at least the
 * asked time (in goroutines and plain threads), sleeping parks rather than
 * blocking the worker, many sleepers all wake roughly in deadline order,
 * sl_sleep_ctx ends early on cancellation or a context deadline, and
 * deadlines that are met early (timers stopped before firing) leave
 * nothing behind, and all of that holds when the timer heap cannot grow.
 */
#include <pthread.h>

#include "sltest.h"
#include "sched/sched.h" /* sli_timer_heap_max */

/* ---- sl_now ---------------------------------------------------------------- */

static void
test_now_monotonic(void **state)
{
	int64_t prev = sl_now(), t0 = prev;

	(void) state;
	assert_true(prev > 0);
	for (int i = 0; i < 100000; i++) {
		int64_t t = sl_now();

		assert_true(t >= prev);
		prev = t;
	}
	usleep(2000);
	assert_true(sl_now() - t0 >= 2 * SL_MILLISECOND);
}

/* ---- sleep --------------------------------------------------------------- */

static void
body_sleep_at_least(void *arg)
{
	static const int64_t d[] = { 1 * SL_MICROSECOND, 1 * SL_MILLISECOND,
		10 * SL_MILLISECOND, 50 * SL_MILLISECOND };

	(void) arg;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		int64_t t0 = sl_now(), el;

		sl_sleep(d[i]);
		el = sl_now() - t0;
		if (el < d[i] || el > d[i] + 5 * SL_SECOND)
			fprintf(stderr, "sleep %lld slept %lld ns\n",
			    (long long) d[i], (long long) el);
		SL_CHECK(el >= d[i]);
		SL_CHECK(el < d[i] + 5 * SL_SECOND);
	}
	/* zero and negative return promptly */
	{
		int64_t t0 = sl_now();

		sl_sleep(0);
		sl_sleep(-SL_SECOND);
		SL_CHECK(sl_now() - t0 < 2 * SL_SECOND);
	}
}

/* sl_sleep sleeps at least the asked time. */
static void
test_sleep_at_least(void **state)
{
	slt_run(body_sleep_at_least, *state);
}

/* Outside goroutines sl_sleep blocks the calling thread. */
static void
test_sleep_outside(void **state)
{
	int64_t t0 = sl_now();

	(void) state;
	sl_sleep(10 * SL_MILLISECOND);
	assert_true(sl_now() - t0 >= 10 * SL_MILLISECOND);
}

/* ---- sleeping parks ---------------------------------------------------- */

struct tick {
	atomic_int stop;
	atomic_int ticks;
};

static void
ticker(void *arg)
{
	struct tick *t = arg;

	while (!atomic_load(&t->stop)) {
		atomic_fetch_add(&t->ticks, 1);
		sl_yield();
	}
}

/* With one worker, a goroutine that sleeps 50 ms lets another run. */
static void
body_sleep_parks(void *arg)
{
	struct tick t;
	int before, after;

	(void) arg;
	memset(&t, 0, sizeof(t));
	SL_CHECK_OK(sl_go(ticker, &t));
	sl_yield();
	before = atomic_load(&t.ticks);
	sl_sleep(50 * SL_MILLISECOND);
	after = atomic_load(&t.ticks);
	atomic_store(&t.stop, 1);
	SL_CHECK(after > before);
	while (sl_numgoroutine() > 1)
		sl_yield();
}

static void
test_sleep_parks(void **state)
{
	slt_run_procs(1, body_sleep_parks, *state);
}

/* ---- many sleepers ----------------------------------------------------- */

struct sleepers {
	int          n;
	int64_t     *deadline; /* per goroutine */
	int64_t     *woke;     /* per goroutine: sl_now() after the sleep */
	int         *order;    /* wake ticket -> goroutine */
	atomic_int   ticket;
	sl_waitgroup wg;
};

struct sleeper_arg {
	struct sleepers *s;
	int              id;
	int64_t          ns;
};

static void
sleeper(void *arg)
{
	struct sleeper_arg *a = arg;
	struct sleepers *s = a->s;

	s->deadline[a->id] = sl_now() + a->ns;
	sl_sleep(a->ns);
	s->woke[a->id] = sl_now();
	s->order[atomic_fetch_add(&s->ticket, 1)] = a->id;
	sl_waitgroup_done(&s->wg);
}

/* 1000 goroutines sleep random times up to 300 ms: all wake, none early,
 * none lost.  (Their order is body_timer_order's business: here a worker
 * stalled by the OS between a sleeper's two clock reads, or holding a
 * woken sleeper while the other worker runs later ones, reorders them.) */
static void
body_many_sleepers(void *arg)
{
	struct sleepers s;
	struct sleeper_arg *args;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	int early = 0, late = 0;

	(void) arg;
	memset(&s, 0, sizeof(s));
	s.n = (int) slt_scaled_min(1000, 50);
	s.deadline = calloc((size_t) s.n, sizeof(int64_t));
	s.woke = calloc((size_t) s.n, sizeof(int64_t));
	s.order = calloc((size_t) s.n, sizeof(int));
	args = calloc((size_t) s.n, sizeof(*args));
	SL_CHECK(s.deadline && s.woke && s.order && args);
	sl_waitgroup_add(&s.wg, s.n);
	for (int i = 0; i < s.n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		args[i].s = &s;
		args[i].id = i;
		args[i].ns = (int64_t) (rng % 300000) * SL_MICROSECOND;
		SL_CHECK_OK(sl_go(sleeper, &args[i]));
	}
	sl_waitgroup_wait(&s.wg);
	SL_CHECK_EQ(atomic_load(&s.ticket), s.n);
	for (int i = 0; i < s.n; i++) {
		if (s.woke[i] < s.deadline[i])
			early++;
		if (s.woke[i] - s.deadline[i] > 10 * SL_SECOND)
			late++;
	}
	SL_CHECK_EQ(early, 0);
	SL_CHECK_EQ(late, 0);
	free(s.deadline);
	free(s.woke);
	free(s.order);
	free(args);
}

static void
test_many_sleepers(void **state)
{
	slt_run(body_many_sleepers, *state);
	slt_run_procs(1, body_many_sleepers, *state);
}

/* ---- timers wake in deadline order ---------------------------------------- */

struct ordered {
	int           n;
	int64_t       base;     /* set once every waiter has started */
	int64_t      *deadline; /* per waiter: base + a random offset */
	bool         *missed;   /* its deadline had passed when it started */
	int          *order;    /* wake ticket -> waiter */
	atomic_int    ticket;
	sl_chan      *gate;     /* closed once base is set */
	sl_waitgroup  started;
	sl_waitgroup  done;
};

struct ordered_arg {
	struct ordered *o;
	int             id;
	int64_t         offset;
};

/* Waits for an absolute deadline on a nil channel, which only a timer
 * can end. */
static void
ordered_waiter(void *arg)
{
	struct ordered_arg *a = arg;
	struct ordered *o = a->o;
	int64_t d;

	sl_waitgroup_done(&o->started);
	SL_CHECK_ERR(sl_chan_recv(o->gate, NULL), SL_ECLOSED);
	d = o->base + a->offset;
	o->deadline[a->id] = d;
	o->missed[a->id] = sl_now() >= d;
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, NULL, NULL, d), SL_ETIMEDOUT);
	SL_CHECK(sl_now() >= d);
	o->order[atomic_fetch_add(&o->ticket, 1)] = a->id;
	sl_waitgroup_done(&o->done);
}

/* On one worker, goroutines whose deadlines come due together (a worker
 * busy or stalled meanwhile finds several timers expired at once) wake in
 * deadline order: 200 deadlines 0.5 ms apart on average, and every wake
 * ticket must go to a deadline no earlier than the one before it.  (Not
 * with two workers: either may hold a woken goroutine while the other
 * runs later ones; and not with more waiters than a worker's run queue
 * holds, 256: the overflow goes to the global queue, out of order.)
 * Waiters whose deadline passed before they started waiting (a start-up
 * slower than the 100 ms margin) are left out. */
static void
body_timer_order(void *arg)
{
	struct ordered o;
	struct ordered_arg *args;
	uint64_t rng = 0x2545f4914f6cdd1dULL;
	int inversions = 0, counted = 0, prev = -1;

	(void) arg;
	memset(&o, 0, sizeof(o));
	o.n = (int) slt_scaled_min(200, 50);
	o.deadline = calloc((size_t) o.n, sizeof(int64_t));
	o.missed = calloc((size_t) o.n, sizeof(bool));
	o.order = calloc((size_t) o.n, sizeof(int));
	args = calloc((size_t) o.n, sizeof(*args));
	SL_CHECK(o.deadline && o.missed && o.order && args);
	SL_CHECK((o.gate = sl_chan_make(0, 0)) != NULL);
	sl_waitgroup_add(&o.started, o.n);
	sl_waitgroup_add(&o.done, o.n);
	for (int i = 0; i < o.n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		args[i].o = &o;
		args[i].id = i;
		args[i].offset = (int64_t) (rng % 100000) * SL_MICROSECOND;
		SL_CHECK_OK(sl_go(ordered_waiter, &args[i]));
	}
	sl_waitgroup_wait(&o.started);
	o.base = sl_now() + 100 * SL_MILLISECOND;
	SL_CHECK_OK(sl_chan_close(o.gate));
	sl_waitgroup_wait(&o.done);
	SL_CHECK_EQ(atomic_load(&o.ticket), o.n);
	for (int k = 0; k < o.n; k++) {
		int id = o.order[k];

		if (o.missed[id])
			continue;
		counted++;
		if (prev >= 0 && o.deadline[id] < o.deadline[prev])
			inversions++;
		prev = id;
	}
	SL_CHECK(counted >= o.n / 2);
	SL_CHECK_EQ(inversions, 0);
	sl_chan_release(o.gate);
	free(o.deadline);
	free(o.missed);
	free(o.order);
	free(args);
}

static void
test_timer_order(void **state)
{
	slt_run_procs(1, body_timer_order, *state);
}

/* ---- same deadline ------------------------------------------------------ */

struct same {
	int64_t      when;
	atomic_int   woke;
	sl_waitgroup wg;
};

static void
same_sleeper(void *arg)
{
	struct same *s = arg;
	int64_t d = s->when - sl_now();

	sl_sleep(d);
	if (sl_now() >= s->when)
		atomic_fetch_add(&s->woke, 1);
	sl_waitgroup_done(&s->wg);
}

/* Many timers due at the same instant all fire. */
static void
body_same_deadline(void *arg)
{
	struct same s;
	int n = (int) slt_scaled_min(500, 20);

	(void) arg;
	memset(&s, 0, sizeof(s));
	s.when = sl_now() + 50 * SL_MILLISECOND;
	sl_waitgroup_add(&s.wg, n);
	for (int i = 0; i < n; i++)
		SL_CHECK_OK(sl_go(same_sleeper, &s));
	sl_waitgroup_wait(&s.wg);
	SL_CHECK_EQ(atomic_load(&s.woke), n);
}

static void
test_same_deadline(void **state)
{
	slt_run(body_same_deadline, *state);
}

/* ---- sl_sleep_ctx --------------------------------------------------------- */

struct canceller {
	sl_ctx *ctx;
	int64_t after;
};

static void
cancel_later(void *arg)
{
	struct canceller *c = arg;

	sl_sleep(c->after);
	sl_ctx_cancel(c->ctx);
	sl_ctx_release(c->ctx); /* taken for us by the spawner */
}

/* sl_sleep_ctx: 0 after a full sleep; the context's error when it is done
 * first (canceled: SL_ECANCELED, deadline: SL_EDEADLINE), without waiting
 * for the full sleep. */
static void
body_sleep_ctx(void *arg)
{
	struct canceller cn, cns[2];
	sl_ctx *ctx;
	int64_t t0;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	t0 = sl_now();
	SL_CHECK_OK(sl_sleep_ctx(ctx, 10 * SL_MILLISECOND));
	SL_CHECK(sl_now() - t0 >= 10 * SL_MILLISECOND);

	cn.ctx = sl_ctx_retain(ctx);
	cn.after = 20 * SL_MILLISECOND;
	t0 = sl_now(); /* before the canceller can start its sleep */
	SL_CHECK_OK(sl_go(cancel_later, &cn));
	SL_CHECK_ERR(sl_sleep_ctx(ctx, 3600 * SL_SECOND), SL_ECANCELED);
	SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
	SL_CHECK(sl_now() - t0 < 30 * SL_SECOND);
	/* already done: at once */
	SL_CHECK_ERR(sl_sleep_ctx(ctx, 3600 * SL_SECOND), SL_ECANCELED);
	sl_ctx_release(ctx);

	t0 = sl_now(); /* before: the timeout runs from creation */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    20 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_sleep_ctx(ctx, 3600 * SL_SECOND), SL_EDEADLINE);
	SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
	SL_CHECK(sl_now() - t0 < 30 * SL_SECOND);
	sl_ctx_release(ctx);

	/* SL_FOREVER (or near it): until the context ends, not at once */
	for (int i = 0; i < 2; i++) {
		int64_t ns = i == 0 ? SL_FOREVER : SL_FOREVER - 1;

		SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
		cns[i].ctx = sl_ctx_retain(ctx);
		cns[i].after = 20 * SL_MILLISECOND;
		t0 = sl_now();
		SL_CHECK_OK(sl_go(cancel_later, &cns[i]));
		SL_CHECK_ERR(sl_sleep_ctx(ctx, ns), SL_ECANCELED);
		SL_CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);
		sl_ctx_release(ctx);
	}

	/* background never ends a sleep early */
	t0 = sl_now();
	SL_CHECK_OK(sl_sleep_ctx(sl_ctx_background(), 5 * SL_MILLISECOND));
	SL_CHECK(sl_now() - t0 >= 5 * SL_MILLISECOND);
	while (sl_numgoroutine() > 1) /* the cancellers, on cns */
		sl_sleep(SL_MILLISECOND);
}

static void
test_sleep_ctx(void **state)
{
	slt_run(body_sleep_ctx, *state);
}

/* ---- deadlines met early ------------------------------------------------ */

static void
echo(void *arg)
{
	sl_chan *ch = arg;
	int v;

	while (sl_chan_recv(ch, &v) == 0)
		;
	sl_chan_release(ch); /* taken for us by the spawner */
}

/* Thousands of operations with far deadlines that complete before them:
 * their timers are stopped and the scheduler exits promptly afterwards. */
static void
body_deadline_churn(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 0);
	int n = (int) slt_scaled_min(5000, 100);

	(void) arg;
	SL_CHECK_OK(sl_go(echo, sl_chan_retain(ch)));
	for (int i = 0; i < n; i++) {
		int64_t dl = sl_now() + 3600 * SL_SECOND;

		SL_CHECK_OK(sl_chan_send_ctx(ch, &i, NULL, dl));
	}
	SL_CHECK_OK(sl_chan_close(ch));
	sl_chan_release(ch);
	/* one short deadline still fires on time */
	{
		int64_t dl = sl_now() + 5 * SL_MILLISECOND;

		SL_CHECK_ERR(sl_chan_recv_ctx(NULL, NULL, NULL, dl),
		    SL_ETIMEDOUT);
		SL_CHECK(sl_now() >= dl);
	}
}

static void
test_deadline_churn(void **state)
{
	int64_t t0 = sl_now();

	(void) state;
	slt_run(body_deadline_churn, NULL);
	assert_true(sl_now() - t0 < 60 * SL_SECOND);
}

/* ---- sleeping plain threads during a scheduler --------------------------- */

static void *
thread_sleeps(void *arg)
{
	int64_t *el = arg;
	int64_t t0 = sl_now();

	sl_sleep(20 * SL_MILLISECOND);
	*el = sl_now() - t0;
	return (NULL);
}

static void
join_thread(void *arg)
{
	SL_CHECK_EQ(pthread_join(*(pthread_t *) arg, NULL), 0);
}

/* A plain thread calling sl_sleep while a scheduler runs sleeps as asked
 * (it is not treated as a goroutine). */
static void
body_thread_sleep(void *arg)
{
	pthread_t th;
	int64_t el = 0;

	(void) arg;
	SL_CHECK_EQ(pthread_create(&th, NULL, thread_sleeps, &el), 0);
	SL_CHECK_OK(sl_blocking(join_thread, &th));
	SL_CHECK(el >= 20 * SL_MILLISECOND);
}

static void
test_thread_sleep(void **state)
{
	slt_run(body_thread_sleep, *state);
}

/* ---- a timer heap that cannot grow ------------------------------------- */

struct far {
	sl_ctx       *ctx;
	sl_waitgroup  started;
	sl_waitgroup  done;
};

/* Waits on a nil channel, with a deadline an hour away, until f->ctx is
 * cancelled: its timer is stopped unfired. */
static void
far_waiter(void *arg)
{
	struct far *f = arg;

	sl_waitgroup_done(&f->started);
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, NULL, f->ctx,
	    sl_now() + 3600 * SL_SECOND), SL_ECANCELED);
	sl_waitgroup_done(&f->done);
}

/* With the heap full of 300 far deadlines: a ticker keeps ticking (it is
 * queued again after each tick), sleepers all wake and none early, the far
 * waits end by their context (their timers taken off unfired), and an
 * sl_after still pending when main returns is freed (valgrind sees it). */
static void
body_heap_full(void *arg)
{
	struct far f;
	sl_timer  *tk;
	sl_chan   *after;
	int        n = 300;

	memset(&f, 0, sizeof(f));
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &f.ctx));
	sl_waitgroup_add(&f.started, n);
	sl_waitgroup_add(&f.done, n);
	for (int i = 0; i < n; i++)
		SL_CHECK_OK(sl_go(far_waiter, &f));
	sl_waitgroup_wait(&f.started);
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_OK(sl_after(3600 * SL_SECOND, &after));

	SL_CHECK_OK(sl_ticker_make(2 * SL_MILLISECOND, &tk));
	for (int i = 0; i < 5; i++) {
		int64_t at;

		SL_CHECK_OK(sl_chan_recv_ctx(sl_timer_chan(tk), &at, NULL,
		    sl_now() + 10 * SL_SECOND));
	}
	sl_timer_free(tk);

	body_many_sleepers(arg);

	sl_ctx_cancel(f.ctx);
	sl_waitgroup_wait(&f.done);
	sl_ctx_release(f.ctx);
	sl_chan_release(after);
}

/* The heap is limited to 64 timers, as if memory ran out there: the rest
 * go on the overflow list, still fired in deadline order. */
static void
test_heap_full(void **state)
{
	sli_timer_heap_max = 64;
	slt_run(body_heap_full, *state);
	slt_run_procs(1, body_timer_order, *state);
	sli_timer_heap_max = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_monotonic),
		cmocka_unit_test(test_sleep_at_least),
		cmocka_unit_test(test_sleep_outside),
		cmocka_unit_test(test_sleep_parks),
		cmocka_unit_test(test_many_sleepers),
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_same_deadline),
		cmocka_unit_test(test_sleep_ctx),
		cmocka_unit_test(test_deadline_churn),
		cmocka_unit_test(test_thread_sleep),
		cmocka_unit_test(test_heap_full),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

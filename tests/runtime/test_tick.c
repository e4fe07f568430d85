/*
 * test_tick.c — timer channels (sluice/timer.h): a timer sends once and
 * never early; a ticker sends every period, never early, and keeps no
 * backlog for a slow receiver; stop and reset leave no stale tick and can
 * race with ticks and with each other; sl_after works in select and frees
 * itself, fired or not; sl_timer_after_func starts its function once in a
 * goroutine, and stop, reset and free control it as Go's, also when no
 * goroutine can be started for a while; bad input is refused with the
 * documented codes.
 */
#include "sltest.h"
#include "sched/sched.h" /* sli_stack_max_slabs */

#define MS SL_MILLISECOND

/* ---- one-shot timers ------------------------------------------------------ */

/* Sends sl_now() once, no earlier than asked, on a channel of capacity 1;
 * ns <= 0 sends at once. */
static void
body_timer_once(void *arg)
{
	sl_timer *t;
	sl_chan  *ch;
	int64_t   t0, v = 0;

	(void) arg;
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_make(20 * MS, &t));
	ch = sl_timer_chan(t);
	SL_CHECK_EQ(sl_chan_cap(ch), 1);
	SL_CHECK_EQ(sl_chan_elem_size(ch), sizeof(int64_t));
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK(v >= t0 + 20 * MS);
	SL_CHECK(v <= sl_now());
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 50 * MS),
	    SL_ETIMEDOUT);                 /* once only */
	SL_CHECK(!sl_timer_stop(t));       /* its tick was received */
	sl_timer_free(t);

	SL_CHECK_OK(sl_timer_make(-5, &t));
	SL_CHECK_OK(sl_chan_recv_ctx(sl_timer_chan(t), &v, NULL,
	    sl_now() + 5 * SL_SECOND));
	sl_timer_free(t);
}

static void
test_timer_once(void **state)
{
	slt_run(body_timer_once, *state);
	slt_run_procs(1, body_timer_once, *state);
}

/* Stop before the tick: nothing arrives.  Stop after an unreceived tick:
 * the tick is taken back.  Reset re-arms, and moves a pending tick. */
static void
body_timer_stop_reset(void *arg)
{
	sl_timer *t;
	sl_chan  *ch;
	int64_t   t0, v = 0;

	(void) arg;
	SL_CHECK_OK(sl_timer_make(30 * MS, &t));
	ch = sl_timer_chan(t);
	SL_CHECK(sl_timer_stop(t));        /* pending: stopped */
	SL_CHECK(!sl_timer_stop(t));       /* already stopped */
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 80 * MS),
	    SL_ETIMEDOUT);

	SL_CHECK_OK(sl_timer_reset(t, SL_MILLISECOND));
	while (sl_chan_len(ch) == 0)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK(sl_timer_stop(t));        /* sent, not received */
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK(!sl_timer_stop(t));

	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 20 * MS));
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK(v >= t0 + 20 * MS);

	/* reset of a pending timer replaces its deadline */
	SL_CHECK_OK(sl_timer_reset(t, 10 * MS));
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 80 * MS));
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, t0 + 40 * MS),
	    SL_ETIMEDOUT);
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK(v >= t0 + 80 * MS);
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	sl_timer_free(t);
}

static void
test_timer_stop_reset(void **state)
{
	slt_run(body_timer_stop_reset, *state);
}

/* ---- tickers -------------------------------------------------------------- */

/* Tick k comes no earlier than k periods after the start; a slow receiver
 * finds one tick, not a backlog; stop ends the ticks; reset changes the
 * period; a period <= 0 is refused and leaves the ticker as it was. */
static void
body_ticker(void *arg)
{
	sl_timer *t;
	sl_chan  *ch;
	int64_t   t0, v = 0, prev = 0;

	(void) arg;
	t0 = sl_now();
	SL_CHECK_OK(sl_ticker_make(10 * MS, &t));
	ch = sl_timer_chan(t);
	for (int k = 1; k <= 10; k++) {
		SL_CHECK_OK(sl_chan_recv(ch, &v));
		SL_CHECK(v >= t0 + k * 10 * MS);
		SL_CHECK(v > prev);
		prev = v;
	}

	/* ~10 periods unreceived: one tick waits, and the missed ones do
	 * not follow in a burst (at most 1 + 3 + 1 in the next 30 ms; load
	 * only makes it fewer). */
	sl_sleep(100 * MS);
	SL_CHECK_EQ(sl_chan_len(ch), 1);
	{
		int64_t end = sl_now() + 30 * MS;
		int     n = 0;

		while (sl_chan_recv_ctx(ch, &v, NULL, end) == 0)
			n++;
		SL_CHECK(n >= 1);
		SL_CHECK(n <= 5);
	}
	SL_CHECK_OK(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 5 * SL_SECOND));

	SL_CHECK(sl_timer_stop(t));
	SL_CHECK_EQ(sl_chan_len(ch), 0);
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 50 * MS),
	    SL_ETIMEDOUT);
	SL_CHECK(!sl_timer_stop(t));

	SL_CHECK_ERR(sl_timer_reset(t, 0), SL_EINVAL);
	SL_CHECK_ERR(sl_timer_reset(t, -MS), SL_EINVAL);
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 30 * MS),
	    SL_ETIMEDOUT);                 /* still stopped */
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 5 * MS));
	for (int k = 1; k <= 3; k++) {
		SL_CHECK_OK(sl_chan_recv(ch, &v));
		SL_CHECK(v >= t0 + k * 5 * MS);
	}
	SL_CHECK_ERR(sl_timer_reset(t, 0), SL_EINVAL);
	SL_CHECK_OK(sl_chan_recv_ctx(ch, &v, NULL, sl_now() + 5 * SL_SECOND));
	sl_timer_free(t);                  /* while ticking */
}

static void
test_ticker(void **state)
{
	slt_run(body_ticker, *state);
	slt_run_procs(1, body_ticker, *state);
}

struct feed {
	sl_chan *ch;
	int      n;
};

static void
feeder(void *arg)
{
	struct feed *f = arg;

	for (int i = 1; i <= f->n; i++) {
		SL_CHECK_OK(sl_chan_send(f->ch, &i));
		if (i % 10 == 0)
			sl_sleep(100 * SL_MICROSECOND);
	}
	SL_CHECK_OK(sl_chan_close(f->ch));
}

/* The pattern tickers are for: a loop that takes data and also acts on a
 * period (a flush).  Every element arrives once, and ticks come while
 * the loop waits. */
static void
body_ticker_select(void *arg)
{
	struct feed f = { .n = 1000 };
	sl_timer *t;
	long      sum = 0;
	int       got = 0, ticks = 0, v, chosen;
	int64_t   tv;

	(void) arg;
	f.ch = sl_chan_make(sizeof(int), 0);
	SL_CHECK_OK(sl_ticker_make(5 * MS, &t));
	SL_CHECK_OK(sl_go(feeder, &f));
	for (;;) {
		sl_case c[] = { SL_CASE_RECV(f.ch, &v),
		                SL_CASE_RECV(sl_timer_chan(t), &tv) };

		SL_CHECK_OK(sl_select(c, 2, NULL, SL_FOREVER, &chosen));
		if (chosen == 1) {
			ticks++;
			continue;
		}
		if (!c[0].ok)
			break;
		sum += v;
		got++;
	}
	SL_CHECK_EQ(got, f.n);
	SL_CHECK_EQ(sum, (long) f.n * (f.n + 1) / 2);
	SL_CHECK(ticks >= 1);              /* 100 sleeps of 100 us: >= 10 ms */
	sl_timer_free(t);
	sl_chan_release(f.ch);
}

static void
test_ticker_select(void **state)
{
	slt_run(body_ticker_select, *state);
}

/* ---- races ---------------------------------------------------------------- */

struct churn {
	sl_timer     *t;
	atomic_int    stop;
	atomic_long   ticks;
	sl_waitgroup  wg;
};

static void
churner(void *arg)
{
	struct churn *c = arg;

	for (int i = 0; i < (int) slt_scaled_min(2000, 50); i++) {
		if (i % 3 == 0)
			(void) sl_timer_stop(c->t);
		else
			SL_CHECK_OK(sl_timer_reset(c->t, 50 * SL_MICROSECOND));
		if (i % 16 == 0)
			sl_yield();
	}
	sl_waitgroup_done(&c->wg);
}

static void
taker(void *arg)
{
	struct churn *c = arg;
	int64_t v;

	while (!atomic_load(&c->stop)) {
		if (sl_chan_tryrecv(sl_timer_chan(c->t), &v) == 0)
			atomic_fetch_add(&c->ticks, 1);
		else
			sl_yield();
	}
	sl_waitgroup_done(&c->wg);
}

/* Two goroutines stop and reset a fast ticker while ticks are sent on
 * other workers and a third takes them; once the churn ends with a stop,
 * no tick arrives any more. */
static void
body_churn(void *arg)
{
	struct churn c;
	int64_t v;

	(void) arg;
	memset(&c, 0, sizeof(c));
	SL_CHECK_OK(sl_ticker_make(50 * SL_MICROSECOND, &c.t));
	sl_waitgroup_add(&c.wg, 2);
	SL_CHECK_OK(sl_go(churner, &c));
	SL_CHECK_OK(sl_go(churner, &c));
	sl_waitgroup_wait(&c.wg);
	sl_waitgroup_add(&c.wg, 1);
	SL_CHECK_OK(sl_go(taker, &c));
	sl_sleep(20 * MS);
	(void) sl_timer_stop(c.t);
	atomic_store(&c.stop, 1);
	sl_waitgroup_wait(&c.wg);
	SL_CHECK_ERR(sl_chan_recv_ctx(sl_timer_chan(c.t), &v, NULL,
	    sl_now() + 20 * MS), SL_ETIMEDOUT);
	sl_timer_free(c.t);
}

static void
test_stop_reset_race(void **state)
{
	slt_run(body_churn, *state);
}

/* ---- sl_after ------------------------------------------------------------- */

/* In select beside a channel that stays quiet, sl_after's case wins after
 * its time; beside one that sends first, it loses, and its timer, still
 * pending when sl_main returns, is freed (ASan and valgrind see no leak).
 * Many at once each deliver exactly once. */
static void
body_after(void *arg)
{
	sl_chan *quiet = sl_chan_make(sizeof(int), 0);
	sl_chan *a, *many[200];
	int64_t  t0, v = 0;
	int      x, chosen;

	(void) arg;
	t0 = sl_now();
	SL_CHECK_OK(sl_after(30 * MS, &a));
	{
		sl_case c[] = { SL_CASE_RECV(quiet, &x),
		                SL_CASE_RECV(a, &v) };
		SL_CHECK_OK(sl_select(c, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 1);
		SL_CHECK(v >= t0 + 30 * MS);
	}
	sl_chan_release(a);

	SL_CHECK_OK(sl_after(10 * SL_SECOND, &a));
	x = 7;
	SL_CHECK_OK(sl_chan_close(quiet));
	{
		sl_case c[] = { SL_CASE_RECV(quiet, &x),
		                SL_CASE_RECV(a, &v) };
		SL_CHECK_OK(sl_select(c, 2, NULL, SL_FOREVER, &chosen));
		SL_CHECK_EQ(chosen, 0);
	}
	sl_chan_release(a);                /* its timer lives on, pending */
	sl_chan_release(quiet);

	t0 = sl_now();
	for (int i = 0; i < 200; i++)
		SL_CHECK_OK(sl_after((i % 20) * MS, &many[i]));
	for (int i = 0; i < 200; i++) {
		SL_CHECK_OK(sl_chan_recv(many[i], &v));
		SL_CHECK(v >= t0 + (i % 20) * MS);
		SL_CHECK_ERR(sl_chan_tryrecv(many[i], &v), SL_EAGAIN);
		sl_chan_release(many[i]);
	}
}

static void
test_after(void **state)
{
	slt_run(body_after, *state);
}

/* ---- sl_timer_after_func ------------------------------------------------- */

struct af {
	sl_chan    *ran;    /* int64_t: each start's sl_now() */
	atomic_int  runs;   /* starts so far */
	atomic_bool in_g;   /* every start was in a goroutine not the caller's */
	uint64_t    caller; /* the goroutine that made the timers */
};

static void
af_fn(void *arg)
{
	struct af *a = arg;
	int64_t    now = sl_now();
	uint64_t   id = sl_goid();

	if (id == 0 || id == a->caller)
		atomic_store(&a->in_g, false);
	atomic_fetch_add(&a->runs, 1);
	sl_sleep(MS); /* parks: only a goroutine can */
	if (sl_chan_trysend(a->ran, &now) != 0)
		atomic_store(&a->in_g, false); /* more starts than expected */
}

/* Receives the next start, which must come no earlier than not_before. */
static void
af_expect_run(struct af *a, int64_t not_before)
{
	int64_t v = 0;

	SL_CHECK_OK(sl_chan_recv_ctx(a->ran, &v, NULL, sl_now() +
	    5 * SL_SECOND));
	SL_CHECK(v >= not_before);
}

/* Nothing starts within ns. */
static void
af_expect_none(struct af *a, int64_t ns)
{
	SL_CHECK_ERR(sl_chan_recv_ctx(a->ran, NULL, NULL, sl_now() + ns),
	    SL_ETIMEDOUT);
}

/* fn starts once, in a goroutine of its own, never early; the timer has
 * no channel; stop tells whether it kept fn from starting; reset starts
 * it again, fired or not; free of an armed timer starts nothing. */
static void
body_after_func(void *arg)
{
	struct af a = { .ran = sl_chan_make(sizeof(int64_t), 64),
	                .in_g = true, .caller = sl_goid() };
	sl_timer *t;
	int64_t   t0;

	(void) arg;
	SL_CHECK(a.ran != NULL);

	/* Fires once. */
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_after_func(20 * MS, af_fn, &a, &t));
	SL_CHECK(sl_timer_chan(t) == NULL);
	af_expect_run(&a, t0 + 20 * MS);
	af_expect_none(&a, 50 * MS);
	SL_CHECK(!sl_timer_stop(t));          /* fn had started */
	/* Reset after it fired: fn runs once more. */
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 10 * MS));
	af_expect_run(&a, t0 + 10 * MS);
	af_expect_none(&a, 30 * MS);
	SL_CHECK_EQ(atomic_load(&a.runs), 2);
	sl_timer_free(t);

	/* Stopped in time: fn never starts, until a reset. */
	SL_CHECK_OK(sl_timer_after_func(30 * MS, af_fn, &a, &t));
	SL_CHECK(sl_timer_stop(t));
	SL_CHECK(!sl_timer_stop(t));          /* nothing left to stop */
	af_expect_none(&a, 60 * MS);
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 5 * MS));
	af_expect_run(&a, t0 + 5 * MS);
	sl_timer_free(t);

	/* A reset before it fires moves it later, still once. */
	SL_CHECK_OK(sl_timer_after_func(20 * MS, af_fn, &a, &t));
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_reset(t, 60 * MS));
	af_expect_run(&a, t0 + 60 * MS);
	af_expect_none(&a, 40 * MS);
	sl_timer_free(t);

	/* Freed while armed: nothing starts. */
	SL_CHECK_OK(sl_timer_after_func(20 * MS, af_fn, &a, &t));
	sl_timer_free(t);
	af_expect_none(&a, 60 * MS);

	/* ns <= 0: at once. */
	SL_CHECK_OK(sl_timer_after_func(-1, af_fn, &a, &t));
	af_expect_run(&a, 0);
	sl_timer_free(t);

	/* The only thing that can end a wait with no deadline: an armed
	 * timer is not a deadlock. */
	t0 = sl_now();
	SL_CHECK_OK(sl_timer_after_func(30 * MS, af_fn, &a, &t));
	{
		int64_t v = 0;
		SL_CHECK_OK(sl_chan_recv(a.ran, &v));
		SL_CHECK(v >= t0 + 30 * MS);
	}
	sl_timer_free(t);

	SL_CHECK_EQ(atomic_load(&a.runs), 6);
	SL_CHECK(atomic_load(&a.in_g));
	sl_chan_release(a.ran);
}

/* Many at once, from both workers: each starts exactly once. */
#define AF_MANY 200

static atomic_int af_count[AF_MANY];

static void
af_count_fn(void *arg)
{
	atomic_fetch_add(&af_count[(intptr_t) arg], 1);
}

static void
body_after_func_many(void *arg)
{
	sl_timer *t[AF_MANY];
	int       total;

	(void) arg;
	for (int i = 0; i < AF_MANY; i++) {
		atomic_store(&af_count[i], 0);
		SL_CHECK_OK(sl_timer_after_func((i % 20) * MS, af_count_fn,
		    (void *) (intptr_t) i, &t[i]));
	}
	for (int tries = 0; tries < 500; tries++) {
		total = 0;
		for (int i = 0; i < AF_MANY; i++)
			total += atomic_load(&af_count[i]);
		if (total == AF_MANY)
			break;
		sl_sleep(10 * MS);
	}
	sl_sleep(30 * MS);                    /* room for a second start */
	for (int i = 0; i < AF_MANY; i++) {
		SL_CHECK_EQ(atomic_load(&af_count[i]), 1);
		SL_CHECK(!sl_timer_stop(t[i]));
		sl_timer_free(t[i]);
	}
}

/* Armed when sl_main returns: never started; still stopped and freed by
 * its owner afterwards. */
static sl_timer   *af_kept;
static struct af   af_late;

static void
body_after_func_keep(void *arg)
{
	(void) arg;
	SL_CHECK_OK(sl_timer_after_func(10 * SL_SECOND, af_fn, &af_late,
	    &af_kept));
}

static void
test_after_func(void **state)
{
	slt_run(body_after_func, *state);
	slt_run_procs(1, body_after_func, *state);
	slt_run(body_after_func_many, *state);

	slt_run(body_after_func_keep, *state);
	assert_non_null(af_kept);
	assert_int_equal(atomic_load(&af_late.runs), 0);
	assert_false(sl_timer_stop(af_kept));
	sl_timer_free(af_kept);
}

/* ---- bad input ------------------------------------------------------------ */

static void
body_bad_input(void *arg)
{
	sl_timer *t = NULL;
	sl_chan  *ch = NULL;

	(void) arg;
	SL_CHECK_ERR(sl_ticker_make(0, &t), SL_EINVAL);
	SL_CHECK_ERR(sl_ticker_make(-SL_SECOND, &t), SL_EINVAL);
	SL_CHECK_ERR(sl_timer_make(SL_SECOND, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_ticker_make(SL_SECOND, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_after(SL_SECOND, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_timer_after_func(SL_SECOND, NULL, NULL, &t),
	    SL_EINVAL);
	SL_CHECK_ERR(sl_timer_after_func(SL_SECOND, af_count_fn, NULL, NULL),
	    SL_EINVAL);
	SL_CHECK(t == NULL);
	SL_CHECK_ERR(sl_timer_reset(NULL, SL_SECOND), SL_EINVAL);
	SL_CHECK(!sl_timer_stop(NULL));
	SL_CHECK(sl_timer_chan(NULL) == NULL);
	sl_timer_free(NULL);
	(void) ch;
}

/* Outside sl_main nothing can send: SL_ESTATE, and out is untouched.  A
 * timer kept past sl_main can still be stopped and freed. */
static sl_timer *kept;

static void
body_keep(void *arg)
{
	(void) arg;
	SL_CHECK_OK(sl_ticker_make(SL_SECOND, &kept));
}

static void
test_bad_input(void **state)
{
	sl_timer *t = NULL;
	sl_chan  *ch = NULL;

	slt_run(body_bad_input, *state);
	assert_int_equal(sl_timer_make(SL_SECOND, &t), SL_ESTATE);
	assert_int_equal(sl_ticker_make(SL_SECOND, &t), SL_ESTATE);
	assert_int_equal(sl_after(SL_SECOND, &ch), SL_ESTATE);
	assert_int_equal(sl_timer_after_func(SL_SECOND, af_count_fn, NULL,
	    &t), SL_ESTATE);
	assert_null(t);
	assert_null(ch);

	slt_run(body_keep, *state);
	assert_non_null(kept);
	assert_false(sl_timer_stop(kept)); /* dropped with the scheduler */
	assert_int_equal(sl_timer_reset(kept, SL_SECOND), SL_ESTATE);
	sl_timer_free(kept);
}

/* ---- sl_timer_after_func with no stack left ------------------------------ */

struct oom_af {
	sl_timer *t;
	slt_ran   rec;
};

static void
oom_af_fn(void *arg)
{
	struct oom_af *a = arg;

	/* As Go's may: run on the worker that fired the timer, this would
	 * wait for ever for the callback it is called from. */
	if (sl_goid() != 0)
		(void) sl_timer_stop(a->t);
	slt_ran_mark(&a->rec);
}

/* With every stack taken, an AfterFunc timer that fires starts nothing
 * and runs nothing on its worker; it tries again until a stack is free,
 * then runs its function once, in a goroutine.  One stopped while it
 * tries never runs. */
static void
body_after_func_no_stack(void *arg)
{
	struct oom_af a, b;
	slt_holders   h;

	(void) arg;
	slt_ran_init(&a.rec);
	slt_ran_init(&b.rec);
	SL_CHECK(slt_hold_stacks(&h, 100000) > 0);
	SL_CHECK_EQ(h.err, SL_ENOMEM);
	SL_CHECK_OK(sl_timer_after_func(MS, oom_af_fn, &a, &a.t));
	SL_CHECK_OK(sl_timer_after_func(MS, oom_af_fn, &b, &b.t));
	sl_sleep(30 * MS);
	SL_CHECK_EQ(atomic_load(&a.rec.runs), 0);
	SL_CHECK_EQ(atomic_load(&b.rec.runs), 0);
	(void) sl_timer_stop(b.t);

	slt_let_go(&h, 1);
	slt_ran_wait(&a.rec);
	SL_CHECK(a.rec.goid != 0);
	slt_let_all_go(&h);
	sl_sleep(20 * MS);
	SL_CHECK_EQ(atomic_load(&a.rec.runs), 1);
	SL_CHECK_EQ(atomic_load(&b.rec.runs), 0);
	sl_timer_free(a.t);
	sl_timer_free(b.t);
	slt_ran_fini(&a.rec);
	slt_ran_fini(&b.rec);
}

static void
test_after_func_no_stack(void **state)
{
	sli_stack_max_slabs = 1;
	slt_run(body_after_func_no_stack, *state);
	sli_stack_max_slabs = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_once),
		cmocka_unit_test(test_timer_stop_reset),
		cmocka_unit_test(test_ticker),
		cmocka_unit_test(test_ticker_select),
		cmocka_unit_test(test_stop_reset_race),
		cmocka_unit_test(test_after),
		cmocka_unit_test(test_after_func),
		cmocka_unit_test(test_after_func_no_stack),
		cmocka_unit_test(test_bad_input),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

/*
 * test_group.c — sl_group (sluice/group.h), Go's errgroup: every function
 * runs once and Wait sees them all; the first error is the one returned,
 * cancels the group's context with that cause and stops the others; a
 * parent's cancellation reaches the functions; a limit bounds how many run
 * at once, exactly, and TryGo starts a function only into a free slot;
 * bad input and late calls are refused.
 */
#include "sltest.h"

/* ---- all succeed ---------------------------------------------------------- */

struct sum {
	atomic_long total;
	atomic_int  calls;
};

static int
add_part(sl_ctx *ctx, void *arg)
{
	struct sum *s = arg;
	int n = atomic_fetch_add(&s->calls, 1) + 1;

	SL_CHECK_EQ(sl_ctx_err(ctx), 0);   /* nobody failed */
	atomic_fetch_add(&s->total, n);
	if (n % 7 == 0)
		sl_yield();
	return (0);
}

static void
body_all_succeed(void *arg)
{
	struct sum s;
	sl_group *g;

	(void) arg;
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_group_make(NULL, &g));
	for (int i = 0; i < 1000; i++)
		SL_CHECK_OK(sl_group_go(g, add_part, &s));
	SL_CHECK_OK(sl_group_wait(g));
	SL_CHECK_EQ(atomic_load(&s.calls), 1000);
	SL_CHECK_EQ(atomic_load(&s.total), 1000L * 1001 / 2);
	/* Wait cancels the group's context, as Go's does */
	SL_CHECK_ERR(sl_ctx_err(sl_group_ctx(g)), SL_ECANCELED);
	SL_CHECK_ERR(sl_group_go(g, add_part, &s), SL_ESTATE);
	SL_CHECK_EQ(atomic_load(&s.calls), 1000);
	sl_group_free(g);
}

static void
test_all_succeed(void **state)
{
	slt_run(body_all_succeed, *state);
	slt_run_procs(1, body_all_succeed, *state);
}

/* ---- the first error ------------------------------------------------------ */

struct stop {
	atomic_int stopped; /* functions that saw the context done */
};

static int
wait_for_stop(sl_ctx *ctx, void *arg)
{
	struct stop *s = arg;

	SL_CHECK_ERR(sl_chan_recv(sl_ctx_done(ctx), NULL), SL_ECLOSED);
	atomic_fetch_add(&s->stopped, 1);
	return (sl_ctx_err(ctx));          /* SL_ECANCELED: not the first */
}

static int
fail_42(sl_ctx *ctx, void *arg)
{
	(void) ctx;
	(void) arg;
	sl_sleep(10 * SL_MILLISECOND);
	return (42);
}

/* One function fails: Wait returns its code, not the cancellations it
 * caused; the context's cause is that code; the ten others stopped. */
static void
body_first_error(void *arg)
{
	struct stop s;
	sl_group *g;
	sl_ctx *parent;

	(void) arg;
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &parent));
	SL_CHECK_OK(sl_group_make(parent, &g));
	for (int i = 0; i < 10; i++)
		SL_CHECK_OK(sl_group_go(g, wait_for_stop, &s));
	SL_CHECK_OK(sl_group_go(g, fail_42, NULL));
	SL_CHECK_EQ(sl_group_wait(g), 42);
	SL_CHECK_EQ(atomic_load(&s.stopped), 10);
	SL_CHECK_EQ(sl_ctx_cause(sl_group_ctx(g), NULL), 42);
	SL_CHECK_EQ(sl_ctx_err(parent), 0);    /* the parent is untouched */
	sl_group_free(g);
	sl_ctx_release(parent);
}

static void
test_first_error_wins_and_stops_the_rest(void **state)
{
	slt_run(body_first_error, *state);
}

/* Canceling the parent reaches every function; Wait returns what they
 * return (here the cancellation itself). */
static void
body_parent_cancel(void *arg)
{
	struct stop s;
	sl_group *g;
	sl_ctx *parent;

	(void) arg;
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &parent));
	SL_CHECK_OK(sl_group_make(parent, &g));
	for (int i = 0; i < 5; i++)
		SL_CHECK_OK(sl_group_go(g, wait_for_stop, &s));
	sl_sleep(5 * SL_MILLISECOND);
	sl_ctx_cancel(parent);
	SL_CHECK_ERR(sl_group_wait(g), SL_ECANCELED);
	SL_CHECK_EQ(atomic_load(&s.stopped), 5);
	sl_group_free(g);
	sl_ctx_release(parent);
}

static void
test_parent_cancel_reaches_functions(void **state)
{
	slt_run(body_parent_cancel, *state);
}

/* ---- limit ---------------------------------------------------------------- */

struct lim {
	sl_group   *g;
	sl_chan    *gate;     /* closed to let the functions end */
	atomic_int  running, max, started;
	int         spawned;  /* sl_group_go calls returned */
	sl_waitgroup spawner_done;
};

static int
held_part(sl_ctx *ctx, void *arg)
{
	struct lim *l = arg;
	int r = atomic_fetch_add(&l->running, 1) + 1;
	int m = atomic_load(&l->max);

	(void) ctx;
	while (r > m && !atomic_compare_exchange_weak(&l->max, &m, r))
		;
	atomic_fetch_add(&l->started, 1);
	SL_CHECK_ERR(sl_chan_recv(l->gate, NULL), SL_ECLOSED);
	atomic_fetch_sub(&l->running, 1);
	return (0);
}

static void
spawner(void *arg)
{
	struct lim *l = arg;

	for (int i = 0; i < 20; i++) {
		SL_CHECK_OK(sl_group_go(l->g, held_part, l));
		l->spawned++;
	}
	sl_waitgroup_done(&l->spawner_done);
}

/* With a limit of 3, the fourth sl_group_go waits until a function ends:
 * exactly 3 run while the gate is shut, then all 20 complete. */
static void
body_limit(void *arg)
{
	struct lim *l = calloc(1, sizeof(*l));
	int64_t end;

	(void) arg;
	SL_CHECK(l != NULL);
	l->gate = sl_chan_make(0, 0);
	SL_CHECK_OK(sl_group_make(NULL, &l->g));
	sl_group_limit(l->g, 3);
	sl_waitgroup_add(&l->spawner_done, 1);
	SL_CHECK_OK(sl_go(spawner, l));
	end = sl_now() + 10 * SL_SECOND;
	while (atomic_load(&l->started) < 3 && sl_now() < end)
		sl_sleep(SL_MILLISECOND);
	sl_sleep(20 * SL_MILLISECOND);     /* room for a fourth to start */
	SL_CHECK_EQ(atomic_load(&l->started), 3);
	SL_CHECK_EQ(atomic_load(&l->running), 3);
	SL_CHECK_OK(sl_chan_close(l->gate));
	sl_waitgroup_wait(&l->spawner_done);
	SL_CHECK_EQ(l->spawned, 20);
	SL_CHECK_OK(sl_group_wait(l->g));
	SL_CHECK_EQ(atomic_load(&l->started), 20);
	SL_CHECK_EQ(atomic_load(&l->max), 3);
	sl_group_free(l->g);
	sl_chan_release(l->gate);
	free(l);
}

static void
test_limit_bounds_running_functions(void **state)
{
	slt_run(body_limit, *state);
	slt_run_procs(1, body_limit, *state);
}

/* TryGo: with a limit of 2 and both slots held, sl_group_trygo says
 * SL_EAGAIN and does not start fn; once a slot frees it starts fn; with
 * no limit it always starts; after wait it says SL_ESTATE. */
static void
body_trygo(void *arg)
{
	struct lim *l = calloc(1, sizeof(*l));
	struct sum s = { 0 };
	sl_group  *free_g;
	int64_t    end;
	int        rv;

	(void) arg;
	SL_CHECK(l != NULL);
	/* No limit: every call starts its function. */
	SL_CHECK_OK(sl_group_make(NULL, &free_g));
	for (int i = 0; i < 10; i++)
		SL_CHECK_OK(sl_group_trygo(free_g, add_part, &s));
	SL_CHECK_OK(sl_group_wait(free_g));
	SL_CHECK_EQ(atomic_load(&s.calls), 10);
	sl_group_free(free_g);

	l->gate = sl_chan_make(0, 0);
	SL_CHECK_OK(sl_group_make(NULL, &l->g));
	sl_group_limit(l->g, 2);
	SL_CHECK_OK(sl_group_trygo(l->g, held_part, l));
	SL_CHECK_OK(sl_group_trygo(l->g, held_part, l));
	for (int i = 0; i < 5; i++)
		SL_CHECK_ERR(sl_group_trygo(l->g, held_part, l), SL_EAGAIN);
	end = sl_now() + 10 * SL_SECOND;
	while (atomic_load(&l->started) < 2 && sl_now() < end)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&l->started), 2);
	/* Raising the limit frees a slot. */
	sl_group_limit(l->g, 3);
	SL_CHECK_OK(sl_group_trygo(l->g, held_part, l));
	SL_CHECK_ERR(sl_group_trygo(l->g, held_part, l), SL_EAGAIN);
	/* The gate opens: each ending function frees its slot. */
	SL_CHECK_OK(sl_chan_close(l->gate));
	end = sl_now() + 10 * SL_SECOND;
	while ((rv = sl_group_trygo(l->g, held_part, l)) == SL_EAGAIN &&
	    sl_now() < end)
		sl_sleep(SL_MILLISECOND);
	SL_CHECK_OK(rv);
	SL_CHECK_OK(sl_group_wait(l->g));
	SL_CHECK_EQ(atomic_load(&l->started), 4);
	SL_CHECK_EQ(atomic_load(&l->max) <= 3, 1);
	SL_CHECK_ERR(sl_group_trygo(l->g, held_part, l), SL_ESTATE);
	SL_CHECK_ERR(sl_group_trygo(NULL, held_part, l), SL_EINVAL);
	SL_CHECK_ERR(sl_group_trygo(l->g, NULL, l), SL_EINVAL);
	sl_group_free(l->g);
	sl_chan_release(l->gate);
	free(l);
}

static void
test_trygo(void **state)
{
	slt_run(body_trygo, *state);
	slt_run_procs(1, body_trygo, *state);
}

/* ---- bad input ------------------------------------------------------------ */

static void
body_bad_input(void *arg)
{
	sl_group *g;

	(void) arg;
	SL_CHECK_ERR(sl_group_make(NULL, NULL), SL_EINVAL);
	SL_CHECK_OK(sl_group_make(NULL, &g));
	SL_CHECK_ERR(sl_group_go(g, NULL, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_group_go(NULL, add_part, NULL), SL_EINVAL);
	SL_CHECK_ERR(sl_group_wait(NULL), SL_EINVAL);
	SL_CHECK(sl_group_ctx(NULL) == NULL);
	sl_group_limit(NULL, 3);
	sl_group_free(NULL);
	SL_CHECK_OK(sl_group_wait(g));     /* nothing started: 0 at once */
	sl_group_free(g);
}

/* Outside sl_main no goroutine can start: SL_ESTATE, group unchanged. */
static void
test_bad_input(void **state)
{
	struct sum s;
	sl_group *g;

	slt_run(body_bad_input, *state);
	memset(&s, 0, sizeof(s));
	assert_int_equal(sl_group_make(NULL, &g), 0);
	assert_int_equal(sl_group_go(g, add_part, &s), SL_ESTATE);
	assert_int_equal(sl_group_wait(g), 0);
	assert_int_equal(atomic_load(&s.calls), 0);
	sl_group_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_succeed),
		cmocka_unit_test(test_first_error_wins_and_stops_the_rest),
		cmocka_unit_test(test_parent_cancel_reaches_functions),
		cmocka_unit_test(test_limit_bounds_running_functions),
		cmocka_unit_test(test_trygo),
		cmocka_unit_test(test_bad_input),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

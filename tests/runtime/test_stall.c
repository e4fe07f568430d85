/*
 * test_stall.c — the stall watchdog: a goroutine that holds its worker
 * past the limit without a switch is named on stderr, once, and again
 * when it lets go; goroutines that switch, park in sl_blocking or sleep
 * are not; a negative limit or SLUICE_STALL_MS=0 turns it off.  Each case
 * runs sl_main in a forked child to read its stderr.  Under valgrind the
 * watchdog thread only gets to run beside a spinning one with
 * --fair-sched=yes, which the valgrind test setup (meson.build) passes.
 */
#include "sltest.h"

struct stall_case {
	int64_t     limit;   /* sl_opts.stall */
	const char *env;     /* SLUICE_STALL_MS, or NULL */
	int         how;     /* what the main goroutine does for 400 ms */
};

enum { SPIN, YIELD, BLOCKING, SLEEP, INLINE };

#define NOT_INLINE 4 /* the child's exit: the long call went to the pool */

static atomic_int slow_next;  /* the next call of quick_then_slow sleeps */
static pthread_t  call_thread; /* where its last call ran */

static void
quick_then_slow(void *arg)
{
	(void) arg;
	call_thread = slt_thread();
	if (atomic_load(&slow_next))
		usleep(400000);
}

static void
sleep_400ms(void *arg)
{
	(void) arg;
	usleep(400000);
}

static void
stall_body(void *arg)
{
	struct stall_case *c = arg;
	int64_t end = sl_now() + 400 * SL_MILLISECOND;

	switch (c->how) {
	case SPIN:
		while (sl_now() < end)
			;
		break;
	case YIELD:
		while (sl_now() < end)
			sl_yield();
		break;
	case BLOCKING:
		SL_CHECK_OK(sl_blocking(sleep_400ms, NULL));
		break;
	case SLEEP:
		sl_sleep(400 * SL_MILLISECOND);
		break;
	case INLINE: {
		/* quick calls, until ten in a row ran on this thread */
		int in_a_row = 0;

		for (int n = 0; n < 1000 && in_a_row < 10; n++) {
			pthread_t me = slt_thread();

			SL_CHECK_OK(sl_blocking(quick_then_slow, NULL));
			in_a_row = pthread_equal(call_thread, me) ?
			    in_a_row + 1 : 0;
		}
		atomic_store(&slow_next, 1);
		pthread_t me = slt_thread();
		SL_CHECK_OK(sl_blocking(quick_then_slow, NULL));
		if (!pthread_equal(call_thread, me))
			_exit(NOT_INLINE);
		break;
	}
	}
	/* let the watchdog see the switch before sl_main ends */
	sl_sleep(100 * SL_MILLISECOND);
}

static void
stall_child(void *arg)
{
	struct stall_case *c = arg;
	sl_opts o;

	if (c->env != NULL)
		setenv("SLUICE_STALL_MS", c->env, 1);
	memset(&o, 0, sizeof(o));
	o.procs = c->how == INLINE ? 2 : 1; /* inline calls need two */
	o.stall = c->limit;
	if (sl_main_opts(&o, stall_body, c) != 0 ||
	    atomic_load(slt_failures()) != 0)
		_exit(3);
}

/* Runs the case in a child; returns its stderr (static). */
static const char *
stall_run(int64_t limit, const char *env, int how)
{
	static slt_child res;
	struct stall_case c = { .limit = limit, .env = env, .how = how };
	char st[64];

	for (int tries = 0; tries < 5; tries++) {
		assert_int_equal(slt_fork(stall_child, &c, &res), 0);
		/* a thread preempted in a quick call made it look long */
		if (!WIFEXITED(res.status) ||
		    WEXITSTATUS(res.status) != NOT_INLINE)
			break;
	}
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
		fail_msg("child %s; stderr: %s",
		    slt_status_str(res.status, st, sizeof(st)), res.err);
	return (res.err);
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return (n);
}

/* A 400 ms spin with a 100 ms limit: one report naming goroutine 1, its
 * worker and both remedies, then one line when it lets go. */
static void
test_spin_is_reported_once(void **state)
{
	const char *err;

	(void) state;
	err = stall_run(100 * SL_MILLISECOND, NULL, SPIN);
	if (count(err, "sluice: goroutine 1 ") != 2 ||
	    count(err, "has held worker 0 for ") != 1 ||
	    count(err, " s without a switch; nothing else runs there "
	    "meanwhile (a long loop wants sl_yield(), a blocking call "
	    "sl_blocking())\n") != 1 ||
	    count(err, "sluice: goroutine 1 let worker 0 go after ") != 1)
		fail_msg("stderr: \"%s\"", err);
	/* the environment reaches it too */
	err = stall_run(0, "100", SPIN);
	if (count(err, "has held worker 0 for ") != 1)
		fail_msg("SLUICE_STALL_MS=100: stderr: \"%s\"", err);
}

/* Switching often, parking in sl_blocking or sleeping is not a stall. */
static void
test_switching_is_not_reported(void **state)
{
	const char *err;

	(void) state;
	err = stall_run(100 * SL_MILLISECOND, NULL, YIELD);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("yield: stderr: \"%s\"", err);
	err = stall_run(100 * SL_MILLISECOND, NULL, BLOCKING);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("sl_blocking: stderr: \"%s\"", err);
	err = stall_run(100 * SL_MILLISECOND, NULL, SLEEP);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("sleep: stderr: \"%s\"", err);
}

/* A blocking call made inline (its fn's calls were short before) that
 * turns long holds its worker: named as such, with its goroutine, once,
 * and again when it lets go. */
static void
test_inline_call_is_reported(void **state)
{
	const char *err;

	(void) state;
	err = stall_run(100 * SL_MILLISECOND, NULL, INLINE);
	if (count(err, "sluice: a blocking call") != 1 ||
	    count(err, " of goroutine 1 has held worker ") != 1 ||
	    count(err, " s; its calls were short before, so it runs there, "
	    "and nothing else does meanwhile (its later calls go to the "
	    "pool)\n") != 1 ||
	    count(err, "sluice: goroutine 1 let worker ") != 1 ||
	    count(err, "sluice:") != 2)
		fail_msg("stderr: \"%s\"", err);
}

/* Off: a negative limit, or SLUICE_STALL_MS=0; an option wins over the
 * environment. */
static void
test_off(void **state)
{
	const char *err;

	(void) state;
	err = stall_run(-1, NULL, SPIN);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("stall -1: stderr: \"%s\"", err);
	err = stall_run(0, "0", SPIN);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("SLUICE_STALL_MS=0: stderr: \"%s\"", err);
	err = stall_run(-1, "100", SPIN);
	if (strstr(err, "sluice:") != NULL)
		fail_msg("stall -1 over SLUICE_STALL_MS=100: stderr: \"%s\"",
		    err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spin_is_reported_once),
		cmocka_unit_test(test_switching_is_not_reported),
		cmocka_unit_test(test_inline_call_is_reported),
		cmocka_unit_test(test_off),
	};

	unsetenv("SLUICE_STALL_MS");
	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

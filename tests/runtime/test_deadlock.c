/*
 * test_deadlock.c — "all goroutines are asleep": sl_main returns
 * SL_EDEADLOCK with a report on stderr when every goroutine is blocked for
 * good (main on a channel nobody sends to, two goroutines waiting on each
 * other, a WaitGroup never done, a mutex locked twice, select with no
 * cases, a NULL channel), runs in child processes so the report can be
 * captured; and it is NOT reported while something can still wake a
 * goroutine (a sleeping goroutine, a deadline, a foreign thread holding the
 * scheduler, an sl_blocking call in progress).  After a deadlock, sl_main
 * can be used again.
 */
#include <pthread.h>

#include "sltest.h"

/* ---- deadlocked bodies --------------------------------------------------- */

/* Channels made by a body, released by the child after sl_main returns so
 * the leak checkers stay quiet. */
static sl_chan *dl_chans[4];

static void
dl_main_recv(void *arg)
{
	(void) arg;
	dl_chans[0] = sl_chan_make(sizeof(int), 0);
	(void) sl_chan_recv(dl_chans[0], NULL);
}

static void
dl_pair_member(void *arg)
{
	sl_chan **c = arg; /* c[0]: receive first; c[1]: then send */
	int v = 0;

	if (sl_chan_recv(c[0], &v) == 0)
		(void) sl_chan_send(c[1], &v);
}

static sl_chan *dl_pair_a[2], *dl_pair_b[2];
static sl_waitgroup dl_wg;

static void
dl_pair_member_wg(void *arg)
{
	dl_pair_member(arg);
	sl_waitgroup_done(&dl_wg);
}

/* Two goroutines each wait for the other to send; main waits for both. */
static void
dl_two_goroutines(void *arg)
{
	(void) arg;
	memset(&dl_wg, 0, sizeof(dl_wg));
	dl_chans[0] = sl_chan_make(sizeof(int), 0);
	dl_chans[1] = sl_chan_make(sizeof(int), 0);
	dl_pair_a[0] = dl_chans[0];
	dl_pair_a[1] = dl_chans[1];
	dl_pair_b[0] = dl_chans[1];
	dl_pair_b[1] = dl_chans[0];
	sl_waitgroup_add(&dl_wg, 2);
	(void) sl_go(dl_pair_member_wg, dl_pair_a);
	(void) sl_go(dl_pair_member_wg, dl_pair_b);
	sl_waitgroup_wait(&dl_wg);
}

static void
dl_waitgroup(void *arg)
{
	(void) arg;
	memset(&dl_wg, 0, sizeof(dl_wg));
	sl_waitgroup_add(&dl_wg, 1);
	sl_waitgroup_wait(&dl_wg);
}

static sl_mutex dl_mu;

static void
dl_mutex_twice(void *arg)
{
	(void) arg;
	memset(&dl_mu, 0, sizeof(dl_mu));
	sl_mutex_lock(&dl_mu);
	sl_mutex_lock(&dl_mu);
}

static void
dl_empty_select(void *arg)
{
	int chosen;

	(void) arg;
	(void) sl_select(NULL, 0, NULL, SL_FOREVER, &chosen);
}

static void
dl_nil_chan(void *arg)
{
	(void) arg;
	(void) sl_chan_recv(NULL, NULL);
}

/* A deadlock after some sleeping: the timers are gone by then. */
static void
dl_after_sleep(void *arg)
{
	int v = 1;

	(void) arg;
	sl_sleep(20 * SL_MILLISECOND);
	dl_chans[0] = sl_chan_make(sizeof(int), 1);
	(void) sl_chan_send(dl_chans[0], &v);
	(void) sl_chan_send(dl_chans[0], &v); /* full */
}

static void
noop(void *arg)
{
	(void) arg;
}

struct dl_arg {
	sl_fn body;
	int   procs;
};

/*
 * The child: runs body (expected to deadlock), then a trivial sl_main that
 * must succeed, releases the body's channels and exits with the first
 * result; 100 + the second result if that one failed.
 */
static void
dl_child(void *arg)
{
	struct dl_arg *a = arg;
	sl_opts o;
	int rv, rv2;

	memset(&o, 0, sizeof(o));
	o.procs = a->procs;
	rv = sl_main_opts(&o, a->body, NULL);
	fprintf(stderr, "\nfirst sl_main: %s\n", sl_errname(rv));
	rv2 = sl_main_opts(&o, noop, NULL);
	fprintf(stderr, "second sl_main: %s\n", sl_errname(rv2));
	for (int i = 0; i < 4; i++) {
		sl_chan_release(dl_chans[i]);
		dl_chans[i] = NULL;
	}
	fflush(stderr);
	_exit(rv2 != 0 ? 100 + rv2 : rv);
}

static void
expect_deadlock(sl_fn body)
{
	char sbuf[128];

	for (int procs = 1; procs <= 2; procs++) {
		struct dl_arg a = { body, procs };
		slt_child res;

		assert_int_equal(slt_fork(dl_child, &a, &res), 0);
		if (!WIFEXITED(res.status) ||
		    WEXITSTATUS(res.status) != SL_EDEADLOCK ||
		    strstr(res.err, "all goroutines are asleep") == NULL) {
			print_message("procs %d: child %s; stderr:\n%s\n",
			    procs, slt_status_str(res.status, sbuf,
			    sizeof(sbuf)), res.err);
			fail_msg("expected SL_EDEADLOCK (exit %d) and \"all "
			    "goroutines are asleep\"", SL_EDEADLOCK);
		}
	}
}

/* main receives on a channel nobody sends to. */
static void
test_main_recv(void **state)
{
	(void) state;
	expect_deadlock(dl_main_recv);
}

/* Two goroutines wait for each other; main waits for them. */
static void
test_two_goroutines(void **state)
{
	(void) state;
	expect_deadlock(dl_two_goroutines);
}

/* A WaitGroup that nobody will ever bring to zero. */
static void
test_waitgroup(void **state)
{
	(void) state;
	expect_deadlock(dl_waitgroup);
}

/* A mutex locked twice by the same goroutine. */
static void
test_mutex_twice(void **state)
{
	(void) state;
	expect_deadlock(dl_mutex_twice);
}

/* select with no cases and no deadline blocks forever. */
static void
test_empty_select(void **state)
{
	(void) state;
	expect_deadlock(dl_empty_select);
}

/* Receiving from the NULL channel without a context blocks forever. */
static void
test_nil_chan(void **state)
{
	(void) state;
	expect_deadlock(dl_nil_chan);
}

/* A deadlock that only happens after timers have fired. */
static void
test_after_sleep(void **state)
{
	(void) state;
	expect_deadlock(dl_after_sleep);
}

/* ---- not deadlocks -------------------------------------------------------- */

struct later {
	sl_chan *ch;
	int64_t  after;
};

static void
send_later(void *arg)
{
	struct later *l = arg;
	int v = 77;

	sl_sleep(l->after);
	SL_CHECK_OK(sl_chan_send(l->ch, &v));
}

/* main blocks on a channel while the only other goroutine sleeps on a
 * timer and then sends: no deadlock. */
static void
body_sleeping_sender(void *arg)
{
	struct later l;
	int v = 0;

	(void) arg;
	l.ch = sl_chan_make(sizeof(int), 0);
	l.after = 100 * SL_MILLISECOND;
	SL_CHECK_OK(sl_go(send_later, &l));
	SL_CHECK_OK(sl_chan_recv(l.ch, &v));
	SL_CHECK_EQ(v, 77);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	sl_chan_release(l.ch);
}

/* main alone sleeping, and main alone waiting with a deadline: timers
 * will wake it, so neither is a deadlock. */
static void
body_main_timers(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 0);

	(void) arg;
	sl_sleep(50 * SL_MILLISECOND);
	SL_CHECK_ERR(sl_chan_recv_ctx(ch, NULL, NULL,
	    sl_now() + 50 * SL_MILLISECOND), SL_ETIMEDOUT);
	sl_chan_release(ch);
}

static void
body_ctx_timeout(void *arg)
{
	sl_ctx *ctx;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    50 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_chan_recv_ctx(NULL, NULL, ctx, SL_FOREVER),
	    SL_EDEADLINE);
	sl_ctx_release(ctx);
}

static void *
thread_send_later(void *arg)
{
	struct later *l = arg;
	int v = 88;

	usleep((useconds_t) (l->after / SL_MICROSECOND));
	SL_CHECK_OK(sl_chan_send(l->ch, &v));
	sl_sched_release();
	return (NULL);
}

/* A foreign thread holding the scheduler will send: no deadlock. */
static void
body_foreign_sender(void *arg)
{
	struct later l;
	pthread_t th;
	int v = 0;

	(void) arg;
	l.ch = sl_chan_make(sizeof(int), 0);
	l.after = 100 * SL_MILLISECOND;
	sl_sched_hold();
	SL_CHECK_EQ(pthread_create(&th, NULL, thread_send_later, &l), 0);
	SL_CHECK_OK(sl_chan_recv(l.ch, &v));
	SL_CHECK_EQ(v, 88);
	SL_CHECK_EQ(pthread_join(th, NULL), 0);
	sl_chan_release(l.ch);
}

static void
slow_call(void *arg)
{
	(void) arg;
	usleep(100000);
}

static void
blocking_then_send(void *arg)
{
	sl_chan *ch = arg;
	int v = 99;

	SL_CHECK_OK(sl_blocking(slow_call, NULL));
	SL_CHECK_OK(sl_chan_send(ch, &v));
}

/* A goroutine inside sl_blocking will come back: no deadlock while main
 * waits for it. */
static void
body_blocking_in_progress(void *arg)
{
	sl_chan *ch = sl_chan_make(sizeof(int), 0);
	int v = 0;

	(void) arg;
	SL_CHECK_OK(sl_go(blocking_then_send, ch));
	SL_CHECK_OK(sl_chan_recv(ch, &v));
	SL_CHECK_EQ(v, 99);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	sl_chan_release(ch);
}

static void
test_not_deadlocks(void **state)
{
	(void) state;
	for (int procs = 1; procs <= 2; procs++) {
		slt_run_procs(procs, body_sleeping_sender, NULL);
		slt_run_procs(procs, body_main_timers, NULL);
		slt_run_procs(procs, body_ctx_timeout, NULL);
		slt_run_procs(procs, body_foreign_sender, NULL);
		slt_run_procs(procs, body_blocking_in_progress, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_main_recv),
		cmocka_unit_test(test_two_goroutines),
		cmocka_unit_test(test_waitgroup),
		cmocka_unit_test(test_mutex_twice),
		cmocka_unit_test(test_empty_select),
		cmocka_unit_test(test_nil_chan),
		cmocka_unit_test(test_after_sleep),
		cmocka_unit_test(test_not_deadlocks),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

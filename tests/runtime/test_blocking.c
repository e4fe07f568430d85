/*
 * test_blocking.c — sl_blocking: the function runs on another thread,
 * exactly once, while other goroutines keep running (even with a single
 * worker); its effects are visible to the caller afterwards; many
 * concurrent calls all complete; below the pool's size no call waits for
 * another to return; it may use channels (as a plain thread);
 * and outside goroutines it simply calls the function.  sl_blocking_ctx
 * withdraws a call still queued for a thread when its context ends or its
 * deadline passes (fn never runs), and waits for one already running.
 */
#include <pthread.h>

#include "sltest.h"

/* ---- runs elsewhere, exactly once ---------------------------------------- */

struct where {
	pthread_t thread;
	int       calls;
	int       data[1024];
};

static void
record_thread(void *arg)
{
	struct where *w = arg;

	w->thread = pthread_self();
	w->calls++;
	for (int i = 0; i < 1024; i++)
		w->data[i] = i * 3;
}

/* fn runs once, on a thread other than the calling worker, and what it
 * wrote is visible to the caller afterwards. */
static void
body_other_thread(void *arg)
{
	struct where w;
	pthread_t me = pthread_self();
	int bad = 0;

	(void) arg;
	memset(&w, 0, sizeof(w));
	SL_CHECK_OK(sl_blocking(record_thread, &w));
	SL_CHECK_EQ(w.calls, 1);
	SL_CHECK(!pthread_equal(w.thread, me));
	SL_CHECK(!pthread_equal(w.thread, pthread_self()));
	for (int i = 0; i < 1024; i++)
		bad += w.data[i] != i * 3;
	SL_CHECK_EQ(bad, 0);
	/* and again: the pool is reusable */
	SL_CHECK_OK(sl_blocking(record_thread, &w));
	SL_CHECK_EQ(w.calls, 2);
	SL_CHECK(!pthread_equal(w.thread, pthread_self()));
}

static void
test_other_thread(void **state)
{
	slt_run(body_other_thread, *state);
}

/* ---- others keep running ------------------------------------------------- */

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
		sl_sleep(SL_MILLISECOND);
	}
}

static void
sleep_100ms(void *arg)
{
	(void) arg;
	usleep(100000);
}

/* While one goroutine sits in a 100 ms blocking call, a ticking goroutine
 * keeps running on the (single) worker. */
static void
body_others_run(void *arg)
{
	struct tick t;
	int before, after;
	int64_t t0;

	(void) arg;
	memset(&t, 0, sizeof(t));
	SL_CHECK_OK(sl_go(ticker, &t));
	sl_sleep(2 * SL_MILLISECOND);
	before = atomic_load(&t.ticks);
	t0 = sl_now();
	SL_CHECK_OK(sl_blocking(sleep_100ms, NULL));
	SL_CHECK(sl_now() - t0 >= 100 * SL_MILLISECOND);
	after = atomic_load(&t.ticks);
	atomic_store(&t.stop, 1);
	SL_CHECK(after > before);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
}

static void
test_others_run(void **state)
{
	slt_run_procs(1, body_others_run, *state);
	slt_run_procs(2, body_others_run, *state);
}

/* ---- many concurrent calls ------------------------------------------------ */

struct many {
	atomic_int   done;
	sl_waitgroup wg;
};

static void
short_call(void *arg)
{
	struct many *m = arg;

	usleep(5000);
	atomic_fetch_add(&m->done, 1);
}

static void
caller(void *arg)
{
	struct many *m = arg;

	SL_CHECK_OK(sl_blocking(short_call, m));
	sl_waitgroup_done(&m->wg);
}

/* 64 goroutines each make a blocking call: all complete exactly once. */
static void
body_many_calls(void *arg)
{
	struct many m;

	(void) arg;
	memset(&m, 0, sizeof(m));
	sl_waitgroup_add(&m.wg, 64);
	for (int i = 0; i < 64; i++)
		SL_CHECK_OK(sl_go(caller, &m));
	sl_waitgroup_wait(&m.wg);
	SL_CHECK_EQ(atomic_load(&m.done), 64);
}

static void
test_many_calls(void **state)
{
	slt_run(body_many_calls, *state);
}

/* ---- calls that depend on each other ------------------------------------- */

struct pair {
	int          fd[2];  /* a pipe: one call reads it, the other writes */
	sl_waitgroup wg;
};

static void
pair_read(void *arg)
{
	struct pair *p = arg;
	char b;

	while (read(p->fd[0], &b, 1) < 0 && errno == EINTR)
		;
}

static void
pair_write(void *arg)
{
	struct pair *p = arg;
	char b = 'x';

	while (write(p->fd[1], &b, 1) < 0 && errno == EINTR)
		;
}

static void
pair_reader(void *arg)
{
	struct pair *p = arg;

	SL_CHECK_OK(sl_blocking(pair_read, p));
	sl_waitgroup_done(&p->wg);
}

static void
pair_writer(void *arg)
{
	struct pair *p = arg;

	SL_CHECK_OK(sl_blocking(pair_write, p));
	sl_waitgroup_done(&p->wg);
}

static void
pair_nop(void *arg)
{
	(void) arg;
}

static int pair_stuck; /* rounds that hung */

/* Two calls made back to back while the pool has one idle thread, the
 * first a pipe read that only the second's write ends: below the pool's
 * 32 threads neither may wait for the other.  (The pool used to count a
 * thread signalled for the first call as still idle and queue the second
 * behind it: a deadlock in nearly every round with 2 CPUs.)  A round
 * that hangs is ended by hand after 2 s and counted. */
static void
body_dependent_calls(void *arg)
{
	struct pair p;

	(void) arg;
	memset(&p, 0, sizeof(p));
	SL_CHECK_OK(sl_blocking(pair_nop, NULL)); /* a fresh pool: 1 thread */
	sl_sleep(2 * SL_MILLISECOND);             /* idle */
	if (pipe(p.fd) != 0) {
		SL_CHECK(!"pipe");
		return;
	}
	sl_waitgroup_add(&p.wg, 2);
	SL_CHECK_OK(sl_go(pair_reader, &p));
	SL_CHECK_OK(sl_go(pair_writer, &p));
	if (sl_waitgroup_wait_ctx(&p.wg, NULL, sl_now() + 2 * SL_SECOND) !=
	    0) {
		pair_stuck++;
		pair_write(&p); /* unblock the reader */
		sl_waitgroup_wait(&p.wg);
		pair_read(&p);  /* and take the writer's byte */
	}
	close(p.fd[0]);
	close(p.fd[1]);
}

static void
test_dependent_calls(void **state)
{
	pair_stuck = 0;
	for (int round = 0; round < 10; round++) {
		slt_run_procs(1, body_dependent_calls, *state);
		slt_run_procs(2, body_dependent_calls, *state);
	}
	assert_int_equal(pair_stuck, 0);
}

/* ---- channels from inside a blocking call --------------------------------- */

struct feed {
	sl_chan *ch;
	int      n;
};

static void
feed_channel(void *arg)
{
	struct feed *f = arg;

	for (int i = 1; i <= f->n; i++)
		SL_CHECK_OK(sl_chan_send(f->ch, &i));
	SL_CHECK_OK(sl_chan_close(f->ch));
}

static void
feeder(void *arg)
{
	struct feed *f = arg;

	SL_CHECK_OK(sl_blocking(feed_channel, f));
	sl_chan_release(f->ch); /* taken for us by the spawner */
}

/* A blocking call may send on a channel (as a plain thread) to a goroutine
 * receiving meanwhile. */
static void
body_channels_inside(void *arg)
{
	struct feed f;
	long sum = 0;
	int v, n = 0;

	(void) arg;
	f.ch = sl_chan_make(sizeof(int), 0);
	f.n = 1000;
	sl_chan_retain(f.ch);
	SL_CHECK_OK(sl_go(feeder, &f));
	while (sl_chan_recv(f.ch, &v) == 0) {
		sum += v;
		n++;
	}
	SL_CHECK_EQ(n, 1000);
	SL_CHECK_EQ(sum, 1000L * 1001 / 2);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	sl_chan_release(f.ch);
}

static void
test_channels_inside(void **state)
{
	slt_run_procs(1, body_channels_inside, *state);
	slt_run_procs(2, body_channels_inside, *state);
}

/* ---- sl_blocking_ctx ------------------------------------------------------- */

#define POOL 32 /* threads in the pool (SLI_BLOCKING_MAX) */

/* A gate that holds pool threads inside their calls until opened. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            open;
	atomic_int      inside; /* calls that reached the gate */
	atomic_int      ran;    /* count_call()s that ran */
	sl_waitgroup    wg;     /* goroutines still in a call */
};

static void
hold_call(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->inside, 1);
	pthread_mutex_lock(&g->mu);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
count_call(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->ran, 1);
}

static void
holder(void *arg)
{
	struct gate *g = arg;

	SL_CHECK_OK(sl_blocking(hold_call, g));
	sl_waitgroup_done(&g->wg);
}

static void
plain_counter(void *arg)
{
	struct gate *g = arg;

	SL_CHECK_OK(sl_blocking(count_call, g));
	sl_waitgroup_done(&g->wg);
}

static void
canceler(void *arg)
{
	sl_sleep(20 * SL_MILLISECOND);
	sl_ctx_cancel(arg);
	sl_ctx_release(arg);
}

/* With every pool thread busy, calls queue; one whose deadline passes or
 * whose context ends while queued returns at once with the reason and its
 * function never runs, even after threads free up; the calls queued around
 * it still run, each exactly once. */
static void
body_ctx_withdraws(void *arg)
{
	struct gate g;
	sl_ctx *ctx;
	int64_t t0, waited;

	(void) arg;
	memset(&g, 0, sizeof(g));
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	sl_waitgroup_add(&g.wg, POOL);
	for (int i = 0; i < POOL; i++)
		SL_CHECK_OK(sl_go(holder, &g));
	while (atomic_load(&g.inside) < POOL)
		sl_sleep(SL_MILLISECOND);

	/* queued behind the pool: the deadline ends the wait */
	t0 = sl_now();
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, NULL,
	    t0 + 30 * SL_MILLISECOND), SL_ETIMEDOUT);
	waited = sl_now() - t0;
	SL_CHECK(waited >= 30 * SL_MILLISECOND);
	SL_CHECK(waited < 5 * SL_SECOND);

	/* a canceled context, between two plain calls in the queue */
	sl_waitgroup_add(&g.wg, 1);
	SL_CHECK_OK(sl_go(plain_counter, &g));
	sl_sleep(5 * SL_MILLISECOND);
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	SL_CHECK_OK(sl_go(canceler, sl_ctx_retain(ctx)));
	sl_waitgroup_add(&g.wg, 1);
	SL_CHECK_OK(sl_go(plain_counter, &g));
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);

	/* a context with a timeout: its own error */
	SL_CHECK_OK(sl_ctx_with_timeout(sl_ctx_background(),
	    10 * SL_MILLISECOND, &ctx));
	SL_CHECK_ERR(sl_blocking_ctx(count_call, &g, ctx, SL_FOREVER),
	    SL_EDEADLINE);
	sl_ctx_release(ctx);
	SL_CHECK_EQ(atomic_load(&g.ran), 0);

	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	sl_waitgroup_wait(&g.wg);
	SL_CHECK_EQ(atomic_load(&g.ran), 2);  /* the two plain calls */
	/* the pool is whole: a call with a deadline now runs */
	SL_CHECK_OK(sl_blocking_ctx(count_call, &g, NULL,
	    sl_now() + 10 * SL_SECOND));
	SL_CHECK_EQ(atomic_load(&g.ran), 3);
	sl_sleep(20 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&g.ran), 3);  /* nothing withdrawn ran late */
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

static void
test_ctx_withdraws_queued(void **state)
{
	slt_run_procs(1, body_ctx_withdraws, *state);
	slt_run_procs(2, body_ctx_withdraws, *state);
}

struct slow {
	atomic_int started;
	atomic_int finished;
	sl_ctx    *ctx;     /* canceled by cancel_started, or NULL */
};

static void
slow_call(void *arg)
{
	struct slow *s = arg;

	atomic_store(&s->started, 1);
	/* With a context, it surely ends while this runs. */
	while (s->ctx != NULL && sl_ctx_err(s->ctx) == 0)
		usleep(1000);
	usleep(80000);
	atomic_store(&s->finished, 1);
}

/* Cancels s->ctx once slow_call has started: before that, the cancel
 * would withdraw the call (a loaded machine, valgrind, can take longer
 * than any fixed pause to hand it to a pool thread). */
static void
cancel_started(void *arg)
{
	struct slow *s = arg;
	sl_ctx      *ctx = s->ctx; /* s is not touched after the cancel */

	while (!atomic_load(&s->started))
		sl_sleep(SL_MILLISECOND);
	sl_sleep(10 * SL_MILLISECOND);
	sl_ctx_cancel(ctx);
	sl_ctx_release(ctx);
}

/* A context that ends while the call runs does not cut it short: the
 * caller gets 0 once fn has returned (arg, on its stack, stays valid). */
static void
body_ctx_running(void *arg)
{
	struct slow s = { 0 };
	sl_ctx *ctx;
	int64_t t0;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	s.ctx = sl_ctx_retain(ctx);
	SL_CHECK_OK(sl_go(cancel_started, &s));
	t0 = sl_now();
	SL_CHECK_OK(sl_blocking_ctx(slow_call, &s, ctx, SL_FOREVER));
	SL_CHECK(sl_now() - t0 >= 80 * SL_MILLISECOND);
	SL_CHECK_EQ(atomic_load(&s.finished), 1);
	SL_CHECK_EQ(sl_ctx_err(ctx), SL_ECANCELED);
	sl_ctx_release(ctx);

	/* the same with a deadline */
	memset(&s, 0, sizeof(s));
	SL_CHECK_OK(sl_blocking_ctx(slow_call, &s, NULL,
	    sl_now() + 10 * SL_MILLISECOND));
	SL_CHECK_EQ(atomic_load(&s.finished), 1);
	while (sl_numgoroutine() > 1)
		sl_sleep(SL_MILLISECOND);
}

static void
test_ctx_running_waits(void **state)
{
	slt_run_procs(1, body_ctx_running, *state);
	slt_run_procs(2, body_ctx_running, *state);
}

/* Already over: nothing runs.  Bad input: SL_EINVAL. */
static void
body_ctx_already(void *arg)
{
	struct slow s = { 0 };
	sl_ctx *ctx;

	(void) arg;
	SL_CHECK_OK(sl_ctx_with_cancel(sl_ctx_background(), &ctx));
	sl_ctx_cancel(ctx);
	SL_CHECK_ERR(sl_blocking_ctx(slow_call, &s, ctx, SL_FOREVER),
	    SL_ECANCELED);
	SL_CHECK_ERR(sl_blocking_ctx(slow_call, &s, NULL, sl_now() - 1),
	    SL_ETIMEDOUT);
	SL_CHECK_EQ(atomic_load(&s.started), 0);
	SL_CHECK_ERR(sl_blocking_ctx(NULL, &s, NULL, SL_FOREVER), SL_EINVAL);
	SL_CHECK_ERR(sl_blocking(NULL, &s), SL_EINVAL);
	sl_ctx_release(ctx);
}

static void
test_ctx_already_over(void **state)
{
	struct where w;
	sl_ctx *ctx;

	slt_run(body_ctx_already, *state);
	/* outside goroutines: the same checks, then fn on this thread */
	memset(&w, 0, sizeof(w));
	assert_int_equal(sl_ctx_with_cancel(sl_ctx_background(), &ctx), 0);
	sl_ctx_cancel(ctx);
	assert_int_equal(sl_blocking_ctx(record_thread, &w, ctx, SL_FOREVER),
	    SL_ECANCELED);
	sl_ctx_release(ctx);
	assert_int_equal(w.calls, 0);
	assert_int_equal(sl_blocking_ctx(record_thread, &w, NULL,
	    sl_now() + SL_SECOND), 0);
	assert_int_equal(w.calls, 1);
	assert_true(pthread_equal(w.thread, pthread_self()));
}

/* ---- outside goroutines ---------------------------------------------------- */

/* Without a scheduler, sl_blocking calls fn on the calling thread. */
static void
test_outside(void **state)
{
	struct where w;

	(void) state;
	memset(&w, 0, sizeof(w));
	assert_int_equal(sl_blocking(record_thread, &w), 0);
	assert_int_equal(w.calls, 1);
	assert_true(pthread_equal(w.thread, pthread_self()));
	assert_int_equal(w.data[1023], 1023 * 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_thread),
		cmocka_unit_test(test_others_run),
		cmocka_unit_test(test_many_calls),
		cmocka_unit_test(test_dependent_calls),
		cmocka_unit_test(test_channels_inside),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_ctx_withdraws_queued),
		cmocka_unit_test(test_ctx_running_waits),
		cmocka_unit_test(test_ctx_already_over),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

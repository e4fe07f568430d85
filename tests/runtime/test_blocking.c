/*
 * test_blocking.c — sl_blocking: the function runs on another thread,
 * exactly once, while other goroutines keep running (even with a single
 * worker); its effects are visible to the caller afterwards; many
 * concurrent calls all complete; it may use channels (as a plain thread);
 * and outside goroutines it simply calls the function.
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
		cmocka_unit_test(test_channels_inside),
		cmocka_unit_test(test_outside),
	};

	slt_filter();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}

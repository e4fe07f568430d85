/*
 * stress.c — exact-result checks of the runtime for a cross-built target
 * (tests/cross/aarch64.sh).  Plain C with no test framework, so that it
 * needs nothing of the target but libc.  Exits non-zero on any mismatch.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sluice/sluice.h"

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "stress: %s:%d: %s\n", __FILE__,    \
			    __LINE__, #c);                                  \
			exit(1);                                            \
		}                                                           \
	} while (0)

static sl_chan      *st_a, *st_b, *st_gate;
static sl_waitgroup  st_wg;

static void
st_pong(void *arg)
{
	long v;

	(void) arg;
	while (sl_chan_recv(st_a, &v) == 0)
		CHECK(sl_chan_send(st_b, &v) == 0);
}

static void
st_producer(void *arg)
{
	sl_chan *c = arg;

	for (long i = 1; i <= 200000; i++)
		CHECK(sl_chan_send(c, &i) == 0);
	sl_chan_close(c);
}

static void
st_parked(void *arg)
{
	(void) arg;
	CHECK(sl_chan_recv(st_gate, NULL) == SL_ECLOSED);
	sl_waitgroup_done(&st_wg);
}

/* Echoes bytes from one pipe to another until end of file. */
static void
st_pipe_echo(void *arg)
{
	int   *fds = arg; /* read end, write end */
	char   buf[64];
	size_t n;

	while (sl_read(fds[0], buf, sizeof(buf), &n, NULL, SL_FOREVER) == 0 &&
	    n > 0)
		CHECK(sl_write(fds[1], buf, n, NULL, NULL, SL_FOREVER) == 0);
	close(fds[1]);
}

/* Ping-pong over pipes: every read parks on the poller. */
static void
st_pipes(void)
{
	static int there[2], back[2], echo[2];
	char       c, got;
	size_t     n;

	CHECK(pipe2(there, O_NONBLOCK) == 0 && pipe2(back, O_NONBLOCK) == 0);
	echo[0] = there[0];
	echo[1] = back[1];
	CHECK(sl_go(st_pipe_echo, echo) == 0);
	for (int i = 0; i < 5000; i++) {
		c = (char) i;
		CHECK(sl_write(there[1], &c, 1, NULL, NULL, SL_FOREVER) == 0);
		CHECK(sl_read(back[0], &got, 1, &n, NULL, SL_FOREVER) == 0);
		CHECK(n == 1 && got == c);
	}
	close(there[1]);
	CHECK(sl_read(back[0], &got, 1, &n, NULL, SL_FOREVER) == 0 && n == 0);
	close(there[0]);
	close(back[0]);
}

static void
st_main(void *arg)
{
	long     v, sum = 0;
	int      chosen;
	sl_chan *c;

	(void) arg;
	st_a = sl_chan_make(sizeof(long), 0);
	st_b = sl_chan_make(sizeof(long), 0);
	CHECK(sl_go(st_pong, NULL) == 0);
	for (long i = 0; i < 20000; i++) {
		CHECK(sl_chan_send(st_a, &i) == 0);
		CHECK(sl_chan_recv(st_b, &v) == 0 && v == i);
	}
	sl_chan_close(st_a);

	c = sl_chan_make(sizeof(long), 64);
	CHECK(sl_go(st_producer, c) == 0);
	while (sl_chan_recv(c, &v) == 0)
		sum += v;
	CHECK(sum == 200000L * 200001L / 2);
	sl_chan_release(c);

	int64_t t0 = sl_now();
	sl_sleep(20 * SL_MILLISECOND);
	CHECK(sl_now() - t0 >= 20 * SL_MILLISECOND);

	st_gate = sl_chan_make(0, 0);
	sl_waitgroup_add(&st_wg, 20000);
	for (int i = 0; i < 20000; i++)
		CHECK(sl_go(st_parked, NULL) == 0);
	sl_sleep(50 * SL_MILLISECOND);
	sl_chan_close(st_gate);
	sl_waitgroup_wait(&st_wg);

	sl_case cs[2] = { SL_CASE_RECV(st_a, &v), SL_CASE_RECV(NULL, &v) };
	CHECK(sl_select(cs, 2, NULL, SL_FOREVER, &chosen) == 0);
	CHECK(chosen == 0 && !cs[0].ok);
	CHECK(sl_select(cs + 1, 1, NULL, sl_now() + SL_MILLISECOND,
	    &chosen) == SL_ETIMEDOUT);

	st_pipes();

	sl_chan_release(st_a);
	sl_chan_release(st_b);
	sl_chan_release(st_gate);
	printf("stress: all checks passed\n");
}

int
main(void)
{
	return (sl_main(st_main, NULL) == 0 ? 0 : 1);
}

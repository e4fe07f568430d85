/*
 * bench_nng_raw.c — the raw NNG baselines of the link benchmark: push/pull
 * between processes, one message of SIZE bytes per nng_send, no batching,
 * no acknowledgements, no flow control beyond NNG's own.
 *
 *	bench_nng_raw pull URL N [lat]    listens, receives N messages, prints
 *	                                  "raw: count=N elapsed_ms=E rate=R";
 *	                                  with "lat" also " p50_us=A p99_us=B
 *	                                  max_us=M", each message's time from
 *	                                  its send at the pusher
 *	bench_nng_raw push URL N SIZE [RATE]
 *	                                  dials, sends N messages of SIZE bytes,
 *	                                  RATE a second if given (else as fast
 *	                                  as NNG takes them)
 *	bench_nng_raw relay IN OUT N      pulls N messages listening on IN and
 *	                                  pushes each on, dialing OUT: the
 *	                                  middle of a three-process chain
 *
 * Each message starts with the pusher's CLOCK_MONOTONIC time at send (8
 * bytes, native order; the processes share the clock), so the puller
 * measures from the first message's send to the last message's receipt,
 * and each message's latency.  Plain blocking nng_recv/nng_send on one
 * thread per process: the simplest use of NNG, and the lowest latency it
 * offers at a low rate.  Exits 0, or 1 with a message on stderr.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
}

static int
die(const char *what, int rv)
{
	fprintf(stderr, "bench_nng_raw: %s: %s\n", what, nng_strerror(rv));
	return (1);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

	return (x < y ? -1 : x > y);
}

static atomic_bool connected;

static void
on_pipe_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	(void) ev;
	(void) arg;
	atomic_store(&connected, true);
}

/* Dials url from s in the background (the listener may not be there
 * yet) and waits until the connection is up, so that no message's
 * latency includes the redial back-off. */
static int
dial_and_wait(nng_socket s, const char *url)
{
	struct timespec ms = { 0, 1000000 };
	int             rv;

	atomic_store(&connected, false);
	if ((rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe_add,
	    NULL)) != 0)
		return (die("nng_pipe_notify", rv));
	if ((rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		return (die("nng_dial", rv));
	while (!atomic_load(&connected))
		nanosleep(&ms, NULL);
	return (0);
}

/* Receives n messages on a pull socket listening on url; with lat, also
 * each message's latency. */
static int
pull(const char *url, uint64_t n, bool lat)
{
	nng_socket s;
	int64_t    first = 0, end, *lats = NULL;
	uint64_t   got = 0;
	int        rv;

	if (lat && n > 0 && (lats = calloc(n, sizeof(*lats))) == NULL)
		return (die("calloc", NNG_ENOMEM));
	if ((rv = nng_pull0_open(&s)) != 0)
		return (die("nng_pull0_open", rv));
	if ((rv = nng_listen(s, url, NULL, 0)) != 0)
		return (die("nng_listen", rv));
	while (got < n) {
		void   *buf;
		size_t  len;
		int64_t t = 0;

		if ((rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0)
			return (die("nng_recv", rv));
		if (len >= sizeof(t))
			memcpy(&t, buf, sizeof(t));
		if (lats != NULL)
			lats[got] = now_ns() - t;
		if (got++ == 0)
			first = t;
		nng_free(buf, len);
	}
	end = now_ns();
	printf("raw: count=%" PRIu64 " elapsed_ms=%.1f rate=%.0f", got,
	    (double) (end - first) / 1e6,
	    (double) got / ((double) (end - first) / 1e9));
	if (lats != NULL && n > 0) {
		qsort(lats, n, sizeof(*lats), cmp_i64);
		printf(" p50_us=%.1f p99_us=%.1f max_us=%.1f",
		    (double) lats[n / 2] / 1e3,
		    (double) lats[n * 99 / 100] / 1e3,
		    (double) lats[n - 1] / 1e3);
	}
	printf("\n");
	free(lats);
	nng_close(s);
	return (0);
}

/* Pulls n messages listening on in and pushes each on, dialing out. */
static int
relay(const char *in, const char *out, uint64_t n)
{
	struct timespec linger = { 0, 200 * 1000 * 1000 };
	nng_socket      si, so;
	int             rv;

	/* Downstream first: the pusher cannot connect before the chain
	 * behind this relay is up. */
	if ((rv = nng_push0_open(&so)) != 0)
		return (die("nng_push0_open", rv));
	if ((rv = dial_and_wait(so, out)) != 0)
		return (rv);
	if ((rv = nng_pull0_open(&si)) != 0)
		return (die("nng_pull0_open", rv));
	if ((rv = nng_listen(si, in, NULL, 0)) != 0)
		return (die("nng_listen", rv));
	for (uint64_t i = 0; i < n; i++) {
		nng_msg *m;

		if ((rv = nng_recvmsg(si, &m, 0)) != 0)
			return (die("nng_recvmsg", rv));
		if ((rv = nng_sendmsg(so, m, 0)) != 0)
			return (die("nng_sendmsg", rv));
	}
	nanosleep(&linger, NULL);
	nng_close(si);
	nng_close(so);
	return (0);
}

/* Sends n messages of size bytes on a push socket dialing url, rate a
 * second (0: as fast as NNG takes them). */
static int
push(const char *url, uint64_t n, size_t size, uint64_t rate)
{
	struct timespec next;
	struct timespec linger = { 0, 200 * 1000 * 1000 };
	nng_socket      s;
	uint8_t        *buf;
	int             rv;

	if (size < sizeof(int64_t))
		size = sizeof(int64_t);
	if ((buf = calloc(1, size)) == NULL)
		return (die("calloc", NNG_ENOMEM));
	if ((rv = nng_push0_open(&s)) != 0)
		return (die("nng_push0_open", rv));
	/* The puller may not listen yet: redial until it does. */
	if ((rv = dial_and_wait(s, url)) != 0)
		return (rv);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (uint64_t i = 0; i < n; i++) {
		int64_t t;

		if (rate > 0) {
			/* Absolute deadlines: a late wake-up does not slow
			 * the rate down. */
			next.tv_nsec += (long) (1000000000 / rate);
			while (next.tv_nsec >= 1000000000) {
				next.tv_nsec -= 1000000000;
				next.tv_sec++;
			}
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			    &next, NULL) != 0)
				;
		}
		t = now_ns();
		memcpy(buf, &t, sizeof(t));
		if ((rv = nng_send(s, buf, size, 0)) != 0)
			return (die("nng_send", rv));
	}
	/* Let the last messages leave before the socket goes. */
	nanosleep(&linger, NULL);
	nng_close(s);
	free(buf);
	return (0);
}

int
main(int argc, char **argv)
{
	if ((argc == 4 || (argc == 5 && strcmp(argv[4], "lat") == 0)) &&
	    strcmp(argv[1], "pull") == 0)
		return (pull(argv[2], strtoull(argv[3], NULL, 10), argc == 5));
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "push") == 0)
		return (push(argv[2], strtoull(argv[3], NULL, 10),
		    (size_t) strtoull(argv[4], NULL, 10),
		    argc == 6 ? strtoull(argv[5], NULL, 10) : 0));
	if (argc == 5 && strcmp(argv[1], "relay") == 0)
		return (relay(argv[2], argv[3], strtoull(argv[4], NULL, 10)));
	fprintf(stderr, "usage: bench_nng_raw pull URL N [lat] | "
	    "push URL N SIZE [RATE] | relay IN OUT N\n");
	return (1);
}

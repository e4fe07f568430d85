/*
 * bench_nng_raw.c — the raw NNG baseline of the link benchmark: push/pull
 * between two processes, one message of SIZE bytes per nng_send, no
 * batching, no acknowledgements, no flow control beyond NNG's own.
 *
 *	bench_nng_raw pull URL N          listens, receives N messages, prints
 *	                                  "raw: count=N elapsed_ms=E rate=R"
 *	bench_nng_raw push URL N SIZE     dials, sends N messages of SIZE bytes
 *
 * Each message starts with the pusher's CLOCK_MONOTONIC time at send (8
 * bytes, native order; the two processes share the clock), so the puller
 * measures from the first message's send to the last message's receipt.
 * Exits 0, or 1 with a message on stderr.
 */
#include <inttypes.h>
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

/* Receives n messages on a pull socket listening on url. */
static int
pull(const char *url, uint64_t n)
{
	nng_socket s;
	int64_t    first = 0, end;
	uint64_t   got = 0;
	int        rv;

	if ((rv = nng_pull0_open(&s)) != 0)
		return (die("nng_pull0_open", rv));
	if ((rv = nng_listen(s, url, NULL, 0)) != 0)
		return (die("nng_listen", rv));
	while (got < n) {
		void  *buf;
		size_t len;

		if ((rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0)
			return (die("nng_recv", rv));
		if (got++ == 0 && len >= sizeof(first))
			memcpy(&first, buf, sizeof(first));
		nng_free(buf, len);
	}
	end = now_ns();
	printf("raw: count=%" PRIu64 " elapsed_ms=%.1f rate=%.0f\n", got,
	    (double) (end - first) / 1e6,
	    (double) got / ((double) (end - first) / 1e9));
	nng_close(s);
	return (0);
}

/* Sends n messages of size bytes on a push socket dialing url. */
static int
push(const char *url, uint64_t n, size_t size)
{
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
	/* The puller may not listen yet: keep redialing in the background. */
	if ((rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		return (die("nng_dial", rv));
	for (uint64_t i = 0; i < n; i++) {
		int64_t t = now_ns();

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
	if (argc == 4 && strcmp(argv[1], "pull") == 0)
		return (pull(argv[2], strtoull(argv[3], NULL, 10)));
	if (argc == 5 && strcmp(argv[1], "push") == 0)
		return (push(argv[2], strtoull(argv[3], NULL, 10),
		    (size_t) strtoull(argv[4], NULL, 10)));
	fprintf(stderr, "usage: bench_nng_raw pull URL N | "
	    "push URL N SIZE\n");
	return (1);
}

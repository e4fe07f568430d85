/*
 * testutil.h — small helpers every test program may use, with no
 * scheduler behind them (runtime/sltest.h adds the scheduler's):
 *
 *   test_filter()         honours SLUICE_TEST_FILTER (call in main,
 *                         after cmocka.h).
 *   test_free_port()      a free TCP port on the loopback.
 *   test_rnd(&state)      splitmix64: the next number of a seeded
 *                         sequence.
 *   test_seed(own)        the seed of a randomized case:
 *                         $SLUICE_CHAOS_SEED (a number, decimal or 0x...,
 *                         or "random" for a new one), else own.
 *   test_make_certs(dir)  a CA and a server certificate for localhost
 *                         and 127.0.0.1, made with the openssl command:
 *                           dir/ca.pem            for the dialing side
 *                           dir/srv.pem, srv.key  for the listening side
 *                           dir/openssl.log       what openssl printed
 *
 * Header-only: the test programs share no library.
 */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Applies $SLUICE_TEST_FILTER (a cmocka name pattern, '*' wildcards) to
 * the cases to run. */
static inline void
test_filter(void)
{
	const char *f = getenv("SLUICE_TEST_FILTER");

	if (f != NULL && *f != '\0')
		cmocka_set_test_filter(f);
}

/* A free TCP port on the loopback (bound, read back, released), or 0.
 * Never one this process was given before: a released port is free
 * again, and the kernel may well hand it out twice in a row (two links
 * of one pipeline on one port fail with "Address in use"). */
static inline int
test_free_port(void)
{
	static int given[256];
	static int ngiven;

	for (int tries = 0; tries < 64; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t          len = sizeof(sa);
		int                fd, port = 0, seen = 0;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			return (0);
		if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
		    getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
			port = ntohs(sa.sin_port);
		close(fd);
		if (port == 0)
			return (0);
		for (int i = 0; i < ngiven && i < 256; i++)
			seen |= given[i] == port;
		if (!seen) {
			given[ngiven++ % 256] = port;
			return (port);
		}
	}
	return (0);
}

/* splitmix64: the next number from state *s. */
static inline uint64_t
test_rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (z ^ (z >> 31));
}

/* The seed of a randomized case: $SLUICE_CHAOS_SEED if set, else own.
 * "random" draws a new one, different for each own of one run.  Call
 * from the test thread: a value that is not a number fails the case. */
static inline uint64_t
test_seed(uint64_t own)
{
	const char *s = getenv("SLUICE_CHAOS_SEED");
	char       *end;
	uint64_t    v;

	if (s == NULL || *s == '\0')
		return (own);
	if (strcmp(s, "random") == 0) {
		struct timespec ts;
		uint64_t        x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^
		    ((uint64_t) getpid() << 40) ^ own;
		return (test_rnd(&x));
	}
	errno = 0;
	v = strtoull(s, &end, 0);
	if (end == s || *end != '\0' || errno != 0)
		fail_msg("SLUICE_CHAOS_SEED=%s is not a number", s);
	return (v);
}

/* 0 made; 1 openssl is not installed (skip the case); -1 openssl
 * failed (dir/openssl.log says why). */
static inline int
test_make_certs(const char *dir)
{
	char cmd[2048];

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		return (1);
	snprintf(cmd, sizeof(cmd), "(cd '%s' && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
	    "-subj /CN=sluice-test-ca -keyout ca.key -out ca.pem && "
	    "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
	    "-keyout srv.key -out srv.csr && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
	    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile ext -out srv.pem) "
	    ">'%s/openssl.log' 2>&1", dir, dir);
	return (system(cmd) == 0 ? 0 : -1);
}

#endif /* SLUICE_TESTUTIL_H */

/*
 * testutil.h — small helpers every test program may use, with no
 * scheduler behind them (runtime/sltest.h adds the scheduler's):
 *
 *   test_filter()         honours SLUICE_TEST_FILTER (call in main,
 *                         after cmocka.h).
 *   test_free_port()      a free TCP port on the loopback.
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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
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

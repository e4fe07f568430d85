/*
 * testcerts.h — test certificates for tls+tcp:// cases, made with the
 * openssl command: a CA and a server certificate for localhost and
 * 127.0.0.1, in a directory of the test's own.
 *
 *   dir/ca.pem              the CA, for the dialing side (tls_ca)
 *   dir/srv.pem, srv.key    the server's, for the listening side
 *   dir/openssl.log         what openssl printed
 *
 * Header-only: the link tests and the pipeline tests are separate
 * programs with no common library.
 */
#ifndef SLUICE_TESTCERTS_H
#define SLUICE_TESTCERTS_H

#include <stdio.h>
#include <stdlib.h>

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

#endif /* SLUICE_TESTCERTS_H */

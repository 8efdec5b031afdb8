/* Certificates for the TLS unit tests: tests/tls/gen-certs.sh run once per unit-test binary into
 * a temporary folder (removed at exit), shared by test_tls.c and test_tls_client.c. */
#ifndef SERVAL_TESTS_UNIT_TLS_CERTS_H
#define SERVAL_TESTS_UNIT_TLS_CERTS_H

/* The folder holding the generated certificates, made on the first call; NULL when generation
 * failed. Test thread only. The string is static (owned here). */
const char *sv_test_cert_dir(void);

#endif

/* Client side of TLS towards backends (BackendTLSPolicy): CA bundle checks for the translator. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tls_int.h"

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

int sv_tls_ca_check(const void *pem, size_t len, char *err, size_t errlen)
{
    set_err(err, errlen, "");
    if (!pem || len < 27 || !memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27)) {
        set_err(err, errlen, "no PEM certificate");
        return -EINVAL;
    }
    if (sv_tls_global_init() != 0) {
        set_err(err, errlen, "TLS library initialisation failed");
        return -ENOMEM;
    }
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    if (!cm) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = wolfSSL_CertManagerLoadCABuffer(cm, pem, (long)len, WOLFSSL_FILETYPE_PEM);
    wolfSSL_CertManagerFree(cm);
    if (rc != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "CA certificate PEM does not parse");
        return -EINVAL;
    }
    return 0;
}

/* Client side of TLS towards backends (BackendTLSPolicy): CA bundle checks for the translator,
 * client contexts (trust anchors, hostname or SAN verification, client certificate) and client
 * connections over the caller's buffers (the rest of the connection code is shared, conn.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- client contexts (BackendTLSPolicy) ------------------------------------------------------ */

#define SAN_DNS 2 /* GeneralName choices (RFC 5280): dNSName */
#define SAN_URI 6 /* uniformResourceIdentifier */

struct sv_tls_client {
    _Atomic long refs;
    WOLFSSL_CTX *ctx;
    char *hostname;        /* SNI, and the name checked when there is no SAN list */
    char **sans;           /* "DNS:<name>" / "URI:<uri>" accepted instead of the hostname */
    uint32_t n_sans;
};

static void client_free(struct sv_tls_client *cl)
{
    if (cl->ctx)
        wolfSSL_CTX_free(cl->ctx);
    for (uint32_t i = 0; i < cl->n_sans; i++)
        free(cl->sans[i]);
    free(cl->sans);
    free(cl->hostname);
    free(cl);
}

/* Does the peer certificate carry one of the SANs the policy lists? */
static bool sans_match(const struct sv_tls_client *cl, WOLFSSL_X509 *x)
{
    WOLF_STACK_OF(WOLFSSL_GENERAL_NAME) *gns =
        wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!gns)
        return false;
    bool ok = false;
    int n = wolfSSL_sk_GENERAL_NAME_num(gns);
    for (int i = 0; i < n && i < 256 && !ok; i++) {
        WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(gns, i);
        const char *pfx = gn->type == SAN_DNS ? "DNS:" : gn->type == SAN_URI ? "URI:" : NULL;
        if (!pfx)
            continue;
        WOLFSSL_ASN1_STRING *s = gn->d.ia5;
        const char *v = (const char *)wolfSSL_ASN1_STRING_data(s);
        int vl = wolfSSL_ASN1_STRING_length(s);
        for (uint32_t k = 0; v && vl > 0 && k < cl->n_sans && !ok; k++) {
            const char *want = cl->sans[k];
            ok = strncmp(want, pfx, 4) == 0 && strlen(want + 4) == (size_t)vl &&
                 (gn->type == SAN_DNS ? strncasecmp(want + 4, v, (size_t)vl)
                                      : strncmp(want + 4, v, (size_t)vl)) == 0;
        }
    }
    wolfSSL_sk_GENERAL_NAME_pop_free(gns, wolfSSL_GENERAL_NAME_free);
    return ok;
}

/* Verify callback: the chain result stands; with a SAN list, the leaf must carry one of them. */
static int client_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    if (!preverify)
        return 0;
    if (wolfSSL_X509_STORE_CTX_get_error_depth(store) != 0)
        return 1;
    WOLFSSL *ssl = wolfSSL_X509_STORE_CTX_get_ex_data(
        store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
    struct sv_tls_conn *c = ssl ? wolfSSL_GetIOReadCtx(ssl) : NULL;
    const struct sv_tls_client *cl = c ? c->_cli : NULL;
    if (!cl || cl->n_sans == 0)
        return 1; /* the hostname was set as the domain to check */
    WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
    return x && sans_match(cl, x) ? 1 : 0;
}

struct sv_tls_client *sv_tls_client_new(const struct sv_tls_client_spec *spec, char *err,
                                        size_t errlen)
{
    set_err(err, errlen, "");
    if (sv_tls_global_init() != 0) {
        set_err(err, errlen, "TLS library initialisation failed");
        return NULL;
    }
    if (!spec->hostname.len || spec->hostname.len > 253) {
        set_err(err, errlen, "a hostname is required");
        return NULL;
    }
    if (!spec->ca_pem.len && !spec->system_cas) {
        set_err(err, errlen, "no trust anchors");
        return NULL;
    }
    if (spec->n_sans > SV_TLS_CLIENT_MAX_SANS) {
        set_err(err, errlen, "too many subjectAltNames");
        return NULL;
    }
    struct sv_tls_client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        goto nomem;
    cl->refs = 1;
    cl->hostname = strndup(spec->hostname.ptr, spec->hostname.len);
    cl->sans = calloc(spec->n_sans ? spec->n_sans : 1, sizeof(*cl->sans));
    cl->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!cl->hostname || !cl->sans || !cl->ctx)
        goto nomem;
    for (uint32_t i = 0; i < spec->n_sans; i++) {
        const struct sv_tls_san *s = &spec->sans[i];
        size_t n = s->value.len + 5;
        if (!(cl->sans[i] = malloc(n)))
            goto nomem;
        snprintf(cl->sans[i], n, "%s%.*s", s->uri ? "URI:" : "DNS:", (int)s->value.len,
                 s->value.ptr);
        cl->n_sans++;
    }
    wolfSSL_CTX_SetMinVersion(cl->ctx, WOLFSSL_TLSV1_2);
    if (spec->ca_pem.len &&
        wolfSSL_CTX_load_verify_buffer(cl->ctx, (const unsigned char *)spec->ca_pem.ptr,
                                       (long)spec->ca_pem.len,
                                       WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "CA certificate PEM does not parse");
        client_free(cl);
        return NULL;
    }
    if (spec->system_cas && wolfSSL_CTX_load_system_CA_certs(cl->ctx) != WOLFSSL_SUCCESS) {
        set_err(err, errlen, "system CA certificates could not be loaded");
        client_free(cl);
        return NULL;
    }
    if (spec->cert_pem.len) {
        if (wolfSSL_CTX_use_certificate_chain_buffer(
                cl->ctx, (const unsigned char *)spec->cert_pem.ptr, (long)spec->cert_pem.len) !=
                WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_buffer(cl->ctx, (const unsigned char *)spec->key_pem.ptr,
                                              (long)spec->key_pem.len,
                                              WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            set_err(err, errlen, "client certificate or key PEM does not parse");
            client_free(cl);
            return NULL;
        }
    }
    wolfSSL_CTX_set_verify(cl->ctx, WOLFSSL_VERIFY_PEER, client_verify_cb);
    wolfSSL_CTX_SetIORecv(cl->ctx, sv_tls_io_recv_);
    wolfSSL_CTX_SetIOSend(cl->ctx, sv_tls_io_send_);
    return cl;
nomem:
    set_err(err, errlen, "out of memory");
    if (cl)
        client_free(cl);
    return NULL;
}

void sv_tls_client_ref(struct sv_tls_client *cl)
{
    cl->refs++;
}

void sv_tls_client_unref(struct sv_tls_client *cl)
{
    if (cl && --cl->refs == 0)
        client_free(cl);
}

int sv_tls_conn_open_client(struct sv_tls_conn *c, struct sv_tls_client *cl, void *out,
                            size_t out_cap)
{
    memset(c, 0, sizeof(*c));
    c->_listener = -1;
    if (!cl || !out || out_cap < SV_TLS_MIN_OUT)
        return -EINVAL;
    WOLFSSL *ssl = wolfSSL_new(cl->ctx);
    if (!ssl)
        return -ENOMEM;
    wolfSSL_SSLSetIORecv(ssl, sv_tls_io_recv_);
    wolfSSL_SSLSetIOSend(ssl, sv_tls_io_send_);
    wolfSSL_SetIOReadCtx(ssl, c);
    wolfSSL_SetIOWriteCtx(ssl, c);
    char alpn[] = "http/1.1";
    if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, cl->hostname,
                       (unsigned short)strlen(cl->hostname)) != WOLFSSL_SUCCESS ||
        wolfSSL_UseALPN(ssl, alpn, (unsigned)strlen(alpn),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS ||
        (cl->n_sans == 0 && wolfSSL_check_domain_name(ssl, cl->hostname) != WOLFSSL_SUCCESS)) {
        wolfSSL_free(ssl);
        return -ENOMEM;
    }
    sv_tls_client_ref(cl);
    c->_ssl = ssl;
    c->_cli = cl;
    c->_out = out;
    c->_out_cap = out_cap;
    c->_state = SV_TLS_HANDSHAKE;
    return 0;
}

/* Server TLS connections over caller-owned byte buffers: wolfSSL's I/O callbacks read the
 * ciphertext the data plane lends us and append ciphertext to the caller's output buffer. No
 * socket is touched here. */
#include <errno.h>
#include <string.h>

#include "serval/base/assert.h"
#include "tls_int.h"

#define REC_PT 16384u  /* max plaintext per record */
#define REC_OVERHEAD 64u /* header + explicit nonce + tag + inner type, rounded up */

/* Follow the record framing of the bytes handed to wolfSSL, to tell a peer's alert (content type
 * 21; before its handshake keys are in use a client sends it in the clear) from other failures. */
static void track_records(struct sv_tls_conn *c, const uint8_t *p, size_t n)
{
    size_t bound = 2 * n + 2; /* each round takes a byte, or completes a header */
    for (size_t i = 0; n > 0 && i < bound; i++) {
        if (c->_rec_left > 0) {
            size_t k = n < c->_rec_left ? n : c->_rec_left;
            p += k;
            n -= k;
            c->_rec_left -= (uint32_t)k;
            continue;
        }
        size_t k = sizeof(c->_hdr) - c->_hdr_len;
        if (k > n)
            k = n;
        memcpy(c->_hdr + c->_hdr_len, p, k);
        c->_hdr_len = (uint8_t)(c->_hdr_len + k);
        p += k;
        n -= k;
        if (c->_hdr_len == sizeof(c->_hdr)) {
            c->_rec_type = c->_hdr[0];
            c->_rec_left = (uint32_t)c->_hdr[3] << 8 | c->_hdr[4];
            c->_hdr_len = 0;
        }
    }
}

int sv_tls_io_recv_(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct sv_tls_conn *c = ctx;
    if (!c->_in || c->_in_off >= c->_in_len || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = c->_in_len - c->_in_off;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, c->_in + c->_in_off, n);
    track_records(c, c->_in + c->_in_off, n);
    c->_in_off += n;
    return (int)n;
}

int sv_tls_io_send_(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct sv_tls_conn *c = ctx;
    if (c->_out_off == c->_out_len)
        c->_out_off = c->_out_len = 0; /* empty: restart at the front (nothing in flight) */
    size_t room = c->_out_cap - c->_out_len;
    if (room == 0 || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    size_t n = (size_t)sz < room ? (size_t)sz : room;
    memcpy(c->_out + c->_out_len, buf, n);
    c->_out_len += n;
    return (int)n;
}

int sv_tls_sni_cb_(WOLFSSL *ssl, int *alert, void *arg)
{
    struct sv_tls_conn *c = wolfSSL_GetIOReadCtx(ssl);
    struct sv_tls_server *s = c ? c->_srv : arg;
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    struct sv_str sni = sv_str_cstr(name);
    int li = sv_tls_server_select(s, sni);
    if (li < 0) {
        *alert = unrecognized_name;
        if (c) {
            c->_listener = -1;
            c->_sni_unknown = true;
        }
        return fatal_return;
    }
    const struct sv_tls_cert *cert = sv_tls_pick_cert_(&s->listeners[li], sni);
    if (wolfSSL_get_SSL_CTX(ssl) != cert->ctx && wolfSSL_set_SSL_CTX(ssl, cert->ctx) == NULL) {
        *alert = internal_error;
        return fatal_return;
    }
    if (c)
        c->_listener = li;
    return 0;
}

int sv_tls_conn_open(struct sv_tls_conn *c, struct sv_tls_server *srv, void *out, size_t out_cap)
{
    return sv_tls_conn_open_alpn(c, srv, out, out_cap, false);
}

int sv_tls_conn_open_alpn(struct sv_tls_conn *c, struct sv_tls_server *srv, void *out,
                          size_t out_cap, bool offer_h2)
{
    memset(c, 0, sizeof(*c));
    c->_listener = -1;
    if (!srv || !out || out_cap < SV_TLS_MIN_OUT)
        return -EINVAL;
    int first = srv->any_listener >= 0 ? srv->any_listener : 0;
    WOLFSSL *ssl = wolfSSL_new(srv->listeners[first].certs[0].ctx);
    if (!ssl)
        return -ENOMEM;
    wolfSSL_SSLSetIORecv(ssl, sv_tls_io_recv_);
    wolfSSL_SSLSetIOSend(ssl, sv_tls_io_send_);
    wolfSSL_SetIOReadCtx(ssl, c);
    wolfSSL_SetIOWriteCtx(ssl, c);
    if (srv->client_auth) {
        /* a resumed session skips the client's certificate: full handshakes only */
        wolfSSL_NoTicketTLSv12(ssl);
        wolfSSL_no_ticket_TLSv13(ssl);
    }
    char alpn11[] = "http/1.1";
    char alpn2[] = "h2,http/1.1";
    char *alpn = offer_h2 ? alpn2 : alpn11;
    if (wolfSSL_UseALPN(ssl, alpn, (unsigned)strlen(alpn),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return -ENOMEM;
    }
    sv_tls_server_ref(srv);
    c->_ssl = ssl;
    c->_srv = srv;
    c->_out = out;
    c->_out_cap = out_cap;
    c->_state = SV_TLS_HANDSHAKE;
    /* a ClientHello without extensions never reaches the SNI callback */
    c->_listener = srv->any_listener;
    return 0;
}

void sv_tls_conn_close(struct sv_tls_conn *c)
{
    if (c->_ssl)
        wolfSSL_free(c->_ssl);
    if (c->_srv)
        sv_tls_server_unref(c->_srv);
    if (c->_cli)
        sv_tls_client_unref(c->_cli);
    memset(c, 0, sizeof(*c));
    c->_listener = -1;
}

static ssize_t fail(struct sv_tls_conn *c, int e)
{
    c->_err = e;
    c->_state = SV_TLS_FAILED;
    return -EPROTO;
}

ssize_t sv_tls_conn_recv(struct sv_tls_conn *c, const void *in, size_t in_len, size_t *used,
                         void *plain, size_t cap)
{
    WOLFSSL *ssl = c->_ssl;
    ssize_t r = 0;
    *used = 0;
    if (!ssl)
        return -EINVAL;
    c->_in = in;
    c->_in_len = in ? in_len : 0;
    c->_in_off = 0;
    if (c->_state == SV_TLS_HANDSHAKE) {
        int rc = c->_cli ? wolfSSL_connect(ssl) : wolfSSL_accept(ssl);
        if (rc == WOLFSSL_SUCCESS) {
            if (!c->_cli && c->_listener < 0) {
                c->_sni_unknown = true;
                r = fail(c, SNI_ABSENT_ERROR);
                goto out;
            }
            c->_state = SV_TLS_OPEN;
        } else {
            int e = wolfSSL_get_error(ssl, rc);
            if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE)
                r = fail(c, e);
            goto out;
        }
    }
    if (c->_state == SV_TLS_OPEN) {
        if (cap == 0)
            goto out;
        int want = cap > INT32_MAX ? INT32_MAX : (int)cap;
        int n = wolfSSL_read(ssl, plain, want);
        if (n > 0) {
            r = n;
        } else {
            int e = wolfSSL_get_error(ssl, n);
            if (e == WOLFSSL_ERROR_ZERO_RETURN) {
                c->_peer_closed = true;
                c->_state = SV_TLS_CLOSED;
                r = -EPIPE;
            } else if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
                r = fail(c, e);
            }
        }
    } else if (c->_state == SV_TLS_CLOSED) {
        r = -EPIPE;
    } else if (c->_state == SV_TLS_FAILED) {
        r = -EPROTO;
    }
out:
    *used = c->_in_off;
    c->_in = NULL;
    c->_in_len = c->_in_off = 0;
    return r;
}

ssize_t sv_tls_conn_send(struct sv_tls_conn *c, const void *plain, size_t len)
{
    if (!c->_ssl || c->_state != SV_TLS_OPEN)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (c->_out_off == c->_out_len)
        c->_out_off = c->_out_len = 0;
    size_t room = c->_out_cap - c->_out_len;
    /* take only what surely fits, so wolfSSL never has to keep a half-sent record */
    size_t records = (room + REC_PT - 1) / REC_PT;
    if (room <= records * REC_OVERHEAD)
        return 0;
    size_t chunk = room - records * REC_OVERHEAD;
    if (chunk > len)
        chunk = len;
    if (chunk > INT32_MAX)
        chunk = INT32_MAX;
    int n = wolfSSL_write(c->_ssl, plain, (int)chunk);
    if (n > 0)
        return n;
    int e = wolfSSL_get_error(c->_ssl, n);
    if (e == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    return fail(c, e);
}

int sv_tls_conn_shutdown(struct sv_tls_conn *c)
{
    if (c->_state == SV_TLS_FAILED)
        return -EPROTO;
    bool can = c->_state == SV_TLS_OPEN || (c->_state == SV_TLS_CLOSED && c->_peer_closed);
    if (!c->_ssl || !can || c->_shut_sent)
        return 0;
    c->_shut_sent = true;
    int rc = wolfSSL_shutdown(c->_ssl);
    c->_state = SV_TLS_CLOSED;
    if (rc == WOLFSSL_SUCCESS || rc == WOLFSSL_SHUTDOWN_NOT_DONE)
        return 1;
    int e = wolfSSL_get_error(c->_ssl, rc);
    return e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ ? 1 : -EPROTO;
}

size_t sv_tls_conn_out(const struct sv_tls_conn *c, const uint8_t **p)
{
    *p = c->_out ? c->_out + c->_out_off : NULL;
    return c->_out_len - c->_out_off;
}

void sv_tls_conn_out_consume(struct sv_tls_conn *c, size_t n)
{
    SV_ASSERT(n <= c->_out_len - c->_out_off);
    c->_out_off += n;
    if (c->_out_off == c->_out_len)
        c->_out_off = c->_out_len = 0;
}

enum sv_tls_state sv_tls_conn_state(const struct sv_tls_conn *c)
{
    return c->_state;
}

int sv_tls_conn_listener(const struct sv_tls_conn *c)
{
    return c->_ssl ? c->_listener : -1;
}

struct sv_str sv_tls_conn_listener_hostname(const struct sv_tls_conn *c)
{
    if (!c->_srv || c->_listener < 0)
        return SV_STR_NULL;
    const struct sv_tls_listener *l = &c->_srv->listeners[c->_listener];
    return sv_str_make(l->hostname, l->hostname_len);
}

struct sv_str sv_tls_conn_sni(const struct sv_tls_conn *c)
{
    if (!c->_ssl)
        return SV_STR_NULL;
    return sv_str_cstr(wolfSSL_get_servername(c->_ssl, WOLFSSL_SNI_HOST_NAME));
}

struct sv_str sv_tls_conn_alpn(const struct sv_tls_conn *c)
{
    char *name = NULL;
    unsigned short len = 0;
    if (!c->_ssl || wolfSSL_ALPN_GetProtocol(c->_ssl, &name, &len) != WOLFSSL_SUCCESS || !name)
        return SV_STR_NULL;
    return sv_str_make(name, len);
}

const char *sv_tls_conn_version(const struct sv_tls_conn *c)
{
    return c->_ssl ? wolfSSL_get_version(c->_ssl) : "";
}

bool sv_tls_conn_resumed(const struct sv_tls_conn *c)
{
    return c->_ssl && wolfSSL_session_reused(c->_ssl) == 1;
}

const char *sv_tls_conn_error(const struct sv_tls_conn *c, char *buf, size_t len)
{
    if (!len)
        return buf;
    if (!c->_err) {
        buf[0] = '\0';
        return buf;
    }
    wolfSSL_ERR_error_string_n((unsigned long)(c->_err < 0 ? -c->_err : c->_err), buf, len);
    return buf;
}

enum sv_tls_failure sv_tls_conn_failure(const struct sv_tls_conn *c)
{
    if (c->_state != SV_TLS_FAILED)
        return SV_TLS_FAIL_NONE;
    if (c->_sni_unknown)
        return SV_TLS_FAIL_UNKNOWN_SNI;
    /* wolfSSL reports a fatal alert it read as FATAL_ERROR; an alert it could not take in (a
     * TLS 1.3 client's plaintext alert after the server's flight) shows in the framing */
    if (c->_err == FATAL_ERROR || c->_rec_type == 21)
        return SV_TLS_FAIL_PEER_ALERT;
    return SV_TLS_FAIL_PROTOCOL;
}

struct sv_tls_server *sv_tls_conn_server(const struct sv_tls_conn *c)
{
    return c->_srv;
}

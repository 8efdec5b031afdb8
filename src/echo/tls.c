/* serval-echo TLS: HTTPS listeners (--tls-listen) with wolfSSL on the non-blocking sockets of the
 * epoll loop, and the "tls" object of the echo JSON (version, cipherSuite, serverName,
 * negotiatedProtocol, peerCertificates as PEM), as the conformance echo-basic server reports it.
 *
 * One WOLFSSL_CTX for the process (made by main before the threads start, read-only after);
 * one WOLFSSL per connection, used only by the thread owning the connection. With a client CA
 * bundle the server asks for a client certificate and verifies it if one is given (a client
 * without one is still served); without it, no client certificate is requested. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "echo/echo_int.h"

#define SNI_MAX 256

static WOLFSSL_CTX *g_ctx;

/* The SNI the client sent, kept per connection: the ex-data slot of the session holds the
 * connection, the callback copies the name. */
static int sni_cb(WOLFSSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    struct sv_echo_conn *c = wolfSSL_get_ex_data(ssl, 0);
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    if (c && name)
        snprintf(c->tls_sni, sizeof(c->tls_sni), "%s", name);
    return 0; /* SSL_TLSEXT_ERR_OK */
}

int sv_echo_tls_init(const char *cert, const char *key, const char *client_ca)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return -1;
    g_ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!g_ctx)
        return -1;
    if (wolfSSL_CTX_use_certificate_chain_file(g_ctx, cert) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "serval-echo: cannot load TLS certificate %s\n", cert);
        return -1;
    }
    if (wolfSSL_CTX_use_PrivateKey_file(g_ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "serval-echo: cannot load TLS private key %s\n", key);
        return -1;
    }
    if (client_ca && client_ca[0]) {
        if (wolfSSL_CTX_load_verify_locations(g_ctx, client_ca, NULL) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "serval-echo: cannot load client CA %s\n", client_ca);
            return -1;
        }
        wolfSSL_CTX_set_verify(g_ctx, WOLFSSL_VERIFY_PEER, NULL); /* verified if given */
    } else {
        wolfSSL_CTX_set_verify(g_ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    wolfSSL_CTX_set_servername_callback(g_ctx, sni_cb);
    return 0;
}

int sv_echo_tls_start(struct sv_echo_conn *c)
{
    WOLFSSL *ssl = g_ctx ? wolfSSL_new(g_ctx) : NULL;
    if (!ssl)
        return -1;
    if (wolfSSL_set_fd(ssl, c->fd) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return -1;
    }
    wolfSSL_set_ex_data(ssl, 0, c);
    wolfSSL_set_using_nonblock(ssl, 1);
    c->ssl = ssl;
    return 0;
}

/* errno for a wolfSSL result <= 0: EAGAIN while it waits for the socket, ECONNRESET else. */
static ssize_t io_result(WOLFSSL *ssl, int r)
{
    int e = wolfSSL_get_error(ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify */
    errno = ECONNRESET;
    return -1;
}

ssize_t sv_echo_tls_recv(struct sv_echo_conn *c, void *buf, size_t n)
{
    int r = wolfSSL_read(c->ssl, buf, n > 1u << 30 ? 1 << 30 : (int)n);
    return r > 0 ? r : io_result(c->ssl, r);
}

ssize_t sv_echo_tls_send(struct sv_echo_conn *c, const void *buf, size_t n)
{
    int r = wolfSSL_write(c->ssl, buf, n > 1u << 30 ? 1 << 30 : (int)n);
    return r > 0 ? r : io_result(c->ssl, r);
}

bool sv_echo_tls_pending(const struct sv_echo_conn *c)
{
    return c->ssl && wolfSSL_pending(c->ssl) > 0;
}

void sv_echo_tls_end(struct sv_echo_conn *c, bool notify)
{
    if (!c->ssl)
        return;
    if (notify)
        wolfSSL_shutdown(c->ssl); /* one try: close_notify if the socket takes it */
    wolfSSL_free(c->ssl);
    c->ssl = NULL;
}

static void put_pem(struct sv_echo_buf *j, const unsigned char *der, int len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sv_echo_buf_puts(j, "\"-----BEGIN CERTIFICATE-----\\n");
    int col = 0;
    for (int i = 0; i < len; i += 3) { /* bounded by the DER length */
        unsigned v = (unsigned)der[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)der[i + 1] << 8;
        if (i + 2 < len)
            v |= der[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                     i + 1 < len ? tab[(v >> 6) & 63] : '=', i + 2 < len ? tab[v & 63] : '='};
        sv_echo_buf_put(j, q, 4);
        col += 4;
        if (col == 64) {
            sv_echo_buf_puts(j, "\\n");
            col = 0;
        }
    }
    sv_echo_buf_puts(j, col ? "\\n-----END CERTIFICATE-----\\n\"" : "-----END CERTIFICATE-----\\n\"");
}

void sv_echo_tls_json(const struct sv_echo_conn *c, struct sv_echo_buf *j)
{
    if (!c->ssl)
        return;
    WOLFSSL *ssl = c->ssl;
    const char *ver = wolfSSL_get_version(ssl); /* "TLSv1.3", like Go's names */
    const char *cipher = wolfSSL_get_cipher_name(ssl);
    sv_echo_buf_puts(j, ",\"tls\":{\"version\":\"");
    sv_echo_buf_json(j, ver ? ver : "", ver ? strlen(ver) : 0);
    sv_echo_buf_puts(j, "\",\"serverName\":\"");
    sv_echo_buf_json(j, c->tls_sni, strlen(c->tls_sni));
    sv_echo_buf_puts(j, "\",\"negotiatedProtocol\":\"");
    char *alpn = NULL;
    unsigned short alen = 0;
    if (wolfSSL_ALPN_GetProtocol(ssl, &alpn, &alen) == WOLFSSL_SUCCESS && alpn)
        sv_echo_buf_json(j, alpn, alen);
    sv_echo_buf_puts(j, "\",\"cipherSuite\":\"");
    sv_echo_buf_json(j, cipher ? cipher : "", cipher ? strlen(cipher) : 0);
    sv_echo_buf_puts(j, "\",\"peerCertificates\":[");
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(ssl);
    if (peer) {
        int len = 0;
        const unsigned char *der = wolfSSL_X509_get_der(peer, &len);
        if (der && len > 0)
            put_pem(j, der, len);
        wolfSSL_X509_free(peer);
    }
    sv_echo_buf_puts(j, "]}");
}

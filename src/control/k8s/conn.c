/* Non-blocking HTTPS client for the API server: one TLS connection per exchange, driven from the
 * control thread's poll loop. wolfSSL verifies the server against the cluster CA; DNS hosts are
 * checked (and sent as SNI) by name, IP hosts against the certificate's IP SANs after the
 * handshake (wolfSSL_check_domain_name does not tell names and IPs apart). */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "k8s_int.h"
#include "serval/base/compiler.h"
#include "serval/base/log.h"
#include "serval/base/time.h"

#ifndef SV_VERSION
#define SV_VERSION "0.1.0"
#endif

#define HEAD_MAX 32768
#define BODY_MAX (256u << 20)
#define READ_CHUNK 16384
#define READS_PER_STEP 512

enum cstate { C_CONNECT, C_HANDSHAKE, C_SEND, C_HEAD, C_BODY, C_DONE, C_FAILED };

struct k8s_conn {
    struct k8s_client *cl;
    int fd;
    struct addrinfo *ai, *ai_next;
    WOLFSSL *ssl;
    enum cstate st;
    short want;
    bool pending;
    char *req;
    size_t req_len, req_off;
    char head[HEAD_MAX];
    size_t head_len;
    struct sv_k8s_resp_head h;
    struct sv_k8s_chunked ch;
    int64_t body_left;
    bool stream, streaming, got_bytes;
    struct sv_k8s_lines lines;
    sv_k8s_bytes_fn line_fn;
    void *line_ctx;
    char *body;
    size_t body_len, body_cap;
    uint64_t start_ms, last_rx_ms;
    uint32_t idle_ms;
    bool reused; /* taken from the keep-alive pool */
    char err[200];
};

#define POOL_IDLE_MS 30000

/* A client TLS context verifying against <ca> (or the system store), with the client
 * certificate if any; stored in cl->ctx. Returns 0 or -EINVAL/-ENOMEM with a message. */
static int build_ctx(struct k8s_client *cl, const uint8_t *ca, size_t ca_len, char *err,
                     size_t errlen)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot create a context");
        return -ENOMEM;
    }
    cl->ctx = ctx;
    wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2);
    if (cl->cfg.insecure) {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    } else {
        int rc;
        if (ca)
            rc = wolfSSL_CTX_load_verify_buffer(ctx, ca, (long)ca_len, WOLFSSL_FILETYPE_PEM);
        else
            rc = wolfSSL_CTX_load_verify_locations(ctx, "/etc/ssl/certs/ca-certificates.crt", NULL);
        if (rc != WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "TLS: cannot load the cluster CA (%d)", rc);
            return -EINVAL;
        }
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    }
    if (cl->cfg.cert_pem) {
        if (wolfSSL_CTX_use_certificate_chain_buffer_format(
                ctx, cl->cfg.cert_pem, (long)cl->cfg.cert_len, WOLFSSL_FILETYPE_PEM) !=
                WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_buffer(ctx, cl->cfg.key_pem, (long)cl->cfg.key_len,
                                              WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "TLS: bad client certificate or key");
            return -EINVAL;
        }
    }
    return 0;
}

int k8s_client_init(struct k8s_client *cl, struct sv_k8s_config *cfg, bool insecure_flag,
                    char *err, size_t errlen)
{
    memset(cl, 0, sizeof(*cl));
    cl->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    cl->connect_timeout_ms = 10000;
    cl->request_timeout_ms = 60000;
    if (insecure_flag)
        cl->cfg.insecure = true;
    snprintf(cl->host_header, sizeof(cl->host_header),
             strchr(cl->cfg.host, ':') ? "[%s]:%s" : "%s:%s", cl->cfg.host, cl->cfg.port);
    snprintf(cl->user_agent, sizeof(cl->user_agent), "serval-gateway/%s (linux/%s)", SV_VERSION,
#if defined(__x86_64__)
             "amd64"
#elif defined(__aarch64__)
             "arm64"
#else
             "unknown"
#endif
    );
    if (sv_k8s_token_init(&cl->tok, &cl->cfg) < 0)
        return -ENOMEM;
    wolfSSL_Init();
    cl->wolf_init = true;
    if (cl->cfg.insecure)
        sv_warn("k8s", "TLS verification of the API server is OFF (insecure-skip-tls-verify)");
    return build_ctx(cl, cl->cfg.ca_pem, cl->cfg.ca_len, err, errlen);
}

/* After a verification failure, or every 5 minutes: re-read the CA file and, when its bytes
 * changed, build a new context for new connections (open ones keep the old one: a wolfSSL
 * context lives until its last session is freed). */
static void maybe_reload_ca(struct k8s_client *cl, uint64_t now)
{
    if (!cl->cfg.ca_file || cl->cfg.insecure)
        return;
    if (!cl->ca_verify_failed && cl->ca_checked_ms && now < cl->ca_checked_ms + 300000)
        return;
    cl->ca_checked_ms = now;
    cl->ca_verify_failed = false;
    FILE *f = fopen(cl->cfg.ca_file, "rb");
    if (!f)
        return;
    uint8_t *buf = malloc(1u << 20);
    size_t n = buf ? fread(buf, 1, 1u << 20, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n == (1u << 20) ||
        (n == cl->cfg.ca_len && memcmp(buf, cl->cfg.ca_pem, n) == 0)) {
        free(buf);
        return;
    }
    char err[128];
    void *old = cl->ctx;
    cl->ctx = NULL;
    if (build_ctx(cl, buf, n, err, sizeof(err)) < 0) {
        sv_warn("k8s", "%s changed but cannot be used (%s); keeping the old CA", cl->cfg.ca_file,
                err);
        if (cl->ctx)
            wolfSSL_CTX_free(cl->ctx);
        cl->ctx = old;
        free(buf);
        return;
    }
    wolfSSL_CTX_free(old);
    free(cl->cfg.ca_pem);
    cl->cfg.ca_pem = buf;
    cl->cfg.ca_len = n;
    cl->ca_reloads++;
    sv_info("k8s", "cluster CA %s changed: new connections use it", cl->cfg.ca_file);
}

static void pool_drop(struct k8s_idle *e)
{
    wolfSSL_free(e->ssl);
    close(e->fd);
}

void k8s_client_free(struct k8s_client *cl)
{
    for (unsigned i = 0; i < cl->n_pool; i++)
        pool_drop(&cl->pool[i]);
    cl->n_pool = 0;
    if (cl->ctx)
        wolfSSL_CTX_free(cl->ctx);
    if (cl->wolf_init)
        wolfSSL_Cleanup();
    sv_k8s_token_clear(&cl->tok);
    sv_k8s_config_clear(&cl->cfg);
    memset(cl, 0, sizeof(*cl));
}

static int fail(struct k8s_conn *c, int rc, const char *fmt, ...) SV_PRINTF(3, 4);

static int fail(struct k8s_conn *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->st = C_FAILED;
    return rc;
}

/* Connect to the next resolved address (a host name may resolve to ::1 and 127.0.0.1, and the
 * server may listen on one of them only). Returns 0 (in progress) or a negative errno when every
 * address failed. */
static int try_connect(struct k8s_conn *c)
{
    int e = ECONNREFUSED;
    for (unsigned guard = 0; c->ai_next && guard < 16; guard++) {
        struct addrinfo *ai = c->ai_next;
        c->ai_next = ai->ai_next;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->want = POLLOUT;
            return 0;
        }
        e = errno;
    }
    return fail(c, -e, "connect %s: %s", c->cl->host_header, strerror(e));
}

/* Resolve (once) and connect a new socket. Name resolution may block the control thread
 * (never the data plane); in a cluster the host is the Service IP from the environment. */
static void connect_fresh(struct k8s_conn *c)
{
    c->st = C_CONNECT;
    c->cl->connects++;
    if (!c->ai) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        int grc = getaddrinfo(c->cl->cfg.host, c->cl->cfg.port, &hints, &c->ai);
        if (grc != 0 || !c->ai) {
            c->ai = NULL;
            fail(c, -EHOSTUNREACH, "resolve %s: failed", c->cl->cfg.host);
            return; /* reported by the first step */
        }
    }
    c->ai_next = c->ai;
    try_connect(c);
}

int k8s_conn_start(struct k8s_client *cl, const char *method, const char *path,
                   const char *content_type, const char *body, size_t body_len, bool stream,
                   uint32_t idle_ms, sv_k8s_bytes_fn line_fn, void *line_ctx, struct k8s_conn **out)
{
    *out = NULL;
    struct k8s_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cl = cl;
    c->fd = -1;
    c->stream = stream;
    c->idle_ms = idle_ms;
    c->line_fn = line_fn;
    c->line_ctx = line_ctx;
    c->body_left = -1;
    c->start_ms = c->last_rx_ms = sv_now_ms();
    maybe_reload_ca(cl, c->start_ms);
    const char *tok = sv_k8s_token_get(&cl->tok, c->start_ms);
    size_t cap = strlen(method) + strlen(path) + (tok ? strlen(tok) : 0) + 512 + body_len;
    c->req = malloc(cap);
    if (!c->req) {
        free(c);
        return -ENOMEM;
    }
    int n = snprintf(c->req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\n"
                     "%s",
                     method, path, cl->host_header, cl->user_agent,
                     stream ? "Connection: close\r\n" : "");
    if (tok)
        n += snprintf(c->req + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", tok);
    if (body)
        n += snprintf(c->req + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      content_type ? content_type : "application/json", body_len);
    n += snprintf(c->req + n, cap - (size_t)n, "\r\n");
    if (body) {
        memcpy(c->req + n, body, body_len);
        n += (int)body_len;
    }
    c->req_len = (size_t)n;
    cl->requests++;

    *out = c;
    /* a kept-alive connection (newest first; older than POOL_IDLE_MS: closed) */
    while (!stream && cl->n_pool > 0) {
        struct k8s_idle *e = &cl->pool[--cl->n_pool];
        if (c->start_ms > e->since_ms + POOL_IDLE_MS) {
            pool_drop(e);
            continue;
        }
        c->fd = e->fd;
        c->ssl = e->ssl;
        c->reused = true;
        c->st = C_SEND;
        c->want = POLLOUT;
        cl->reused++;
        return 0;
    }
    connect_fresh(c);
    return 0;
}

static int setup_tls(struct k8s_conn *c)
{
    struct k8s_client *cl = c->cl;
    WOLFSSL *ssl = wolfSSL_new(cl->ctx);
    if (!ssl)
        return fail(c, -ENOMEM, "TLS: %s", "out of memory");
    c->ssl = ssl;
    wolfSSL_set_fd(ssl, c->fd);
    const char *name = cl->cfg.tls_server_name ? cl->cfg.tls_server_name
                       : cl->cfg.host_is_ip    ? NULL
                                               : cl->cfg.host;
    if (name) {
        wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name));
        if (!cl->cfg.insecure && wolfSSL_check_domain_name(ssl, name) != WOLFSSL_SUCCESS)
            return fail(c, -ENOMEM, "TLS: %s", "cannot set the expected host name");
    }
    c->st = C_HANDSHAKE;
    return 0;
}

/* After the handshake: an IP host must be one of the certificate's IP SANs. */
static int check_ip(struct k8s_conn *c)
{
    struct k8s_client *cl = c->cl;
    if (cl->cfg.insecure || cl->cfg.tls_server_name || !cl->cfg.host_is_ip)
        return 0;
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(c->ssl);
    int ok = x && wolfSSL_X509_check_ip_asc(x, cl->cfg.host, 0) == 1;
    if (x)
        wolfSSL_X509_free(x);
    if (!ok)
        return fail(c, -EPERM, "TLS: the server certificate has no IP SAN %s", cl->cfg.host);
    return 0;
}

static int ssl_want(struct k8s_conn *c, int ret, const char *what)
{
    int e = wolfSSL_get_error(c->ssl, ret);
    if (e == WOLFSSL_ERROR_WANT_READ) {
        c->want = POLLIN;
        return 0;
    }
    if (e == WOLFSSL_ERROR_WANT_WRITE) {
        c->want = POLLOUT;
        return 0;
    }
    char buf[WOLFSSL_MAX_ERROR_SZ];
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: %s (%d)", what, wolfSSL_ERR_error_string((unsigned long)e, buf),
             e);
    if (c->st == C_HANDSHAKE)
        c->cl->ca_verify_failed = true; /* the CA may have rotated: re-read it next time */
    return fail(c, e == DOMAIN_NAME_MISMATCH || e == ASN_NO_SIGNER_E ? -EPERM : -ECONNRESET, "%s",
                msg);
}

static int body_append(void *ctx, const char *p, size_t n)
{
    struct k8s_conn *c = ctx;
    c->got_bytes = true;
    if (c->streaming)
        return sv_k8s_lines_feed(&c->lines, p, n, c->line_fn, c->line_ctx);
    if (c->body_len + n + 1 > BODY_MAX)
        return -E2BIG;
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 8192;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b)
            return -ENOMEM;
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = 0;
    return 0;
}

/* Feed body bytes. Returns 0 (more), 1 (complete), <0 error. */
static int body_feed(struct k8s_conn *c, const char *p, size_t n)
{
    if (c->h.chunked) {
        size_t used;
        int rc = sv_k8s_chunked_feed(&c->ch, p, n, &used, body_append, c);
        if (rc < 0)
            return fail(c, rc, "response body: %s", rc == -E2BIG ? "event or body too large"
                                                    : rc == -EINVAL ? "bad chunked coding"
                                                                    : "rejected");
        return rc;
    }
    if (c->body_left >= 0 && (int64_t)n > c->body_left)
        n = (size_t)c->body_left;
    int rc = body_append(c, p, n);
    if (rc < 0)
        return fail(c, rc, "response body: %s", rc == -E2BIG ? "too large" : "rejected");
    if (c->body_left >= 0) {
        c->body_left -= (int64_t)n;
        if (c->body_left == 0)
            return 1;
    }
    return 0;
}

static int on_bytes(struct k8s_conn *c, const char *p, size_t n)
{
    if (c->st == C_HEAD) {
        size_t room = HEAD_MAX - c->head_len;
        size_t take = n < room ? n : room;
        size_t old = c->head_len;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        size_t from = old >= 3 ? old - 3 : 0;
        char *end = NULL;
        for (size_t i = from; i + 4 <= c->head_len; i++)
            if (memcmp(c->head + i, "\r\n\r\n", 4) == 0) {
                end = c->head + i + 4;
                break;
            }
        if (!end) {
            if (c->head_len == HEAD_MAX)
                return fail(c, -E2BIG, "response head %s", "too large");
            return 0;
        }
        size_t hl = (size_t)(end - c->head);
        if (sv_k8s_parse_head(c->head, hl, &c->h) < 0 || c->h.gzip)
            return fail(c, -EPROTO, "response head %s", "malformed");
        c->st = C_BODY;
        c->streaming = c->stream && c->h.status == 200;
        c->body_left = c->h.content_length;
        size_t rest_off = hl - old; /* bytes of p that belong to the body */
        if (c->body_left == 0)
            return 1;
        if (rest_off < n)
            return body_feed(c, p + rest_off, n - rest_off);
        return 0;
    }
    return body_feed(c, p, n);
}

static int step_once(struct k8s_conn *c, uint64_t now_ms);

int k8s_conn_step(struct k8s_conn *c, uint64_t now_ms)
{
    int rc = step_once(c, now_ms);
    if (rc < 0 && c->reused && c->head_len == 0) {
        /* the server closed the idle connection: send once more on a new one */
        c->reused = false;
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
        close(c->fd);
        c->fd = -1;
        c->req_off = 0;
        c->err[0] = 0;
        c->start_ms = now_ms;
        connect_fresh(c);
        rc = step_once(c, now_ms);
    }
    return rc;
}

static int step_once(struct k8s_conn *c, uint64_t now_ms)
{
    c->pending = false;
    if (c->st == C_FAILED)
        return -EIO;
    if (c->st == C_DONE)
        return 1;
    if (c->st == C_CONNECT) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        if (poll(&pfd, 1, 0) == 0) {
            if (now_ms > c->start_ms + c->cl->connect_timeout_ms)
                return fail(c, -ETIMEDOUT, "connect: %s", "timed out");
            return 0;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            if (c->ai_next)
                return try_connect(c); /* the next address */
            return fail(c, -soerr, "connect %s: %s", c->cl->host_header, strerror(soerr));
        }
        int rc = setup_tls(c);
        if (rc < 0)
            return rc;
    }
    if (c->st == C_HANDSHAKE) {
        int ret = wolfSSL_connect(c->ssl);
        if (ret != WOLFSSL_SUCCESS) {
            int rc = ssl_want(c, ret, "TLS handshake");
            if (rc == 0 && now_ms > c->start_ms + c->cl->connect_timeout_ms)
                return fail(c, -ETIMEDOUT, "TLS handshake: %s", "timed out");
            return rc;
        }
        int rc = check_ip(c);
        if (rc < 0)
            return rc;
        c->st = C_SEND;
    }
    if (c->st == C_SEND) {
        while (c->req_off < c->req_len) {
            int ret = wolfSSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
            if (ret <= 0)
                return ssl_want(c, ret, "send");
            c->req_off += (size_t)ret;
        }
        c->st = C_HEAD;
        c->want = POLLIN;
        c->last_rx_ms = now_ms;
    }
    char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_STEP; i++) {
        int ret = wolfSSL_read(c->ssl, buf, sizeof(buf));
        if (ret > 0) {
            c->last_rx_ms = now_ms;
            int rc = on_bytes(c, buf, (size_t)ret);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                c->st = C_DONE;
                return 1;
            }
            continue;
        }
        int e = wolfSSL_get_error(c->ssl, ret);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
            c->want = e == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            break;
        }
        /* closed: the end of a close-delimited body, otherwise an abrupt end */
        if (c->st == C_BODY && !c->h.chunked && c->body_left < 0) {
            c->st = C_DONE;
            return 1;
        }
        return fail(c, -ECONNRESET, "connection closed %s",
                    c->st == C_HEAD ? "before the response" : "mid-response");
    }
    if (c->want == POLLIN && wolfSSL_pending(c->ssl) > 0)
        c->pending = true;
    if (c->stream && c->st == C_BODY && c->streaming) {
        if (c->idle_ms && now_ms > c->last_rx_ms + c->idle_ms)
            return fail(c, -ETIMEDOUT, "watch silent past the %s", "idle timeout");
    } else if (now_ms > c->start_ms + c->cl->request_timeout_ms) {
        return fail(c, -ETIMEDOUT, "request %s", "timed out");
    }
    return 0;
}

int k8s_conn_fd(const struct k8s_conn *c)
{
    return c->fd;
}

short k8s_conn_events(const struct k8s_conn *c)
{
    return c->st == C_DONE || c->st == C_FAILED ? 0 : c->want;
}

bool k8s_conn_pending(const struct k8s_conn *c)
{
    return c->pending;
}

int k8s_conn_status(const struct k8s_conn *c)
{
    return c->st >= C_BODY && c->h.status ? c->h.status : 0;
}

int k8s_conn_retry_after(const struct k8s_conn *c)
{
    return c->h.retry_after_s;
}

const char *k8s_conn_body(const struct k8s_conn *c, size_t *len)
{
    if (len)
        *len = c->body_len;
    return c->body ? c->body : "";
}

const char *k8s_conn_error(const struct k8s_conn *c)
{
    return c->err[0] ? c->err : "no error";
}

bool k8s_conn_got_bytes(const struct k8s_conn *c)
{
    return c->got_bytes;
}

void k8s_conn_free(struct k8s_conn *c)
{
    if (!c)
        return;
    struct k8s_client *cl = c->cl;
    /* a complete, length-delimited response on a connection the server keeps: pool it */
    if (c->st == C_DONE && !c->stream && !c->h.close && (c->h.chunked || c->h.content_length >= 0) &&
        c->ssl && cl->n_pool < sizeof(cl->pool) / sizeof(cl->pool[0])) {
        cl->pool[cl->n_pool++] = (struct k8s_idle){.fd = c->fd, .ssl = c->ssl,
                                                   .since_ms = sv_now_ms()};
        c->ssl = NULL;
        c->fd = -1;
    }
    if (c->ssl)
        wolfSSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    if (c->ai)
        freeaddrinfo(c->ai);
    sv_k8s_lines_reset(&c->lines);
    free(c->req);
    free(c->body);
    free(c);
}

/* src/tls: handshakes entirely in memory between a wolfSSL client and our server connection,
 * with certificates generated at test time by tests/tls/gen-certs.sh (openssl CLI). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../harness.h"
#include "certs.h"
#include "serval/tls/tls.h"

/* ---- certificates ------------------------------------------------------------------------ */

static char g_dir[128];

const char *sv_test_cert_dir(void)
{
    if (g_dir[0])
        return g_dir;
    char tmpl[] = "/tmp/sv-tls-unit-XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tests/tls/gen-certs.sh %s", tmpl);
    if (system(cmd) != 0)
        return NULL;
    snprintf(g_dir, sizeof(g_dir), "%s", tmpl);
    return g_dir;
}

__attribute__((destructor)) static void cleanup_dir(void)
{
    if (g_dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", g_dir);
    }
}

struct blob {
    char *p;
    size_t n;
};

static struct blob slurp(const char *name)
{
    struct blob b = {0};
    const char *d = sv_test_cert_dir();
    if (!d)
        return b;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", d, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return b;
    b.p = malloc(65536);
    if (b.p)
        b.n = fread(b.p, 1, 65536, f);
    fclose(f);
    return b;
}

/* A loaded certificate pair by base name ("ec_a" → ec_a.crt + ec_a.key). */
struct pair {
    struct blob crt, key;
    struct sv_tls_cert_pem pem;
};

static void pair_load(struct pair *p, const char *base)
{
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s.crt", base);
    snprintf(b, sizeof(b), "%s.key", base);
    p->crt = slurp(a);
    p->key = slurp(b);
    p->pem = (struct sv_tls_cert_pem){p->crt.p, p->crt.n, p->key.p, p->key.n};
}

static void pair_free(struct pair *p)
{
    free(p->crt.p);
    free(p->key.p);
}

/* ---- in-memory client -------------------------------------------------------------------- */

struct pipe_buf {
    uint8_t b[1 << 18];
    size_t len;
};

struct client {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    struct pipe_buf *c2s, *s2c;
};

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct client *c = ctx;
    if (c->s2c->len == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = c->s2c->len < (size_t)sz ? c->s2c->len : (size_t)sz;
    memcpy(buf, c->s2c->b, n);
    memmove(c->s2c->b, c->s2c->b + n, c->s2c->len - n);
    c->s2c->len -= n;
    return (int)n;
}

static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct client *c = ctx;
    size_t room = sizeof(c->c2s->b) - c->c2s->len;
    if (room == 0)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    size_t n = room < (size_t)sz ? room : (size_t)sz;
    memcpy(c->c2s->b + c->c2s->len, buf, n);
    c->c2s->len += n;
    return (int)n;
}

struct client_opts {
    int version;           /* 0 = 1.2-1.3, 12, 13 */
    const char *sni;       /* NULL = none */
    const char *verify;    /* host name to verify, NULL = no verification */
    const char *alpn;      /* NULL = none */
    WOLFSSL_SESSION *session;
    const char *client_cert; /* base name of a pair presented as client certificate, NULL = none */
};

static int client_new(struct client *c, const struct client_opts *o)
{
    memset(c, 0, sizeof(*c));
    c->c2s = calloc(1, sizeof(*c->c2s));
    c->s2c = calloc(1, sizeof(*c->s2c));
    WOLFSSL_METHOD *m = o->version == 12   ? wolfTLSv1_2_client_method()
                        : o->version == 13 ? wolfTLSv1_3_client_method()
                                           : wolfSSLv23_client_method();
    c->ctx = wolfSSL_CTX_new(m);
    if (!c->ctx || !c->c2s || !c->s2c)
        return -1;
    if (o->verify) {
        struct blob ca = slurp("ca.crt");
        int rc = wolfSSL_CTX_load_verify_buffer(c->ctx, (unsigned char *)ca.p, (long)ca.n,
                                                WOLFSSL_FILETYPE_PEM);
        free(ca.p);
        if (rc != WOLFSSL_SUCCESS)
            return -1;
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    if (o->client_cert) {
        struct pair p;
        pair_load(&p, o->client_cert);
        int ok = p.crt.n && p.key.n &&
                 wolfSSL_CTX_use_certificate_chain_buffer_format(
                     c->ctx, (unsigned char *)p.crt.p, (long)p.crt.n, WOLFSSL_FILETYPE_PEM) ==
                     WOLFSSL_SUCCESS &&
                 wolfSSL_CTX_use_PrivateKey_buffer(c->ctx, (unsigned char *)p.key.p,
                                                   (long)p.key.n,
                                                   WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS;
        pair_free(&p);
        if (!ok)
            return -1;
    }
    c->ssl = wolfSSL_new(c->ctx);
    if (!c->ssl)
        return -1;
    wolfSSL_SSLSetIORecv(c->ssl, cli_recv);
    wolfSSL_SSLSetIOSend(c->ssl, cli_send);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    if (o->sni && wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, o->sni,
                                 (unsigned short)strlen(o->sni)) != WOLFSSL_SUCCESS)
        return -1;
    if (o->verify && wolfSSL_check_domain_name(c->ssl, o->verify) != WOLFSSL_SUCCESS)
        return -1;
    if (o->alpn) {
        char list[64];
        snprintf(list, sizeof(list), "%s", o->alpn);
        if (wolfSSL_UseALPN(c->ssl, list, (unsigned)strlen(list),
                            WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
            return -1;
    }
    if (wolfSSL_UseSessionTicket(c->ssl) != WOLFSSL_SUCCESS)
        return -1;
    if (o->session && wolfSSL_set_session(c->ssl, o->session) != WOLFSSL_SUCCESS)
        return -1;
    return 0;
}

static void client_free(struct client *c)
{
    if (c->ssl)
        wolfSSL_free(c->ssl);
    if (c->ctx)
        wolfSSL_CTX_free(c->ctx);
    free(c->c2s);
    free(c->s2c);
    memset(c, 0, sizeof(*c));
}

/* Move server output to the client, server input from the client; returns plaintext bytes the
 * server produced into plain (appending at *plen) or a negative errno from the server. */
static int pump_server(struct client *c, struct sv_tls_conn *s, uint8_t *plain, size_t cap,
                       size_t *plen)
{
    for (int guard = 0; guard < 1000; guard++) {
        size_t used = 0;
        ssize_t r = sv_tls_conn_recv(s, c->c2s->b, c->c2s->len, &used, plain + *plen, cap - *plen);
        memmove(c->c2s->b, c->c2s->b + used, c->c2s->len - used);
        c->c2s->len -= used;
        const uint8_t *o;
        size_t on = sv_tls_conn_out(s, &o);
        if (on) {
            memcpy(c->s2c->b + c->s2c->len, o, on);
            c->s2c->len += on;
            sv_tls_conn_out_consume(s, on);
        }
        if (r < 0)
            return (int)r;
        if (r > 0) {
            *plen += (size_t)r;
            continue;
        }
        if (used == 0)
            return 0;
    }
    return -ELOOP;
}

/* Run the handshake both ways. Returns 0 when both sides finished, -1 client error, or the
 * server's negative errno. */
static int handshake(struct client *c, struct sv_tls_conn *s, int *client_err)
{
    uint8_t scratch[64];
    size_t sl = 0;
    *client_err = 0;
    for (int i = 0; i < 50; i++) {
        int rc = wolfSSL_connect(c->ssl);
        int e = rc == WOLFSSL_SUCCESS ? 0 : wolfSSL_get_error(c->ssl, rc);
        int sr = pump_server(c, s, scratch, sizeof(scratch), &sl);
        if (e != 0 && e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
            *client_err = e;
            return -1;
        }
        if (sr < 0) {
            /* let the client see the alert */
            rc = wolfSSL_connect(c->ssl);
            if (rc != WOLFSSL_SUCCESS)
                *client_err = wolfSSL_get_error(c->ssl, rc);
            return sr;
        }
        if (rc == WOLFSSL_SUCCESS && sv_tls_conn_state(s) == SV_TLS_OPEN)
            return 0;
    }
    return -ETIMEDOUT;
}

/* Client sends <msg>, server must receive it as plaintext; server answers <ans>, client must
 * read it (this also delivers TLS 1.3 session tickets to the client). */
static int exchange(struct client *c, struct sv_tls_conn *s, const char *msg, const char *ans)
{
    if (wolfSSL_write(c->ssl, msg, (int)strlen(msg)) != (int)strlen(msg))
        return -1;
    uint8_t got[256];
    size_t gl = 0;
    if (pump_server(c, s, got, sizeof(got), &gl) < 0)
        return -2;
    if (gl != strlen(msg) || memcmp(got, msg, gl) != 0)
        return -3;
    if (sv_tls_conn_send(s, ans, strlen(ans)) != (ssize_t)strlen(ans))
        return -4;
    if (pump_server(c, s, got, sizeof(got), &gl) < 0)
        return -5;
    char buf[256];
    int n = wolfSSL_read(c->ssl, buf, sizeof(buf));
    if (n != (int)strlen(ans) || memcmp(buf, ans, (size_t)n) != 0)
        return -6;
    return 0;
}

/* ---- fixtures -------------------------------------------------------------------------------- */

struct fixture {
    struct pair a, wild, rsa_b, ec_b, def;
    struct sv_tls_ticket_keys *keys;
    struct sv_tls_server *srv;
    uint8_t out[20000];
};

/* listeners: 0 a.example.com (ec_a), 1 *.example.com (ec_wild), 2 b.test (rsa_b, ec_b),
 * 3 "" (ec_def) unless no_default */
static int fixture_new(struct fixture *f, bool with_default, bool rsa_first)
{
    memset(f, 0, sizeof(*f));
    if (!sv_test_cert_dir())
        return -1;
    pair_load(&f->a, "ec_a");
    pair_load(&f->wild, "ec_wild");
    pair_load(&f->rsa_b, "rsa_b");
    pair_load(&f->ec_b, "ec_b");
    pair_load(&f->def, "ec_def");
    struct sv_tls_cert_pem b_certs[2] = {rsa_first ? f->rsa_b.pem : f->ec_b.pem,
                                         rsa_first ? f->ec_b.pem : f->rsa_b.pem};
    struct sv_tls_listener_spec ls[4] = {
        {SV_STR_LIT("a.example.com"), 10, SV_STR_LIT("gw/a"), &f->a.pem, 1},
        {SV_STR_LIT("*.example.com"), 11, SV_STR_LIT("gw/wild"), &f->wild.pem, 1},
        {SV_STR_LIT("b.test"), 12, SV_STR_LIT("gw/b"), b_certs, 2},
        {SV_STR_LIT(""), 13, SV_STR_LIT("gw/default"), &f->def.pem, 1},
    };
    f->keys = sv_tls_ticket_keys_new(3600, 0);
    char err[200];
    f->srv = sv_tls_server_new(ls, with_default ? 4 : 3, f->keys, err, sizeof(err));
    if (!f->srv)
        fprintf(stderr, "sv_tls_server_new: %s\n", err);
    return f->srv ? 0 : -1;
}

static void fixture_free(struct fixture *f)
{
    sv_tls_server_unref(f->srv);
    sv_tls_ticket_keys_free(f->keys);
    pair_free(&f->a);
    pair_free(&f->wild);
    pair_free(&f->rsa_b);
    pair_free(&f->ec_b);
    pair_free(&f->def);
}

/* One full connection; returns the server's selected listener index, or a negative code. */
static int connect_once(struct fixture *f, const struct client_opts *o, char *version,
                        char *alpn, bool *resumed, WOLFSSL_SESSION **sess_out)
{
    struct client c;
    struct sv_tls_conn s;
    int ret;
    if (client_new(&c, o) != 0) {
        client_free(&c);
        return -100;
    }
    if (sv_tls_conn_open(&s, f->srv, f->out, sizeof(f->out)) != 0) {
        client_free(&c);
        return -101;
    }
    int cerr;
    int hs = handshake(&c, &s, &cerr);
    if (hs != 0) {
        char eb[128];
        fprintf(stderr, "# handshake failed: client %d, server %zd %s\n", cerr, (ssize_t)hs,
                sv_tls_conn_error(&s, eb, sizeof(eb)));
        ret = hs == -1 ? -102 : -103;
        goto out;
    }
    if (exchange(&c, &s, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n") != 0) {
        ret = -104;
        goto out;
    }
    ret = sv_tls_conn_listener(&s);
    if (version)
        snprintf(version, 16, "%s", sv_tls_conn_version(&s));
    if (alpn) {
        struct sv_str a = sv_tls_conn_alpn(&s);
        snprintf(alpn, 16, "%.*s", (int)a.len, a.ptr ? a.ptr : "");
    }
    if (resumed)
        *resumed = sv_tls_conn_resumed(&s);
    if (sess_out)
        *sess_out = wolfSSL_get1_session(c.ssl);
out:
    sv_tls_conn_close(&s);
    client_free(&c);
    return ret;
}

/* ---- tests ----------------------------------------------------------------------------------- */

TEST(tls_select_listener_by_sni)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("a.example.com")), 0);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("A.Example.COM")), 0);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("a.example.com.")), 0);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("x.example.com")), 1);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("x.y.example.com")), 1);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("example.com")), 3);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("b.test")), 2);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("other.org")), 3);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_NULL), 3);
    fixture_free(&f);

    REQUIRE(fixture_new(&f, false, false) == 0);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_LIT("other.org")), -1);
    CHECK_EQ_INT(sv_tls_server_select(f.srv, SV_STR_NULL), -1);
    fixture_free(&f);
}

TEST(tls_handshake_sni_exact_wildcard_default)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    char ver[16], alpn[16];
    /* the client verifies the name, so the wrong certificate fails the handshake */
    struct client_opts o = {.sni = "a.example.com", .verify = "a.example.com"};
    CHECK_EQ_INT(connect_once(&f, &o, ver, alpn, NULL, NULL), 0);
    CHECK_EQ_STR(ver, "TLSv1.3");
    o = (struct client_opts){.sni = "x.example.com", .verify = "x.example.com"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, NULL, NULL), 1);
    o = (struct client_opts){.sni = "unknown.org", .verify = "default.test"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, NULL, NULL), 3);
    o = (struct client_opts){.sni = NULL, .verify = "default.test"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, NULL, NULL), 3);
    /* wrong name expected by the client: it must refuse the certificate */
    o = (struct client_opts){.sni = "a.example.com", .verify = "b.test"};
    CHECK(connect_once(&f, &o, NULL, NULL, NULL, NULL) < 0);
    fixture_free(&f);
    CHECK_EQ_INT(sv_tls_server_live_count(), 0);
}

TEST(tls_unknown_sni_without_default_fails)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, false, false) == 0);
    struct client c;
    struct sv_tls_conn s;
    struct client_opts o = {.sni = "unknown.org"};
    REQUIRE(client_new(&c, &o) == 0);
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    int cerr;
    CHECK_EQ_INT(handshake(&c, &s, &cerr), -EPROTO);
    CHECK_EQ_INT(sv_tls_conn_state(&s), SV_TLS_FAILED);
    CHECK_EQ_INT(sv_tls_conn_failure(&s), SV_TLS_FAIL_UNKNOWN_SNI);
    CHECK(cerr != 0);
    /* the client saw a fatal unrecognized_name alert */
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof(h));
    CHECK(wolfSSL_get_alert_history(c.ssl, &h) == WOLFSSL_SUCCESS);
    CHECK_EQ_INT(h.last_rx.code, unrecognized_name);
    sv_tls_conn_close(&s);
    client_free(&c);

    /* no SNI at all, no default listener: also refused */
    o = (struct client_opts){0};
    CHECK(connect_once(&f, &o, NULL, NULL, NULL, NULL) < 0);
    fixture_free(&f);
}

TEST(tls_alpn_http11)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    char alpn[16];
    struct client_opts o = {.sni = "a.example.com", .alpn = "h2,http/1.1"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, alpn, NULL, NULL), 0);
    CHECK_EQ_STR(alpn, "http/1.1");
    o = (struct client_opts){.sni = "a.example.com"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, alpn, NULL, NULL), 0);
    CHECK_EQ_STR(alpn, "");
    fixture_free(&f);
}

TEST(tls_versions_and_key_types)
{
    for (int rsa_first = 0; rsa_first < 2; rsa_first++) {
        struct fixture f;
        REQUIRE(fixture_new(&f, true, rsa_first) == 0);
        char ver[16];
        struct client_opts o = {.version = 12, .sni = "b.test", .verify = "b.test"};
        CHECK_EQ_INT(connect_once(&f, &o, ver, NULL, NULL, NULL), 2);
        CHECK_EQ_STR(ver, "TLSv1.2");
        o = (struct client_opts){.version = 13, .sni = "b.test", .verify = "b.test"};
        CHECK_EQ_INT(connect_once(&f, &o, ver, NULL, NULL, NULL), 2);
        CHECK_EQ_STR(ver, "TLSv1.3");
        o = (struct client_opts){.version = 12, .sni = "a.example.com", .verify = "a.example.com"};
        CHECK_EQ_INT(connect_once(&f, &o, ver, NULL, NULL, NULL), 0);
        CHECK_EQ_STR(ver, "TLSv1.2");
        fixture_free(&f);
    }
}

TEST(tls_rejects_tls11)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    struct client c;
    struct sv_tls_conn s;
    struct client_opts o = {.sni = "a.example.com"};
    REQUIRE(client_new(&c, &o) == 0);
    wolfSSL_SetVersion(c.ssl, WOLFSSL_TLSV1_1);
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    int cerr;
    CHECK(handshake(&c, &s, &cerr) != 0);
    CHECK(sv_tls_conn_state(&s) != SV_TLS_OPEN);
    sv_tls_conn_close(&s);
    client_free(&c);
    fixture_free(&f);
}

TEST(tls_bulk_data_both_ways)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    struct client c;
    struct sv_tls_conn s;
    struct client_opts o = {.sni = "a.example.com"};
    REQUIRE(client_new(&c, &o) == 0);
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    int cerr;
    REQUIRE(handshake(&c, &s, &cerr) == 0);
    enum { N = 100000 };
    uint8_t *up = malloc(N), *got = malloc(N + 64);
    for (size_t i = 0; i < N; i++)
        up[i] = (uint8_t)(i * 7 + 3);
    /* client → server: the server's plaintext output must equal the input */
    size_t sent = 0, gl = 0;
    while (sent < N) {
        int n = wolfSSL_write(c.ssl, up + sent, (int)(N - sent > 30000 ? 30000 : N - sent));
        REQUIRE(n > 0);
        sent += (size_t)n;
        REQUIRE(pump_server(&c, &s, got, N + 64, &gl) == 0);
    }
    CHECK_EQ_INT(gl, N);
    CHECK(memcmp(up, got, N) == 0);
    /* server → client through a small output buffer: send returns partial counts */
    size_t off = 0, rl = 0;
    for (int guard = 0; guard < 10000 && rl < N; guard++) {
        if (off < N) {
            ssize_t n = sv_tls_conn_send(&s, up + off, N - off);
            REQUIRE(n >= 0);
            off += (size_t)n;
        }
        const uint8_t *p;
        size_t on = sv_tls_conn_out(&s, &p);
        memcpy(c.s2c->b + c.s2c->len, p, on);
        c.s2c->len += on;
        sv_tls_conn_out_consume(&s, on);
        int n;
        while ((n = wolfSSL_read(c.ssl, got + rl, (int)(N + 64 - rl))) > 0)
            rl += (size_t)n;
    }
    CHECK_EQ_INT(rl, N);
    CHECK(memcmp(up, got, N) == 0);
    /* close_notify from the client → -EPIPE */
    wolfSSL_shutdown(c.ssl);
    size_t used;
    uint8_t tmp[16];
    CHECK_EQ_INT(sv_tls_conn_recv(&s, c.c2s->b, c.c2s->len, &used, tmp, sizeof(tmp)), -EPIPE);
    CHECK_EQ_INT(sv_tls_conn_state(&s), SV_TLS_CLOSED);
    free(up);
    free(got);
    sv_tls_conn_close(&s);
    client_free(&c);
    fixture_free(&f);
}

TEST(tls_garbage_fails_cleanly)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    struct sv_tls_conn s;
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t used;
    uint8_t tmp[16];
    CHECK_EQ_INT(sv_tls_conn_failure(&s), SV_TLS_FAIL_NONE);
    CHECK_EQ_INT(sv_tls_conn_recv(&s, junk, sizeof(junk) - 1, &used, tmp, sizeof(tmp)), -EPROTO);
    CHECK_EQ_INT(sv_tls_conn_state(&s), SV_TLS_FAILED);
    CHECK_EQ_INT(sv_tls_conn_failure(&s), SV_TLS_FAIL_PROTOCOL);
    CHECK(sv_tls_conn_send(&s, "x", 1) < 0);
    CHECK_EQ_INT(sv_tls_conn_shutdown(&s), -EPROTO);
    sv_tls_conn_close(&s);
    CHECK_EQ_INT(sv_tls_conn_open(&s, f.srv, f.out, 100), -EINVAL);
    fixture_free(&f);
}

/* The client gives up in the middle of the handshake with a fatal alert (it does not trust our
 * certificate): the server fails with reason "peer alert". */
static void peer_alert_case(int version)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    struct client c;
    struct sv_tls_conn s;
    struct client_opts o = {.version = version, .sni = "a.example.com", .verify = "a.example.com"};
    REQUIRE(client_new(&c, &o) == 0);
    /* verify against a store that does not hold our CA: the client sends a fatal alert */
    WOLFSSL_CTX *bare = wolfSSL_CTX_new(version == 12 ? wolfTLSv1_2_client_method()
                                                      : wolfTLSv1_3_client_method());
    REQUIRE(bare);
    wolfSSL_CTX_set_verify(bare, WOLFSSL_VERIFY_PEER, NULL);
    REQUIRE(wolfSSL_set_SSL_CTX(c.ssl, bare) != NULL);
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    int cerr;
    CHECK(handshake(&c, &s, &cerr) != 0);
    /* deliver the client's alert to the server */
    uint8_t tmp[16];
    size_t tl = 0;
    (void)pump_server(&c, &s, tmp, sizeof(tmp), &tl);
    CHECK_EQ_INT(sv_tls_conn_state(&s), SV_TLS_FAILED);
    CHECK_EQ_INT(sv_tls_conn_failure(&s), SV_TLS_FAIL_PEER_ALERT);
    char eb[96];
    fprintf(stderr, "# TLS %d: %s\n", version, sv_tls_conn_error(&s, eb, sizeof(eb)));
    sv_tls_conn_close(&s);
    client_free(&c);
    wolfSSL_CTX_free(bare);
    fixture_free(&f);
}

TEST(tls_peer_alert_is_reported)
{
    peer_alert_case(12);
    peer_alert_case(13);
}

/* Our close_notify: queued once after the handshake, read by the client as a clean close
 * (ZERO_RETURN); nothing is queued before the handshake; a close_notify from the client is
 * answered with ours. */
TEST(tls_close_notify_sent)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    for (int version = 12; version <= 13; version++) {
        for (int client_first = 0; client_first < 2; client_first++) {
            struct client c;
            struct sv_tls_conn s;
            struct client_opts o = {.version = version, .sni = "a.example.com"};
            REQUIRE(client_new(&c, &o) == 0);
            REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
            CHECK_EQ_INT(sv_tls_conn_shutdown(&s), 0); /* handshake not done: nothing */
            const uint8_t *p;
            CHECK_EQ_INT(sv_tls_conn_out(&s, &p), 0);
            int cerr;
            REQUIRE(handshake(&c, &s, &cerr) == 0);
            CHECK_EQ_INT(exchange(&c, &s, "ping", "pong"), 0);
            uint8_t tmp[16];
            size_t tl = 0;
            if (client_first) {
                wolfSSL_shutdown(c.ssl);
                CHECK_EQ_INT(pump_server(&c, &s, tmp, sizeof(tmp), &tl), -EPIPE);
            }
            CHECK_EQ_INT(sv_tls_conn_shutdown(&s), 1);
            CHECK_EQ_INT(sv_tls_conn_shutdown(&s), 0); /* once */
            CHECK_EQ_INT(sv_tls_conn_state(&s), SV_TLS_CLOSED);
            CHECK(sv_tls_conn_send(&s, "x", 1) < 0);
            size_t on = sv_tls_conn_out(&s, &p);
            CHECK(on > 0);
            memcpy(c.s2c->b + c.s2c->len, p, on);
            c.s2c->len += on;
            sv_tls_conn_out_consume(&s, on);
            char buf[16];
            int n = wolfSSL_read(c.ssl, buf, sizeof(buf));
            CHECK(n <= 0);
            CHECK_EQ_INT(wolfSSL_get_error(c.ssl, n), WOLFSSL_ERROR_ZERO_RETURN);
            CHECK_EQ_INT(sv_tls_conn_failure(&s), SV_TLS_FAIL_NONE);
            sv_tls_conn_close(&s);
            client_free(&c);
        }
    }
    fixture_free(&f);
}

static void resume_case(int version)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    bool resumed = true;
    WOLFSSL_SESSION *sess = NULL;
    struct client_opts o = {.version = version, .sni = "a.example.com"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, &resumed, &sess), 0);
    CHECK(!resumed);
    REQUIRE(sess != NULL);

    /* a second server object (another generation / worker) sharing the keys */
    struct pair a;
    pair_load(&a, "ec_a");
    struct sv_tls_listener_spec l = {SV_STR_LIT("a.example.com"), 1, SV_STR_LIT("x"), &a.pem, 1};
    char err[160];
    struct sv_tls_server *other = sv_tls_server_new(&l, 1, f.keys, err, sizeof(err));
    REQUIRE(other != NULL);
    struct sv_tls_server *first = f.srv;
    f.srv = other;
    o.session = sess;
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, &resumed, NULL), 0);
    CHECK(resumed);

    /* one rotation: the ticket's key is "previous", still accepted */
    CHECK_EQ_INT(sv_tls_ticket_keys_rotate(f.keys, 10), 0);
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, &resumed, NULL), 0);
    CHECK(resumed);
    /* two rotations: forgotten, full handshake that still succeeds */
    CHECK_EQ_INT(sv_tls_ticket_keys_tick(f.keys, 11), 0);    /* not due */
    CHECK_EQ_INT(sv_tls_ticket_keys_tick(f.keys, 10 + 3600), 1);
    CHECK_EQ_INT(sv_tls_ticket_keys_rotations(f.keys), 2);
    /* A rejected TLS 1.2 ticket makes wolfSSL 5.5.4's CLIENT fail (OUT_OF_ORDER_E) although our
     * server falls back to a full handshake correctly (OpenSSL's client reports "New" there:
     * see tests/integration/test_tls*.py); so the fallback is checked with TLS 1.3 here. */
    if (version == 13) {
        CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, &resumed, NULL), 0);
        CHECK(!resumed);

        /* keys that never saw the ticket: full handshake */
        struct sv_tls_ticket_keys *k2 = sv_tls_ticket_keys_new(60, 0);
        struct sv_tls_server *third = sv_tls_server_new(&l, 1, k2, err, sizeof(err));
        REQUIRE(third != NULL);
        f.srv = third;
        CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, &resumed, NULL), 0);
        CHECK(!resumed);
        sv_tls_server_unref(third);
        sv_tls_ticket_keys_free(k2);
    }

    wolfSSL_SESSION_free(sess);
    sv_tls_server_unref(other);
    f.srv = first;
    pair_free(&a);
    fixture_free(&f);
}

TEST(tls_resumption_tickets_tls13)
{
    resume_case(13);
}

TEST(tls_resumption_tickets_tls12)
{
    resume_case(12);
}

TEST(tls_cert_check_bad_inputs)
{
    REQUIRE(sv_test_cert_dir() != NULL);
    struct pair a, wild, exp;
    pair_load(&a, "ec_a");
    pair_load(&wild, "ec_wild");
    pair_load(&exp, "expired");
    struct blob garbage = slurp("garbage.pem");
    char err[160];
    struct sv_tls_cert_info info;
    CHECK_EQ_INT(sv_tls_cert_check(a.crt.p, a.crt.n, a.key.p, a.key.n, &info, err, sizeof(err)), 0);
    CHECK_EQ_STR(info.subject_cn, "a.example.com");
    CHECK_EQ_INT(info.key_type, SV_TLS_KEY_ECDSA);
    CHECK(info.not_after > (int64_t)time(NULL));
    /* mismatched pair */
    CHECK_EQ_INT(sv_tls_cert_check(a.crt.p, a.crt.n, wild.key.p, wild.key.n, NULL, err,
                                   sizeof(err)), -EINVAL);
    CHECK(strstr(err, "match") != NULL);
    /* unparsable certificate and key */
    CHECK_EQ_INT(sv_tls_cert_check(garbage.p, garbage.n, a.key.p, a.key.n, NULL, err, sizeof(err)),
                 -EINVAL);
    CHECK(strstr(err, "certificate") != NULL);
    CHECK_EQ_INT(sv_tls_cert_check(a.crt.p, a.crt.n, garbage.p, garbage.n, NULL, err, sizeof(err)),
                 -EINVAL);
    CHECK(strstr(err, "key") != NULL);
    CHECK_EQ_INT(sv_tls_cert_check("", 0, a.key.p, a.key.n, NULL, err, sizeof(err)), -EINVAL);
    /* expired: not an error, but the expiry is visible */
    CHECK_EQ_INT(sv_tls_cert_check(exp.crt.p, exp.crt.n, exp.key.p, exp.key.n, &info, err,
                                   sizeof(err)), 0);
    CHECK_EQ_INT(info.not_after, 1580515200); /* 2020-02-01T00:00:00Z */
    CHECK_EQ_INT(info.not_before, 1577836800);
    /* the server refuses a mismatched pair with a message */
    struct sv_tls_cert_pem bad = {a.crt.p, a.crt.n, wild.key.p, wild.key.n};
    struct sv_tls_listener_spec l = {SV_STR_LIT("a.example.com"), 1, SV_STR_LIT("x"), &bad, 1};
    struct sv_tls_ticket_keys *k = sv_tls_ticket_keys_new(60, 0);
    CHECK(sv_tls_server_new(&l, 1, k, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "listener 0") != NULL);
    l.n_certs = 0;
    CHECK(sv_tls_server_new(&l, 1, k, err, sizeof(err)) == NULL);
    sv_tls_ticket_keys_free(k);
    free(garbage.p);
    pair_free(&a);
    pair_free(&wild);
    pair_free(&exp);
}

TEST(tls_expired_certificate_is_served)
{
    REQUIRE(sv_test_cert_dir() != NULL);
    struct fixture f;
    memset(&f, 0, sizeof(f));
    struct pair exp;
    pair_load(&exp, "expired");
    struct sv_tls_listener_spec l = {SV_STR_LIT(""), 7, SV_STR_LIT("gw/exp"), &exp.pem, 1};
    char err[160];
    f.keys = sv_tls_ticket_keys_new(60, 0);
    f.srv = sv_tls_server_new(&l, 1, f.keys, err, sizeof(err));
    REQUIRE(f.srv != NULL);
    CHECK_EQ_INT(sv_tls_server_n_listeners(f.srv), 1);
    CHECK_EQ_INT(sv_tls_server_n_certs(f.srv, 0), 1);
    const struct sv_tls_cert_info *ci = sv_tls_server_cert(f.srv, 0, 0);
    REQUIRE(ci != NULL);
    CHECK_EQ_INT(ci->not_after, 1580515200);
    CHECK(sv_tls_server_cert(f.srv, 0, 1) == NULL);
    struct sv_str nm = sv_tls_server_listener_name(f.srv, 0);
    CHECK_EQ_MEM(nm.ptr, nm.len, "gw/exp");
    struct client_opts o = {.sni = "expired.test"};
    CHECK_EQ_INT(connect_once(&f, &o, NULL, NULL, NULL, NULL), 0);
    sv_tls_server_unref(f.srv);
    sv_tls_ticket_keys_free(f.keys);
    pair_free(&exp);
}

TEST(tls_server_outlives_generation_while_conn_open)
{
    struct fixture f;
    REQUIRE(fixture_new(&f, true, false) == 0);
    struct client c;
    struct sv_tls_conn s;
    struct client_opts o = {.sni = "a.example.com"};
    REQUIRE(client_new(&c, &o) == 0);
    REQUIRE(sv_tls_conn_open(&s, f.srv, f.out, sizeof(f.out)) == 0);
    size_t live = sv_tls_server_live_count();
    /* the owner (a generation) lets go during the handshake */
    sv_tls_server_unref(f.srv);
    f.srv = NULL;
    CHECK_EQ_INT(sv_tls_server_live_count(), live);
    int cerr;
    CHECK_EQ_INT(handshake(&c, &s, &cerr), 0);
    CHECK_EQ_INT(exchange(&c, &s, "ping", "pong"), 0);
    struct sv_str h = sv_tls_conn_listener_hostname(&s);
    CHECK_EQ_MEM(h.ptr, h.len, "a.example.com");
    struct sv_str sni = sv_tls_conn_sni(&s);
    CHECK_EQ_MEM(sni.ptr, sni.len, "a.example.com");
    sv_tls_conn_close(&s);
    CHECK_EQ_INT(sv_tls_server_live_count(), live - 1);
    client_free(&c);
    struct sv_tls_server *none = NULL;
    f.srv = none;
    sv_tls_ticket_keys_free(f.keys);
    f.keys = NULL;
    pair_free(&f.a);
    pair_free(&f.wild);
    pair_free(&f.rsa_b);
    pair_free(&f.ec_b);
    pair_free(&f.def);
}

/* ---- certificates through translation into the generation ---------------------------------- */

#include "../control/support.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"

static char *yaml_escape(const struct blob *b)
{
    char *o = malloc(b->n * 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->p[i] == '\n') {
            o[k++] = '\\';
            o[k++] = 'n';
        } else {
            o[k++] = b->p[i];
        }
    }
    o[k] = '\0';
    return o;
}

static void add_secret(struct sv_store *st, const char *name, const struct blob *crt,
                       const struct blob *key)
{
    char *c = yaml_escape(crt), *k = yaml_escape(key);
    size_t cap = strlen(c) + strlen(k) + 512;
    char *y = malloc(cap), err[256];
    snprintf(y, cap,
             "apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: web}\n"
             "type: kubernetes.io/tls\nstringData:\n  tls.crt: \"%s\"\n  tls.key: \"%s\"\n",
             name, c, k);
    struct sv_object *o = sv_test_decode_one(y, err, sizeof(err));
    if (o)
        sv_store_upsert(st, o);
    else
        fprintf(stderr, "# secret %s: %s\n", name, err);
    free(y);
    free(c);
    free(k);
}

static const char k_gateway_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: serval}\n"
    "spec: {controllerName: serval.dev/gateway-controller}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
    "metadata: {name: gw, namespace: web}\n"
    "spec:\n  gatewayClassName: serval\n  listeners:\n"
    "  - {name: http, port: 8080, protocol: HTTP}\n"
    "  - {name: a, port: 8443, protocol: HTTPS, hostname: a.example.com,\n"
    "     tls: {certificateRefs: [{name: cert-a}]}}\n"
    "  - {name: wild, port: 8443, protocol: HTTPS, hostname: '*.example.com',\n"
    "     tls: {certificateRefs: [{name: cert-wild}]}}\n"
    "  - {name: b, port: 8443, protocol: HTTPS, hostname: b.test,\n"
    "     tls: {certificateRefs: [{name: cert-b-rsa}, {name: cert-b-ec}]}}\n"
    "  - {name: broken, port: 8443, protocol: HTTPS, hostname: broken.test,\n"
    "     tls: {certificateRefs: [{name: mismatched}]}}\n"
    "  - {name: junk, port: 8443, protocol: HTTPS, hostname: junk.test,\n"
    "     tls: {certificateRefs: [{name: junk}]}}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: r, namespace: web}\n"
    "spec:\n  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {value: /}}]}]\n";

static const struct sv_condition *listener_cond(const struct sv_status *st, const char *l,
                                                const char *type)
{
    const struct sv_status_gateway *g = sv_status_gateway(st, "web", "gw");
    const struct sv_status_listener *ls = g ? sv_status_listener(g, l) : NULL;
    return ls ? sv_condition_find(&ls->conds, type) : NULL;
}

TEST(tls_translate_puts_certificates_in_generation)
{
    REQUIRE(sv_test_cert_dir() != NULL);
    struct sv_store *st = sv_store_new();
    REQUIRE(st);
    struct sv_object *objs[8];
    char err[256];
    int n = sv_test_decode_yaml(k_gateway_yaml, objs, 8, err, sizeof(err));
    REQUIRE(n == 3);
    for (int i = 0; i < n; i++)
        sv_store_upsert(st, objs[i]);
    struct pair a, wild, rsa_b, ec_b;
    pair_load(&a, "ec_a");
    pair_load(&wild, "ec_wild");
    pair_load(&rsa_b, "rsa_b");
    pair_load(&ec_b, "ec_b");
    struct blob garbage = slurp("garbage.pem");
    add_secret(st, "cert-a", &a.crt, &a.key);
    add_secret(st, "cert-wild", &wild.crt, &wild.key);
    add_secret(st, "cert-b-rsa", &rsa_b.crt, &rsa_b.key);
    add_secret(st, "cert-b-ec", &ec_b.crt, &ec_b.key);
    add_secret(st, "mismatched", &a.crt, &wild.key);
    add_secret(st, "junk", &garbage, &a.key);

    struct sv_tls_ticket_keys *keys = sv_tls_ticket_keys_new(60, 0);
    struct sv_translate_opts opts = {.bind_addr = "127.0.0.1", .ticket_keys = keys};
    struct sv_generation *gen = NULL;
    struct sv_status *status = NULL;
    size_t live = sv_tls_server_live_count();
    REQUIRE(sv_translate(st, &opts, &gen, &status, err, sizeof(err)) == 0);

    /* bad pairs: ResolvedRefs=False InvalidCertificateRef, not programmed; others fine */
    const struct sv_condition *c = listener_cond(status, "broken", "ResolvedRefs");
    REQUIRE(c != NULL);
    CHECK_EQ_STR(c->status, "False");
    CHECK_EQ_STR(c->reason, "InvalidCertificateRef");
    CHECK(strstr(c->message, "does not match") != NULL);
    c = listener_cond(status, "junk", "ResolvedRefs");
    REQUIRE(c != NULL);
    CHECK_EQ_STR(c->status, "False");
    CHECK_EQ_STR(c->reason, "InvalidCertificateRef");
    c = listener_cond(status, "junk", "Programmed");
    CHECK(c && strcmp(c->status, "False") == 0);
    c = listener_cond(status, "a", "ResolvedRefs");
    CHECK(c && strcmp(c->status, "True") == 0);
    c = listener_cond(status, "b", "Programmed");
    CHECK(c && strcmp(c->status, "True") == 0);

    /* one TLS server on the 8443 bind, none on 8080 */
    CHECK_EQ_INT(sv_tls_server_live_count(), live + 1);
    size_t nb = 0;
    const struct sv_route_bind *binds = sv_generation_binds(gen, &nb);
    struct sv_tls_server *srv = NULL;
    for (size_t i = 0; i < nb; i++) {
        void *ctx = sv_generation_bind_tls(gen, (uint32_t)i);
        if (binds[i].port == 8443)
            srv = ctx;
        else
            CHECK(ctx == NULL);
    }
    REQUIRE(srv != NULL);
    CHECK_EQ_INT(sv_tls_server_n_listeners(srv), 3);
    int li = sv_tls_server_select(srv, SV_STR_LIT("b.test"));
    REQUIRE(li >= 0);
    CHECK_EQ_INT(sv_tls_server_n_certs(srv, (size_t)li), 2);
    CHECK_EQ_INT(sv_tls_server_cert(srv, (size_t)li, 0)->key_type, SV_TLS_KEY_RSA);
    /* the broken listener is not served and there is no catch-all: unrecognized_name */
    CHECK_EQ_INT(sv_tls_server_select(srv, SV_STR_LIT("broken.test")), -1);
    CHECK_EQ_INT(sv_tls_server_select(srv, SV_STR_LIT("x.example.com")), 1);

    /* a handshake through the generation's server; the generation may go away meanwhile */
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.srv = srv;
    struct client_opts o = {.sni = "b.test", .verify = "b.test"};
    int got = connect_once(&f, &o, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(got, li);
    sv_generation_free_unpublished(gen);
    CHECK_EQ_INT(sv_tls_server_live_count(), live);

    sv_status_free(status);
    sv_store_free(st);
    sv_tls_ticket_keys_free(keys);
    free(garbage.p);
    pair_free(&a);
    pair_free(&wild);
    pair_free(&rsa_b);
    pair_free(&ec_b);
}

/* ---- ClientHello SNI peek (serval/tls/clienthello.h) ------------------------------------- */

#include "serval/base/compiler.h"
#include "serval/tls/clienthello.h"

/* The first flight of a real wolfSSL client (SNI <sni> or none) into out[cap]; its length. */
static size_t real_client_hello(const char *sni, int version, uint8_t *out, size_t cap)
{
    struct client c;
    struct client_opts o = {.version = version, .sni = sni};
    size_t n = 0;
    if (client_new(&c, &o) == 0 && wolfSSL_connect(c.ssl) != WOLFSSL_SUCCESS &&
        c.c2s->len <= cap) {
        memcpy(out, c.c2s->b, c.c2s->len);
        n = c.c2s->len;
    }
    client_free(&c);
    return n;
}

/* Re-frame the handshake bytes of the single record in[n] into records of <chunk> bytes. */
static size_t reframe(const uint8_t *in, size_t n, size_t chunk, uint8_t *out, size_t cap)
{
    size_t o = 0;
    for (size_t off = 5; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (o + 5 + k > cap)
            return 0;
        memcpy(out + o, in, 3);
        out[o + 3] = (uint8_t)(k >> 8);
        out[o + 4] = (uint8_t)k;
        memcpy(out + o + 5, in + off, k);
        o += 5 + k;
    }
    return o;
}

TEST(tls_clienthello_sni_real_hellos)
{
    static uint8_t hello[8192], split[16384];
    char name[SV_TLS_SNI_MAX + 1];
    int versions[] = {12, 13, 0};
    for (size_t vi = 0; vi < SV_ARRAY_SIZE(versions); vi++) {
        size_t n = real_client_hello("Pass.Example.COM", versions[vi], hello, sizeof(hello));
        REQUIRE(n > 5 && hello[0] == 22);
        REQUIRE(n == 5 + (((size_t)hello[3] << 8) | hello[4])); /* one record */
        size_t need = 0;
        CHECK_EQ_INT(sv_tls_clienthello_sni(hello, n, name, sizeof(name), &need), 16);
        CHECK_EQ_STR(name, "pass.example.com");
        CHECK_EQ_INT(need, 0);
        /* every strict prefix asks for more, with a lower bound it does not yet have */
        for (size_t k = 0; k < n; k++) {
            int rc = sv_tls_clienthello_sni(hello, k, name, sizeof(name), &need);
            if (rc != -EAGAIN || need <= k || need > n) {
                FAIL("prefix %zu of %zu: rc %d need %zu", k, n, rc, need);
                break;
            }
        }
        /* the same ClientHello over several records of 64 bytes, then of 7 (too many) */
        size_t sn = reframe(hello, n, 64, split, sizeof(split));
        REQUIRE(sn > n);
        CHECK_EQ_INT(sv_tls_clienthello_sni(split, sn, name, sizeof(name), NULL), 16);
        CHECK_EQ_STR(name, "pass.example.com");
        sn = reframe(hello, n, 7, split, sizeof(split)); /* too many records */
        REQUIRE(sn > n);
        CHECK_EQ_INT(sv_tls_clienthello_sni(split, sn, name, sizeof(name), NULL), -EPROTO);
        /* the name does not fit */
        CHECK_EQ_INT(sv_tls_clienthello_sni(hello, n, name, 16, NULL), -ENOSPC);
        /* no SNI */
        n = real_client_hello(NULL, versions[vi], hello, sizeof(hello));
        REQUIRE(n > 5);
        CHECK_EQ_INT(sv_tls_clienthello_sni(hello, n, name, sizeof(name), NULL), 0);
        CHECK_EQ_STR(name, "");
    }
}

TEST(tls_clienthello_sni_rejects)
{
    char name[SV_TLS_SNI_MAX + 1];
    size_t need = 1;
    static const char http[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_EQ_INT(sv_tls_clienthello_sni((const uint8_t *)http, strlen(http), name, sizeof(name),
                                        &need),
                 -EPROTO);
    CHECK_EQ_INT(sv_tls_clienthello_sni((const uint8_t *)"G", 1, name, sizeof(name), NULL),
                 -EPROTO);
    CHECK_EQ_INT(sv_tls_clienthello_sni((const uint8_t *)"", 0, name, sizeof(name), &need),
                 -EAGAIN);
    CHECK_EQ_INT(need, 9);
    /* hand-made ClientHello: TLS 1.2, no session id, one suite, null compression, SNI */
    uint8_t h[128] = {22, 3, 1, 0, 0, 1, 0, 0, 0, 3, 3};
    size_t o = 11 + 32;
    h[o++] = 0;                     /* session id */
    h[o++] = 0, h[o++] = 2;         /* suites */
    h[o++] = 0xc0, h[o++] = 0x2f;
    h[o++] = 1, h[o++] = 0;         /* compression */
    size_t ext_at = o;
    o += 2;
    h[o++] = 0, h[o++] = 0;         /* server_name */
    h[o++] = 0, h[o++] = 8;         /* extension length */
    h[o++] = 0, h[o++] = 6;         /* list length */
    h[o++] = 0, h[o++] = 0, h[o++] = 3;
    memcpy(h + o, "a.b", 3);
    o += 3;
    h[ext_at] = 0, h[ext_at + 1] = (uint8_t)(o - ext_at - 2);
    size_t body = o - 9;
    h[3] = (uint8_t)((o - 5) >> 8), h[4] = (uint8_t)(o - 5);
    h[6] = (uint8_t)(body >> 16), h[7] = (uint8_t)(body >> 8), h[8] = (uint8_t)body;
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), 3);
    CHECK_EQ_STR(name, "a.b");
    h[o - 2] = '/'; /* not a host name character */
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), -EPROTO);
    h[o - 2] = '.';
    h[o - 4] = 9; /* entry longer than the list */
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), -EPROTO);
    h[o - 4] = 3;
    h[5] = 2; /* ServerHello, not a ClientHello */
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), -EPROTO);
    h[5] = 1;
    h[0] = 23; /* application data record */
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), -EPROTO);
    h[0] = 22;
    h[8] = (uint8_t)(body + 1); /* message longer than its extensions say */
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), -EAGAIN);
    h[8] = (uint8_t)body;
    CHECK_EQ_INT(sv_tls_clienthello_sni(h, o, name, sizeof(name), NULL), 3);
}

/* ---- client certificates (Gateway spec.tls.frontend) ------------------------------------------ */

/* One server listener (any host, ec_def) validating client certificates against ca.crt. */
static struct sv_tls_server *client_auth_server(struct sv_tls_ticket_keys *keys, bool optional,
                                                struct pair *def, struct blob *ca)
{
    pair_load(def, "ec_def");
    *ca = slurp("ca.crt");
    struct sv_tls_listener_spec l = {SV_STR_LIT(""), 1, SV_STR_LIT("gw/mtls"), &def->pem, 1};
    char err[200];
    struct sv_tls_server *s = sv_tls_server_new(&l, 1, keys, err, sizeof(err));
    if (!s)
        fprintf(stderr, "# sv_tls_server_new: %s\n", err);
    if (s && sv_tls_server_set_client_ca(s, 0, ca->p, ca->n, optional) != 0) {
        fprintf(stderr, "# sv_tls_server_set_client_ca failed\n");
        sv_tls_server_unref(s);
        s = NULL;
    }
    return s;
}

/* Handshake + one exchange on <srv>: 0 when both succeed, else a negative code. */
static int client_auth_connect(struct sv_tls_server *srv, const struct client_opts *o,
                               bool *resumed, WOLFSSL_SESSION **sess)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.srv = srv;
    return connect_once(&f, o, NULL, NULL, resumed, sess) >= 0 ? 0 : -1;
}

TEST(tls_ca_check)
{
    REQUIRE(sv_test_cert_dir() != NULL);
    struct blob ca = slurp("ca.crt"), chain = slurp("ec_a.crt"), garbage = slurp("garbage.pem");
    char err[160];
    CHECK_EQ_INT(sv_tls_ca_check(ca.p, ca.n, err, sizeof(err)), 0);
    CHECK_EQ_INT(sv_tls_ca_check(chain.p, chain.n, err, sizeof(err)), 0); /* leaf + CA */
    CHECK_EQ_INT(sv_tls_ca_check(garbage.p, garbage.n, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "does not parse") != NULL);
    CHECK_EQ_INT(sv_tls_ca_check("hello", 5, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "no PEM certificate") != NULL);
    CHECK_EQ_INT(sv_tls_ca_check(NULL, 0, err, sizeof(err)), -EINVAL);
    /* a bundle that does not load, or a bad listener index, is refused */
    struct pair def;
    pair_load(&def, "ec_def");
    struct sv_tls_ticket_keys *keys = sv_tls_ticket_keys_new(3600, 0);
    struct sv_tls_listener_spec l = {SV_STR_LIT(""), 1, SV_STR_LIT("x"), &def.pem, 1};
    struct sv_tls_server *s = sv_tls_server_new(&l, 1, keys, err, sizeof(err));
    REQUIRE(s != NULL);
    CHECK_EQ_INT(sv_tls_server_set_client_ca(s, 0, garbage.p, garbage.n, false), -EINVAL);
    CHECK_EQ_INT(sv_tls_server_set_client_ca(s, 1, ca.p, ca.n, false), -EINVAL);
    CHECK_EQ_INT(sv_tls_server_set_client_ca(s, 0, ca.p, 0, false), -EINVAL);
    CHECK_EQ_INT(sv_tls_server_set_client_ca(s, 0, ca.p, ca.n, false), 0);
    sv_tls_server_unref(s);
    sv_tls_ticket_keys_free(keys);
    pair_free(&def);
    free(ca.p);
    free(chain.p);
    free(garbage.p);
}

static void client_auth_case(int version)
{
    REQUIRE(sv_test_cert_dir() != NULL);
    struct sv_tls_ticket_keys *keys = sv_tls_ticket_keys_new(3600, 0);
    struct pair def;
    struct blob ca;
    struct sv_tls_server *strict = client_auth_server(keys, false, &def, &ca);
    REQUIRE(strict != NULL);
    struct client_opts o = {.version = version, .sni = "default.test"};
    /* AllowValidOnly: a certificate signed by the CA passes; none or another CA's fails */
    o.client_cert = "ec_b";
    CHECK_EQ_INT(client_auth_connect(strict, &o, NULL, NULL), 0);
    o.client_cert = "rsa_b";
    CHECK_EQ_INT(client_auth_connect(strict, &o, NULL, NULL), 0);
    o.client_cert = NULL;
    CHECK(client_auth_connect(strict, &o, NULL, NULL) < 0);
    o.client_cert = "stranger";
    CHECK(client_auth_connect(strict, &o, NULL, NULL) < 0);
    o.client_cert = "expired";
    CHECK(client_auth_connect(strict, &o, NULL, NULL) < 0);

    /* AllowInsecureFallback: everyone gets in */
    struct pair def2;
    struct blob ca2;
    struct sv_tls_server *lax = client_auth_server(keys, true, &def2, &ca2);
    REQUIRE(lax != NULL);
    const char *const certs[] = {"ec_b", NULL, "stranger", "expired"};
    for (size_t i = 0; i < 4; i++) {
        o.client_cert = certs[i];
        CHECK_EQ_INT(client_auth_connect(lax, &o, NULL, NULL), 0);
    }

    /* no resumption into a validating server with a ticket from a non-validating one that
     * shares the ticket keys */
    if (version == 13) {
        struct pair a;
        pair_load(&a, "ec_def");
        struct sv_tls_listener_spec l = {SV_STR_LIT(""), 1, SV_STR_LIT("plain"), &a.pem, 1};
        char err[160];
        struct sv_tls_server *plain = sv_tls_server_new(&l, 1, keys, err, sizeof(err));
        REQUIRE(plain != NULL);
        WOLFSSL_SESSION *sess = NULL;
        bool resumed = true;
        o.client_cert = NULL;
        CHECK_EQ_INT(client_auth_connect(plain, &o, &resumed, &sess), 0);
        CHECK(!resumed);
        REQUIRE(sess != NULL);
        o.session = sess;
        CHECK_EQ_INT(client_auth_connect(plain, &o, &resumed, NULL), 0);
        CHECK(resumed); /* the ticket itself is good */
        resumed = true;
        CHECK_EQ_INT(client_auth_connect(lax, &o, &resumed, NULL), 0);
        CHECK(!resumed);
        CHECK(client_auth_connect(strict, &o, NULL, NULL) < 0);
        o.session = NULL;
        wolfSSL_SESSION_free(sess);
        sv_tls_server_unref(plain);
        pair_free(&a);
    }
    sv_tls_server_unref(lax);
    pair_free(&def2);
    free(ca2.p);
    sv_tls_server_unref(strict);
    pair_free(&def);
    free(ca.p);
    sv_tls_ticket_keys_free(keys);
}

TEST(tls_client_certificates_tls13)
{
    client_auth_case(13);
}

TEST(tls_client_certificates_tls12)
{
    client_auth_case(12);
}

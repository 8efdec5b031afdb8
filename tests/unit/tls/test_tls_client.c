/* src/tls client side: our client connection (sv_tls_conn_open_client) against our server
 * connection, in memory, with certificates from tests/tls/gen-certs.sh: hostname verification,
 * SAN lists (DNS and URI), untrusted peers and bad trust anchors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "certs.h"
#include "serval/tls/tls.h"

static struct sv_str file_str(const char *name, char *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", sv_test_cert_dir(), name);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f)
        fclose(f);
    return (struct sv_str){buf, n};
}

struct world {
    char crt[8192], key[4096], ca[4096];
    struct sv_tls_ticket_keys *keys;
    struct sv_tls_server *srv;
};

static int world_new(struct world *w)
{
    memset(w, 0, sizeof(*w));
    if (!sv_test_cert_dir())
        return -1;
    struct sv_str crt = file_str("ec_a.crt", w->crt, sizeof(w->crt));
    struct sv_str key = file_str("ec_a.key", w->key, sizeof(w->key));
    file_str("ca.crt", w->ca, sizeof(w->ca) - 1);
    struct sv_tls_cert_pem pem = {crt.ptr, crt.len, key.ptr, key.len};
    struct sv_tls_listener_spec ls = {SV_STR_LIT(""), 1, SV_STR_LIT("any"), &pem, 1};
    w->keys = sv_tls_ticket_keys_new(3600, 0);
    char err[200];
    w->srv = sv_tls_server_new(&ls, 1, w->keys, err, sizeof(err));
    return w->srv ? 0 : -1;
}

static void world_free(struct world *w)
{
    sv_tls_server_unref(w->srv);
    sv_tls_ticket_keys_free(w->keys);
}

struct wire {
    uint8_t b[1 << 16];
    size_t len;
};

/* Move what <from> wants to send onto <w>. */
static void drain(struct sv_tls_conn *from, struct wire *w)
{
    const uint8_t *p;
    size_t n = sv_tls_conn_out(from, &p);
    if (n > sizeof(w->b) - w->len)
        n = sizeof(w->b) - w->len;
    memcpy(w->b + w->len, p, n);
    w->len += n;
    sv_tls_conn_out_consume(from, n);
}

/* Feed <w> to <to>; plaintext goes to plain (returns bytes, or a negative code). */
static ssize_t feed(struct sv_tls_conn *to, struct wire *w, char *plain, size_t cap)
{
    size_t used = 0;
    ssize_t r = sv_tls_conn_recv(to, w->b, w->len, &used, plain, cap);
    memmove(w->b, w->b + used, w->len - used);
    w->len -= used;
    return r;
}

/* Connect a client made from <spec> to the server; sends "ping" once open. Returns the final
 * client state; *got = what the server read. */
static enum sv_tls_state run(struct world *wd, const struct sv_tls_client_spec *spec, char *got,
                             size_t cap)
{
    static uint8_t cout[32768], sout[32768];
    static struct wire c2s, s2c;
    c2s.len = s2c.len = 0;
    got[0] = '\0';
    char err[160];
    struct sv_tls_client *cl = sv_tls_client_new(spec, err, sizeof(err));
    if (!cl) {
        fprintf(stderr, "client: %s\n", err);
        return SV_TLS_IDLE;
    }
    struct sv_tls_conn c, s;
    if (sv_tls_conn_open_client(&c, cl, cout, sizeof(cout)) != 0 ||
        sv_tls_conn_open(&s, wd->srv, sout, sizeof(sout)) != 0) {
        sv_tls_client_unref(cl);
        return SV_TLS_IDLE;
    }
    sv_tls_client_unref(cl); /* the connection keeps its own reference */
    bool sent = false;
    char plain[256];
    for (int i = 0; i < 40; i++) {
        feed(&c, &s2c, plain, sizeof(plain));
        drain(&c, &c2s);
        if (!sent && sv_tls_conn_state(&c) == SV_TLS_OPEN) {
            sent = sv_tls_conn_send(&c, "ping", 4) == 4;
            drain(&c, &c2s);
        }
        ssize_t r = feed(&s, &c2s, plain, sizeof(plain) - 1);
        if (r > 0 && (size_t)r < cap) {
            memcpy(got, plain, (size_t)r);
            got[r] = '\0';
        }
        drain(&s, &s2c);
        if (sv_tls_conn_state(&c) == SV_TLS_FAILED || got[0])
            break;
    }
    enum sv_tls_state st = sv_tls_conn_state(&c);
    sv_tls_conn_close(&c);
    sv_tls_conn_close(&s);
    return st;
}

TEST(tls_client_verifies_hostname)
{
    struct world w;
    REQUIRE(world_new(&w) == 0);
    char got[64];
    struct sv_tls_client_spec sp = {.hostname = SV_STR_LIT("a.example.com"),
                                    .ca_pem = sv_str_cstr(w.ca)};
    CHECK_EQ_INT(run(&w, &sp, got, sizeof(got)), SV_TLS_OPEN);
    CHECK_EQ_STR(got, "ping");
    sp.hostname = SV_STR_LIT("other.example.org"); /* not in the certificate */
    CHECK_EQ_INT(run(&w, &sp, got, sizeof(got)), SV_TLS_FAILED);
    CHECK_EQ_STR(got, "");
    world_free(&w);
}

TEST(tls_client_san_list_replaces_hostname)
{
    struct world w;
    REQUIRE(world_new(&w) == 0);
    char got[64];
    struct sv_tls_san dns = {SV_STR_LIT("a.example.com"), false};
    struct sv_tls_san uri = {SV_STR_LIT("spiffe://a.example.com/x"), true};
    struct sv_tls_client_spec sp = {.hostname = SV_STR_LIT("sni-only.example.org"),
                                    .ca_pem = sv_str_cstr(w.ca), .sans = &dns, .n_sans = 1};
    CHECK_EQ_INT(run(&w, &sp, got, sizeof(got)), SV_TLS_OPEN);
    CHECK_EQ_STR(got, "ping");
    sp.sans = &uri; /* the certificate has no such URI */
    CHECK_EQ_INT(run(&w, &sp, got, sizeof(got)), SV_TLS_FAILED);
    world_free(&w);
}

TEST(tls_client_untrusted_and_bad_anchors)
{
    struct world w;
    REQUIRE(world_new(&w) == 0);
    char got[64], other[4096];
    /* trust only an unrelated self-signed leaf: the server's chain does not verify */
    struct sv_str leaf = file_str("expired.leaf", other, sizeof(other));
    struct sv_tls_client_spec sp = {.hostname = SV_STR_LIT("a.example.com"), .ca_pem = leaf};
    enum sv_tls_state st = run(&w, &sp, got, sizeof(got));
    CHECK_EQ_INT(st, SV_TLS_FAILED);
    CHECK_EQ_STR(got, "");
    char err[160];
    sp.ca_pem = SV_STR_LIT("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    CHECK(sv_tls_client_new(&sp, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "CA") != NULL);
    sp.ca_pem = (struct sv_str){NULL, 0};
    CHECK(sv_tls_client_new(&sp, err, sizeof(err)) == NULL);
    /* a client certificate is loaded with its key; garbage is refused */
    char ccrt[8192], ckey[4096];
    sp.ca_pem = sv_str_cstr(w.ca);
    sp.cert_pem = file_str("ec_b.crt", ccrt, sizeof(ccrt));
    sp.key_pem = file_str("ec_b.key", ckey, sizeof(ckey));
    struct sv_tls_client *cl = sv_tls_client_new(&sp, err, sizeof(err));
    CHECK(cl != NULL);
    sv_tls_client_unref(cl);
    CHECK_EQ_INT(run(&w, &sp, got, sizeof(got)), SV_TLS_OPEN); /* unused by this server */
    sp.key_pem = SV_STR_LIT("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    CHECK(sv_tls_client_new(&sp, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "client certificate") != NULL);
    world_free(&w);
}

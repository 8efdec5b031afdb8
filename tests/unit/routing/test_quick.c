/* Quick mode: --listen / --route parsing and the routes it builds. */
#include "../harness.h"
#include "rt_helpers.h"
#include "serval/routing/quick.h"

static struct sv_generation *qb(const char *const *l, size_t nl, const char *const *r, size_t nr,
                                char *err, size_t errlen)
{
    err[0] = '\0';
    return sv_quick_build(l, nl, r, nr, err, errlen);
}

TEST(routing_quick_good)
{
    const char *listens[] = {"127.0.0.1:8080", "[::1]:8081", "127.0.0.1:8080"};
    const char *routes[] = {
        "/=127.0.0.2:9000",
        "/api=127.0.0.3:9000,127.0.0.4:9000",
        "/api/v2/=127.0.0.5:9000",
        "Example.COM/=127.0.0.6:9000",
        "*.wild.test/api=127.0.0.7:9000,[::1]:9001",
    };
    char err[256];
    struct sv_generation *g = qb(listens, 3, routes, 5, err, sizeof(err));
    if (!g)
        FAIL("quick: %s", err);
    REQUIRE(g);
    size_t n;
    const struct sv_route_bind *b = sv_generation_binds(g, &n);
    CHECK_EQ_INT(n, 2); /* the repeated --listen is one bind */
    CHECK_EQ_INT(b[0].port, 8080);
    CHECK_EQ_INT(b[1].port, 8081);
    CHECK_EQ_INT(b[1].addr.sa.sa_family, AF_INET6);
    CHECK_EQ_INT(b[0].proto, SV_ROUTE_PROTO_HTTP);

    static const struct {
        const char *ip;
        uint16_t port;
        const char *host, *target, *want;
    } rows[] = {
        {"127.0.0.1", 8080, "x", "/", "quick/route-0#0"},
        {"127.0.0.1", 8080, "x", "/apix", "quick/route-0#0"}, /* element-wise prefix */
        {"127.0.0.1", 8080, "x", "/api", "quick/route-1#0"},
        {"127.0.0.1", 8080, "x", "/api/v1", "quick/route-1#0"},
        {"127.0.0.1", 8080, "x", "/api/v2/z", "quick/route-2#0"}, /* longest prefix wins */
        {"127.0.0.1", 8080, "example.com:8080", "/api", "quick/route-3#0"}, /* host first */
        {"::1", 8081, "a.b.wild.test", "/api/x", "quick/route-4#0"},
        {"::1", 8081, "a.b.wild.test", "/other", "quick/route-0#0"}, /* falls through */
        {"::1", 8081, "wild.test", "/api/x", "quick/route-1#0"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const char *got =
            rt_who(g, rows[i].ip, rows[i].port, "GET", rows[i].host, rows[i].target, NULL, 0);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s%s: got %s want %s", i, rows[i].host, rows[i].target, got,
                 rows[i].want);
    }
    /* round robin over the route's endpoints */
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 8080, "GET", "x", "/api", NULL, 0, &res) == 0);
    const struct sv_route_backend *be = sv_route_pick_backend(res.action, 0);
    REQUIRE(be && be->kind == SV_ROUTE_BACKEND_SET);
    uint32_t cur = 0;
    const struct sv_route_endpoint *e1 = sv_generation_pick_endpoint(g, be->set_id, &cur, NULL);
    const struct sv_route_endpoint *e2 = sv_generation_pick_endpoint(g, be->set_id, &cur, NULL);
    const struct sv_route_endpoint *e3 = sv_generation_pick_endpoint(g, be->set_id, &cur, NULL);
    REQUIRE(e1 && e2 && e3);
    CHECK_EQ_INT(e1->addr.in.sin_addr.s_addr, htonl(0x7f000003));
    CHECK_EQ_INT(e2->addr.in.sin_addr.s_addr, htonl(0x7f000004));
    CHECK(e3 == e1);
    CHECK_EQ_INT(ntohs(e1->addr.in.sin_port), 9000);
    sv_generation_free_unpublished(g);

    /* no routes: everything 404, still a valid generation */
    g = qb(listens, 1, NULL, 0, err, sizeof(err));
    REQUIRE(g);
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 8080, "GET", "x", "/", NULL, 0), "404");
    sv_generation_free_unpublished(g);
}

TEST(routing_quick_tls_passthrough)
{
    /* a passthrough bind next to an HTTP one; the SNI is routed as the host with path "/" */
    const char *listens[] = {"tls-passthrough:127.0.0.1:8443", "127.0.0.1:8080"};
    const char *routes[] = {"a.test/=127.0.0.2:9443", "*.w.test/=127.0.0.3:9443"};
    char err[256];
    struct sv_generation *g = qb(listens, 2, routes, 2, err, sizeof(err));
    if (!g)
        FAIL("quick: %s", err);
    REQUIRE(g);
    size_t n;
    const struct sv_route_bind *b = sv_generation_binds(g, &n);
    REQUIRE(n == 2);
    CHECK_EQ_INT(b[0].proto, SV_ROUTE_PROTO_TLS_PASSTHROUGH);
    CHECK_EQ_INT(b[0].port, 8443);
    CHECK_EQ_INT(b[1].proto, SV_ROUTE_PROTO_HTTP);
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 8443, "GET", "a.test", "/", NULL, 0), "quick/route-0#0");
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 8443, "GET", "x.w.test", "/", NULL, 0),
                 "quick/route-1#0");
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 8443, "GET", "b.test", "/", NULL, 0), "404");
    char json[4096];
    size_t jl = sv_generation_write_json(g, json, sizeof(json));
    REQUIRE(jl < sizeof(json));
    CHECK(strstr(json, "\"protocol\":\"TLSPassthrough\"") != NULL);
    sv_generation_free_unpublished(g);
    /* the same address cannot be both */
    const char *clash[] = {"tls-passthrough:127.0.0.1:8443", "127.0.0.1:8443"};
    g = qb(clash, 2, routes, 1, err, sizeof(err));
    CHECK(g == NULL && strstr(err, "another protocol") != NULL);
    sv_generation_free_unpublished(g);
}

TEST(routing_quick_bad_flags)
{
    static const struct {
        const char *listen, *route, *want; /* want: substrings of the message, '|' separated */
    } rows[] = {
        {"127.0.0.1", NULL, "--listen \"127.0.0.1\"|port"},
        {"127.0.0.1:0", NULL, "--listen \"127.0.0.1:0\"|port"},
        {"127.0.0.1:65536", NULL, "--listen|port"},
        {"127.0.0.1:80x", NULL, "--listen|port"},
        {"localhost:80", NULL, "--listen \"localhost:80\"|address"},
        {"300.1.1.1:80", NULL, "--listen|address"},
        {"[::1:80", NULL, "--listen|']'"},
        {"[::1]80", NULL, "--listen|port"},
        {"[zz::1]:80", NULL, "--listen|IPv6"},
        {":80", NULL, "--listen|address"},
        {"127.0.0.1:80", "/api", "--route \"/api\"|'='"},
        {"127.0.0.1:80", "api=127.0.0.1:80", "--route \"api=127.0.0.1:80\"|/PREFIX"},
        {"127.0.0.1:80", "/api=", "--route \"/api=\"|backend"},
        {"127.0.0.1:80", "/api=10.0.0.1", "--route \"/api=10.0.0.1\"|\"10.0.0.1\"|port"},
        {"127.0.0.1:80", "/api=10.0.0.1:80,", "--route|backend \"\""},
        {"127.0.0.1:80", "/api=10.0.0.1:80,bad:1", "--route|\"bad:1\""},
        {"127.0.0.1:80", "/a//b=10.0.0.1:80", "--route|//"},
        {"127.0.0.1:80", "/a b=10.0.0.1:80", "--route|prefix"},
        {"127.0.0.1:80", "ho st/a=10.0.0.1:80", "--route|host"},
        {"127.0.0.1:80", "*x.com/a=10.0.0.1:80", "--route|wildcard"},
        {"127.0.0.1:80", "a.*.com/a=10.0.0.1:80", "--route|hostname"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        char err[256];
        const char *l[] = {rows[i].listen};
        const char *r[] = {rows[i].route};
        struct sv_generation *g = qb(l, 1, r, rows[i].route ? 1 : 0, err, sizeof(err));
        if (g) {
            FAIL("row %zu (%s %s): accepted", i, rows[i].listen, rows[i].route);
            sv_generation_free_unpublished(g);
            continue;
        }
        char want[128];
        snprintf(want, sizeof(want), "%s", rows[i].want);
        for (char *tok = strtok(want, "|"); tok; tok = strtok(NULL, "|"))
            if (!strstr(err, tok))
                FAIL("row %zu: message \"%s\" lacks \"%s\"", i, err, tok);
    }
    char err[256];
    CHECK(qb(NULL, 0, NULL, 0, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "--listen") != NULL);
    const char *l[] = {"127.0.0.1:80"};
    const char *dup[] = {"/a=10.0.0.1:80", "/a/=10.0.0.2:80"};
    CHECK(qb(l, 1, dup, 2, err, sizeof(err)) == NULL); /* "/a/" is the same prefix as "/a" */
    CHECK(strstr(err, "same host and prefix") != NULL);
    const char *dup2[] = {"h/a=10.0.0.1:80", "H/a=10.0.0.2:80"};
    CHECK(qb(l, 1, dup2, 2, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "same host and prefix") != NULL);
}

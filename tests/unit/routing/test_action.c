/* Backend and endpoint picking, ReplacePrefixMatch, redirects, filters as data, endpoint-only
 * updates. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../harness.h"
#include "rt_helpers.h"
#include "serval/http/serialize.h"
#include "serval/routing/quick.h"

#define S(x) sv_str_cstr(x)

/* One listener on 127.0.0.1:<port>, one route "ns/r" with the given rule on PathPrefix /p. */
static struct sv_generation *one_rule(uint16_t port, struct sv_route_rule_spec *rule,
                                      uint32_t n_sets, uint32_t eps_per_set)
{
    struct sv_route_builder *b = sv_route_builder_new();
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", port);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("L"), S(""));
    for (uint32_t s = 0; s < n_sets; s++) {
        char name[32];
        snprintf(name, sizeof(name), "set%u", s);
        int id = sv_route_builder_add_backend_set(b, S(name));
        for (uint32_t e = 0; e < eps_per_set; e++) {
            char ip[32];
            snprintf(ip, sizeof(ip), "127.0.%u.%u", s + 1, e + 1);
            union sv_route_sockaddr ep = rt_sa(ip, (uint16_t)(9000 + e));
            sv_route_builder_add_endpoint(b, (uint32_t)id, &ep.sa, rt_salen(&ep));
            sv_route_builder_add_endpoint(b, (uint32_t)id, &ep.sa, rt_salen(&ep)); /* dup */
        }
    }
    struct sv_route_route_spec rs = {S("ns"), S("r"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S(""));
    struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = S("/p")};
    if (!rule->n_matches) {
        rule->matches = &m;
        rule->n_matches = 1;
    }
    int rc = sv_route_builder_add_rule(b, (uint32_t)r, rule);
    if (rc < 0)
        FAIL("add_rule: %s", sv_route_builder_error(b));
    char err[256];
    struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
    if (!g)
        FAIL("finish: %s", err);
    return g;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

TEST(routing_weights_distribution)
{
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 1, .weight = 0},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 2, .weight = 3},
        {.kind = SV_ROUTE_BACKEND_INVALID, .weight = 1},
    };
    struct sv_route_rule_spec rule = {.backends = be, .n_backends = 4};
    struct sv_generation *g = one_rule(80, &rule, 3, 1);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    const struct sv_route_action *a = res.action;
    CHECK_EQ_INT(a->_cum_weight[a->n_backends - 1], 5); /* the sum of the weights */
    /* exhaustive over one period */
    int exp[] = {0, 2, 2, 2, 3};
    for (uint64_t r = 0; r < 5; r++) {
        const struct sv_route_backend *b = sv_route_pick_backend(a, r + 5 * 1000);
        REQUIRE(b);
        CHECK_EQ_INT(b - a->backends, exp[r]);
    }
    /* random: shares within 1.5 percentage points over 100000 picks */
    int count[4] = {0};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 100000; i++)
        count[sv_route_pick_backend(a, xorshift(&seed)) - a->backends]++;
    CHECK_EQ_INT(count[1], 0);
    CHECK(count[0] > 18500 && count[0] < 21500);
    CHECK(count[2] > 58500 && count[2] < 61500);
    CHECK(count[3] > 18500 && count[3] < 21500); /* the 500 sink gets its share only */
    CHECK_EQ_INT(a->backends[3].kind, SV_ROUTE_BACKEND_INVALID);
    sv_generation_free_unpublished(g);
}

TEST(routing_weights_all_zero_or_none)
{
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 0},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 0},
    };
    struct sv_route_rule_spec rule = {.backends = be, .n_backends = 2};
    struct sv_generation *g = one_rule(80, &rule, 1, 1);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    CHECK(sv_route_pick_backend(res.action, 0) == NULL);
    CHECK(sv_route_pick_backend(res.action, 12345) == NULL);
    sv_generation_free_unpublished(g);

    struct sv_route_rule_spec none = {0};
    g = one_rule(80, &none, 0, 0);
    REQUIRE(g);
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p/x", NULL, 0, &res) == 0);
    CHECK(sv_route_pick_backend(res.action, 7) == NULL); /* no backendRefs -> 500 */
    sv_generation_free_unpublished(g);

    struct sv_route_backend_spec inv[] = {{.kind = SV_ROUTE_BACKEND_INVALID, .weight = 1},
                                          {.kind = SV_ROUTE_BACKEND_INVALID, .weight = 2}};
    struct sv_route_rule_spec allinv = {.backends = inv, .n_backends = 2};
    g = one_rule(80, &allinv, 0, 0);
    REQUIRE(g);
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    for (uint64_t r = 0; r < 6; r++)
        CHECK_EQ_INT(sv_route_pick_backend(res.action, r)->kind, SV_ROUTE_BACKEND_INVALID);
    sv_generation_free_unpublished(g);
}

TEST(routing_round_robin_and_avoid)
{
    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1};
    struct sv_route_rule_spec rule = {.backends = &be, .n_backends = 1};
    struct sv_generation *g = one_rule(80, &rule, 3, 3);
    REQUIRE(g);
    size_t n;
    const struct sv_route_endpoint *eps = sv_generation_endpoints(g, 0, &n);
    REQUIRE(n == 3); /* duplicates were dropped */
    uint32_t cursor = 0;
    for (int i = 0; i < 7; i++)
        CHECK(sv_generation_pick_endpoint(g, 0, &cursor, NULL) == &eps[i % 3]);
    /* avoid: the endpoint the cursor points at is skipped */
    cursor = 1;
    CHECK(sv_generation_pick_endpoint(g, 0, &cursor, &eps[1]) == &eps[2]);
    /* avoid compares addresses, not pointers */
    struct sv_route_endpoint copy = eps[0];
    cursor = 3; /* any value is valid */
    CHECK(sv_generation_pick_endpoint(g, 0, &cursor, &copy) == &eps[1]);
    /* unknown set */
    CHECK(sv_generation_pick_endpoint(g, 99, &cursor, NULL) == NULL);
    CHECK_EQ_INT(sv_generation_n_backend_sets(g), 3);
    CHECK_EQ_INT(sv_generation_find_backend_set(g, S("set2")), 2);
    CHECK_EQ_INT(sv_generation_find_backend_set(g, S("nope")), -1);
    struct sv_str nm = sv_generation_backend_set_name(g, 1);
    CHECK_EQ_MEM(nm.ptr, nm.len, "set1");
    sv_generation_free_unpublished(g);

    g = one_rule(80, &rule, 1, 1);
    REQUIRE(g);
    eps = sv_generation_endpoints(g, 0, &n);
    REQUIRE(n == 1);
    cursor = 0;
    CHECK(sv_generation_pick_endpoint(g, 0, &cursor, &eps[0]) == NULL); /* only the avoided */
    CHECK(sv_generation_pick_endpoint(g, 0, &cursor, NULL) == &eps[0]);
    sv_generation_free_unpublished(g);

    g = one_rule(80, &rule, 1, 0);
    REQUIRE(g);
    CHECK(sv_generation_pick_endpoint(g, 0, &cursor, NULL) == NULL); /* no endpoints: 503 */
    sv_generation_free_unpublished(g);
}

TEST(routing_replace_prefix_table)
{
    /* GATEWAY_API_RULES.md §4 (HR:1188-1200 and the rewrite-path conformance cases) */
    static const struct {
        const char *prefix, *path, *repl, *want;
    } rows[] = {
        {"/foo", "/foo/bar", "/xyz", "/xyz/bar"},
        {"/foo", "/foo/bar", "/xyz/", "/xyz/bar"},
        {"/foo/", "/foo/bar", "/xyz", "/xyz/bar"},
        {"/foo/", "/foo/bar", "/xyz/", "/xyz/bar"},
        {"/foo", "/foo", "/xyz", "/xyz"},
        {"/foo", "/foo/", "/xyz", "/xyz/"},
        {"/foo/", "/foo", "/xyz", "/xyz"},
        {"/foo/", "/foo/", "/xyz/", "/xyz/"},
        {"/foo", "/foo", "", "/"},
        {"/foo", "/foo/", "", "/"},
        {"/foo", "/foo", "/", "/"},
        {"/foo", "/foo/", "/", "/"},
        {"/foo", "/foo/bar", "", "/bar"},
        {"/foo", "/foo/bar", "/", "/bar"},
        {"/strip-prefix", "/strip-prefix/three", "/", "/three"},
        {"/prefix/one", "/prefix/one/two", "/one", "/one/two"},
        {"/", "/foo", "/xyz", "/xyz/foo"},
        {"/", "/", "/xyz", "/xyz/"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        /* go through a real lookup so prefix_len comes from the table */
        struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1};
        struct sv_route_rewrite_spec rw = {.path = {SV_ROUTE_PATH_MOD_PREFIX, S(rows[i].repl)}};
        struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = S(rows[i].prefix)};
        struct sv_route_rule_spec rule = {.matches = &m, .n_matches = 1, .rewrite = &rw,
                                          .backends = &be, .n_backends = 1};
        struct sv_generation *g = one_rule(80, &rule, 1, 1);
        REQUIRE(g);
        struct sv_route_result res;
        if (rt_lookup(g, "127.0.0.1", 80, "GET", "h", rows[i].path, NULL, 0, &res) != 0) {
            FAIL("row %zu: no match", i);
            sv_generation_free_unpublished(g);
            continue;
        }
        REQUIRE(res.action->ext->rewrite);
        char out[64];
        ssize_t n = sv_route_apply_path_mod(&res.action->ext->rewrite->path, &res, S(rows[i].path),
                                            out, sizeof(out));
        if (n < 0 || (size_t)n != strlen(rows[i].want) || memcmp(out, rows[i].want, (size_t)n))
            FAIL("row %zu: prefix %s path %s repl \"%s\": got \"%.*s\" want %s", i,
                 rows[i].prefix, rows[i].path, rows[i].repl, n < 0 ? 0 : (int)n, out,
                 rows[i].want);
        /* too small a buffer */
        CHECK_EQ_INT(sv_route_apply_path_mod(&res.action->ext->rewrite->path, &res, S(rows[i].path),
                                             out, strlen(rows[i].want) - 1),
                     -ENOSPC);
        sv_generation_free_unpublished(g);
    }
    char out[32];
    struct sv_route_path_mod full = {SV_ROUTE_PATH_MOD_FULL, S("/new")};
    ssize_t n = sv_route_apply_path_mod(&full, NULL, S("/old/x"), out, sizeof(out));
    CHECK_EQ_MEM(out, n, "/new");
    n = sv_route_apply_path_mod(NULL, NULL, S("/old/x"), out, sizeof(out));
    CHECK_EQ_MEM(out, n, "/old/x");
}

struct redirect_row {
    const char *scheme, *hostname;
    uint16_t port;
    enum sv_route_path_mod_type pt;
    const char *pv;
    uint16_t status;
    /* request */
    const char *req_scheme, *req_host, *target;
    /* expected */
    const char *want;
    int want_status;
};

TEST(routing_redirect_location)
{
    static const struct redirect_row rows[] = {
        /* listener on 8080, only hostname: keep the listener port */
        {"", "example.org", 0, SV_ROUTE_PATH_MOD_NONE, "", 0, "http", "h:8080", "/p/a?x=1",
         "http://example.org:8080/p/a?x=1", 302},
        /* scheme https alone: well-known port, left out */
        {"https", "", 0, SV_ROUTE_PATH_MOD_NONE, "", 301, "http", "h.example:8080", "/p",
         "https://h.example/p", 301},
        {"http", "", 0, SV_ROUTE_PATH_MOD_NONE, "", 0, "http", "h", "/p", "http://h/p", 302},
        {"", "", 8443, SV_ROUTE_PATH_MOD_NONE, "", 307, "https", "h:1", "/p", "https://h:8443/p",
         307},
        {"https", "", 443, SV_ROUTE_PATH_MOD_NONE, "", 308, "http", "h", "/p", "https://h/p",
         308},
        {"http", "x", 443, SV_ROUTE_PATH_MOD_NONE, "", 0, "http", "h", "/p", "http://x:443/p",
         302},
        {"", "", 0, SV_ROUTE_PATH_MOD_FULL, "/full", 303, "http", "h", "/p/q?z", "http://h:8080/full?z",
         303},
        {"", "", 0, SV_ROUTE_PATH_MOD_PREFIX, "/new", 0, "http", "h", "/p/q",
         "http://h:8080/new/q", 302},
        {"", "", 0, SV_ROUTE_PATH_MOD_NONE, "", 0, "http", "[::1]:8080", "/p",
         "http://[::1]:8080/p", 302},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const struct redirect_row *w = &rows[i];
        struct sv_route_redirect_spec rd = {S(w->scheme), S(w->hostname), w->port,
                                            {w->pt, S(w->pv)}, w->status};
        struct sv_route_rule_spec rule = {.redirect = &rd};
        struct sv_generation *g = one_rule(8080, &rule, 0, 0);
        REQUIRE(g);
        struct sv_route_result res;
        REQUIRE(rt_lookup(g, "127.0.0.1", 8080, "GET", w->req_host, w->target, NULL, 0, &res) ==
                0);
        const char *q = strchr(w->target, '?');
        struct sv_str path = q ? sv_str_make(w->target, (size_t)(q - w->target)) : S(w->target);
        struct sv_str query = q ? S(q + 1) : S("");
        char out[128];
        ssize_t n = sv_route_redirect_location(&res, S(w->req_scheme), S(w->req_host), path,
                                               query, out, sizeof(out));
        if (n < 0 || (size_t)n != strlen(w->want) || memcmp(out, w->want, (size_t)n))
            FAIL("row %zu: got \"%.*s\" want %s", i, n < 0 ? 0 : (int)n, out, w->want);
        CHECK_EQ_INT(sv_route_redirect_status(&res), w->want_status);
        CHECK_EQ_INT(sv_route_redirect_location(&res, S(w->req_scheme), S(w->req_host), path,
                                                query, out, 5),
                     -ENOSPC);
        sv_generation_free_unpublished(g);
    }
}

TEST(routing_filters_are_data)
{
    struct sv_route_header_kv set[] = {{S("X-Set"), S("1")}};
    struct sv_route_header_kv add[] = {{S("X-Add"), S("a")}, {S("X-Add2"), S("b")}};
    struct sv_str rm[] = {S("X-Remove")};
    struct sv_route_header_mods_spec req = {set, 1, add, 2, rm, 1};
    struct sv_route_header_mods_spec resp = {set, 1, NULL, 0, NULL, 0};
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1, .app_proto = SV_ROUTE_APP_H2C,
         .request_mods = &req},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 1, .weight = 1, .app_proto = SV_ROUTE_APP_WS},
    };
    struct sv_route_mirror_spec mir[] = {{.set_id = 1, .numerator = 25}};
    struct sv_route_rewrite_spec rw = {.hostname = S("backend.internal")};
    struct sv_route_rule_spec rule = {.request_mods = &req, .response_mods = &resp,
                                      .rewrite = &rw, .mirrors = mir, .n_mirrors = 1,
                                      .backends = be, .n_backends = 2,
                                      .request_timeout_ms = 5000, .backend_timeout_ms = 1000};
    struct sv_generation *g = one_rule(80, &rule, 2, 1);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    const struct sv_route_action *a = res.action;
    REQUIRE(a->ext->request_mods && a->ext->response_mods);
    CHECK_EQ_INT(a->ext->request_mods->n_set, 1);
    CHECK_EQ_MEM(a->ext->request_mods->set[0].name.ptr, a->ext->request_mods->set[0].name.len, "X-Set");
    CHECK_EQ_INT(a->ext->request_mods->n_add, 2);
    CHECK_EQ_MEM(a->ext->request_mods->add[1].value.ptr, a->ext->request_mods->add[1].value.len, "b");
    CHECK_EQ_INT(a->ext->request_mods->n_remove, 1);
    CHECK_EQ_INT(a->ext->response_mods->n_add, 0);
    REQUIRE(a->ext->rewrite);
    CHECK_EQ_MEM(a->ext->rewrite->hostname.ptr, a->ext->rewrite->hostname.len, "backend.internal");
    CHECK_EQ_INT(a->ext->rewrite->path.type, SV_ROUTE_PATH_MOD_NONE);
    CHECK_EQ_INT(a->ext->n_mirrors, 1);
    CHECK_EQ_INT(a->ext->mirrors[0].numerator, 25);
    CHECK_EQ_INT(a->ext->mirrors[0].denominator, 100);
    int mirrored = 0;
    for (uint64_t r = 0; r < 1000; r++)
        mirrored += sv_route_mirror_pick(&a->ext->mirrors[0], r);
    CHECK_EQ_INT(mirrored, 250);
    CHECK_EQ_INT(a->backends[0].app_proto, SV_ROUTE_APP_H2C);
    CHECK(a->backends[0].request_mods != NULL);
    CHECK(a->backends[1].request_mods == NULL);
    CHECK_EQ_INT(a->backends[1].app_proto, SV_ROUTE_APP_WS);
    CHECK_EQ_INT(a->ext->request_timeout_ms, 5000);
    CHECK_EQ_INT(a->ext->backend_timeout_ms, 1000);
    CHECK(a->ext->redirect == NULL);
    CHECK_EQ_INT(a->ext->fixed_status, 0);
    sv_generation_free_unpublished(g);
}

TEST(routing_endpoint_only_update)
{
    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 1, .weight = 1};
    struct sv_route_rule_spec rule = {.backends = &be, .n_backends = 1};
    struct sv_generation *g1 = one_rule(80, &rule, 2, 2);
    REQUIRE(g1);
    struct sv_route_endpoint neweps[3];
    const char *ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.1"}; /* one duplicate */
    for (int i = 0; i < 3; i++) {
        union sv_route_sockaddr sa = rt_sa(ips[i], 8080);
        neweps[i].addr = sa;
        neweps[i].addrlen = rt_salen(&sa);
    }
    struct sv_route_endpoint_update up[] = {{1, neweps, 3}, {0, NULL, 0}};
    char err[256] = "";
    struct sv_generation *g2 = sv_generation_new_with_endpoints(g1, up, 2, err, sizeof(err));
    REQUIRE(g2);
    CHECK(sv_generation_same_routes(g1, g2));
    size_t n;
    const struct sv_route_endpoint *e = sv_generation_endpoints(g2, 1, &n);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(e[0].addr.in.sin_addr.s_addr, htonl(0x0a000001));
    CHECK_EQ_INT(e[1].addr.in.sin_addr.s_addr, htonl(0x0a000002));
    CHECK(sv_generation_endpoints(g2, 0, &n) == NULL || n == 0);
    uint32_t cur = 0;
    CHECK(sv_generation_pick_endpoint(g2, 0, &cur, NULL) == NULL); /* now 503 */
    /* the old generation is untouched */
    sv_generation_endpoints(g1, 1, &n);
    CHECK_EQ_INT(n, 2);
    sv_generation_endpoints(g1, 0, &n);
    CHECK_EQ_INT(n, 2);
    /* routing still works through the shared table */
    struct sv_route_result res;
    CHECK_EQ_INT(rt_lookup(g2, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res), 0);
    /* a large update with duplicates: first occurrences kept, in order */
    struct sv_route_endpoint many[60];
    for (int i = 0; i < 60; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), i % 2 ? "fd00::%d" : "10.1.0.%d", (i % 40) / 2 + 1);
        union sv_route_sockaddr sa = rt_sa(ip, 80);
        many[i].addr = sa;
        many[i].addrlen = rt_salen(&sa);
    }
    struct sv_route_endpoint_update upm = {1, many, 60};
    struct sv_generation *g3 = sv_generation_new_with_endpoints(g1, &upm, 1, err, sizeof(err));
    REQUIRE(g3);
    e = sv_generation_endpoints(g3, 1, &n);
    CHECK_EQ_INT(n, 40);
    for (size_t i = 0; i < n && i < 40; i++)
        CHECK(memcmp(&e[i].addr, &many[i].addr, sizeof(e[i].addr)) == 0);
    sv_generation_free_unpublished(g3);
    /* errors */
    struct sv_route_endpoint_update bad[] = {{7, NULL, 0}};
    CHECK(sv_generation_new_with_endpoints(g1, bad, 1, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "7") != NULL);
    struct sv_route_endpoint zero;
    memset(&zero, 0, sizeof(zero));
    struct sv_route_endpoint_update bad2[] = {{0, &zero, 1}};
    CHECK(sv_generation_new_with_endpoints(g1, bad2, 1, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "set0") != NULL);
    /* freeing the first keeps the shared table alive for the second (ASan would tell) */
    sv_generation_free_unpublished(g1);
    CHECK_EQ_INT(rt_lookup(g2, "127.0.0.1", 80, "GET", "h", "/p/x", NULL, 0, &res), 0);
    sv_generation_free_unpublished(g2);
}

/* Reference application of one modifier set to "name:value" lines (remove, set, add), used to
 * check that the combined rule+backend set equals applying the two in turn. */
static size_t apply_mods(const struct sv_http_header_mods *m, char lines[][32], size_t n)
{
    char out[16][32];
    size_t k = 0;
    if (!m)
        return n;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(lines[i], ':');
        struct sv_str name = sv_str_make(lines[i], (size_t)(colon - lines[i]));
        bool drop = false;
        for (uint32_t j = 0; j < m->n_remove; j++)
            drop |= sv_str_eq_nocase(m->remove[j], name);
        for (uint32_t j = 0; j < m->n_set; j++)
            drop |= sv_str_eq_nocase(m->set[j].name, name);
        if (!drop)
            snprintf(out[k++], 32, "%s", lines[i]);
    }
    for (uint32_t j = 0; j < m->n_set; j++)
        snprintf(out[k++], 32, "%.*s:%.*s", (int)m->set[j].name.len, m->set[j].name.ptr,
                 (int)m->set[j].value.len, m->set[j].value.ptr);
    for (uint32_t j = 0; j < m->n_add; j++)
        snprintf(out[k++], 32, "%.*s:%.*s", (int)m->add[j].name.len, m->add[j].name.ptr,
                 (int)m->add[j].value.len, m->add[j].value.ptr);
    memcpy(lines, out, k * 32);
    return k;
}

/* Stable sort by header name (case-insensitive): the order of different names does not matter,
 * the order of values of one name does. */
static void sort_by_name(char lines[][32], size_t n)
{
    for (size_t i = 1; i < n; i++) {
        char tmp[32];
        memcpy(tmp, lines[i], 32);
        size_t j = i;
        while (j > 0 && sv_ascii_lower(lines[j - 1][0]) > sv_ascii_lower(tmp[0])) {
            memcpy(lines[j], lines[j - 1], 32);
            j--;
        }
        memcpy(lines[j], tmp, 32);
    }
}

TEST(routing_combined_header_mods)
{
    struct sv_route_header_kv rset[] = {{S("A"), S("rule")}, {S("B"), S("rule")}};
    struct sv_route_header_kv radd[] = {{S("C"), S("rule")}, {S("D"), S("rule")}};
    struct sv_str rrm[] = {S("E")};
    struct sv_route_header_mods_spec rule_mods = {rset, 2, radd, 2, rrm, 1};
    struct sv_route_header_kv bset[] = {{S("b"), S("backend")}, {S("E"), S("backend")}};
    struct sv_route_header_kv badd[] = {{S("A"), S("backend")}, {S("C"), S("backend")}};
    struct sv_str brm[] = {S("d"), S("F")};
    struct sv_route_header_mods_spec be_mods = {bset, 2, badd, 2, brm, 2};
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1, .request_mods = &be_mods,
         .response_mods = &be_mods},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1},
    };
    struct sv_route_rule_spec rule = {.request_mods = &rule_mods, .backends = be, .n_backends = 2};
    struct sv_generation *g = one_rule(80, &rule, 1, 1);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    const struct sv_route_action *a = res.action;
    /* backend 1 has none of its own: the rule's set as is */
    CHECK(a->backends[1].combined_request_mods == a->ext->request_mods);
    CHECK(a->backends[1].combined_response_mods == NULL);
    /* no rule response mods: the backend's */
    CHECK(a->backends[0].combined_response_mods == a->backends[0].response_mods);
    const struct sv_http_header_mods *c = a->backends[0].combined_request_mods;
    REQUIRE(c && c != a->ext->request_mods);

    char seq[16][32] = {"A:orig", "B:orig", "C:orig", "D:orig", "E:orig", "F:orig", "G:orig",
                        "a:again"};
    char one[16][32];
    memcpy(one, seq, sizeof(seq));
    size_t ns = apply_mods(a->ext->request_mods, seq, 8);
    ns = apply_mods(a->backends[0].request_mods, seq, ns);
    size_t n1 = apply_mods(c, one, 8);
    CHECK_EQ_INT(n1, ns);
    sort_by_name(seq, ns);
    sort_by_name(one, n1);
    for (size_t i = 0; i < ns && i < n1; i++)
        CHECK_EQ_STR(one[i], seq[i]);
    /* spot checks of the expected result */
    bool has_g = false, has_f = false, has_d = false;
    for (size_t i = 0; i < ns; i++) {
        has_g |= strcmp(seq[i], "G:orig") == 0;
        has_f |= seq[i][0] == 'F';
        has_d |= seq[i][0] == 'D';
    }
    CHECK(has_g && !has_f && !has_d);
    sv_generation_free_unpublished(g);
}

TEST(routing_backend_redirect_rewrite)
{
    /* rule rewrite sets the host; backend 0 rewrites the path only (host kept from the rule),
     * backend 1 redirects, backend 2 has no filters of its own */
    struct sv_route_rewrite_spec rule_rw = {.hostname = S("rule.test")};
    struct sv_route_rewrite_spec be_rw = {.path = {SV_ROUTE_PATH_MOD_PREFIX, S("/new")}};
    struct sv_route_redirect_spec be_rd = {.hostname = S("elsewhere.test"), .status = 0,
                                           .path = {SV_ROUTE_PATH_MOD_FULL, S("/moved")}};
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1, .rewrite = &be_rw},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1, .redirect = &be_rd},
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1},
    };
    struct sv_route_rule_spec rule = {.rewrite = &rule_rw, .backends = be, .n_backends = 3};
    struct sv_generation *g = one_rule(80, &rule, 1, 1);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p/x", NULL, 0, &res) == 0);
    const struct sv_route_action *a = res.action;
    REQUIRE(a && a->n_backends == 3 && a->ext->rewrite && !a->ext->redirect);
    const struct sv_route_rewrite *rw = a->backends[0].rewrite;
    REQUIRE(rw && !a->backends[0].redirect);
    CHECK_EQ_MEM(rw->hostname.ptr, rw->hostname.len, "rule.test");
    CHECK_EQ_INT(rw->path.type, SV_ROUTE_PATH_MOD_PREFIX);
    char out[64];
    ssize_t n = sv_route_apply_path_mod(&rw->path, &res, S("/p/x"), out, sizeof(out));
    REQUIRE(n > 0);
    CHECK_EQ_MEM(out, (size_t)n, "/new/x");
    const struct sv_route_redirect *rd = a->backends[1].redirect;
    REQUIRE(rd && !a->backends[1].rewrite);
    CHECK_EQ_INT(rd->status, 302);
    CHECK_EQ_MEM(rd->hostname.ptr, rd->hostname.len, "elsewhere.test");
    CHECK(a->backends[2].redirect == NULL && a->backends[2].rewrite == NULL);
    /* the backend's redirect in place of the rule's gives the Location the data plane sends */
    struct sv_route_action ba = *a;
    struct sv_route_action_ext bx = *a->ext;
    bx.redirect = rd;
    ba.ext = &bx;
    struct sv_route_result br = res;
    br.action = &ba;
    n = sv_route_redirect_location(&br, S("http"), S("h:80"), S("/p/x"), S(""), out, sizeof(out));
    REQUIRE(n > 0);
    CHECK_EQ_MEM(out, (size_t)n, "http://elsewhere.test/moved");
    sv_generation_free_unpublished(g);

    /* refused: ReplacePrefixMatch on a backendRef under an Exact match; redirect + rewrite on
     * one backendRef */
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    REQUIRE(bind >= 0);
    REQUIRE(sv_route_builder_add_backend_set(b, S("set0")) == 0);
    struct sv_route_route_spec rs = {S("ns"), S("r"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    REQUIRE(r >= 0);
    struct sv_route_match_spec exact = {.path_type = SV_ROUTE_PATH_EXACT, .path = S("/e")};
    struct sv_route_backend_spec one = {.kind = SV_ROUTE_BACKEND_SET, .weight = 1,
                                        .rewrite = &be_rw};
    struct sv_route_rule_spec bad = {.matches = &exact, .n_matches = 1, .backends = &one,
                                     .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(b, (uint32_t)r, &bad), -EINVAL);
    CHECK(strstr(sv_route_builder_error(b), "ReplacePrefixMatch") != NULL);
    one.redirect = &be_rd;
    bad.matches = NULL;
    bad.n_matches = 0;
    CHECK_EQ_INT(sv_route_builder_add_rule(b, (uint32_t)r, &bad), -EINVAL);
    CHECK(strstr(sv_route_builder_error(b), "URLRewrite") != NULL);
    sv_route_builder_free(b);
}

TEST(routing_write_json)
{
    struct sv_route_header_kv set[] = {{S("X-\"Q\""), S("v\n")}};
    struct sv_route_header_mods_spec mods = {set, 1, NULL, 0, NULL, 0};
    struct sv_route_backend_spec be[] = {
        {.kind = SV_ROUTE_BACKEND_SET, .set_id = 1, .weight = 3, .app_proto = SV_ROUTE_APP_H2C},
        {.kind = SV_ROUTE_BACKEND_INVALID, .weight = 1},
    };
    struct sv_route_rule_spec rule = {.request_mods = &mods, .backends = be, .n_backends = 2,
                                      .request_timeout_ms = 1500};
    struct sv_generation *g = one_rule(8080, &rule, 2, 2);
    REQUIRE(g);
    char small[16];
    size_t need = sv_generation_write_json(g, small, sizeof(small));
    CHECK(need >= sizeof(small));
    CHECK_EQ_INT(strlen(small), sizeof(small) - 1); /* truncated, NUL-terminated */
    char *buf = malloc(need + 1);
    REQUIRE(buf);
    CHECK_EQ_INT(sv_generation_write_json(g, buf, need + 1), need);
    CHECK_EQ_INT(strlen(buf), need);
    cJSON *j = cJSON_Parse(buf);
    if (!j)
        FAIL("not JSON: %s", buf);
    REQUIRE(j);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "binds")), 1);
    cJSON *bind0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "binds"), 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(bind0, "address")), "127.0.0.1:8080");
    cJSON *act = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(act, "route")), "ns/r");
    CHECK_EQ_INT(cJSON_GetObjectItem(act, "requestTimeoutMs")->valuedouble, 1500);
    cJSON *hdr = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(act, "requestHeaders"), "set"), 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetArrayItem(hdr, 0)), "X-\"Q\"");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetArrayItem(hdr, 1)), "v\n");
    cJSON *b0 = cJSON_GetArrayItem(cJSON_GetObjectItem(act, "backends"), 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b0, "set")), "set1");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b0, "appProtocol")), "h2c");
    cJSON *b1 = cJSON_GetArrayItem(cJSON_GetObjectItem(act, "backends"), 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(b1, "invalid")));
    cJSON *sets = cJSON_GetObjectItem(j, "backendSets");
    CHECK_EQ_INT(cJSON_GetArraySize(sets), 2);
    cJSON *eps = cJSON_GetObjectItem(cJSON_GetArrayItem(sets, 1), "endpoints");
    CHECK_EQ_INT(cJSON_GetArraySize(eps), 2);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetArrayItem(eps, 1)), "127.0.2.2:9001");
    cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "listeners"), 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(l0, "port")->valuedouble, 8080);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(l0, "hosts")), 1);
    cJSON_Delete(j);
    free(buf);
    sv_generation_free_unpublished(g);

    /* hostnames, wildcards and IPv6 in a quick-mode generation */
    const char *l[] = {"[::1]:8081"};
    const char *r[] = {"*.example.com/a=127.0.0.2:1", "x.example.com/=[::1]:2", "/=127.0.0.3:3"};
    char err[256];
    g = sv_quick_build(l, 1, r, 3, err, sizeof(err));
    REQUIRE(g);
    need = sv_generation_write_json(g, NULL, 0);
    buf = malloc(need + 1);
    REQUIRE(buf);
    sv_generation_write_json(g, buf, need + 1);
    j = cJSON_Parse(buf);
    if (!j)
        FAIL("not JSON: %s", buf);
    REQUIRE(j);
    CHECK(strstr(buf, "\"hostname\":\"*.example.com\"") != NULL);
    CHECK(strstr(buf, "\"hostname\":\"x.example.com\"") != NULL);
    CHECK(strstr(buf, "\"[::1]:8081\"") != NULL);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(
                     cJSON_GetArrayItem(cJSON_GetObjectItem(j, "listeners"), 0), "hosts")),
                 3);
    cJSON_Delete(j);
    free(buf);
    sv_generation_free_unpublished(g);
}

/* Identical weighted-backend arrays are stored once; any difference (set, weight, protocol,
 * backendRef filter) keeps its own array; picking is unchanged. */
TEST(routing_identical_backend_arrays_are_shared)
{
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 8080);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("L"), S(""));
    int s0 = sv_route_builder_add_backend_set(b, S("s0")), s1 = sv_route_builder_add_backend_set(b, S("s1"));
    REQUIRE(l >= 0 && s0 >= 0 && s1 >= 0);
    struct sv_route_route_spec rs = {S("ns"), S("r"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    REQUIRE(sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S("")) == 0);
    struct sv_route_header_kv kv = {S("x-b"), S("1")};
    struct sv_route_header_mods_spec mods = {.set = &kv, .n_set = 1};
#define BE(set, w, proto, req_mods)                                                                 \
    {.kind = SV_ROUTE_BACKEND_SET, .set_id = (uint32_t)(set), .weight = (w), .app_proto = (proto), \
     .request_mods = (req_mods)}
    const struct sv_route_backend_spec two[2] = {BE(s0, 3, SV_ROUTE_APP_HTTP1, NULL),
                                                 BE(s1, 1, SV_ROUTE_APP_HTTP1, NULL)};
    const struct sv_route_backend_spec other_weight[2] = {BE(s0, 3, SV_ROUTE_APP_HTTP1, NULL),
                                                          BE(s1, 2, SV_ROUTE_APP_HTTP1, NULL)};
    const struct sv_route_backend_spec h2c[1] = {BE(s0, 3, SV_ROUTE_APP_H2C, NULL)};
    const struct sv_route_backend_spec plain[1] = {BE(s0, 3, SV_ROUTE_APP_HTTP1, NULL)};
    const struct sv_route_backend_spec filtered[1] = {BE(s0, 3, SV_ROUTE_APP_HTTP1, &mods)};
#undef BE
    static const char *const paths[] = {"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"};
    const struct {
        const struct sv_route_backend_spec *be;
        uint32_t n;
    } rules[] = {{two, 2}, {two, 2}, {other_weight, 2}, {h2c, 1},
                 {plain, 1}, {plain, 1}, {filtered, 1}, {filtered, 1}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(rules); i++) {
        struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = S(paths[i])};
        struct sv_route_rule_spec rule = {.matches = &m, .n_matches = 1,
                                          .backends = rules[i].be, .n_backends = rules[i].n};
        REQUIRE(sv_route_builder_add_rule(b, (uint32_t)r, &rule) == (int)i);
    }
    char err[256];
    struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
    REQUIRE(g);
    const struct sv_route_action *a[SV_ARRAY_SIZE(paths)];
    for (size_t i = 0; i < SV_ARRAY_SIZE(paths); i++) {
        struct sv_route_result res;
        REQUIRE(rt_lookup(g, "127.0.0.1", 8080, "GET", "x", paths[i], NULL, 0, &res) == 0);
        a[i] = res.action;
        CHECK_EQ_INT(a[i]->rule_index, i);
    }
    CHECK(a[0]->backends == a[1]->backends);     /* same content: shared */
    CHECK(a[0]->_cum_weight == a[1]->_cum_weight);
    CHECK(a[0]->backends != a[2]->backends);     /* another weight */
    CHECK(a[3]->backends != a[4]->backends);     /* another protocol */
    CHECK(a[4]->backends == a[5]->backends);
    CHECK(a[6]->backends != a[7]->backends);     /* backendRef filters: copied per rule */
    CHECK(a[6]->backends != a[4]->backends);
    CHECK_EQ_INT(a[2]->backends[1].weight, 2);
    CHECK_EQ_INT(a[2]->_cum_weight[1], 5);
    CHECK_EQ_INT(a[3]->backends[0].app_proto, SV_ROUTE_APP_H2C);
    CHECK(a[6]->backends[0].request_mods != NULL);
    /* picking through a shared array: 3/4 to s0, 1/4 to s1 */
    int to_s0 = 0;
    for (uint64_t rnd = 0; rnd < 4; rnd++)
        to_s0 += sv_route_pick_backend(a[1], rnd)->set_id == (uint32_t)s0;
    CHECK_EQ_INT(to_s0, 3);
    sv_generation_free_unpublished(g);
}

/* The filter/timeout block of an action is shared by every rule whose block has the same content
 * (rules without any share one); a one-backend action keeps no prefix sums and still picks its
 * backend unless its weight is 0. */
TEST(routing_action_ext_blocks_are_shared)
{
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 8080);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("L"), S(""));
    int s0 = sv_route_builder_add_backend_set(b, S("s0"));
    REQUIRE(l >= 0 && s0 >= 0);
    struct sv_route_route_spec rs = {S("ns"), S("r"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    REQUIRE(sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S("")) == 0);
    const struct sv_route_backend_spec one[1] = {{.kind = SV_ROUTE_BACKEND_SET,
                                                  .set_id = (uint32_t)s0, .weight = 2}};
    const struct sv_route_backend_spec zero[1] = {{.kind = SV_ROUTE_BACKEND_SET,
                                                   .set_id = (uint32_t)s0, .weight = 0}};
    static const char *const paths[] = {"/a", "/b", "/c", "/d", "/e", "/f"};
    const struct {
        uint64_t req_ms;
        uint16_t status;
        const struct sv_route_backend_spec *be;
    } rules[] = {{0, 0, one}, {0, 0, zero}, {2000, 0, one}, {2000, 0, one}, {3000, 0, one},
                 {0, 503, NULL}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(rules); i++) {
        struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = S(paths[i])};
        struct sv_route_rule_spec rule = {.matches = &m, .n_matches = 1,
                                          .backends = rules[i].be, .n_backends = rules[i].be ? 1 : 0,
                                          .request_timeout_ms = rules[i].req_ms,
                                          .fixed_status = rules[i].status};
        REQUIRE(sv_route_builder_add_rule(b, (uint32_t)r, &rule) == (int)i);
    }
    char err[256];
    struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
    REQUIRE(g);
    const struct sv_route_action *a[SV_ARRAY_SIZE(paths)];
    for (size_t i = 0; i < SV_ARRAY_SIZE(paths); i++) {
        struct sv_route_result res;
        REQUIRE(rt_lookup(g, "127.0.0.1", 8080, "GET", "x", paths[i], NULL, 0, &res) == 0);
        a[i] = res.action;
        REQUIRE(a[i]->ext);
    }
    CHECK(a[0]->ext == a[1]->ext); /* nothing configured: one shared block */
    CHECK_EQ_INT(a[0]->ext->request_timeout_ms, 0);
    CHECK(a[2]->ext == a[3]->ext); /* same timeout */
    CHECK_EQ_INT(a[2]->ext->request_timeout_ms, 2000);
    CHECK(a[2]->ext != a[0]->ext && a[4]->ext != a[2]->ext);
    CHECK_EQ_INT(a[4]->ext->request_timeout_ms, 3000);
    CHECK_EQ_INT(a[5]->ext->fixed_status, 503);
    CHECK(a[5]->ext != a[0]->ext);
    /* one backend: no prefix sums; weight 0 is never picked, no backends picks nothing */
    CHECK(a[0]->_cum_weight == NULL);
    for (uint64_t rnd = 0; rnd < 4; rnd++) {
        CHECK(sv_route_pick_backend(a[0], rnd) == &a[0]->backends[0]);
        CHECK(sv_route_pick_backend(a[1], rnd) == NULL);
        CHECK(sv_route_pick_backend(a[5], rnd) == NULL);
    }
    sv_generation_free_unpublished(g);
}

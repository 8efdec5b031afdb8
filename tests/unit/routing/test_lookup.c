/* Lookup: listener selection, host buckets, path/header/query/method matches, precedence. */
#include "../harness.h"
#include "rt_helpers.h"

#define S(x) sv_str_cstr(x)

struct fx {
    struct sv_route_builder *b;
    int set; /* one backend set shared by every rule */
};

static void fx_init(struct fx *f)
{
    f->b = sv_route_builder_new();
    f->set = sv_route_builder_add_backend_set(f->b, S("ns/svc:80"));
    union sv_route_sockaddr ep = rt_sa("127.0.0.10", 8080);
    sv_route_builder_add_endpoint(f->b, (uint32_t)f->set, &ep.sa, rt_salen(&ep));
}

static int fx_bind(struct fx *f, const char *ip, uint16_t port)
{
    union sv_route_sockaddr sa = rt_sa(ip, port);
    return sv_route_builder_add_bind(f->b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
}

static int fx_listener(struct fx *f, int bind, const char *name, const char *host)
{
    return sv_route_builder_add_listener(f->b, (uint32_t)bind, S(name), S(host));
}

static int fx_route(struct fx *f, const char *ns, const char *name, int64_t created)
{
    struct sv_route_route_spec rs = {S(ns), S(name), created};
    return sv_route_builder_add_route(f->b, &rs);
}

/* One rule with a single match. */
static int fx_rule(struct fx *f, int route, enum sv_route_path_type pt, const char *path,
                   const char *method, const struct sv_route_kv_match *hdrs, uint32_t nh,
                   const struct sv_route_kv_match *qs, uint32_t nq)
{
    struct sv_route_match_spec m = {pt, S(path), hdrs, nh, qs, nq, S(method ? method : "")};
    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = (uint32_t)f->set,
                                       .weight = 1};
    struct sv_route_rule_spec r = {.matches = &m, .n_matches = 1, .backends = &be, .n_backends = 1};
    return sv_route_builder_add_rule(f->b, (uint32_t)route, &r);
}

static int fx_prefix(struct fx *f, int route, const char *path)
{
    return fx_rule(f, route, SV_ROUTE_PATH_PREFIX, path, NULL, NULL, 0, NULL, 0);
}

static struct sv_generation *fx_finish(struct fx *f)
{
    char err[256] = "";
    struct sv_generation *g = sv_route_builder_finish(f->b, err, sizeof(err));
    if (!g)
        FAIL("finish: %s", err);
    return g;
}

#define WHO(g, host, target) rt_who((g), "127.0.0.1", 80, "GET", (host), (target), NULL, 0)

TEST(routing_listener_selection)
{
    struct fx f;
    fx_init(&f);
    int b80 = fx_bind(&f, "127.0.0.1", 80);
    int b81 = fx_bind(&f, "127.0.0.2", 80);
    REQUIRE(b80 == 0 && b81 == 1);
    const char *lh[] = {"foo.example.com", "*.example.com", "*.a.example.com", ""};
    const char *ln[] = {"L-exact", "L-wild", "L-wild2", "L-any"};
    for (int i = 0; i < 4; i++) {
        int l = fx_listener(&f, b80, ln[i], lh[i]);
        CHECK_EQ_INT(l, i);
        int r = fx_route(&f, "ns", ln[i], 1);
        CHECK_EQ_INT(sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S("")), 0);
        CHECK_EQ_INT(fx_prefix(&f, r, i == 0 ? "/only" : "/"), 0);
    }
    /* the second bind has only an exact listener */
    int l2 = fx_listener(&f, b81, "L2", "bar.example.com");
    int r2 = fx_route(&f, "ns", "L2", 1);
    sv_route_builder_attach(f.b, (uint32_t)r2, (uint32_t)l2, S(""));
    fx_prefix(&f, r2, "/");
    /* same hostname twice on one bind is refused */
    CHECK_EQ_INT(fx_listener(&f, b80, "dup", "FOO.example.com"), -EEXIST);
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);

    static const struct {
        const char *host, *target, *want;
    } rows[] = {
        {"foo.example.com", "/only/x", "ns/L-exact#0"},
        {"FOO.Example.COM:8080", "/only", "ns/L-exact#0"},
        {"foo.example.com.", "/only", "ns/L-exact#0"},
        {"foo.example.com", "/other", "404"}, /* isolation: never another listener */
        {"bar.example.com", "/x", "ns/L-wild#0"},
        {"x.y.example.com", "/x", "ns/L-wild#0"}, /* wildcard = one or more labels */
        {"x.a.example.com", "/x", "ns/L-wild2#0"}, /* most labels wins */
        {"a.example.com", "/x", "ns/L-wild#0"},   /* *.a.example.com needs a label */
        {"example.com", "/x", "ns/L-any#0"},      /* wildcard never matches the bare suffix */
        {"other.org", "/x", "ns/L-any#0"},
        {"", "/x", "ns/L-any#0"},
        {"[::1]:80", "/x", "ns/L-any#0"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const char *got = WHO(g, rows[i].host, rows[i].target);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s%s: got %s want %s", i, rows[i].host, rows[i].target, got,
                 rows[i].want);
    }
    struct sv_route_result res;
    CHECK_EQ_INT(rt_lookup(g, "127.0.0.1", 80, "GET", "foo.example.com", "/nope", NULL, 0, &res),
                 -ENOENT);
    REQUIRE(res.listener != NULL);
    CHECK_EQ_MEM(res.listener->name.ptr, res.listener->name.len, "L-exact");
    union sv_route_sockaddr l80 = rt_sa("127.0.0.1", 80), l2a = rt_sa("127.0.0.2", 80);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l80.sa, S("FOO.example.com:443")), 0);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l80.sa, S("q.example.com")), 1);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l80.sa, S("x.a.example.com")), 2);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l80.sa, S("")), 3);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l2a.sa, S("bar.example.com")), 4);
    CHECK_EQ_INT(sv_generation_select_listener(g, &l2a.sa, S("zzz")), -1);
    CHECK_EQ_STR(rt_who(g, "127.0.0.2", 80, "GET", "bar.example.com", "/", NULL, 0), "ns/L2#0");
    CHECK_EQ_STR(rt_who(g, "127.0.0.2", 80, "GET", "zzz.example.com", "/", NULL, 0),
                 "404-nolistener");
    CHECK_EQ_STR(rt_who(g, "127.0.0.3", 80, "GET", "bar.example.com", "/", NULL, 0),
                 "404-nolistener");
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 81, "GET", "bar.example.com", "/", NULL, 0),
                 "404-nolistener");
    sv_generation_free_unpublished(g);
}

TEST(routing_wildcard_bind_address)
{
    struct fx f;
    fx_init(&f);
    int b = fx_bind(&f, "0.0.0.0", 8080);
    int l = fx_listener(&f, b, "any", "");
    int r = fx_route(&f, "ns", "r", 1);
    sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(""));
    fx_prefix(&f, r, "/");
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    /* a connection's local address on a 0.0.0.0 bind finds that bind */
    CHECK_EQ_STR(rt_who(g, "127.9.9.9", 8080, "GET", "h", "/", NULL, 0), "ns/r#0");
    CHECK_EQ_STR(rt_who(g, "127.9.9.9", 8081, "GET", "h", "/", NULL, 0), "404-nolistener");
    CHECK_EQ_STR(rt_who(g, "::1", 8080, "GET", "h", "/", NULL, 0), "404-nolistener");
    sv_generation_free_unpublished(g);
}

TEST(routing_host_buckets_and_fallthrough)
{
    struct fx f;
    fx_init(&f);
    int b = fx_bind(&f, "127.0.0.1", 80);
    int l = fx_listener(&f, b, "L", "");
    int l2 = fx_listener(&f, fx_bind(&f, "127.0.0.1", 81), "L81", "");
    int rex = fx_route(&f, "ns", "exact", 10);
    int rw = fx_route(&f, "ns", "wild", 1);
    int rw2 = fx_route(&f, "ns", "wild2", 20);
    int rany = fx_route(&f, "ns", "any", 0);
    int r81 = fx_route(&f, "ns", "other-listener", 0);
    sv_route_builder_attach(f.b, (uint32_t)rex, (uint32_t)l, S("Foo.Example.com"));
    sv_route_builder_attach(f.b, (uint32_t)rw, (uint32_t)l, S("*.example.com"));
    sv_route_builder_attach(f.b, (uint32_t)rw2, (uint32_t)l, S("*.foo.example.com"));
    sv_route_builder_attach(f.b, (uint32_t)rany, (uint32_t)l, S(""));
    sv_route_builder_attach(f.b, (uint32_t)r81, (uint32_t)l2, S(""));
    fx_prefix(&f, rex, "/api");
    fx_rule(&f, rw, SV_ROUTE_PATH_EXACT, "/api/x", NULL, NULL, 0, NULL, 0);
    fx_prefix(&f, rw, "/w");
    fx_prefix(&f, rw2, "/");
    fx_prefix(&f, rany, "/");
    fx_prefix(&f, r81, "/");
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    static const struct {
        const char *host, *target, *want;
    } rows[] = {
        /* hostname specificity beats path specificity */
        {"foo.example.com", "/api/x", "ns/exact#0"},
        /* no rule in the exact bucket: next bucket of the same listener */
        {"foo.example.com", "/w/1", "ns/wild#1"},
        {"foo.example.com", "/zzz", "ns/any#0"},
        {"bar.example.com", "/api/x", "ns/wild#0"},
        {"bar.example.com", "/api/y", "ns/any#0"},
        {"a.foo.example.com", "/api/x", "ns/wild2#0"}, /* more specific wildcard first */
        {"a.b.foo.example.com", "/q", "ns/wild2#0"},
        {"foo.example.com:80", "/api", "ns/exact#0"},
        {"other.org", "/api/x", "ns/any#0"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const char *got = WHO(g, rows[i].host, rows[i].target);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s%s: got %s want %s", i, rows[i].host, rows[i].target, got,
                 rows[i].want);
    }
    sv_generation_free_unpublished(g);
}

TEST(routing_path_types)
{
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    const char *names[] = {"exact-abc", "prefix-foo", "prefix-bar-slash", "regex",
                           "exact-slash", "exact-trailing"};
    int r[6];
    for (int i = 0; i < 6; i++) {
        r[i] = fx_route(&f, "ns", names[i], i);
        sv_route_builder_attach(f.b, (uint32_t)r[i], (uint32_t)l, S(""));
    }
    CHECK_EQ_INT(fx_rule(&f, r[0], SV_ROUTE_PATH_EXACT, "/abc", NULL, NULL, 0, NULL, 0), 0);
    CHECK_EQ_INT(fx_prefix(&f, r[1], "/foo"), 0);
    CHECK_EQ_INT(fx_prefix(&f, r[2], "/bar/"), 0);
    CHECK_EQ_INT(fx_rule(&f, r[3], SV_ROUTE_PATH_REGEX, "/re/[0-9]+", NULL, NULL, 0, NULL, 0), 0);
    CHECK_EQ_INT(fx_rule(&f, r[4], SV_ROUTE_PATH_EXACT, "/", NULL, NULL, 0, NULL, 0), 0);
    CHECK_EQ_INT(fx_rule(&f, r[5], SV_ROUTE_PATH_EXACT, "/t/", NULL, NULL, 0, NULL, 0), 0);
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    static const struct {
        const char *target, *want;
    } rows[] = {
        {"/abc", "ns/exact-abc#0"},
        {"/abc?x=1", "ns/exact-abc#0"}, /* query is not part of the path */
        {"/abc/", "404"},
        {"/Abc", "404"},
        {"/abcd", "404"},
        {"/foo", "ns/prefix-foo#0"},
        {"/foo/", "ns/prefix-foo#0"},
        {"/foo/bar", "ns/prefix-foo#0"},
        {"/foo/bar/baz/", "ns/prefix-foo#0"},
        {"/foobar", "404"},
        {"/fo", "404"},
        {"/Foo", "404"},
        {"/bar", "ns/prefix-bar-slash#0"}, /* trailing '/' of the prefix ignored */
        {"/bar/", "ns/prefix-bar-slash#0"},
        {"/bar/x", "ns/prefix-bar-slash#0"},
        {"/barx", "404"},
        {"/re/123", "ns/regex#0"},
        {"/re/123x", "404"}, /* anchored at the end */
        {"/x/re/1", "404"},  /* anchored at the start */
        {"/", "ns/exact-slash#0"},
        {"", "ns/exact-slash#0"},
        {"/t/", "ns/exact-trailing#0"},
        {"/t", "404"},
        {"//", "404"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const char *got = WHO(g, "h", rows[i].target);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s: got %s want %s", i, rows[i].target, got, rows[i].want);
    }
    sv_generation_free_unpublished(g);
}

TEST(routing_path_precedence)
{
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    int r = fx_route(&f, "ns", "r", 1);
    sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(""));
    /* rule order deliberately the reverse of precedence */
    fx_prefix(&f, r, "/");                                                            /* #0 */
    fx_prefix(&f, r, "/p");                                                           /* #1 */
    fx_prefix(&f, r, "/p/q");                                                         /* #2 */
    fx_rule(&f, r, SV_ROUTE_PATH_REGEX, "/p/[0-9]+", NULL, NULL, 0, NULL, 0);         /* #3 */
    fx_rule(&f, r, SV_ROUTE_PATH_EXACT, "/p/q", NULL, NULL, 0, NULL, 0);              /* #4 */
    fx_rule(&f, r, SV_ROUTE_PATH_REGEX, "/r/.*", NULL, NULL, 0, NULL, 0);             /* #5 */
    fx_rule(&f, r, SV_ROUTE_PATH_REGEX, "/r/a.*", NULL, NULL, 0, NULL, 0);            /* #6 */
    fx_prefix(&f, r, "/r/abc/def");                                                   /* #7 */
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    static const struct {
        const char *target, *want;
    } rows[] = {
        {"/p/q", "ns/r#4"},         /* Exact beats everything */
        {"/p/123", "ns/r#3"},       /* regex beats every prefix */
        {"/p/q/r", "ns/r#2"},       /* longest prefix */
        {"/p/z", "ns/r#1"},
        {"/pz", "ns/r#0"},
        {"/r/abc", "ns/r#6"},       /* longer regex first */
        {"/r/xyz", "ns/r#5"},
        {"/r/abc/def/g", "ns/r#6"}, /* regex above even a longer prefix */
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        const char *got = WHO(g, "h", rows[i].target);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s: got %s want %s", i, rows[i].target, got, rows[i].want);
    }
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p/q/r", NULL, 0, &res) == 0);
    CHECK_EQ_INT(res.path_type, SV_ROUTE_PATH_PREFIX);
    CHECK_EQ_INT(res.prefix_len, 4);
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p/q", NULL, 0, &res) == 0);
    CHECK_EQ_INT(res.path_type, SV_ROUTE_PATH_EXACT);
    sv_generation_free_unpublished(g);
}

TEST(routing_headers_query_method)
{
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    int r = fx_route(&f, "ns", "r", 1);
    sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(""));
    struct sv_route_kv_match env = {SV_ROUTE_VALUE_EXACT, S("X-Env"), S("prod")};
    struct sv_route_kv_match ver = {SV_ROUTE_VALUE_REGEX, S("x-ver"), S("v[0-9]+")};
    struct sv_route_kv_match multi = {SV_ROUTE_VALUE_EXACT, S("X-Multi"), S("a,b")};
    struct sv_route_kv_match two[] = {{SV_ROUTE_VALUE_EXACT, S("x-a"), S("1")},
                                      {SV_ROUTE_VALUE_EXACT, S("x-b"), S("2")},
                                      {SV_ROUTE_VALUE_EXACT, S("X-A"), S("ignored-dup")}};
    struct sv_route_kv_match animal = {SV_ROUTE_VALUE_EXACT, S("animal"), S("whale")};
    struct sv_route_kv_match qre = {SV_ROUTE_VALUE_REGEX, S("id"), S("[0-9]{3}")};
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/h", NULL, &env, 1, NULL, 0);     /* #0 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/h", NULL, &ver, 1, NULL, 0);     /* #1 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/h", NULL, &multi, 1, NULL, 0);   /* #2 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/h", NULL, two, 1, NULL, 0);      /* #3: x-a */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/h", NULL, two, 3, NULL, 0);      /* #4: x-a, x-b */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/q", NULL, NULL, 0, &animal, 1);  /* #5 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/q", NULL, NULL, 0, &qre, 1);     /* #6 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/m", NULL, two, 2, NULL, 0);      /* #7: 2 headers */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/m", "POST", NULL, 0, NULL, 0);   /* #8 */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/m", NULL, NULL, 0, &animal, 1);  /* #9: 1 query */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/m", NULL, &env, 1, NULL, 0);     /* #10: 1 header */
    fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/m", NULL, NULL, 0, NULL, 0);     /* #11 */
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);

    static const struct {
        const char *method, *target;
        const char *h[3];
        const char *want;
    } rows[] = {
        {"GET", "/h", {"x-env: prod"}, "ns/r#0"},    /* names case-insensitive */
        {"GET", "/h", {"X-ENV: Prod"}, "404"},       /* values exact */
        {"GET", "/h", {"X-Ver: v12"}, "ns/r#1"},
        {"GET", "/h", {"X-Ver: v12x"}, "404"},       /* regex anchored */
        {"GET", "/h", {"X-Multi: a", "x-multi: b"}, "ns/r#2"}, /* repeats joined with "," */
        {"GET", "/h", {"X-Multi: a"}, "404"},
        {"GET", "/h", {"x-a: 1"}, "ns/r#3"},
        {"GET", "/h", {"x-a: 1", "x-b: 2"}, "ns/r#4"}, /* more header matches first */
        {"GET", "/h", {"x-b: 2"}, "404"},
        {"GET", "/q?animal=whale", {NULL}, "ns/r#5"},
        {"GET", "/q?x=1&animal=whale&animal=dolphin", {NULL}, "ns/r#5"},
        {"GET", "/q?animal=dolphin&animal=whale", {NULL}, "404"}, /* first value counts */
        {"GET", "/q?ANIMAL=whale", {NULL}, "404"},                /* names case-sensitive */
        {"GET", "/q?id=123", {NULL}, "ns/r#6"},
        {"GET", "/q?id=1234", {NULL}, "404"},
        {"GET", "/q", {NULL}, "404"},
        /* method, then headers, then query */
        {"POST", "/m?animal=whale", {"x-a: 1", "x-b: 2", "x-env: prod"}, "ns/r#8"},
        {"GET", "/m?animal=whale", {"x-a: 1", "x-b: 2", "x-env: prod"}, "ns/r#7"},
        {"GET", "/m?animal=whale", {"x-env: prod"}, "ns/r#10"},
        {"GET", "/m?animal=whale", {NULL}, "ns/r#9"},
        {"GET", "/m", {NULL}, "ns/r#11"},
        {"post", "/m", {NULL}, "ns/r#11"}, /* methods are case-sensitive */
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        size_t nh = 0;
        while (nh < 3 && rows[i].h[nh])
            nh++;
        const char *got =
            rt_who(g, "127.0.0.1", 80, rows[i].method, "h", rows[i].target, rows[i].h, nh);
        if (strcmp(got, rows[i].want) != 0)
            FAIL("row %zu %s %s: got %s want %s", i, rows[i].method, rows[i].target, got,
                 rows[i].want);
    }
    sv_generation_free_unpublished(g);
}

TEST(routing_route_order_age_name_rule)
{
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    int young = fx_route(&f, "ns", "a-young", 200);
    int old = fx_route(&f, "ns", "b-old", 100);
    int zx = fx_route(&f, "z", "x", 5);
    int ay = fx_route(&f, "a", "y", 5);
    int twice = fx_route(&f, "ns", "twice", 1);
    int multi = fx_route(&f, "ns", "multi", 1);
    int ids[] = {young, old, zx, ay, twice, multi};
    for (int i = 0; i < 6; i++)
        sv_route_builder_attach(f.b, (uint32_t)ids[i], (uint32_t)l, S(""));
    /* attaching twice to the same bucket must not duplicate anything */
    sv_route_builder_attach(f.b, (uint32_t)twice, (uint32_t)l, S(""));
    fx_prefix(&f, young, "/t");
    fx_prefix(&f, old, "/t");
    fx_prefix(&f, zx, "/u");
    fx_prefix(&f, ay, "/u");
    fx_prefix(&f, twice, "/v");
    fx_prefix(&f, twice, "/v");
    /* matches of one rule are ORed */
    struct sv_route_match_spec ms[] = {
        {.path_type = SV_ROUTE_PATH_EXACT, .path = S("/or1")},
        {.path_type = SV_ROUTE_PATH_PREFIX, .path = S("/or2"), .method = S("PUT")},
    };
    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1};
    struct sv_route_rule_spec rule = {.matches = ms, .n_matches = 2, .backends = &be,
                                      .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)multi, &rule), 0);
    /* no matches = PathPrefix / */
    struct sv_route_rule_spec rule2 = {.backends = &be, .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)multi, &rule2), 1);
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    CHECK_EQ_STR(WHO(g, "h", "/t"), "ns/b-old#0");
    CHECK_EQ_STR(WHO(g, "h", "/u"), "a/y#0");
    CHECK_EQ_STR(WHO(g, "h", "/v/1"), "ns/twice#0");
    CHECK_EQ_STR(WHO(g, "h", "/or1"), "ns/multi#0");
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 80, "PUT", "h", "/or2/x", NULL, 0), "ns/multi#0");
    CHECK_EQ_STR(rt_who(g, "127.0.0.1", 80, "GET", "h", "/or2/x", NULL, 0), "ns/multi#1");
    CHECK_EQ_STR(WHO(g, "h", "/anything"), "ns/multi#1");
    sv_generation_free_unpublished(g);
}

TEST(routing_many_routes_scale)
{
    /* 3000 routes with distinct prefixes in one bucket plus 300 exact hosts: every lookup must
     * find its own route (the index, not a linear scan, is exercised; no timing asserted). */
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    char name[64], path[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        int r = fx_route(&f, "ns", name, i);
        if (i < 300) {
            snprintf(path, sizeof(path), "h%d.example.com", i);
            sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(path));
        } else {
            sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(""));
        }
        snprintf(path, sizeof(path), "/svc%d/api", i);
        REQUIRE(fx_prefix(&f, r, path) == 0);
    }
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    int bad = 0;
    for (int i = 0; i < 3000 && bad < 5; i++) {
        char want[64], host[64];
        snprintf(path, sizeof(path), "/svc%d/api/x", i);
        snprintf(want, sizeof(want), "ns/r%d#0", i);
        snprintf(host, sizeof(host), i < 300 ? "h%d.example.com" : "x", i);
        const char *got = WHO(g, host, path);
        if (strcmp(got, want) != 0) {
            FAIL("%s %s: got %s want %s", host, path, got, want);
            bad++;
        }
    }
    CHECK_EQ_STR(WHO(g, "x", "/svc1/api"), "404"); /* r1 only on h1.example.com */
    CHECK_EQ_STR(WHO(g, "x", "/svc3000/api"), "404");
    sv_generation_free_unpublished(g);
}

TEST(routing_builder_rejects_bad_rules)
{
    struct fx f;
    fx_init(&f);
    int l = fx_listener(&f, fx_bind(&f, "127.0.0.1", 80), "L", "");
    int r = fx_route(&f, "ns", "r", 1);
    sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S(""));
    CHECK_EQ_INT(fx_rule(&f, r, SV_ROUTE_PATH_REGEX, "/a(", NULL, NULL, 0, NULL, 0), -EINVAL);
    CHECK(strstr(sv_route_builder_error(f.b), "/a(") != NULL);
    CHECK_EQ_INT(fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "nope", NULL, NULL, 0, NULL, 0), -EINVAL);
    CHECK(strstr(sv_route_builder_error(f.b), "nope") != NULL);
    CHECK_EQ_INT(fx_rule(&f, r, (enum sv_route_path_type)7, "/", NULL, NULL, 0, NULL, 0),
                 -EINVAL);
    struct sv_route_kv_match badre = {SV_ROUTE_VALUE_REGEX, S("x"), S("[")};
    CHECK_EQ_INT(fx_rule(&f, r, SV_ROUTE_PATH_PREFIX, "/", NULL, &badre, 1, NULL, 0), -EINVAL);

    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 0, .weight = 1};
    struct sv_route_redirect_spec rd = {.status = 302};
    struct sv_route_rewrite_spec rw = {.hostname = S("x")};
    struct sv_route_rule_spec both = {.redirect = &rd, .rewrite = &rw};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)r, &both), -EINVAL);
    struct sv_route_rule_spec rdbe = {.redirect = &rd, .backends = &be, .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)r, &rdbe), -EINVAL);
    struct sv_route_redirect_spec rd_bad = {.status = 200};
    struct sv_route_rule_spec bad_status = {.redirect = &rd_bad};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)r, &bad_status), -EINVAL);
    struct sv_route_match_spec exact = {.path_type = SV_ROUTE_PATH_EXACT, .path = S("/x")};
    struct sv_route_rewrite_spec rp = {.path = {SV_ROUTE_PATH_MOD_PREFIX, S("/y")}};
    struct sv_route_rule_spec rp_exact = {.matches = &exact, .n_matches = 1, .rewrite = &rp,
                                          .backends = &be, .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)r, &rp_exact), -EINVAL);
    struct sv_route_backend_spec be_bad = {.kind = SV_ROUTE_BACKEND_SET, .set_id = 42};
    struct sv_route_rule_spec nosuchset = {.backends = &be_bad, .n_backends = 1};
    CHECK_EQ_INT(sv_route_builder_add_rule(f.b, (uint32_t)r, &nosuchset), -EINVAL);
    CHECK_EQ_INT(sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S("*")), -EINVAL);
    CHECK_EQ_INT(sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S("a.*.b")), -EINVAL);
    CHECK_EQ_INT(sv_route_builder_attach(f.b, 99, (uint32_t)l, S("")), -EINVAL);
    /* a valid rule after the failures still works, failed ones left nothing behind */
    CHECK_EQ_INT(fx_prefix(&f, r, "/ok"), 0);
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    CHECK_EQ_STR(WHO(g, "h", "/ok"), "ns/r#0");
    CHECK_EQ_STR(WHO(g, "h", "/"), "404");
    sv_generation_free_unpublished(g);
}

/* Chains of path segments without entries of their own are stored as one compressed trie edge;
 * lookups through, into and beside such edges give what the segment-by-segment walk gave. */
TEST(routing_compressed_path_chains)
{
    struct fx f;
    fx_init(&f);
    int b = fx_bind(&f, "127.0.0.1", 80);
    int l = fx_listener(&f, b, "L", "");
    int r = fx_route(&f, "ns", "r", 1);
    REQUIRE(sv_route_builder_attach(f.b, (uint32_t)r, (uint32_t)l, S("")) == 0);
    REQUIRE(fx_prefix(&f, r, "/a/b/c/d") == 0);                                       /* #0 */
    REQUIRE(fx_rule(&f, r, SV_ROUTE_PATH_EXACT, "/a/b/c/d/e/f", NULL, NULL, 0, NULL, 0) == 1);
    REQUIRE(fx_prefix(&f, r, "/a/x") == 2);                                           /* #2 */
    REQUIRE(fx_prefix(&f, r, "/p/q/r/") == 3);                                        /* #3 */
    REQUIRE(fx_rule(&f, r, SV_ROUTE_PATH_EXACT, "/long/chain/of/segments", NULL, NULL, 0,
                    NULL, 0) == 4);
    REQUIRE(fx_prefix(&f, r, "/a/b/cc") == 5);                                        /* #5 */
    struct sv_generation *g = fx_finish(&f);
    REQUIRE(g);
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/a/b/c/d", "ns/r#0"},         {"/a/b/c/d/", "ns/r#0"},
        {"/a/b/c/d/zz", "ns/r#0"},      {"/a/b/c/d/e", "ns/r#0"},
        {"/a/b/c/d/e/f", "ns/r#1"},     {"/a/b/c/d/e/f/", "ns/r#0"},
        {"/a/b/c/d/e/fg", "ns/r#0"},    {"/a/b/c/dd", "404"},
        {"/a/b/c", "404"},              {"/a/b", "404"},
        {"/a", "404"},                  {"/a/b/cc", "ns/r#5"},
        {"/a/b/cc/d", "ns/r#5"},        {"/a/b/c/d2", "404"},
        {"/a/x", "ns/r#2"},             {"/a/x/b/c/d", "ns/r#2"},
        {"/a//b/c/d", "404"},           {"/a/b//c/d", "404"},
        {"/p/q/r", "ns/r#3"},           {"/p/q/r/s", "ns/r#3"},
        {"/p/q", "404"},                {"/p/q/rr", "404"},
        {"/long/chain/of/segments", "ns/r#4"}, {"/long/chain/of/segments/", "404"},
        {"/long/chain/of", "404"},      {"/long/chain/of/segment", "404"},
        {"/long/chain/of/segmentsx", "404"}, {"/long", "404"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        const char *got = WHO(g, "h", cases[i].path);
        if (strcmp(got, cases[i].want) != 0)
            FAIL("%s: got %s, want %s", cases[i].path, got, cases[i].want);
    }
    sv_generation_free_unpublished(g);
}

/* Host normalisation at the length limit: a 255-byte name matches with or without a trailing
 * dot and a port, in any case; one byte more (or a 256-byte name with a dot) selects no named
 * listener (the hostname-less one takes it). */
TEST(routing_host_normalisation_length_limit)
{
    char name[300], req[320];
    size_t k = 0;
    while (k < 255) { /* labels "aaa...a." of 63, ending without a dot at exactly 255 bytes */
        size_t lab = SV_MIN((size_t)63, 255 - k);
        memset(name + k, 'a' + (int)(k % 26), lab);
        k += lab;
        if (k < 255) {
            name[k - 1] = '.';
        }
    }
    name[255] = '\0';
    REQUIRE(strlen(name) == 255 && name[254] != '.');
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    REQUIRE(bind >= 0);
    REQUIRE(sv_route_builder_add_listener(b, (uint32_t)bind, S("long"), S(name)) == 0);
    REQUIRE(sv_route_builder_add_listener(b, (uint32_t)bind, S("any"), S("")) == 1);
    char err[256];
    struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
    REQUIRE(g);
    static const struct {
        const char *suffix; /* after the 255-byte name (or alone when !named) */
        int named, upper, want;
    } rows[] = {
        {"", 1, 0, 0},     {".", 1, 0, 0},      {":8080", 1, 0, 0}, {".:80", 1, 0, 0},
        {"", 1, 1, 0},     {"a", 1, 0, 1},      {"a.", 1, 0, 1},    {"a:80", 1, 0, 1},
        {"..", 1, 0, 1},   {".a:80", 1, 0, 1},  {":80", 0, 0, 1},   {":", 1, 0, 0},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(rows); i++) {
        snprintf(req, sizeof(req), "%s%s", rows[i].named ? name : "", rows[i].suffix);
        for (size_t j = 0; rows[i].upper && req[j]; j++)
            req[j] = (char)(req[j] >= 'a' && req[j] <= 'z' ? req[j] - 32 : req[j]);
        int got = sv_generation_select_listener(g, &sa.sa, S(req));
        if (got != rows[i].want)
            FAIL("row %zu (%zu bytes): got %d want %d", i, strlen(req), got, rows[i].want);
    }
    /* the short forms around the port and the dot */
    CHECK_EQ_INT(sv_generation_select_listener(g, &sa.sa, S("a.")), 1);
    CHECK_EQ_INT(sv_generation_select_listener(g, &sa.sa, S(".")), 1);
    sv_generation_free_unpublished(g);
}

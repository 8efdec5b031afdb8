/* CORS filter, routing side: origin pattern validation, origin matching (wildcards, default
 * ports, case), the headers of an answer, and the builder compiling / rejecting a CORS spec. */
#include <stdlib.h>

#include "../harness.h"
#include "rt_helpers.h"
#include "serval/http/message.h"

#define S(x) sv_str_cstr(x)

TEST(cors_pattern_valid)
{
    static const char *const good[] = {"*", "https://www.foo.com", "https://*.bar.com",
                                       "http://a.b:8080", "https://*", "http://[::1]:80",
                                       "HTTPS://WWW.FOO.COM", "custom+x://host", NULL};
    static const char *const bad[] = {"", "www.foo.com", "https://", "https://www.foo.com/",
                                      "https://www.foo.com/path", "https://a:0", "https://a:70000",
                                      "https://a:", "https://a:8x", "https://a b", "*.foo.com",
                                      "https://foo.*.com", "https://.foo.com", "1http://a",
                                      "https://[::1", "**", NULL};
    for (size_t i = 0; good[i]; i++)
        if (!sv_route_cors_pattern_valid(S(good[i])))
            FAIL("valid pattern refused: %s", good[i]);
    for (size_t i = 0; bad[i]; i++)
        if (sv_route_cors_pattern_valid(S(bad[i])))
            FAIL("invalid pattern accepted: %s", bad[i]);
}

static bool allowed(const char *const *patterns, size_t n, const char *origin)
{
    struct sv_str p[8];
    for (size_t i = 0; i < n; i++)
        p[i] = S(patterns[i]);
    struct sv_route_cors c = {.origins = p, .n_origins = (uint32_t)n};
    return sv_route_cors_origin_allowed(&c, S(origin));
}

TEST(cors_origin_matching)
{
    static const char *const conf[] = {"https://www.foo.com", "https://*.bar.com",
                                       "http://local.test:8080"};
    struct {
        const char *origin;
        bool ok;
    } cases[] = {
        {"https://www.foo.com", true},
        {"HTTPS://WWW.Foo.com", true},       /* scheme and host case-insensitive */
        {"https://www.foo.com:443", true},   /* default port = absent */
        {"https://www.foo.com:8443", false}, /* another port */
        {"http://www.foo.com", false},       /* another scheme */
        {"https://foo.com", false},
        {"https://www.foo.com.evil", false},
        {"https://www.bar.com", true},
        {"https://xpto.www.bar.com", true}, /* any number of labels left of "*" */
        {"https://bar.com", false},         /* "*." needs at least one label */
        {"https://evilbar.com", false},
        {"https://www.bar.com:444", false},
        {"http://local.test:8080", true},
        {"http://local.test", false},
        {"null", false},
        {"", false},
        {"https://foobar.com", false},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++)
        if (allowed(conf, 3, cases[i].origin) != cases[i].ok)
            FAIL("origin %s: want %s", cases[i].origin, cases[i].ok ? "allowed" : "refused");
    static const char *const star[] = {"*"};
    CHECK(allowed(star, 1, "https://foobar.com:12345"));
    CHECK(allowed(star, 1, "null"));
    CHECK(!allowed(star, 1, ""));
    static const char *const anyhost[] = {"https://*"};
    CHECK(allowed(anyhost, 1, "https://x.y"));
    CHECK(!allowed(anyhost, 1, "http://x.y"));
    static const char *const v6[] = {"http://[::1]:8080"};
    CHECK(allowed(v6, 1, "http://[::1]:8080"));
    CHECK(!allowed(v6, 1, "http://[::1]"));
    CHECK(!sv_route_cors_origin_allowed(NULL, S("https://a")));
}

static const char *hval(const struct sv_http_header *h, uint32_t n, const char *name)
{
    static char buf[256];
    for (uint32_t i = 0; i < n; i++)
        if (sv_str_eq_nocase(h[i].name, S(name))) {
            snprintf(buf, sizeof(buf), "%.*s", (int)h[i].value.len, h[i].value.ptr);
            return buf;
        }
    return NULL;
}

TEST(cors_headers_preflight_and_simple)
{
    struct sv_str origins[] = {S("https://www.foo.com")};
    struct sv_route_cors c = {.origins = origins,
                              .n_origins = 1,
                              .allow_methods = S("GET, OPTIONS"),
                              .allow_headers = S("x-header-1, x-header-2"),
                              .expose_headers = S("x-header-3"),
                              .max_age = S("3600"),
                              .allow_credentials = true};
    struct sv_http_header h[SV_ROUTE_CORS_MAX_HEADERS];
    uint32_t n = sv_route_cors_headers(&c, S("https://www.foo.com"), true, S("GET"),
                                       S("x-header-1"), h, SV_ROUTE_CORS_MAX_HEADERS);
    CHECK_EQ_INT(n, 6);
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Origin"), "https://www.foo.com");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Credentials"), "true");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Methods"), "GET, OPTIONS");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Headers"), "x-header-1, x-header-2");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Expose-Headers"), "x-header-3");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Max-Age"), "3600");
    /* no Access-Control-Request-Headers: no Allow-Headers */
    n = sv_route_cors_headers(&c, S("https://www.foo.com"), true, S("GET"), SV_STR_NULL, h,
                              SV_ROUTE_CORS_MAX_HEADERS);
    CHECK(hval(h, n, "Access-Control-Allow-Headers") == NULL);
    CHECK(hval(h, n, "Access-Control-Allow-Methods") != NULL);
    /* a normal response: origin, credentials, expose only */
    n = sv_route_cors_headers(&c, S("https://www.foo.com"), false, SV_STR_NULL, SV_STR_NULL, h,
                              SV_ROUTE_CORS_MAX_HEADERS);
    CHECK_EQ_INT(n, 3);
    CHECK(hval(h, n, "Access-Control-Allow-Methods") == NULL);
    CHECK(hval(h, n, "Access-Control-Max-Age") == NULL);
    CHECK_EQ_STR(hval(h, n, "Access-Control-Expose-Headers"), "x-header-3");
    /* "*" lists echo the request; no credentials, no expose */
    struct sv_route_cors star = {.origins = origins, .n_origins = 1, .any_method = true,
                                 .any_header = true, .max_age = S("5")};
    n = sv_route_cors_headers(&star, S("https://o.example"), true, S("PUT"), S("x-a, x-b"), h,
                              SV_ROUTE_CORS_MAX_HEADERS);
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Origin"), "https://o.example");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Methods"), "PUT");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Allow-Headers"), "x-a, x-b");
    CHECK_EQ_STR(hval(h, n, "Access-Control-Max-Age"), "5");
    CHECK(hval(h, n, "Access-Control-Allow-Credentials") == NULL);
    CHECK(hval(h, n, "Access-Control-Expose-Headers") == NULL);
    /* too small an output array: nothing */
    CHECK_EQ_INT(sv_route_cors_headers(&c, S("https://www.foo.com"), true, S("GET"), S("x"), h,
                                       SV_ROUTE_CORS_MAX_HEADERS - 1),
                 0);
}

/* Build one rule with <cors> on 127.0.0.1:80 PathPrefix /p; returns the generation or NULL with
 * the builder's message in err. */
static struct sv_generation *cors_rule(const struct sv_route_cors_spec *cors, char *err,
                                       size_t errlen)
{
    struct sv_route_builder *b = sv_route_builder_new();
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("L"), S(""));
    struct sv_route_route_spec rs = {S("ns"), S("r"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S(""));
    struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = S("/p")};
    struct sv_route_rule_spec rule = {.matches = &m, .n_matches = 1, .cors = cors,
                                      .fixed_status = 500};
    if (sv_route_builder_add_rule(b, (uint32_t)r, &rule) < 0) {
        snprintf(err, errlen, "%s", sv_route_builder_error(b));
        sv_route_builder_free(b);
        return NULL;
    }
    return sv_route_builder_finish(b, err, errlen);
}

TEST(cors_builder_compiles)
{
    struct sv_str origins[] = {S("https://WWW.Foo.com"), S("https://*.bar.com")};
    struct sv_str methods[] = {S("GET"), S("OPTIONS")};
    struct sv_str headers[] = {S("x-header-1"), S("x-header-2")};
    struct sv_str expose[] = {S("x-header-3"), S("x-header-4")};
    struct sv_route_cors_spec spec = {origins, 2, methods, 2, headers, 2, expose, 2, true, 3600};
    char err[256] = "";
    struct sv_generation *g = cors_rule(&spec, err, sizeof(err));
    if (!g)
        FAIL("build: %s", err);
    REQUIRE(g);
    struct sv_route_result res;
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "OPTIONS", "h", "/p", NULL, 0, &res) == 0);
    const struct sv_route_cors *c = res.action->ext->cors;
    REQUIRE(c);
    CHECK_EQ_INT(c->n_origins, 2);
    CHECK_EQ_MEM(c->origins[0].ptr, c->origins[0].len, "https://www.foo.com");
    CHECK_EQ_MEM(c->allow_methods.ptr, c->allow_methods.len, "GET, OPTIONS");
    CHECK_EQ_MEM(c->allow_headers.ptr, c->allow_headers.len, "x-header-1, x-header-2");
    CHECK_EQ_MEM(c->expose_headers.ptr, c->expose_headers.len, "x-header-3, x-header-4");
    CHECK_EQ_MEM(c->max_age.ptr, c->max_age.len, "3600");
    CHECK(c->allow_credentials && !c->any_method && !c->any_header);
    CHECK(sv_route_cors_origin_allowed(c, S("https://a.b.bar.com")));
    CHECK(!sv_route_cors_origin_allowed(c, S("https://bar.com")));
    sv_generation_free_unpublished(g);

    struct sv_str star[] = {S("*")};
    struct sv_route_cors_spec s2 = {.allow_origins = star, .n_allow_origins = 1,
                                    .allow_methods = star, .n_allow_methods = 1,
                                    .allow_headers = star, .n_allow_headers = 1, .max_age = 5};
    g = cors_rule(&s2, err, sizeof(err));
    REQUIRE(g);
    REQUIRE(rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p", NULL, 0, &res) == 0);
    c = res.action->ext->cors;
    REQUIRE(c);
    CHECK(c->any_method && c->any_header && !c->allow_credentials);
    CHECK_EQ_INT(c->allow_methods.len, 0);
    CHECK_EQ_INT(c->expose_headers.len, 0);
    CHECK_EQ_MEM(c->max_age.ptr, c->max_age.len, "5");
    sv_generation_free_unpublished(g);
}

TEST(cors_builder_rejects)
{
    struct sv_str ok_origin[] = {S("https://a.example")};
    struct sv_str bad_origin[] = {S("https://a.example/x")};
    struct sv_str star_and_more[] = {S("*"), S("GET")};
    struct sv_str bad_token[] = {S("x header")};
    struct {
        struct sv_route_cors_spec spec;
        const char *msg;
    } cases[] = {
        {{.allow_origins = bad_origin, .n_allow_origins = 1}, "is not a valid origin"},
        {{.allow_origins = ok_origin, .n_allow_origins = 1, .allow_methods = star_and_more,
          .n_allow_methods = 2},
         "allowMethods: \"*\" must be the only entry"},
        {{.allow_origins = ok_origin, .n_allow_origins = 1, .allow_headers = bad_token,
          .n_allow_headers = 1},
         "allowHeaders: \"x header\" is not a valid token"},
        {{.allow_origins = ok_origin, .n_allow_origins = 1, .expose_headers = star_and_more,
          .n_expose_headers = 2},
         NULL}, /* "*" is a plain token in exposeHeaders */
        {{.allow_origins = ok_origin, .n_allow_origins = SV_ROUTE_CORS_MAX_ITEMS + 1},
         "too many entries"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        char err[256] = "";
        struct sv_generation *g = cors_rule(&cases[i].spec, err, sizeof(err));
        if (!cases[i].msg) {
            if (!g)
                FAIL("case %zu: refused: %s", i, err);
        } else if (g) {
            FAIL("case %zu: accepted, want \"%s\"", i, cases[i].msg);
        } else if (!strstr(err, cases[i].msg)) {
            FAIL("case %zu: message \"%s\", want \"%s\"", i, err, cases[i].msg);
        }
        if (g)
            sv_generation_free_unpublished(g);
    }
}

/* CORS filter, data-plane side (dataplane/cors.h): which requests are answered as preflights and
 * with what bytes, what is remembered for the response, and the response modifiers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "dataplane/cors.h"

#define S(x) sv_str_cstr(x)

struct req {
    struct sv_conn *c;
    struct sv_http_header hdrs[8];
};

/* A zeroed connection whose parsed request is <method> with headers "Name", "value" pairs. */
static struct sv_conn *make_req(struct req *r, enum sv_http_method method, const char *const *kv)
{
    r->c = calloc(1, sizeof(*r->c));
    if (!r->c)
        return NULL;
    sv_http_head_init(&r->c->req, r->hdrs, SV_ARRAY_SIZE(r->hdrs));
    r->c->req.method = method;
    for (size_t i = 0; kv && kv[i] && i / 2 < SV_ARRAY_SIZE(r->hdrs); i += 2)
        r->hdrs[r->c->req.n_headers++] = (struct sv_http_header){S(kv[i]), S(kv[i + 1])};
    return r->c;
}

static bool has_line(struct sv_str ans, const char *line)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "%.*s", (int)ans.len, ans.ptr);
    return strstr(buf, line) != NULL;
}

static struct sv_str origins[] = {{"https://www.foo.com", 19}, {"https://*.bar.com", 17}};
static const struct sv_route_cors cors = {.origins = origins,
                                          .n_origins = 2,
                                          .allow_methods = {"GET, OPTIONS", 12},
                                          .allow_headers = {"x-h1", 4},
                                          .expose_headers = {"x-h3", 4},
                                          .max_age = {"60", 2},
                                          .allow_credentials = true};

TEST(dp_cors_preflight_answered)
{
    struct sv_route_action_ext ax = {.cors = &cors};
    struct sv_route_action a = {.ext = &ax};
    static const char *const kv[] = {"Origin", "https://x.bar.com",
                                     "Access-Control-Request-Method", "GET",
                                     "Access-Control-Request-Headers", "x-h1", NULL};
    struct req r;
    REQUIRE(make_req(&r, SV_HTTP_OPTIONS, kv));
    char out[1024];
    struct sv_str ans = SV_STR_NULL;
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 200);
    REQUIRE(ans.ptr == out);
    CHECK(sv_str_has_prefix(ans, S("HTTP/1.1 200 OK\r\n")));
    CHECK(has_line(ans, "\r\nAccess-Control-Allow-Origin: https://x.bar.com\r\n"));
    CHECK(has_line(ans, "\r\nAccess-Control-Allow-Credentials: true\r\n"));
    CHECK(has_line(ans, "\r\nAccess-Control-Allow-Methods: GET, OPTIONS\r\n"));
    CHECK(has_line(ans, "\r\nAccess-Control-Allow-Headers: x-h1\r\n"));
    CHECK(has_line(ans, "\r\nAccess-Control-Expose-Headers: x-h3\r\n"));
    CHECK(has_line(ans, "\r\nAccess-Control-Max-Age: 60\r\n"));
    CHECK(has_line(ans, "\r\nVary: Origin\r\n"));
    CHECK(has_line(ans, "\r\nContent-Length: 0\r\n\r\n"));
    CHECK(!has_line(ans, "Connection:"));
    /* not kept alive: Connection: close; too small a buffer: -ENOSPC */
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, false, out, sizeof(out), &ans), 200);
    CHECK(has_line(ans, "\r\nConnection: close\r\n\r\n"));
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, 40, &ans), -ENOSPC);
    CHECK_EQ_INT(r.c->cors_origin_len, 0); /* a preflight remembers nothing */
    free(r.c);
}

TEST(dp_cors_preflight_refused)
{
    struct sv_route_action_ext ax = {.cors = &cors};
    struct sv_route_action a = {.ext = &ax};
    static const char *const kv[] = {"Origin", "https://bar.com",
                                     "Access-Control-Request-Method", "GET", NULL};
    struct req r;
    REQUIRE(make_req(&r, SV_HTTP_OPTIONS, kv));
    char out[1024];
    struct sv_str ans = SV_STR_NULL;
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 403);
    CHECK(sv_str_has_prefix(ans, S("HTTP/1.1 403 Forbidden\r\n")));
    CHECK(!has_line(ans, "Access-Control-"));
    CHECK(has_line(ans, "\r\nContent-Length: 0\r\n\r\n"));
    free(r.c);
}

TEST(dp_cors_not_preflights)
{
    struct sv_route_action_ext ax = {.cors = &cors};
    struct sv_route_action a = {.ext = &ax};
    char out[256];
    struct sv_str ans = SV_STR_NULL;
    struct req r;
    /* OPTIONS without Access-Control-Request-Method: proxied, origin remembered */
    static const char *const kv1[] = {"Origin", "https://www.foo.com", NULL};
    REQUIRE(make_req(&r, SV_HTTP_OPTIONS, kv1));
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 0);
    CHECK_EQ_MEM(r.c->cors_origin, r.c->cors_origin_len, "https://www.foo.com");
    free(r.c);
    /* GET with a disallowed origin: nothing remembered (and an old one is cleared) */
    static const char *const kv2[] = {"Origin", "https://evil.example", NULL};
    REQUIRE(make_req(&r, SV_HTTP_GET, kv2));
    r.c->cors_origin_len = 5;
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 0);
    CHECK_EQ_INT(r.c->cors_origin_len, 0);
    free(r.c);
    /* no Origin at all */
    REQUIRE(make_req(&r, SV_HTTP_OPTIONS, NULL));
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 0);
    CHECK_EQ_INT(r.c->cors_origin_len, 0);
    free(r.c);
    /* an Origin longer than we keep counts as not allowed */
    char longo[SV_CORS_ORIGIN_MAX + 20];
    memset(longo, 'a', sizeof(longo));
    memcpy(longo, "https://", 8);
    memcpy(longo + sizeof(longo) - 9, ".bar.com", 9);
    const char *kv3[] = {"Origin", longo, NULL};
    REQUIRE(make_req(&r, SV_HTTP_GET, kv3));
    CHECK_EQ_INT(sv_dp_cors_request(r.c, &a, true, out, sizeof(out), &ans), 0);
    CHECK_EQ_INT(r.c->cors_origin_len, 0);
    free(r.c);
}

static const struct sv_http_header *find(const struct sv_http_header *h, uint32_t n,
                                         const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (sv_str_eq_nocase(h[i].name, S(name)))
            return &h[i];
    return NULL;
}

TEST(dp_cors_response_mods)
{
    struct sv_worker *w = calloc(1, sizeof(*w));
    struct sv_conn *c = calloc(1, sizeof(*c));
    REQUIRE(w && c);
    struct sv_route_action_ext ax = {.cors = &cors};
    struct sv_route_action a = {.ext = &ax};
    c->action = &a;
    /* nothing remembered: the modifiers pass through */
    struct sv_http_header set[] = {{S("Access-Control-Allow-Origin"), S("from-route")},
                                   {S("X-Set"), S("1")}};
    struct sv_http_header add[] = {{S("X-Add"), S("2")}};
    struct sv_str rm[] = {S("X-Gone")};
    struct sv_http_header_mods route = {set, 2, add, 1, rm, 1};
    CHECK(sv_dp_cors_response_mods(w, c, &route) == &route);
    CHECK(sv_dp_cors_response_mods(w, c, NULL) == NULL);
    memcpy(c->cors_origin, "https://www.foo.com", 19);
    c->cors_origin_len = 19;
    const struct sv_http_header_mods *m = sv_dp_cors_response_mods(w, c, &route);
    REQUIRE(m && m != &route);
    const struct sv_http_header *h = find(m->set, m->n_set, "Access-Control-Allow-Origin");
    REQUIRE(h);
    CHECK_EQ_MEM(h->value.ptr, h->value.len, "https://www.foo.com"); /* the filter wins */
    CHECK(find(m->set, m->n_set, "Access-Control-Allow-Credentials"));
    CHECK(find(m->set, m->n_set, "Access-Control-Expose-Headers"));
    CHECK(!find(m->set, m->n_set, "Access-Control-Max-Age"));
    CHECK(find(m->set, m->n_set, "X-Set"));
    CHECK_EQ_INT(m->n_set, 4);
    CHECK(find(m->add, m->n_add, "X-Add"));
    h = find(m->add, m->n_add, "Vary");
    REQUIRE(h);
    CHECK_EQ_MEM(h->value.ptr, h->value.len, "Origin");
    CHECK_EQ_INT(m->n_remove, 1);
    /* without route modifiers */
    m = sv_dp_cors_response_mods(w, c, NULL);
    REQUIRE(m);
    CHECK_EQ_INT(m->n_set, 3);
    CHECK_EQ_INT(m->n_add, 1);
    CHECK_EQ_INT(m->n_remove, 0);
    /* an action without CORS (the next request on the connection) adds nothing */
    struct sv_route_action_ext none = {0};
    struct sv_route_action plain = {.ext = &none};
    c->action = &plain;
    CHECK(sv_dp_cors_response_mods(w, c, &route) == &route);
    free(c);
    free(w);
}

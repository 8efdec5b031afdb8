/* Unit tests for the HTTP/2 frontend's pure pieces: the per-session pool allocator nghttp2 uses
 * and the HTTP/2 <-> HTTP/1.1 head conversions. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../harness.h"
#include "dataplane/h2_conv.h"
#include "dataplane/h2_pool.h"
#include "serval/http/parser.h"

static _Alignas(16) char pool_mem[64 * 1024];

TEST(h2_pool_alloc_free_reuse)
{
    struct sv_h2_pool p;
    sv_h2_pool_init(&p, pool_mem, sizeof(pool_mem));
    char *a = sv_h2_pool_alloc(&p, 10);
    char *b = sv_h2_pool_alloc(&p, 100);
    REQUIRE(a && b && a != b);
    memset(a, 'a', 10);
    memset(b, 'b', 100);
    CHECK(a[9] == 'a' && b[0] == 'b'); /* blocks do not overlap */
    CHECK_EQ_INT(sv_h2_pool_used(&p), 32 + 128);
    sv_h2_pool_free(&p, a);
    CHECK_EQ_INT(sv_h2_pool_used(&p), 128);
    char *c = sv_h2_pool_alloc(&p, 12); /* same class: the freed block comes back */
    CHECK(c == a);
    sv_h2_pool_free(&p, NULL);
    CHECK(sv_h2_pool_alloc(&p, 0) == NULL);
    CHECK_EQ_INT(sv_h2_pool_peak(&p), 160);
}

TEST(h2_pool_calloc_realloc)
{
    struct sv_h2_pool p;
    sv_h2_pool_init(&p, pool_mem, sizeof(pool_mem));
    memset(pool_mem, 0x5a, sizeof(pool_mem));
    unsigned char *z = sv_h2_pool_calloc(&p, 10, 7);
    REQUIRE(z);
    bool zero = true;
    for (int i = 0; i < 70; i++)
        zero = zero && z[i] == 0;
    CHECK(zero);
    memcpy(z, "hello", 5);
    unsigned char *y = sv_h2_pool_realloc(&p, z, 100); /* fits its 128-byte block */
    CHECK(y == z);
    unsigned char *x = sv_h2_pool_realloc(&p, y, 5000);
    REQUIRE(x);
    CHECK(x != y && memcmp(x, "hello", 5) == 0);
    CHECK(sv_h2_pool_realloc(&p, x, 0) == NULL);
    CHECK(sv_h2_pool_calloc(&p, SIZE_MAX / 2, 4) == NULL); /* overflow refused */
}

TEST(h2_pool_bounded_and_reset)
{
    struct sv_h2_pool p;
    sv_h2_pool_init(&p, pool_mem, sizeof(pool_mem));
    CHECK(sv_h2_pool_alloc(&p, SV_H2_POOL_MAX) == NULL); /* larger than any class */
    int n = 0;
    while (n < 100 && sv_h2_pool_alloc(&p, 8000))
        n++;
    CHECK_EQ_INT(n, 8); /* 8 KiB blocks in a 64 KiB region */
    CHECK(sv_h2_pool_fails(&p) >= 2);
    void *keep = sv_h2_pool_alloc(&p, 8000);
    CHECK(keep == NULL);
    sv_h2_pool_reset(&p);
    CHECK_EQ_INT(sv_h2_pool_used(&p), 0);
    CHECK(sv_h2_pool_alloc(&p, 8000) != NULL); /* the region is whole again */
}

static struct sv_str S(const char *s)
{
    return sv_str_cstr(s);
}

TEST(h2_request_head_conversion)
{
    char out[512];
    struct sv_h2_req r = {
        .method = S("GET"), .path = S("/a?b=1"), .authority = S("example.org"),
        .lines = S("accept: */*\r\nx-a: 1\r\n"),
    };
    ssize_t n = sv_h2_request_head(&r, out, sizeof(out));
    REQUIRE(n > 0);
    CHECK_EQ_MEM(out, (size_t)n,
                 "GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\naccept: */*\r\nx-a: 1\r\n\r\n");
    /* the result parses as an HTTP/1.1 request with Host from :authority */
    struct sv_http_parser ps;
    sv_http_parser_init(&ps, SV_HTTP_REQUEST, NULL);
    struct sv_http_header hs[8];
    struct sv_http_head h;
    sv_http_head_init(&h, hs, 8);
    size_t hl = 0;
    REQUIRE(sv_http_parse_head(&ps, out, (size_t)n, &h, &hl) == SV_HTTP_OK);
    CHECK(sv_str_eq(h.host, S("example.org")) && hl == (size_t)n);

    /* body without content-length: chunked; with one: no framing added */
    r.method = S("POST");
    r.body = true;
    n = sv_h2_request_head(&r, out, sizeof(out));
    REQUIRE(n > 0);
    CHECK(memmem(out, (size_t)n, "Transfer-Encoding: chunked\r\n", 28) != NULL);
    r.has_cl = true;
    r.lines = S("content-length: 5\r\n");
    n = sv_h2_request_head(&r, out, sizeof(out));
    CHECK(n > 0 && memmem(out, (size_t)n, "Transfer-Encoding", 17) == NULL);
    /* body-less POST gets Content-Length: 0 */
    r.body = r.has_cl = false;
    r.lines = S("");
    n = sv_h2_request_head(&r, out, sizeof(out));
    CHECK(n > 0 && memmem(out, (size_t)n, "Content-Length: 0\r\n", 19) != NULL);
    /* no :authority: no Host line added (a host field in <lines> serves) */
    r.authority = S("");
    r.method = S("GET");
    n = sv_h2_request_head(&r, out, sizeof(out));
    CHECK(n > 0 && memmem(out, (size_t)n, "Host:", 5) == NULL);
    CHECK_EQ_INT(sv_h2_request_head(&r, out, 10), -ENOSPC);
}

TEST(h2_request_head_joins_cookie_crumbs)
{
    char out[512];
    struct sv_h2_req r = {
        .method = S("GET"), .path = S("/"), .authority = S("a.test"),
        .lines = S("cookie: a=1\r\nx-b: 2\r\ncookie: c=3\r\ncookie: d=4\r\n"),
    };
    ssize_t n = sv_h2_request_head(&r, out, sizeof(out));
    REQUIRE(n > 0);
    CHECK_EQ_MEM(out, (size_t)n,
                 "GET / HTTP/1.1\r\nHost: a.test\r\nx-b: 2\r\ncookie: a=1; c=3; d=4\r\n\r\n");
    r.lines = S("x-b: 2\r\n");
    n = sv_h2_request_head(&r, out, sizeof(out));
    CHECK(n > 0 && memmem(out, (size_t)n, "cookie", 6) == NULL);
}

TEST(h2_response_nv_drops_connection_headers)
{
    static const char resp[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                               "Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
                               "Transfer-Encoding: chunked\r\nX-Keep: Yes\r\n\r\n";
    struct sv_http_parser ps;
    sv_http_parser_init(&ps, SV_HTTP_RESPONSE, NULL);
    sv_http_parser_set_request_method(&ps, SV_HTTP_GET);
    struct sv_http_header hs[16];
    struct sv_http_head h;
    sv_http_head_init(&h, hs, 16);
    size_t hl = 0;
    REQUIRE(sv_http_parse_head(&ps, resp, sizeof(resp) - 1, &h, &hl) == SV_HTTP_OK);
    nghttp2_nv nv[16];
    char scratch[256];
    ssize_t n = sv_h2_response_nv(&h, nv, 16, scratch, sizeof(scratch));
    REQUIRE(n == 3);
    CHECK_EQ_MEM(nv[0].name, nv[0].namelen, ":status");
    CHECK_EQ_MEM(nv[0].value, nv[0].valuelen, "404");
    CHECK_EQ_MEM(nv[1].name, nv[1].namelen, "content-type"); /* lower-cased */
    CHECK_EQ_MEM(nv[1].value, nv[1].valuelen, "text/plain");
    CHECK_EQ_MEM(nv[2].name, nv[2].namelen, "x-keep");
    CHECK_EQ_MEM(nv[2].value, nv[2].valuelen, "Yes");
    CHECK_EQ_INT(sv_h2_response_nv(&h, nv, 2, scratch, sizeof(scratch)), -ENOSPC);
}

TEST(h2_request_nv_for_h2c_upstreams)
{
    static const char req[] = "POST /a/b?x=1 HTTP/1.1\r\nHost: app.example:8080\r\n"
                              "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n"
                              "Transfer-Encoding: chunked\r\nUpgrade: foo\r\n"
                              "X-Forwarded-For: 10.0.0.1\r\nContent-Type: text/plain\r\n\r\n";
    struct sv_http_parser ps;
    sv_http_parser_init(&ps, SV_HTTP_REQUEST, NULL);
    struct sv_http_header hs[16];
    struct sv_http_head h;
    sv_http_head_init(&h, hs, 16);
    size_t hl = 0;
    REQUIRE(sv_http_parse_head(&ps, req, sizeof(req) - 1, &h, &hl) == SV_HTTP_OK);
    nghttp2_nv nv[16];
    char scratch[256];
    ssize_t n = sv_h2_request_nv(&h, nv, 16, scratch, sizeof(scratch));
    REQUIRE(n == 6);
    CHECK_EQ_MEM(nv[0].name, nv[0].namelen, ":method");
    CHECK_EQ_MEM(nv[0].value, nv[0].valuelen, "POST");
    CHECK_EQ_MEM(nv[1].name, nv[1].namelen, ":scheme");
    CHECK_EQ_MEM(nv[1].value, nv[1].valuelen, "http");
    CHECK_EQ_MEM(nv[2].name, nv[2].namelen, ":authority");
    CHECK_EQ_MEM(nv[2].value, nv[2].valuelen, "app.example:8080");
    CHECK_EQ_MEM(nv[3].name, nv[3].namelen, ":path");
    CHECK_EQ_MEM(nv[3].value, nv[3].valuelen, "/a/b?x=1");
    /* Host, Connection and what it lists, TE, Transfer-Encoding, Upgrade are gone */
    CHECK_EQ_MEM(nv[4].name, nv[4].namelen, "x-forwarded-for");
    CHECK_EQ_MEM(nv[5].name, nv[5].namelen, "content-type");
    CHECK_EQ_MEM(nv[5].value, nv[5].valuelen, "text/plain");
    CHECK_EQ_INT(sv_h2_request_nv(&h, nv, 5, scratch, sizeof(scratch)), -ENOSPC);

    static const char abs_req[] = "GET http://other.example/p/q?z HTTP/1.1\r\nHost: x\r\n\r\n";
    sv_http_parser_init(&ps, SV_HTTP_REQUEST, NULL);
    sv_http_head_init(&h, hs, 16);
    REQUIRE(sv_http_parse_head(&ps, abs_req, sizeof(abs_req) - 1, &h, &hl) == SV_HTTP_OK);
    n = sv_h2_request_nv(&h, nv, 16, scratch, sizeof(scratch));
    REQUIRE(n == 4);
    CHECK_EQ_MEM(nv[2].value, nv[2].valuelen, "other.example"); /* the target's authority */
    CHECK_EQ_MEM(nv[3].value, nv[3].valuelen, "/p/q?z");         /* absolute-form: path only */
}

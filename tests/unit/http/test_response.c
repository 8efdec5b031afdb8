/* Unit tests for src/http/response.c: canned responses parse and carry the right length,
 * redirects, simple responses, X-Forwarded-For formatting. */
#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/http/message.h"
#include "serval/http/parser.h"
#include "serval/http/response.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/* Parse a complete response in <s>[<n>]: head, then a Content-Length body that must end exactly
 * at <n>. Returns the status or a negative error. */
static int parse_complete(const char *s, size_t n, struct sv_http_head *h,
                          struct sv_http_header *hdrs, uint32_t cap)
{
    struct sv_http_parser p;
    size_t hl = 0, used = 0;
    bool done = false;
    sv_http_parser_init(&p, SV_HTTP_RESPONSE, NULL);
    sv_http_head_init(h, hdrs, cap);
    int rc = sv_http_parse_head(&p, s, n, h, &hl);
    if (rc != SV_HTTP_OK)
        return rc < 0 ? rc : -1000;
    enum sv_http_body_kind k = sv_http_body_begin(&p);
    if (k == SV_HTTP_BODY_LENGTH) {
        rc = sv_http_parse_body(&p, s + hl, n - hl, &used, &done);
        if (rc < 0)
            return rc;
    } else if (k == SV_HTTP_BODY_NONE) {
        done = true;
    }
    if (!done || hl + used != n)
        return -1001;
    return h->status;
}

static bool str_eq_reason(struct sv_str reason, int status)
{
    return sv_str_eq(reason, sv_str_cstr(sv_http_reason(status)));
}

TEST(http_canned_responses)
{
    static const int codes[] = {400, 404, 408, 413, 421, 431, 500, 501, 502, 503, 504, 505};
    for (size_t i = 0; i < SV_ARRAY_SIZE(codes); i++) {
        for (int close = 0; close <= 1; close++) {
            struct sv_str r = sv_http_canned(codes[i], close);
            REQUIRE(r.ptr != NULL);
            struct sv_http_header hdrs[8];
            struct sv_http_head h;
            int st = parse_complete(r.ptr, r.len, &h, hdrs, 8);
            if (st != codes[i]) {
                FAIL("canned %d close=%d: parse gives %d:\n%.*s", codes[i], close, st, (int)r.len,
                     r.ptr);
                continue;
            }
            CHECK(str_eq_reason(h.reason, codes[i]));
            CHECK_EQ_INT((h.flags & SV_HTTP_F_CONNECTION_CLOSE) != 0, close);
            CHECK(sv_str_eq(sv_http_head_get(&h, SV_STR_LIT("content-type")),
                            SV_STR_LIT("text/plain")));
        }
    }
    CHECK(sv_http_canned(200, false).ptr == NULL);
    CHECK(sv_http_canned(418, true).ptr == NULL);
    CHECK(sv_str_eq(sv_http_100_continue, SV_STR_LIT("HTTP/1.1 100 Continue\r\n\r\n")));
}

#define CHECK_WROTE(n, buf, want)                                                                  \
    do {                                                                                           \
        ssize_t n_ = (n);                                                                          \
        if (n_ < 0 || (size_t)n_ != strlen(want) || memcmp((buf), (want), (size_t)n_) != 0)        \
            FAIL("wrote %zd:\n%.*s\nwant:\n%s", n_, n_ > 0 ? (int)n_ : 0, (buf), (want));          \
    } while (0)

TEST(http_redirects)
{
    char out[512];
    struct sv_http_location loc = {SV_STR_LIT("https"), SV_STR_LIT("a.example"), 443,
                                   SV_STR_LIT("/p"), SV_STR_LIT("x=1")};
    CHECK_WROTE(sv_http_write_redirect(out, sizeof(out), 301, &loc, false), out,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://a.example/p?x=1\r\n"
                "Content-Length: 0\r\n\r\n");
    loc.port = 8443;
    loc.query = SV_STR_NULL;
    CHECK_WROTE(sv_http_write_redirect(out, sizeof(out), 302, &loc, true), out,
                "HTTP/1.1 302 Found\r\nLocation: https://a.example:8443/p\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n");
    struct sv_http_location l80 = {SV_STR_LIT("http"), SV_STR_LIT("b"), 80, SV_STR_NULL,
                                   SV_STR_LIT("")};
    CHECK_WROTE(sv_http_write_redirect(out, sizeof(out), 308, &l80, false), out,
                "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://b/?\r\n"
                "Content-Length: 0\r\n\r\n");
    struct sv_http_location l443 = {SV_STR_LIT("http"), SV_STR_LIT("b"), 443, SV_STR_LIT("/"),
                                    SV_STR_NULL};
    CHECK_WROTE(sv_http_write_redirect(out, sizeof(out), 307, &l443, false), out,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://b:443/\r\n"
                "Content-Length: 0\r\n\r\n");
    struct sv_http_location v6 = {SV_STR_LIT("http"), SV_STR_LIT("::1"), 8080, SV_STR_LIT("/"),
                                  SV_STR_NULL};
    ssize_t n = sv_http_write_redirect(out, sizeof(out), 303, &v6, false);
    CHECK(n > 0 && memmem(out, (size_t)n, "Location: http://[::1]:8080/\r\n", 30) != NULL);
    /* the result parses as a complete response */
    struct sv_http_header hdrs[8];
    struct sv_http_head h;
    CHECK_EQ_INT(parse_complete(out, (size_t)n, &h, hdrs, 8), 303);
    /* refused: other status, CRLF in pieces, too small */
    CHECK_EQ_INT(sv_http_write_redirect(out, sizeof(out), 200, &loc, false), -EINVAL);
    struct sv_http_location inj = {SV_STR_LIT("http"), SV_STR_LIT("b"), 0,
                                   SV_STR_LIT("/a\r\nSet-Cookie: x"), SV_STR_NULL};
    CHECK_EQ_INT(sv_http_write_redirect(out, sizeof(out), 302, &inj, false), -EINVAL);
    CHECK_EQ_INT(sv_http_write_redirect(out, 20, 302, &loc, false), -ENOSPC);
}

TEST(http_simple_response)
{
    char out[256];
    ssize_t n = sv_http_write_simple_response(out, sizeof(out), 200, false,
                                              SV_STR_LIT("application/json"), SV_STR_LIT("{}"));
    CHECK_WROTE(n, out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: 2\r\n\r\n{}");
    struct sv_http_header hdrs[8];
    struct sv_http_head h;
    CHECK_EQ_INT(parse_complete(out, (size_t)n, &h, hdrs, 8), 200);
    n = sv_http_write_simple_response(out, sizeof(out), 503, true, SV_STR_NULL, SV_STR_LIT(""));
    CHECK_WROTE(n, out,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
    CHECK_EQ_INT(
        sv_http_write_simple_response(out, sizeof(out), 99, false, SV_STR_NULL, SV_STR_NULL),
        -EINVAL);
    CHECK_EQ_INT(sv_http_write_simple_response(out, sizeof(out), 200, false,
                                               SV_STR_LIT("a\r\nb: c"), SV_STR_NULL),
                 -EINVAL);
    CHECK_EQ_INT(sv_http_write_simple_response(out, 10, 200, false, SV_STR_NULL, SV_STR_NULL),
                 -ENOSPC);
}

TEST(http_format_xff)
{
    char out[64];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, "192.0.2.33", &in.sin_addr);
    CHECK_EQ_INT(sv_http_format_xff((struct sockaddr *)&in, out, sizeof(out)), 10);
    CHECK_EQ_STR(out, "192.0.2.33");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    CHECK_EQ_INT(sv_http_format_xff((struct sockaddr *)&in6, out, sizeof(out)), 11);
    CHECK_EQ_STR(out, "2001:db8::1");
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
    CHECK_EQ_INT(sv_http_format_xff((struct sockaddr *)&in6, out, sizeof(out)), 8);
    CHECK_EQ_STR(out, "10.1.2.3");
    CHECK_EQ_INT(sv_http_format_xff((struct sockaddr *)&in, out, 10), -ENOSPC);
    CHECK_EQ_INT(sv_http_format_xff((struct sockaddr *)&in, out, 11), 10);
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_EQ_INT(sv_http_format_xff(&un, out, sizeof(out)), -EAFNOSUPPORT);
}

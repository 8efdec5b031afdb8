/* Unit tests for src/http/parser.c. Every input sits right before a PROT_NONE page (guard.h), so
 * a read past the end faults. Heads are parsed at once and one byte at a time, and both must
 * agree. */
#include "../harness.h"
#include "guard.h"
#include "serval/base/assert.h"
#include "serval/base/compiler.h"
#include "serval/http/message.h"
#include "serval/http/parser.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NHDR 80

static struct guard_buf g_buf;
static bool g_buf_ok;

static struct guard_buf *gbuf(void)
{
    if (!g_buf_ok) {
        SV_ASSERT(guard_init(&g_buf, 256 * 1024) == 0);
        g_buf_ok = true;
    }
    return &g_buf;
}

struct parsed {
    struct sv_http_parser p;
    struct sv_http_head head;
    struct sv_http_header hdrs[NHDR];
    size_t head_len;
    int rc;
    const char *buf;
};

/* Parse the head of <s>[<n>] at once. */
static int parse_at_once(struct parsed *r, enum sv_http_kind kind, enum sv_http_method req_method,
                         const char *s, size_t n, const struct sv_http_limits *lim)
{
    sv_http_parser_init(&r->p, kind, lim);
    sv_http_parser_set_request_method(&r->p, req_method);
    sv_http_head_init(&r->head, r->hdrs, NHDR);
    r->head_len = 0;
    r->buf = guard_put(gbuf(), s, n);
    r->rc = sv_http_parse_head(&r->p, r->buf, n, &r->head, &r->head_len);
    return r->rc;
}

/* Parse the head of <s>[<n>] growing the input one byte at a time (each prefix at the guard). */
static int parse_trickle(struct parsed *r, enum sv_http_kind kind, enum sv_http_method req_method,
                         const char *s, size_t n, const struct sv_http_limits *lim)
{
    sv_http_parser_init(&r->p, kind, lim);
    sv_http_parser_set_request_method(&r->p, req_method);
    sv_http_head_init(&r->head, r->hdrs, NHDR);
    r->head_len = 0;
    r->rc = SV_HTTP_AGAIN;
    for (size_t k = 1; k <= n && r->rc == SV_HTTP_AGAIN; k++) {
        r->buf = guard_put(gbuf(), s, k);
        r->rc = sv_http_parse_head(&r->p, r->buf, k, &r->head, &r->head_len);
    }
    return r->rc;
}

/* A text rendering of a parsed head (offsets, not pointers) so two parses can be compared. */
static void summarize(const struct parsed *r, char *out, size_t cap)
{
    const struct sv_http_head *h = &r->head;
    int n = snprintf(out, cap,
                     "rc=%d len=%zu m=%d ms=%.*s t=%.*s p=%.*s q=%.*s a=%.*s h=%.*s "
                     "st=%u v=%u f=%x cl=%llu up=%.*s n=%u",
                     r->rc, r->head_len, h->method, (int)h->method_str.len, h->method_str.ptr,
                     (int)h->target.len, h->target.ptr, (int)h->path.len, h->path.ptr,
                     (int)h->query.len, h->query.ptr, (int)h->authority.len, h->authority.ptr,
                     (int)h->host.len, h->host.ptr, h->status, h->version_minor, h->flags,
                     (unsigned long long)h->content_length, (int)h->upgrade.len, h->upgrade.ptr,
                     h->n_headers);
    for (uint32_t i = 0; i < h->n_headers && n > 0 && (size_t)n < cap; i++)
        n +=
            snprintf(out + n, cap - (size_t)n, " [%.*s|%.*s]", (int)h->headers[i].name.len,
                     h->headers[i].name.ptr, (int)h->headers[i].value.len, h->headers[i].value.ptr);
}

static bool str_is(struct sv_str s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.ptr, want, s.len) == 0);
}

#define CHECK_SV(s, want)                                                                          \
    do {                                                                                           \
        if (!str_is((s), (want)))                                                                  \
            FAIL("%s is \"%.*s\", want \"%s\"", #s, (int)(s).len, (s).ptr ? (s).ptr : "", (want)); \
    } while (0)

/* Parse at once and trickled; both must give the same summary. */
static int parse_both(struct parsed *r, enum sv_http_kind kind, enum sv_http_method req_method,
                      const char *s, const struct sv_http_limits *lim)
{
    static struct parsed t;
    char a[4096], b[4096];
    size_t n = strlen(s);
    parse_trickle(&t, kind, req_method, s, n, lim);
    summarize(&t, b, sizeof(b));
    parse_at_once(r, kind, req_method, s, n, lim);
    summarize(r, a, sizeof(a));
    if (strcmp(a, b) != 0)
        FAIL("at once vs trickled differ for %s:\n  %s\n  %s", s, a, b);
    return r->rc;
}

/* ---- requests that parse ------------------------------------------------------------------- */

struct req_case {
    const char *in;
    int method;
    const char *method_str, *target, *path, *query, *host;
    uint32_t flags_set, flags_clear;
    int body;
    uint64_t cl;
};

static const struct req_case req_cases[] = {
    {"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", SV_HTTP_GET, "GET", "/", "/", "", "a.example",
     SV_HTTP_F_KEEP_ALIVE | SV_HTTP_F_HOST, SV_HTTP_F_QUERY | SV_HTTP_F_BODY, SV_HTTP_BODY_NONE, 0},
    {"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", SV_HTTP_HEAD, "HEAD", "/x", "/x", "", "h",
     SV_HTTP_F_KEEP_ALIVE, 0, SV_HTTP_BODY_NONE, 0},
    {"POST /p?a=1&b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", SV_HTTP_POST, "POST",
     "/p?a=1&b", "/p", "a=1&b", "h", SV_HTTP_F_QUERY | SV_HTTP_F_CONTENT_LENGTH | SV_HTTP_F_BODY,
     SV_HTTP_F_CHUNKED, SV_HTTP_BODY_LENGTH, 5},
    {"PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", SV_HTTP_PUT, "PUT", "/u",
     "/u", "", "h", SV_HTTP_F_CHUNKED | SV_HTTP_F_BODY, SV_HTTP_F_CONTENT_LENGTH,
     SV_HTTP_BODY_CHUNKED, 0},
    {"DELETE /d? HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", SV_HTTP_DELETE, "DELETE", "/d?",
     "/d", "", "h", SV_HTTP_F_QUERY | SV_HTTP_F_CONTENT_LENGTH, SV_HTTP_F_BODY, SV_HTTP_BODY_NONE,
     0},
    {"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", SV_HTTP_CONNECT, "CONNECT",
     "a.example:443", "", "", "a.example:443", 0, SV_HTTP_F_BODY, SV_HTTP_BODY_NONE, 0},
    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", SV_HTTP_OPTIONS, "OPTIONS", "*", "*", "", "h", 0, 0,
     SV_HTTP_BODY_NONE, 0},
    {"TRACE /t HTTP/1.1\r\nHost: h\r\n\r\n", SV_HTTP_TRACE, "TRACE", "/t", "/t", "", "h", 0, 0,
     SV_HTTP_BODY_NONE, 0},
    {"PATCH /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n", SV_HTTP_PATCH, "PATCH", "/x",
     "/x", "", "h", SV_HTTP_F_BODY, 0, SV_HTTP_BODY_LENGTH, 2},
    /* a method llhttp knows but we do not name */
    {"PROPFIND /dav HTTP/1.1\r\nHost: h\r\n\r\n", SV_HTTP_OTHER, "PROPFIND", "/dav", "/dav", "",
     "h", 0, 0, SV_HTTP_BODY_NONE, 0},
    /* absolute-form: the authority wins over Host */
    {"GET http://b.example:8080/p/q?x=y HTTP/1.1\r\nHost: other\r\n\r\n", SV_HTTP_GET, "GET",
     "http://b.example:8080/p/q?x=y", "/p/q", "x=y", "b.example:8080", SV_HTTP_F_QUERY, 0,
     SV_HTTP_BODY_NONE, 0},
    {"GET https://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n", SV_HTTP_GET, "GET",
     "https://b.example", "/", "", "b.example", 0, SV_HTTP_F_QUERY, SV_HTTP_BODY_NONE, 0},
    {"GET HTTP://b.example?q HTTP/1.1\r\nHost: b.example\r\n\r\n", SV_HTTP_GET, "GET",
     "HTTP://b.example?q", "/", "q", "b.example", SV_HTTP_F_QUERY, 0, SV_HTTP_BODY_NONE, 0},
    /* HTTP/1.0: no Host needed, not keep-alive unless asked */
    {"GET /old HTTP/1.0\r\n\r\n", SV_HTTP_GET, "GET", "/old", "/old", "", "", 0,
     SV_HTTP_F_KEEP_ALIVE | SV_HTTP_F_HOST, SV_HTTP_BODY_NONE, 0},
    {"GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", SV_HTTP_GET, "GET", "/old", "/old", "",
     "", SV_HTTP_F_KEEP_ALIVE | SV_HTTP_F_CONNECTION_KEEP_ALIVE, 0, SV_HTTP_BODY_NONE, 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", SV_HTTP_GET, "GET", "/", "/", "",
     "", SV_HTTP_F_CONNECTION_CLOSE, SV_HTTP_F_KEEP_ALIVE, SV_HTTP_BODY_NONE, 0},
    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", SV_HTTP_GET, "GET", "/", "/", "",
     "h", SV_HTTP_F_CONNECTION_CLOSE, SV_HTTP_F_KEEP_ALIVE, SV_HTTP_BODY_NONE, 0},
    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n", SV_HTTP_GET,
     "GET", "/", "/", "", "h",
     SV_HTTP_F_KEEP_ALIVE | SV_HTTP_F_CONNECTION_OTHER | SV_HTTP_F_CONNECTION_KEEP_ALIVE,
     SV_HTTP_F_CONNECTION_CLOSE, SV_HTTP_BODY_NONE, 0},
    /* upgrade needs both headers */
    {"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
     SV_HTTP_GET, "GET", "/ws", "/ws", "", "h",
     SV_HTTP_F_UPGRADE | SV_HTTP_F_CONNECTION_UPGRADE | SV_HTTP_F_KEEP_ALIVE, 0, SV_HTTP_BODY_NONE,
     0},
    {"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", SV_HTTP_GET, "GET", "/ws", "/ws",
     "", "h", 0, SV_HTTP_F_UPGRADE, SV_HTTP_BODY_NONE, 0},
    {"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
     SV_HTTP_POST, "POST", "/e", "/e", "", "h", SV_HTTP_F_EXPECT_CONTINUE, 0, SV_HTTP_BODY_LENGTH,
     1},
    /* empty lines before the request line are skipped; empty Host is allowed */
    {"\r\n\r\nGET /s HTTP/1.1\r\nHost:\r\n\r\n", SV_HTTP_GET, "GET", "/s", "/s", "", "",
     SV_HTTP_F_HOST, 0, SV_HTTP_BODY_NONE, 0},
    /* whitespace around values; obs-text in values; token-ish names */
    {"GET /%7Euser;p=1/a:b@c!$&'()*+,=-._~ HTTP/1.1\r\nHost: \t h:81 \t\r\nX-Y_z.1!#$%&'*+^`|~: "
     "v \xe9 x\r\n\r\n",
     SV_HTTP_GET, "GET", "/%7Euser;p=1/a:b@c!$&'()*+,=-._~", "/%7Euser;p=1/a:b@c!$&'()*+,=-._~", "",
     "h:81", 0, 0, SV_HTTP_BODY_NONE, 0},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n", SV_HTTP_POST, "POST", "/",
     "/", "", "h", SV_HTTP_F_CHUNKED, 0, SV_HTTP_BODY_CHUNKED, 0},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n", SV_HTTP_POST, "POST",
     "/", "/", "", "h", SV_HTTP_F_CHUNKED, 0, SV_HTTP_BODY_CHUNKED, 0},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0012\r\n\r\n", SV_HTTP_POST, "POST", "/", "/",
     "", "h", SV_HTTP_F_CONTENT_LENGTH, 0, SV_HTTP_BODY_LENGTH, 12},
};

TEST(http_parse_requests)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        static struct parsed r;
        int rc = parse_both(&r, SV_HTTP_REQUEST, SV_HTTP_GET, c->in, NULL);
        if (rc != SV_HTTP_OK) {
            FAIL("case %zu: rc %d (%s) for %s", i, rc, sv_http_error_name(rc), c->in);
            continue;
        }
        const struct sv_http_head *h = &r.head;
        CHECK_EQ_INT(r.head_len, strlen(c->in));
        CHECK_EQ_INT(h->kind, SV_HTTP_REQUEST);
        CHECK_EQ_INT(h->method, c->method);
        CHECK_SV(h->method_str, c->method_str);
        CHECK_SV(h->target, c->target);
        CHECK_SV(h->path, c->path);
        CHECK_SV(h->query, c->query);
        CHECK_SV(h->host, c->host);
        if ((h->flags & c->flags_set) != c->flags_set || (h->flags & c->flags_clear))
            FAIL("case %zu: flags %x, want set %x clear %x", i, h->flags, c->flags_set,
                 c->flags_clear);
        CHECK_EQ_INT(h->content_length, c->cl);
        CHECK_EQ_INT(sv_http_body_begin(&r.p), c->body);
    }
}

TEST(http_parse_request_fields)
{
    static struct parsed r;
    const char *in = "GET /a?b HTTP/1.1\r\nHost: h.example\r\nX-A: 1\r\nx-a:2\r\nAccept:  */*  "
                     "\r\nX-Empty:\r\n\r\nBODY";
    REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, strlen(in), NULL) == SV_HTTP_OK);
    CHECK_EQ_INT(r.head_len, strlen(in) - 4);
    CHECK_EQ_INT(r.head.version_minor, 1);
    CHECK_EQ_INT(r.head.n_headers, 5);
    CHECK_SV(r.head.headers[0].name, "Host");
    CHECK_SV(r.head.headers[2].name, "x-a");
    CHECK_SV(r.head.headers[2].value, "2");
    CHECK_SV(r.head.headers[3].value, "*/*");
    CHECK_SV(r.head.headers[4].value, "");
    CHECK(r.head.target.ptr == r.buf + 4); /* points into the caller's buffer */
    char joined[32];
    ssize_t n = sv_http_head_join(&r.head, SV_STR_LIT("X-A"), joined, sizeof(joined));
    CHECK_EQ_MEM(joined, n > 0 ? n : 0, "1,2");
    CHECK_EQ_INT(sv_http_body_begin(&r.p), SV_HTTP_BODY_NONE);
    /* a second parse_head without reset is a caller bug */
    CHECK_EQ_INT(sv_http_parse_head(&r.p, r.buf, strlen(in), &r.head, &r.head_len),
                 SV_HTTP_E_STATE);
}

TEST(http_parse_again_until_complete)
{
    static struct parsed r;
    const char *in = "GET / HTTP/1.1\r\nHost: h\r\n\r";
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, strlen(in), NULL),
                 SV_HTTP_AGAIN);
    CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_E_EOF);
    sv_http_parser_init(&r.p, SV_HTTP_REQUEST, NULL);
    CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_OK); /* nothing received: clean close */
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, "", 0, NULL), SV_HTTP_AGAIN);
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, "\r\n", 2, NULL), SV_HTTP_AGAIN);
    CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_OK);
}

/* ---- requests that must be refused --------------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *in;
    int err;
    int status;
};

#define H "Host: h\r\n"
static const struct bad_case bad_cases[] = {
    /* smuggling shapes */
    {"CL+TE", "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     SV_HTTP_E_CL_TE, 400},
    {"TE+CL", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     SV_HTTP_E_CL_TE, 400},
    {"duplicate CL same", "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\n",
     SV_HTTP_E_CL_DUP, 400},
    {"duplicate CL differ",
     "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", SV_HTTP_E_CL_DUP,
     400},
    {"CL list", "POST / HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\n", SV_HTTP_E_CL_DUP, 400},
    {"CL plus sign", "POST / HTTP/1.1\r\n" H "Content-Length: +3\r\n\r\n", SV_HTTP_E_CL_INVALID,
     400},
    {"CL negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", SV_HTTP_E_CL_INVALID,
     400},
    {"CL hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", SV_HTTP_E_CL_INVALID, 400},
    {"CL empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", SV_HTTP_E_CL_INVALID, 400},
    {"CL inner space", "POST / HTTP/1.1\r\n" H "Content-Length: 1 2\r\n\r\n", SV_HTTP_E_CL_INVALID,
     400},
    {"CL huge", "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999\r\n\r\n",
     SV_HTTP_E_CL_INVALID, 400},
    {"TE gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", SV_HTTP_E_TE, 400},
    {"TE chunked then gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
     SV_HTTP_E_TE, 400},
    {"TE chunked twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n",
     SV_HTTP_E_TE, 400},
    {"TE chunked in two headers",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     SV_HTTP_E_TE, 400},
    {"TE chunked then identity header",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
     SV_HTTP_E_TE, 400},
    {"TE empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \r\n\r\n", SV_HTTP_E_TE, 400},
    {"TE chunked-ish", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", SV_HTTP_E_TE,
     400},
    {"TE params", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;x=1\r\n\r\n", SV_HTTP_E_TE,
     400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", SV_HTTP_E_TE, 400},
    {"TE+CL in HTTP/1.0",
     "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", SV_HTTP_E_CL_TE,
     400},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n",
     SV_HTTP_E_TE_UNSUPPORTED, 501},
    {"bare LF everywhere", "GET / HTTP/1.1\n" H "\n", SV_HTTP_E_BARE_LF, 400},
    {"bare LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", SV_HTTP_E_BARE_LF, 400},
    {"bare LF header", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", SV_HTTP_E_BARE_LF, 400},
    {"bare LF end", "GET / HTTP/1.1\r\nHost: h\r\n\n", SV_HTTP_E_BARE_LF, 400},
    {"leading bare LF", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", SV_HTTP_E_BARE_LF, 400},
    {"bare CR in value", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", SV_HTTP_E_BARE_CR, 400},
    {"bare CR in name", "GET / HTTP/1.1\r\n" H "X\r: y\r\n\r\n", SV_HTTP_E_BARE_CR, 400},
    {"obs-fold", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", SV_HTTP_E_OBS_FOLD, 400},
    {"obs-fold tab", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", SV_HTTP_E_OBS_FOLD, 400},
    {"space first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", SV_HTTP_E_OBS_FOLD, 400},
    {"space before colon", "GET / HTTP/1.1\r\n" H "X : y\r\n\r\n", SV_HTTP_E_SPACE_BEFORE_COLON,
     400},
    {"tab before colon", "GET / HTTP/1.1\r\n" H "X\t: y\r\n\r\n", SV_HTTP_E_SPACE_BEFORE_COLON,
     400},
    {"space CL before colon", "POST / HTTP/1.1\r\n" H "Content-Length : 3\r\n\r\n",
     SV_HTTP_E_SPACE_BEFORE_COLON, 400},
    {"name bad byte", "GET / HTTP/1.1\r\n" H "X(y): z\r\n\r\n", SV_HTTP_E_HEADER_NAME, 400},
    {"name high byte", "GET / HTTP/1.1\r\n" H "X\xc3\xa9: z\r\n\r\n", SV_HTTP_E_HEADER_NAME, 400},
    {"name empty", "GET / HTTP/1.1\r\n" H ": z\r\n\r\n", SV_HTTP_E_HEADER_NAME, 400},
    {"no colon", "GET / HTTP/1.1\r\n" H "Xyz\r\n\r\n", SV_HTTP_E_SYNTAX, 400},
    {"value ctl", "GET / HTTP/1.1\r\n" H "X: a\x01z\r\n\r\n", SV_HTTP_E_HEADER_VALUE, 400},
    {"value DEL", "GET / HTTP/1.1\r\n" H "X: a\x7fz\r\n\r\n", SV_HTTP_E_HEADER_VALUE, 400},
    {"value VT", "GET / HTTP/1.1\r\n" H "X: a\vz\r\n\r\n", SV_HTTP_E_HEADER_VALUE, 400},
    {"target ctl", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target high byte", "GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target fragment", "GET /a#b HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target DEL", "GET /a\x7f HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target space", "GET /a b HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target tab", "GET /a\tb HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target relative", "GET a/b HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target userinfo", "GET http://u@h/ HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target empty authority", "GET http:///x HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"target other scheme", "GET ftp://h/x HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"asterisk not OPTIONS", "GET * HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"CONNECT no port", "CONNECT h HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"CONNECT path", "CONNECT /x HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_TARGET, 400},
    {"no Host 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", SV_HTTP_E_NO_HOST, 400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", SV_HTTP_E_MULTI_HOST, 400},
    {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", SV_HTTP_E_HOST, 400},
    {"Host with at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", SV_HTTP_E_HOST, 400},
    {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", SV_HTTP_E_HOST, 400},
    {"lower-case method", "get / HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_METHOD, 501},
    {"unknown method", "FOO / HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_METHOD, 501},
    {"method bad byte", "GE(T / HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_SYNTAX, 400},
    {"two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", SV_HTTP_E_SYNTAX, 400},
    {"no version", "GET /\r\n" H "\r\n", SV_HTTP_E_SYNTAX, 400},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", SV_HTTP_E_VERSION, 505},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", SV_HTTP_E_VERSION, 505},
    {"HTTP/0.9", "GET / HTTP/0.9\r\n" H "\r\n", SV_HTTP_E_VERSION, 505},
    {"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", SV_HTTP_E_VERSION, 505},
    {"lower http", "GET / http/1.1\r\n" H "\r\n", SV_HTTP_E_SYNTAX, 400},
    {"version trailing space", "GET / HTTP/1.1 \r\n" H "\r\n", SV_HTTP_E_SYNTAX, 400},
    {"NUL in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", SV_HTTP_E_HEADER_VALUE, 400},
};
#undef H

TEST(http_parse_bad_requests)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        static struct parsed r, t;
        /* NUL inside the literal: size from the literal table would be wrong; find the real end */
        size_t n = strlen(c->in);
        if (strcmp(c->name, "NUL in value") == 0)
            n = strlen(c->in) + 1 + strlen(c->in + strlen(c->in) + 1);
        parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, c->in, n, NULL);
        parse_trickle(&t, SV_HTTP_REQUEST, SV_HTTP_GET, c->in, n, NULL);
        if (r.rc != c->err || t.rc != c->err)
            FAIL("%s: got %d (%s) / trickled %d (%s), want %d (%s)", c->name, r.rc,
                 sv_http_error_name(r.rc), t.rc, sv_http_error_name(t.rc), c->err,
                 sv_http_error_name(c->err));
        CHECK_EQ_INT(sv_http_error_status(c->err, SV_HTTP_REQUEST), c->status);
        CHECK_EQ_INT(sv_http_error_status(c->err, SV_HTTP_RESPONSE), 502);
        /* errors are sticky */
        size_t hl = 0;
        CHECK_EQ_INT(sv_http_parse_head(&r.p, r.buf, n, &r.head, &hl), c->err);
    }
}

/* ---- limits ---------------------------------------------------------------------------------- */

TEST(http_parse_431_size)
{
    static char in[80 * 1024];
    static struct parsed r;
    struct sv_http_limits lim = {1024, 100};
    /* a head of exactly 1024 bytes passes, 1025 does not */
    for (int extra = 0; extra <= 1; extra++) {
        const char *start = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
        size_t n = (size_t)snprintf(in, sizeof(in), "%s", start);
        size_t want = 1024 + (size_t)extra;
        while (n < want - 4)
            in[n++] = 'a';
        memcpy(in + n, "\r\n\r\n", 4);
        n += 4;
        CHECK_EQ_INT(n, want);
        int rc = parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, n, &lim);
        CHECK_EQ_INT(rc, extra ? SV_HTTP_E_HEAD_TOO_LARGE : SV_HTTP_OK);
        rc = parse_trickle(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, n, &lim);
        CHECK_EQ_INT(rc, extra ? SV_HTTP_E_HEAD_TOO_LARGE : SV_HTTP_OK);
    }
    /* no end of head in sight: refused as soon as the limit is reached, not later */
    memset(in, 'a', sizeof(in));
    memcpy(in, "GET / HTTP/1.1\r\nX: ", 19);
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, 1023, &lim), SV_HTTP_AGAIN);
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, 1024, &lim),
                 SV_HTTP_E_HEAD_TOO_LARGE);
    CHECK_EQ_INT(sv_http_error_status(SV_HTTP_E_HEAD_TOO_LARGE, SV_HTTP_REQUEST), 431);
    /* default limit: 64 KiB */
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, 64 * 1024 - 1, NULL),
                 SV_HTTP_AGAIN);
    CHECK_EQ_INT(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, sizeof(in), NULL),
                 SV_HTTP_E_HEAD_TOO_LARGE);
}

TEST(http_parse_431_count)
{
    static char in[8192];
    static struct parsed r;
    struct sv_http_limits lim = {SV_DEFAULT_MAX_HEADER_BYTES, 10};
    for (int count = 9; count <= 11; count++) {
        size_t n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 1; i < count; i++)
            n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: v\r\n", i);
        n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
        int rc = parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, n, &lim);
        CHECK_EQ_INT(rc, count <= 10 ? SV_HTTP_OK : SV_HTTP_E_TOO_MANY_HEADERS);
        if (count <= 10)
            CHECK_EQ_INT(r.head.n_headers, (uint32_t)count);
    }
    /* the head's own capacity limits too */
    size_t n =
        (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
    struct sv_http_header three[2];
    sv_http_parser_init(&r.p, SV_HTTP_REQUEST, NULL);
    sv_http_head_init(&r.head, three, 2);
    size_t hl;
    CHECK_EQ_INT(sv_http_parse_head(&r.p, guard_put(gbuf(), in, n), n, &r.head, &hl),
                 SV_HTTP_E_TOO_MANY_HEADERS);
    CHECK_EQ_INT(sv_http_error_status(SV_HTTP_E_TOO_MANY_HEADERS, SV_HTTP_REQUEST), 431);
}

/* ---- bodies, pipelining ---------------------------------------------------------------------- */

/* Walk a stream of pipelined requests; the input is offered in pieces of <piece> bytes (head
 * bytes accumulate as a data plane would copy them; body bytes are fed piece by piece). Appends
 * "<METHOD> <path> <body bytes>;" per message to <log>. Returns 0, or the error. */
static int walk_stream(const char *s, size_t n, size_t piece, char *log, size_t logcap)
{
    static struct parsed r;
    size_t off = 0;   /* start of the current message's head */
    size_t avail = 0; /* bytes "received" so far */
    size_t loglen = 0;
    log[0] = 0;
    sv_http_parser_init(&r.p, SV_HTTP_REQUEST, NULL);
    for (int msgs = 0; msgs < 100 && off < n; msgs++) {
        sv_http_head_init(&r.head, r.hdrs, NHDR);
        size_t hl = 0;
        int rc;
        for (;;) {
            if (avail < off)
                avail = off;
            r.buf = guard_put(gbuf(), s + off, avail - off);
            rc = sv_http_parse_head(&r.p, r.buf, avail - off, &r.head, &hl);
            if (rc != SV_HTTP_AGAIN)
                break;
            if (avail >= n)
                return SV_HTTP_E_EOF;
            avail = SV_MIN(n, avail + piece);
        }
        if (rc < 0)
            return rc;
        loglen += (size_t)snprintf(log + loglen, logcap - loglen, "%.*s %.*s ",
                                   (int)r.head.method_str.len, r.head.method_str.ptr,
                                   (int)r.head.path.len, r.head.path.ptr);
        off += hl;
        enum sv_http_body_kind k = sv_http_body_begin(&r.p);
        size_t body = 0;
        if (k == SV_HTTP_BODY_LENGTH || k == SV_HTTP_BODY_CHUNKED) {
            bool done = false;
            for (int guard = 0; !done && guard < 100000; guard++) {
                if (avail <= off) {
                    if (avail >= n)
                        return SV_HTTP_E_EOF;
                    avail = SV_MIN(n, avail + piece);
                }
                size_t used = 0;
                const char *d = guard_put(gbuf(), s + off, avail - off);
                rc = sv_http_parse_body(&r.p, d, avail - off, &used, &done);
                if (rc < 0)
                    return rc;
                if (used > avail - off)
                    return SV_HTTP_E_INTERNAL;
                off += used;
                body += used;
                if (!done && off != avail)
                    return SV_HTTP_E_INTERNAL; /* not done must mean all consumed */
            }
        }
        loglen += (size_t)snprintf(log + loglen, logcap - loglen, "%zu;", body);
        sv_http_parser_reset(&r.p);
    }
    return 0;
}

TEST(http_pipelined_split_exactly)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nTrailer-X: 1\r\n\r\n"
                    "\r\n" /* a stray CRLF between messages is tolerated */
                    "PUT /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "A\r\n0123456789\r\n0\r\n\r\n"
                    "GET /e HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *want = "GET /a 0;POST /b 5;POST /c 41;PUT /d 20;GET /e 0;";
    size_t n = strlen(s);
    char log[512];
    for (size_t piece = 1; piece <= n; piece++) {
        int rc = walk_stream(s, n, piece, log, sizeof(log));
        if (rc != 0 || strcmp(log, want) != 0) {
            FAIL("piece %zu: rc %d (%s) log \"%s\"", piece, rc, sv_http_error_name(rc), log);
            break;
        }
    }
}

/* Feed the body of one chunked message split at the given points; check it ends exactly at the
 * end of the chunked body. */
static int feed_split(const char *head, const char *body, size_t body_len, const size_t *cuts,
                      size_t ncuts, size_t *consumed, bool *done_out)
{
    static struct parsed r;
    size_t hl;
    if (parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, head, strlen(head), NULL) != SV_HTTP_OK)
        return SV_HTTP_E_INTERNAL;
    (void)hl;
    if (sv_http_body_begin(&r.p) != SV_HTTP_BODY_CHUNKED)
        return SV_HTTP_E_INTERNAL;
    size_t prev = 0;
    *consumed = 0;
    *done_out = false;
    for (size_t i = 0; i <= ncuts && !*done_out; i++) {
        size_t end = i < ncuts ? cuts[i] : body_len;
        if (end < prev)
            continue;
        size_t used;
        const char *d = guard_put(gbuf(), body + prev, end - prev);
        int rc = sv_http_parse_body(&r.p, d, end - prev, &used, done_out);
        if (rc < 0)
            return rc;
        *consumed += used;
        if (!*done_out && used != end - prev)
            return SV_HTTP_E_INTERNAL;
        prev = end;
    }
    return 0;
}

TEST(http_chunked_every_split)
{
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *body = "1a;name=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                       "3\r\nxyz\r\n"
                       "0\r\nX-T: a\r\nY-T: b\r\n\r\n";
    const char *next = "GET /next HTTP/1.1\r\n";
    char full[256];
    size_t blen = strlen(body);
    size_t n = (size_t)snprintf(full, sizeof(full), "%s%s", body, next);
    size_t consumed;
    bool done;
    /* every 2-way split */
    for (size_t a = 0; a <= n; a++) {
        size_t cuts[1] = {a};
        int rc = feed_split(head, full, n, cuts, 1, &consumed, &done);
        if (rc != 0 || !done || consumed != blen) {
            FAIL("split %zu: rc %d done %d consumed %zu want %zu", a, rc, done, consumed, blen);
            return;
        }
    }
    /* every 3-way split */
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            size_t cuts[2] = {a, b};
            int rc = feed_split(head, full, n, cuts, 2, &consumed, &done);
            if (rc != 0 || !done || consumed != blen) {
                FAIL("split %zu,%zu: rc %d done %d consumed %zu", a, b, rc, done, consumed);
                return;
            }
        }
    }
    /* byte by byte */
    size_t cuts[256];
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    CHECK_EQ_INT(feed_split(head, full, n, cuts, n, &consumed, &done), 0);
    CHECK(done);
    CHECK_EQ_INT(consumed, blen);
}

struct chunk_bad {
    const char *name;
    const char *body;
};

static const struct chunk_bad chunk_bad_cases[] = {
    {"non-hex size", "zz\r\n"},
    {"size then space", "3 \r\nabc\r\n0\r\n\r\n"},
    {"bare LF after size", "3\nabc\r\n0\r\n\r\n"},
    {"data longer than size", "3\r\nabcd\r\n0\r\n\r\n"},
    {"size overflow", "fffffffffffffffff\r\n"},
    {"negative size", "-1\r\n"},
    {"empty size", "\r\n"},
    {"0x prefix", "0x3\r\nabc\r\n0\r\n\r\n"},
    {"size leading space", " 3\r\nabc\r\n0\r\n\r\n"},
    {"size space before ext", "3 ;a=b\r\nabc\r\n0\r\n\r\n"},
    {"bare CR after size", "3\rabc\r\n0\r\n\r\n"},
    {"ext bare LF", "3;a=b\nabc\r\n0\r\n\r\n"},
    {"ext control byte", "3;a=\x01\r\nabc\r\n0\r\n\r\n"},
    {"ext CR inside", "3;a\rb\r\nabc\r\n0\r\n\r\n"},
    {"data then bare LF", "3\r\nabc\n0\r\n\r\n"},
    {"data then bare CR", "3\r\nabc\r0\r\n\r\n"},
    {"last-chunk bare LF", "0\n\r\n"},
    {"final bare LF", "0\r\n\n"},
    {"trailer then final bare LF", "0\r\nA: b\r\n\n"},
    {"trailer bare LF", "0\r\nA: b\n\r\n"},
    {"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n"},
    {"trailer space before colon", "0\r\nA : b\r\n\r\n"},
    {"trailer control byte", "0\r\nA: b\x01\r\n\r\n"},
    {"trailer no colon", "0\r\nAb\r\n\r\n"},
    {"trailer bad name", "0\r\nA(: b\r\n\r\n"},
};

TEST(http_chunked_bad_sizes)
{
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t i = 0; i < SV_ARRAY_SIZE(chunk_bad_cases); i++) {
        const struct chunk_bad *c = &chunk_bad_cases[i];
        size_t consumed;
        bool done;
        int rc = feed_split(head, c->body, strlen(c->body), NULL, 0, &consumed, &done);
        if (rc != SV_HTTP_E_CHUNK || done)
            FAIL("%s: rc %d (%s) done %d", c->name, rc, sv_http_error_name(rc), done);
        /* and fed byte by byte */
        size_t cuts[64];
        size_t bl = strlen(c->body);
        for (size_t k = 0; k < bl && k < 64; k++)
            cuts[k] = k + 1;
        rc = feed_split(head, c->body, bl, cuts, bl, &consumed, &done);
        if (rc != SV_HTTP_E_CHUNK || done)
            FAIL("%s bytewise: rc %d (%s) done %d", c->name, rc, sv_http_error_name(rc), done);
    }
    CHECK_EQ_INT(sv_http_error_status(SV_HTTP_E_CHUNK, SV_HTTP_REQUEST), 400);
}

TEST(http_length_body_and_eof)
{
    static struct parsed r;
    const char *in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
    REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, strlen(in), NULL) == SV_HTTP_OK);
    REQUIRE(sv_http_body_begin(&r.p) == SV_HTTP_BODY_LENGTH);
    size_t used;
    bool done;
    CHECK_EQ_INT(sv_http_parse_body(&r.p, "0123", 4, &used, &done), SV_HTTP_OK);
    CHECK_EQ_INT(used, 4);
    CHECK(!done);
    CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_E_EOF);
    REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, strlen(in), NULL) == SV_HTTP_OK);
    sv_http_body_begin(&r.p);
    CHECK_EQ_INT(sv_http_parse_body(&r.p, "0123456789GET", 13, &used, &done), SV_HTTP_OK);
    CHECK_EQ_INT(used, 10);
    CHECK(done);
    CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_OK);
    /* body before body_begin is a caller bug */
    REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, in, strlen(in), NULL) == SV_HTTP_OK);
    CHECK_EQ_INT(sv_http_parse_body(&r.p, "0", 1, &used, &done), SV_HTTP_E_STATE);
}

/* ---- responses ------------------------------------------------------------------------------ */

struct resp_case {
    const char *name;
    int req_method;
    const char *in; /* head + body + "NEXT" */
    int body;
    size_t body_len; /* bytes of body before "NEXT" (UNTIL_CLOSE: all of it, ended by EOF) */
    uint32_t flags_set, flags_clear;
    int status;
};

static const struct resp_case resp_cases[] = {
    {"200 CL", SV_HTTP_GET, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcNEXT",
     SV_HTTP_BODY_LENGTH, 3, SV_HTTP_F_KEEP_ALIVE | SV_HTTP_F_BODY, 0, 200},
    {"200 chunked", SV_HTTP_GET,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT",
     SV_HTTP_BODY_CHUNKED, 13, SV_HTTP_F_CHUNKED | SV_HTTP_F_BODY, 0, 200},
    {"HEAD with CL", SV_HTTP_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, SV_HTTP_F_CONTENT_LENGTH | SV_HTTP_F_KEEP_ALIVE, SV_HTTP_F_BODY, 200},
    {"HEAD chunked", SV_HTTP_HEAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, SV_HTTP_F_CHUNKED, SV_HTTP_F_BODY, 200},
    {"HEAD no framing", SV_HTTP_HEAD, "HTTP/1.1 404 Not Found\r\n\r\nNEXT", SV_HTTP_BODY_NONE, 0,
     SV_HTTP_F_KEEP_ALIVE, SV_HTTP_F_BODY, 404},
    {"100", SV_HTTP_POST, "HTTP/1.1 100 Continue\r\n\r\nNEXT", SV_HTTP_BODY_NONE, 0,
     SV_HTTP_F_INTERIM, SV_HTTP_F_BODY, 100},
    {"103 with CL", SV_HTTP_GET, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, SV_HTTP_F_INTERIM, SV_HTTP_F_BODY, 103},
    {"204 with CL", SV_HTTP_GET, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, SV_HTTP_F_KEEP_ALIVE, SV_HTTP_F_BODY | SV_HTTP_F_CONTENT_LENGTH, 204},
    {"304 with CL", SV_HTTP_GET, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, SV_HTTP_F_CONTENT_LENGTH, SV_HTTP_F_BODY, 304},
    {"close-delimited", SV_HTTP_GET, "HTTP/1.1 200 OK\r\nX: y\r\n\r\nabcNEXT",
     SV_HTTP_BODY_UNTIL_CLOSE, 7, SV_HTTP_F_BODY, SV_HTTP_F_KEEP_ALIVE, 200},
    {"1.0 close-delimited", SV_HTTP_GET, "HTTP/1.0 200 OK\r\n\r\nabcNEXT", SV_HTTP_BODY_UNTIL_CLOSE,
     7, SV_HTTP_F_BODY, SV_HTTP_F_KEEP_ALIVE, 200},
    {"1.0 keep-alive CL", SV_HTTP_GET,
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxNEXT",
     SV_HTTP_BODY_LENGTH, 1, SV_HTTP_F_KEEP_ALIVE, 0, 200},
    {"close CL", SV_HTTP_GET,
     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"
     "NEXT",
     SV_HTTP_BODY_LENGTH, 1, SV_HTTP_F_CONNECTION_CLOSE, SV_HTTP_F_KEEP_ALIVE, 200},
    {"101", SV_HTTP_GET,
     "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nNEXT",
     SV_HTTP_BODY_TUNNEL, 0, SV_HTTP_F_UPGRADE, SV_HTTP_F_BODY, 101},
    {"CONNECT 200", SV_HTTP_CONNECT, "HTTP/1.1 200 Connection established\r\n\r\nNEXT",
     SV_HTTP_BODY_TUNNEL, 0, SV_HTTP_F_TUNNEL, SV_HTTP_F_BODY, 200},
    {"CONNECT 403", SV_HTTP_CONNECT, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nnoNEXT",
     SV_HTTP_BODY_LENGTH, 2, 0, SV_HTTP_F_TUNNEL, 403},
    {"no reason", SV_HTTP_GET, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\nNEXT", SV_HTTP_BODY_NONE,
     0, SV_HTTP_F_KEEP_ALIVE, 0, 200},
    {"empty reason", SV_HTTP_GET, "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\nNEXT",
     SV_HTTP_BODY_NONE, 0, 0, 0, 500},
};

TEST(http_parse_responses)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        static struct parsed r;
        int rc = parse_both(&r, SV_HTTP_RESPONSE, c->req_method, c->in, NULL);
        if (rc != SV_HTTP_OK) {
            FAIL("%s: rc %d (%s)", c->name, rc, sv_http_error_name(rc));
            continue;
        }
        const struct sv_http_head *h = &r.head;
        CHECK_EQ_INT(h->status, c->status);
        CHECK_EQ_INT(h->request_method, c->req_method);
        if ((h->flags & c->flags_set) != c->flags_set || (h->flags & c->flags_clear))
            FAIL("%s: flags %x, want set %x clear %x", c->name, h->flags, c->flags_set,
                 c->flags_clear);
        enum sv_http_body_kind k = sv_http_body_begin(&r.p);
        if ((int)k != c->body) {
            FAIL("%s: body kind %d want %d", c->name, k, c->body);
            continue;
        }
        const char *body = r.buf + r.head_len;
        size_t avail = strlen(c->in) - r.head_len;
        size_t used = 0;
        bool done = false;
        if (k == SV_HTTP_BODY_NONE || k == SV_HTTP_BODY_TUNNEL) {
            CHECK(memcmp(body, "NEXT", 4) == 0);
            CHECK_EQ_INT(sv_http_parse_body(&r.p, body, avail, &used, &done), SV_HTTP_OK);
            CHECK(done);
            CHECK_EQ_INT(used, 0);
            continue;
        }
        CHECK_EQ_INT(sv_http_parse_body(&r.p, body, avail, &used, &done), SV_HTTP_OK);
        CHECK_EQ_INT(used, c->body_len);
        if (k == SV_HTTP_BODY_UNTIL_CLOSE) {
            CHECK(!done);
            CHECK_EQ_INT(sv_http_parse_eof(&r.p), SV_HTTP_OK);
        } else {
            CHECK(done);
            CHECK(memcmp(body + used, "NEXT", 4) == 0);
        }
    }
}

TEST(http_interim_then_final)
{
    static struct parsed r;
    const char *s =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    size_t n = strlen(s);
    REQUIRE(parse_at_once(&r, SV_HTTP_RESPONSE, SV_HTTP_POST, s, n, NULL) == SV_HTTP_OK);
    CHECK_EQ_INT(r.head.status, 100);
    CHECK_EQ_INT(sv_http_body_begin(&r.p), SV_HTTP_BODY_NONE);
    size_t off = r.head_len, hl = 0;
    sv_http_parser_reset(&r.p);
    sv_http_head_init(&r.head, r.hdrs, NHDR);
    const char *b = guard_put(gbuf(), s + off, n - off);
    REQUIRE(sv_http_parse_head(&r.p, b, n - off, &r.head, &hl) == SV_HTTP_OK);
    CHECK_EQ_INT(r.head.status, 201);
    CHECK_EQ_INT(r.head.request_method, SV_HTTP_POST);
    CHECK_EQ_INT(sv_http_body_begin(&r.p), SV_HTTP_BODY_LENGTH);
    size_t used;
    bool done;
    CHECK_EQ_INT(sv_http_parse_body(&r.p, b + hl, n - off - hl, &used, &done), SV_HTTP_OK);
    CHECK(done);
    CHECK_EQ_INT(used, 2);
}

static const struct bad_case bad_resp_cases[] = {
    {"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     SV_HTTP_E_CL_TE, 502},
    {"dup CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     SV_HTTP_E_CL_DUP, 502},
    {"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", SV_HTTP_E_TE, 502},
    {"TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", SV_HTTP_E_TE, 502},
    {"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", SV_HTTP_E_STATUS, 502},
    {"status 600", "HTTP/1.1 600 OK\r\n\r\n", SV_HTTP_E_STATUS, 502},
    {"status 4 digits", "HTTP/1.1 2000 OK\r\n\r\n", SV_HTTP_E_STATUS, 502},
    {"version", "HTTP/2.0 200 OK\r\n\r\n", SV_HTTP_E_VERSION, 502},
    {"garbage", "HTTX/1.1 200 OK\r\n\r\n", SV_HTTP_E_SYNTAX, 502},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", SV_HTTP_E_BARE_LF, 502},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", SV_HTTP_E_OBS_FOLD, 502},
    {"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", SV_HTTP_E_SYNTAX, 502},
    {"reason ctl", "HTTP/1.1 200 O\x01K\r\n\r\n", SV_HTTP_E_SYNTAX, 502},
};

TEST(http_parse_bad_responses)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad_resp_cases); i++) {
        const struct bad_case *c = &bad_resp_cases[i];
        static struct parsed r, t;
        size_t n = strlen(c->in);
        parse_at_once(&r, SV_HTTP_RESPONSE, SV_HTTP_GET, c->in, n, NULL);
        parse_trickle(&t, SV_HTTP_RESPONSE, SV_HTTP_GET, c->in, n, NULL);
        if (r.rc != c->err || t.rc != c->err)
            FAIL("%s: got %d (%s) / trickled %d, want %d (%s)", c->name, r.rc,
                 sv_http_error_name(r.rc), t.rc, c->err, sv_http_error_name(c->err));
        CHECK_EQ_INT(sv_http_error_status(c->err, SV_HTTP_RESPONSE), c->status);
    }
}

TEST(http_error_names_distinct)
{
    for (int e = SV_HTTP_E_HOST; e <= SV_HTTP_E_SYNTAX; e++) {
        CHECK(strcmp(sv_http_error_name(e), "unknown error") != 0);
        for (int f = e + 1; f <= SV_HTTP_E_SYNTAX; f++)
            CHECK(strcmp(sv_http_error_name(e), sv_http_error_name(f)) != 0);
    }
}

/* ---- deterministic mutation run ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Mutate valid messages (flip, insert, delete, duplicate bytes from an interesting set) and
 * check the invariants that must hold for any input: the same answer at once and trickled, a head
 * length within the input, a body framer that never claims bytes it was not given, and no read
 * past the end (guard page). */
TEST(http_parse_mutations)
{
    static const char *const seeds[] = {
        "POST /a?b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nX: y\r\n\r\nbody",
        "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
        "GET http://h:1/x HTTP/1.0\r\nConnection: keep-alive, x\r\n\r\n",
    };
    static const char interesting[] = "\r\n :\t,;0aA\x01\x7f\x80/?#%@";
    static char in[512];
    static struct parsed r, t;
    int checked = 0;
    for (int iter = 0; iter < 3000; iter++) {
        const char *seed = seeds[iter % SV_ARRAY_SIZE(seeds)];
        size_t n = strlen(seed);
        memcpy(in, seed, n);
        int muts = 1 + (int)(rng() % 3);
        for (int m = 0; m < muts; m++) {
            size_t pos = rng() % (n + 1);
            char ch = interesting[rng() % (sizeof(interesting) - 1)];
            switch (rng() % 3) {
            case 0: /* replace */
                if (pos < n)
                    in[pos] = ch;
                break;
            case 1: /* insert */
                if (n + 1 < sizeof(in)) {
                    memmove(in + pos + 1, in + pos, n - pos);
                    in[pos] = ch;
                    n++;
                }
                break;
            default: /* delete */
                if (pos < n) {
                    memmove(in + pos, in + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            }
        }
        for (int kind = SV_HTTP_REQUEST; kind <= SV_HTTP_RESPONSE; kind++) {
            parse_at_once(&r, (enum sv_http_kind)kind, SV_HTTP_GET, in, n, NULL);
            char a[4096], b[4096];
            summarize(&r, a, sizeof(a));
            parse_trickle(&t, (enum sv_http_kind)kind, SV_HTTP_GET, in, n, NULL);
            summarize(&t, b, sizeof(b));
            if (strcmp(a, b) != 0) {
                FAIL("iteration %d: at once vs trickled:\n  %s\n  %s", iter, a, b);
                return;
            }
            if (r.rc != SV_HTTP_OK)
                continue;
            checked++;
            if (r.head_len > n) {
                FAIL("iteration %d: head_len %zu > %zu", iter, r.head_len, n);
                return;
            }
            enum sv_http_body_kind k = sv_http_body_begin(&r.p);
            if (k == SV_HTTP_BODY_NONE || k == SV_HTTP_BODY_TUNNEL)
                continue;
            size_t used = 0;
            bool done = false;
            size_t rest = n - r.head_len;
            const char *body = guard_put(gbuf(), in + r.head_len, rest);
            int rc = sv_http_parse_body(&r.p, body, rest, &used, &done);
            if (rc == SV_HTTP_OK && (used > rest || (!done && used != rest))) {
                FAIL("iteration %d: body used %zu of %zu done %d", iter, used, rest, done);
                return;
            }
        }
    }
    CHECK(checked > 100); /* the run exercised the success paths too */
}

TEST(http_chunked_limits)
{
    static char body[16384];
    static struct parsed r;
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct sv_http_limits lim = {1024, 100};
    size_t consumed;
    bool done;
    /* a trailer section up to the head limit passes, beyond it is refused */
    for (int over = 0; over <= 1; over++) {
        size_t n = (size_t)snprintf(body, sizeof(body), "0\r\nX: ");
        size_t trailer_total = 1024 + (size_t)over; /* bytes after "0\r\n" */
        while (n < 3 + trailer_total - 4)
            body[n++] = 'v';
        memcpy(body + n, "\r\n\r\n", 4);
        n += 4;
        REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, head, strlen(head), &lim) ==
                SV_HTTP_OK);
        REQUIRE(sv_http_body_begin(&r.p) == SV_HTTP_BODY_CHUNKED);
        size_t used = 0;
        const char *d = guard_put(gbuf(), body, n);
        int rc = sv_http_parse_body(&r.p, d, n, &used, &done);
        if (over) {
            CHECK_EQ_INT(rc, SV_HTTP_E_CHUNK);
        } else {
            CHECK_EQ_INT(rc, SV_HTTP_OK);
            CHECK(done);
            CHECK_EQ_INT(used, n);
        }
    }
    /* a size line with 5000 bytes of extensions is refused */
    size_t n = (size_t)snprintf(body, sizeof(body), "1;");
    while (n < 5000)
        body[n++] = 'e';
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nx\r\n0\r\n\r\n");
    CHECK_EQ_INT(feed_split(head, body, n, NULL, 0, &consumed, &done), SV_HTTP_E_CHUNK);
    /* many leading zeros and mixed-case hex are fine */
    n = (size_t)snprintf(body, sizeof(body), "00000000000000000000000aB\r\n");
    memset(body + n, 'd', 0xab);
    n += 0xab;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n0\r\n\r\n");
    CHECK_EQ_INT(feed_split(head, body, n, NULL, 0, &consumed, &done), 0);
    CHECK(done);
    CHECK_EQ_INT(consumed, n);
}

/* De-chunking: the spans of every piece, concatenated, are the payload, at every split point and
 * with span arrays of 1..3 entries (which makes the framer stop early and resume). */
TEST(http_body_spans_dechunk)
{
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *body = "5;x=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nT: v\r\n\r\nNEXT";
    const char *payload = "hello world!";
    size_t blen = strlen(body) - 4;
    static struct parsed r;
    for (uint32_t max = 1; max <= 3; max++) {
        for (size_t cut = 0; cut <= strlen(body); cut++) {
            REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, head, strlen(head), NULL) ==
                    SV_HTTP_OK);
            REQUIRE(sv_http_body_begin(&r.p) == SV_HTTP_BODY_CHUNKED);
            char got[64];
            size_t gl = 0, off = 0;
            bool done = false;
            /* bytes arrive in two pieces: [0,cut) then the rest */
            for (int guard = 0; !done && guard < 100; guard++) {
                size_t avail_end = off < cut ? cut : strlen(body);
                struct sv_str sp[3];
                uint32_t ns = 0;
                size_t used = 0;
                const char *d = guard_put(gbuf(), body + off, avail_end - off);
                int rc =
                    sv_http_parse_body_spans(&r.p, d, avail_end - off, &used, &done, sp, max, &ns);
                REQUIRE(rc == SV_HTTP_OK);
                REQUIRE(ns <= max);
                for (uint32_t k = 0; k < ns; k++) {
                    REQUIRE(sp[k].ptr >= d && sp[k].ptr + sp[k].len <= d + used);
                    REQUIRE(gl + sp[k].len < sizeof(got));
                    memcpy(got + gl, sp[k].ptr, sp[k].len);
                    gl += sp[k].len;
                }
                off += used;
            }
            if (!done || off != blen || gl != strlen(payload) || memcmp(got, payload, gl) != 0) {
                FAIL("max %u cut %zu: done %d off %zu payload \"%.*s\"", max, cut, done, off,
                     (int)gl, got);
                return;
            }
        }
    }
    /* Content-Length and close-delimited bodies are one span per call */
    const char *clhead = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n";
    REQUIRE(parse_at_once(&r, SV_HTTP_REQUEST, SV_HTTP_GET, clhead, strlen(clhead), NULL) ==
            SV_HTTP_OK);
    sv_http_body_begin(&r.p);
    struct sv_str sp[2];
    uint32_t ns = 9;
    size_t used;
    bool done;
    CHECK_EQ_INT(sv_http_parse_body_spans(&r.p, "abcdef", 6, &used, &done, sp, 0, &ns), 0);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(ns, 0);
    CHECK_EQ_INT(sv_http_parse_body_spans(&r.p, "abcdef", 6, &used, &done, sp, 2, &ns), 0);
    CHECK_EQ_INT(used, 4);
    CHECK(done);
    CHECK_EQ_INT(ns, 1);
    CHECK(sp[0].len == 4 && memcmp(sp[0].ptr, "abcd", 4) == 0);
}

/* Unit tests for src/http/serialize.c: hop-by-hop removal, header modifiers, rewrites, XFF, and
 * that everything written parses again. */
#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/http/message.h"
#include "serval/http/parser.h"
#include "serval/http/serialize.h"

#include <errno.h>
#include <stdio.h>

struct ctx {
    struct sv_http_parser p;
    struct sv_http_head head;
    struct sv_http_header hdrs[64];
    char out[4096];
};

static int parse(struct ctx *c, enum sv_http_kind kind, enum sv_http_method m, const char *s)
{
    size_t hl;
    sv_http_parser_init(&c->p, kind, NULL);
    sv_http_parser_set_request_method(&c->p, m);
    sv_http_head_init(&c->head, c->hdrs, 64);
    return sv_http_parse_head(&c->p, s, strlen(s), &c->head, &hl);
}

/* The written head must itself be a valid head of the same kind. */
static void check_reparses(const char *out, size_t n, enum sv_http_kind kind, enum sv_http_method m)
{
    static struct ctx c2;
    size_t hl = 0;
    sv_http_parser_init(&c2.p, kind, NULL);
    sv_http_parser_set_request_method(&c2.p, m);
    sv_http_head_init(&c2.head, c2.hdrs, 64);
    int rc = sv_http_parse_head(&c2.p, out, n, &c2.head, &hl);
    if (rc != SV_HTTP_OK || hl != n)
        FAIL("written head does not parse: rc %d (%s) hl %zu n %zu\n%.*s", rc,
             sv_http_error_name(rc), hl, n, (int)n, out);
}

#define CHECK_OUT(n, want)                                                                         \
    do {                                                                                           \
        ssize_t n_ = (n);                                                                          \
        if (n_ < 0 || (size_t)n_ != strlen(want) || memcmp(c.out, (want), (size_t)n_) != 0)        \
            FAIL("wrote %zd:\n%.*s\nwant:\n%s", n_, n_ > 0 ? (int)n_ : 0, c.out, (want));          \
    } while (0)

TEST(http_write_request_passthrough)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET /a?b=1 HTTP/1.1\r\nHost: h.example\r\nAccept: */*\r\nX-A: 1\r\n"
                  "x-a: 2\r\n\r\n") == SV_HTTP_OK);
    ssize_t n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n,
              "GET /a?b=1 HTTP/1.1\r\nHost: h.example\r\nAccept: */*\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);
}

TEST(http_write_request_hop_by_hop)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "POST /u HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, x-other\r\n"
                  "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                  "Trailer: X-T\r\nX-Secret: s\r\nUpgrade: h2c\r\nX-Other: o\r\nX-Keep: k\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n") == SV_HTTP_OK);
    CHECK(sv_http_is_hop_by_hop(&c.head, SV_STR_LIT("x-secret")));
    CHECK(sv_http_is_hop_by_hop(&c.head, SV_STR_LIT("X-OTHER")));
    CHECK(sv_http_is_hop_by_hop(&c.head, SV_STR_LIT("TE")));
    CHECK(!sv_http_is_hop_by_hop(&c.head, SV_STR_LIT("X-Keep")));
    CHECK(!sv_http_is_hop_by_hop(&c.head, SV_STR_LIT("Host")));
    ssize_t n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n, "POST /u HTTP/1.1\r\nHost: h\r\nX-Keep: k\r\nTransfer-Encoding: chunked\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);
}

TEST(http_write_request_http10_and_absolute)
{
    static struct ctx c;
    /* 1.0 client without Host: goes out as 1.1 with an (empty) Host and its framing kept */
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "POST /old HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n") ==
            SV_HTTP_OK);
    ssize_t n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n, "POST /old HTTP/1.1\r\nHost: \r\nContent-Length: 3\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);
    /* ... or as HTTP/1.0 with keep-alive when asked (so the upstream cannot answer chunked),
     * then without Host (nginx answers an empty one with 400 and closes) */
    struct sv_http_rewrite rw10 = {.http10 = true};
    n = sv_http_write_request_head(&c.head, &rw10, c.out, sizeof(c.out));
    CHECK_OUT(n, "POST /old HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);
    /* a 1.0 client's Host is kept */
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET, "GET /h HTTP/1.0\r\nHost: h10\r\n\r\n") ==
            SV_HTTP_OK);
    n = sv_http_write_request_head(&c.head, &rw10, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET /h HTTP/1.0\r\nHost: h10\r\nConnection: keep-alive\r\n\r\n");
    /* absolute-form goes out in origin-form with the target's authority as Host */
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET http://a.example:81/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET /p?q HTTP/1.1\r\nHost: a.example:81\r\n\r\n");
    /* Content-Length: 0 is kept */
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "POST / HTTP/1.1\r\ncontent-length: 0\r\nHost: h\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
}

TEST(http_write_request_rewrite)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET /old/x?k=v HTTP/1.1\r\nHost: front.example\r\nX-Forwarded-For: 1.1.1.1\r\n"
                  "X-Forwarded-Proto: gopher\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"
                  "X-Forwarded-Port: 1\r\nA: 1\r\n\r\n") == SV_HTTP_OK);
    struct sv_http_rewrite rw = {
        .target = SV_STR_LIT("/new/x?k=v"),
        .host = SV_STR_LIT("back.example"),
        .xff = SV_STR_LIT("192.0.2.7"),
        .xf_proto = SV_STR_LIT("https"),
        .xf_port = 8443,
    };
    ssize_t n = sv_http_write_request_head(&c.head, &rw, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET /new/x?k=v HTTP/1.1\r\nHost: back.example\r\nA: 1\r\n"
                 "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 192.0.2.7\r\n"
                 "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);

    /* no XFF from the client: ours alone; XFF untouched when rw->xff is not given */
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\n\r\n") == SV_HTTP_OK);
    struct sv_http_rewrite rw2 = {.xff = SV_STR_LIT("::1")};
    n = sv_http_write_request_head(&c.head, &rw2, c.out, sizeof(c.out));
    CHECK_OUT(
        n, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: ::1\r\n\r\n");

    /* header injection through a rewrite is refused */
    struct sv_http_rewrite bad = {.target = SV_STR_LIT("/a\r\nX: y")};
    CHECK_EQ_INT(sv_http_write_request_head(&c.head, &bad, c.out, sizeof(c.out)), -EINVAL);
    struct sv_http_rewrite bad2 = {.host = SV_STR_LIT("h\r\nX: y")};
    CHECK_EQ_INT(sv_http_write_request_head(&c.head, &bad2, c.out, sizeof(c.out)), -EINVAL);
}

TEST(http_write_request_header_mods)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET / HTTP/1.1\r\nHost: h\r\nX-Set: old1\r\nx-set: old2\r\nX-Add: a0\r\n"
                  "X-Remove: r\r\nX-REMOVE: r2\r\nX-Keep: k\r\n\r\n") == SV_HTTP_OK);
    static const struct sv_http_header set[] = {
        {SV_STR_LIT("X-SET"), SV_STR_LIT("new")},
        {SV_STR_LIT("X-New"), SV_STR_LIT("n")},
    };
    static const struct sv_http_header add[] = {
        {SV_STR_LIT("x-add"), SV_STR_LIT("a1")},
        {SV_STR_LIT("Content-Length"), SV_STR_LIT("99")}, /* reserved: never written */
        {SV_STR_LIT("Connection"), SV_STR_LIT("close")},  /* reserved: never written */
    };
    static const struct sv_str rem[] = {SV_STR_LIT("x-remove"), SV_STR_LIT("X-Absent")};
    struct sv_http_header_mods mods = {set, 2, add, 3, rem, 2};
    CHECK(sv_http_mods_drop(&mods, SV_STR_LIT("x-set")));
    CHECK(sv_http_mods_drop(&mods, SV_STR_LIT("X-Remove")));
    CHECK(!sv_http_mods_drop(&mods, SV_STR_LIT("X-Add")));
    CHECK(!sv_http_mods_drop(NULL, SV_STR_LIT("X-Add")));
    struct sv_http_rewrite rw = {.mods = &mods};
    ssize_t n = sv_http_write_request_head(&c.head, &rw, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET / HTTP/1.1\r\nHost: h\r\nX-Add: a0\r\nX-Keep: k\r\nX-SET: new\r\n"
                 "X-New: n\r\nx-add: a1\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_REQUEST, SV_HTTP_GET);

    /* set Host through a modifier rewrites Host (when the rewrite does not) */
    static const struct sv_http_header set_host[] = {{SV_STR_LIT("host"), SV_STR_LIT("m.example")}};
    struct sv_http_header_mods mh = {set_host, 1, NULL, 0, NULL, 0};
    struct sv_http_rewrite rwh = {.mods = &mh};
    n = sv_http_write_request_head(&c.head, &rwh, c.out, sizeof(c.out));
    CHECK(n > 0 && memmem(c.out, (size_t)n, "\r\nHost: m.example\r\n", 19) != NULL);
    CHECK(n > 0 && memmem(c.out, (size_t)n, "Host: h\r\n", 9) == NULL);

    /* a value with CR LF is refused */
    static const struct sv_http_header inj[] = {{SV_STR_LIT("X"), SV_STR_LIT("a\r\nY: b")}};
    struct sv_http_header_mods mi = {inj, 1, NULL, 0, NULL, 0};
    struct sv_http_rewrite rwi = {.mods = &mi};
    CHECK_EQ_INT(sv_http_write_request_head(&c.head, &rwi, c.out, sizeof(c.out)), -EINVAL);
}

TEST(http_write_request_upgrade)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                  "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n") == SV_HTTP_OK);
    REQUIRE(c.head.flags & SV_HTTP_F_UPGRADE);
    struct sv_http_rewrite rw = {.upgrade = true};
    ssize_t n = sv_http_write_request_head(&c.head, &rw, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nUpgrade: websocket\r\n"
                 "Connection: upgrade\r\n\r\n");
    /* not proxying the upgrade: Upgrade is dropped like any hop-by-hop header */
    n = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    CHECK_OUT(n, "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n");
}

TEST(http_write_request_enospc)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_REQUEST, SV_HTTP_GET,
                  "GET /abc HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n") == SV_HTTP_OK);
    ssize_t full = sv_http_write_request_head(&c.head, NULL, c.out, sizeof(c.out));
    REQUIRE(full > 0);
    for (size_t cap = 0; cap < (size_t)full; cap++)
        CHECK_EQ_INT(sv_http_write_request_head(&c.head, NULL, c.out, cap), -ENOSPC);
    CHECK_EQ_INT(sv_http_write_request_head(&c.head, NULL, c.out, (size_t)full), full);
}

TEST(http_write_response)
{
    static struct ctx c;
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
                  "HTTP/1.1 200 Fine\r\nServer: up\r\nConnection: keep-alive, X-Hop\r\n"
                  "X-Hop: 1\r\nKeep-Alive: timeout=3\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n"
                  "Set-Cookie: b=2\r\n\r\n") == SV_HTTP_OK);
    ssize_t n =
        sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 Fine\r\nServer: up\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                 "Content-Length: 5\r\n\r\n");
    check_reparses(c.out, (size_t)n, SV_HTTP_RESPONSE, SV_HTTP_GET);
    n = sv_http_write_response_head(&c.head, NULL, 0, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 Fine\r\nServer: up\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                 "Content-Length: 5\r\nConnection: close\r\n\r\n");
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE | SV_HTTP_RESP_CLIENT_10,
                                    c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 Fine\r\nServer: up\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                 "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n");

    /* response modifiers */
    static const struct sv_http_header set[] = {{SV_STR_LIT("server"), SV_STR_LIT("serval")}};
    static const struct sv_http_header add[] = {{SV_STR_LIT("X-Added"), SV_STR_LIT("1")}};
    static const struct sv_str rem[] = {SV_STR_LIT("SET-COOKIE")};
    struct sv_http_header_mods mods = {set, 1, add, 1, rem, 1};
    n = sv_http_write_response_head(&c.head, &mods, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 Fine\r\nserver: serval\r\nX-Added: 1\r\nContent-Length: 5\r\n\r\n");
}

TEST(http_write_response_framing)
{
    static struct ctx c;
    /* chunked stays chunked */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n") ==
            SV_HTTP_OK);
    ssize_t n =
        sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* de-chunked for an HTTP/1.0 client: no Transfer-Encoding, close-delimited */
    n = sv_http_write_response_head(
        &c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE | SV_HTTP_RESP_CLIENT_10 | SV_HTTP_RESP_DECHUNK,
        c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    /* close-delimited: the client connection must close */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET, "HTTP/1.0 200 OK\r\nX: 1\r\n\r\n") ==
            SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 OK\r\nX: 1\r\nConnection: close\r\n\r\n");
    /* DECHUNK changes nothing for a body that is not chunked */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE | SV_HTTP_RESP_DECHUNK,
                                    c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    /* a HEAD response without framing headers is complete and keeps the connection */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_HEAD, "HTTP/1.1 200 OK\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 200 OK\r\n\r\n");
    /* 204: framing headers dropped; 304 keeps Content-Length */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
                  "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 204 No Content\r\n\r\n");
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
                  "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n") ==
            SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_KEEP_ALIVE, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n");
    /* interim: no connection management; missing reason filled in */
    REQUIRE(parse(&c, SV_HTTP_RESPONSE, SV_HTTP_POST, "HTTP/1.1 100\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, 0, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 100 Continue\r\n\r\n");
    /* ... and never to an HTTP/1.0 client */
    CHECK_EQ_INT(
        sv_http_write_response_head(&c.head, NULL, SV_HTTP_RESP_CLIENT_10, c.out, sizeof(c.out)),
        0);
    /* 101 keeps the upgrade */
    REQUIRE(
        parse(&c, SV_HTTP_RESPONSE, SV_HTTP_GET,
              "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              "Sec-WebSocket-Accept: abc\r\n\r\n") == SV_HTTP_OK);
    n = sv_http_write_response_head(&c.head, NULL, 0, c.out, sizeof(c.out));
    CHECK_OUT(n, "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n"
                 "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    for (size_t cap = 0; cap < (size_t)n; cap++)
        CHECK_EQ_INT(sv_http_write_response_head(&c.head, NULL, 0, c.out, cap), -ENOSPC);
}

/* Kubernetes client pure pieces: response heads, chunked decoding + newline framing of watch
 * events split at every byte boundary, the 8 MiB event cap, backoff. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../harness.h"
#include "serval/control/k8s_stream.h"

struct collect {
    char out[8192];
    size_t len;
    int lines;
};

static int on_line(void *ctx, const char *p, size_t n)
{
    struct collect *c = ctx;
    if (c->len + n + 1 > sizeof(c->out))
        return -ENOSPC;
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len++] = '|';
    c->lines++;
    return 0;
}

struct pipe {
    struct sv_k8s_lines lines;
    struct collect col;
};

static int on_data(void *ctx, const char *p, size_t n)
{
    struct pipe *pp = ctx;
    return sv_k8s_lines_feed(&pp->lines, p, n, on_line, &pp->col);
}

/* Three events; the chunk boundaries deliberately fall inside events and between them. */
static const char *const PIECES[] = {
    "{\"type\":\"ADDED\",\"object\":",
    "{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"BOOKMARK\",\"o",
    "bj\"",
    ":{}}\r\n{\"type\":\"DELETED\",\"object\":{\"n\":\"\\n\"}}\n",
};
static char BODY[1024];

static void build_body(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(PIECES) / sizeof(PIECES[0]); i++)
        n += (size_t)snprintf(BODY + n, sizeof(BODY) - n, "%zx%s\r\n%s\r\n", strlen(PIECES[i]),
                              i == 2 ? ";ext=1" : "", PIECES[i]);
    snprintf(BODY + n, sizeof(BODY) - n, "0\r\nTrailer: x\r\n\r\n");
}
static const char WANT[] =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}|"
    "{\"type\":\"BOOKMARK\",\"obj\":{}}|"
    "{\"type\":\"DELETED\",\"object\":{\"n\":\"\\n\"}}|";

static int run_split(const char *body, size_t n, size_t cut1, size_t cut2, struct collect *out)
{
    struct pipe pp;
    memset(&pp, 0, sizeof(pp));
    struct sv_k8s_chunked ch;
    memset(&ch, 0, sizeof(ch));
    size_t cuts[4] = {0, cut1, cut2, n};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        size_t used;
        rc = sv_k8s_chunked_feed(&ch, body + cuts[i], cuts[i + 1] - cuts[i], &used, on_data, &pp);
    }
    *out = pp.col;
    sv_k8s_lines_reset(&pp.lines);
    return rc;
}

TEST(k8s_watch_stream_split_at_every_byte_boundary)
{
    build_body();
    size_t n = strlen(BODY);
    /* sanity of the fixture: the chunk sizes add up */
    struct collect col;
    CHECK_EQ_INT(run_split(BODY, n, n, n, &col), 1);
    CHECK_EQ_INT(col.lines, 3);
    CHECK_EQ_MEM(col.out, col.len, WANT);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += 7) {
            int rc = run_split(BODY, n, a, b, &col);
            if (rc != 1 || col.lines != 3 || col.len != strlen(WANT) ||
                memcmp(col.out, WANT, col.len) != 0) {
                FAIL("split at %zu/%zu: rc %d, %d lines", a, b, rc, col.lines);
                return;
            }
        }
    }
}

TEST(k8s_watch_stream_byte_by_byte)
{
    struct pipe pp;
    memset(&pp, 0, sizeof(pp));
    struct sv_k8s_chunked ch;
    memset(&ch, 0, sizeof(ch));
    int rc = 0;
    build_body();
    size_t n = strlen(BODY), used;
    for (size_t i = 0; i < n; i++) {
        rc = sv_k8s_chunked_feed(&ch, BODY + i, 1, &used, on_data, &pp);
        if (i + 1 < n && rc != 0) {
            FAIL("early end at byte %zu: %d", i, rc);
            break;
        }
    }
    CHECK_EQ_INT(rc, 1);
    CHECK_EQ_MEM(pp.col.out, pp.col.len, WANT);
    sv_k8s_lines_reset(&pp.lines);
}

TEST(k8s_chunked_rejects_bad_coding)
{
    static const char *bad[] = {"zz\r\nab\r\n", "2\r\nabc\r\n", "2\nab\r\n", "\r\n",
                                "1234567890123456\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pipe pp;
        memset(&pp, 0, sizeof(pp));
        struct sv_k8s_chunked ch;
        memset(&ch, 0, sizeof(ch));
        size_t used;
        int rc = sv_k8s_chunked_feed(&ch, bad[i], strlen(bad[i]), &used, on_data, &pp);
        if (rc != -EINVAL)
            FAIL("case %zu: rc %d", i, rc);
        sv_k8s_lines_reset(&pp.lines);
    }
}

TEST(k8s_lines_cap_one_event)
{
    struct sv_k8s_lines l = {.max = 64};
    struct collect col;
    memset(&col, 0, sizeof(col));
    char big[100];
    memset(big, 'x', sizeof(big));
    CHECK_EQ_INT(sv_k8s_lines_feed(&l, "{\"ok\":1}\n", 9, on_line, &col), 0);
    CHECK_EQ_INT(col.lines, 1);
    CHECK_EQ_INT(sv_k8s_lines_feed(&l, big, 40, on_line, &col), 0);
    CHECK_EQ_INT((int)sv_k8s_lines_pending(&l), 40);
    CHECK_EQ_INT(sv_k8s_lines_feed(&l, big, 40, on_line, &col), -E2BIG);
    sv_k8s_lines_reset(&l);
    /* exactly at the cap is fine, in one piece too */
    CHECK_EQ_INT(sv_k8s_lines_feed(&l, big, 63, on_line, &col), 0);
    CHECK_EQ_INT(sv_k8s_lines_feed(&l, "\r\n\n\n", 4, on_line, &col), 0);
    CHECK_EQ_INT(col.lines, 2); /* empty lines skipped, \r stripped */
    CHECK_EQ_INT((int)(col.len - 9), 64);
    sv_k8s_lines_reset(&l);
    struct sv_k8s_lines d = {0}; /* default cap: 8 MiB */
    char *huge = malloc(SV_K8S_MAX_EVENT + 1);
    REQUIRE(huge);
    memset(huge, 'y', SV_K8S_MAX_EVENT + 1);
    CHECK_EQ_INT(sv_k8s_lines_feed(&d, huge, SV_K8S_MAX_EVENT, on_line, &col), 0);
    CHECK_EQ_INT(sv_k8s_lines_feed(&d, huge, 1, on_line, &col), -E2BIG);
    free(huge);
    sv_k8s_lines_reset(&d);
}

TEST(k8s_response_head)
{
    struct sv_k8s_resp_head h;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ_INT(sv_k8s_parse_head(a, strlen(a), &h), 0);
    CHECK_EQ_INT(h.status, 200);
    CHECK(h.chunked);
    CHECK(h.content_length == -1);
    const char *b = "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 12\r\nRetry-After: 3\r\n"
                    "Connection: close\r\n\r\n";
    CHECK_EQ_INT(sv_k8s_parse_head(b, strlen(b), &h), 0);
    CHECK_EQ_INT(h.status, 429);
    CHECK_EQ_INT(h.retry_after_s, 3);
    CHECK(h.close);
    CHECK(h.content_length == 12);
    const char *c = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    CHECK_EQ_INT(sv_k8s_parse_head(c, strlen(c), &h), -EINVAL);
    const char *d = "HTTP/1.1 2x0 OK\r\n\r\n";
    CHECK_EQ_INT(sv_k8s_parse_head(d, strlen(d), &h), -EINVAL);
    const char *e = "HTTP/1.0 410 Gone\r\nNoColonHere\r\n\r\n";
    CHECK_EQ_INT(sv_k8s_parse_head(e, strlen(e), &h), -EINVAL);
}

TEST(k8s_backoff_exponential_jitter_cap)
{
    struct sv_k8s_backoff b = {.base_ms = 100, .cap_ms = 30000, ._rng = 42};
    uint32_t lo[] = {50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000, 15000};
    uint32_t hi[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000};
    for (int i = 0; i < 12; i++) {
        uint32_t d = sv_k8s_backoff_next(&b);
        if (d < lo[i] || d > hi[i])
            FAIL("attempt %d: %u not in [%u,%u]", i, d, lo[i], hi[i]);
    }
    /* jitter: two generators with different seeds do not agree on every delay */
    struct sv_k8s_backoff x = {._rng = 1}, y = {._rng = 2};
    int same = 0;
    for (int i = 0; i < 8; i++)
        same += sv_k8s_backoff_next(&x) == sv_k8s_backoff_next(&y);
    CHECK(same < 8);
    sv_k8s_backoff_reset(&b);
    uint32_t d = sv_k8s_backoff_next(&b);
    CHECK(d >= 50 && d <= 100);
    /* Retry-After wins when longer, the backoff when longer */
    CHECK_EQ_INT((int)sv_k8s_backoff_retry_after(&b, 5), 5000);
    struct sv_k8s_backoff z = {.failures = 20, ._rng = 3};
    CHECK(sv_k8s_backoff_retry_after(&z, 1) >= 15000);
}

/* Micro-benchmark of the HTTP module (not a test; timings are noisy): nanoseconds per request
 * head parsed, per upstream request head written, per response head parsed + written, and
 * chunked framing throughput. Build and run with perf/http-micro.sh. */
#include "serval/http/message.h"
#include "serval/http/parser.h"
#include "serval/http/serialize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char req[] =
    "GET /api/v1/items/12345?expand=owner&limit=50 HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    "X-Forwarded-For: 203.0.113.9\r\n"
    "Connection: keep-alive\r\n\r\n";

static const char resp[] = "HTTP/1.1 200 OK\r\n"
                           "Server: nginx\r\n"
                           "Date: Fri, 27 Nov 2026 08:00:00 GMT\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: 1234\r\n"
                           "Connection: keep-alive\r\n"
                           "Cache-Control: no-store\r\n\r\n";

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    static struct sv_http_parser p;
    static struct sv_http_head h;
    static struct sv_http_header hdrs[64];
    static char out[4096];
    size_t hl;
    volatile size_t sink = 0;

    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        sv_http_parser_init(&p, SV_HTTP_REQUEST, NULL);
        sv_http_head_init(&h, hdrs, 64);
        if (sv_http_parse_head(&p, req, sizeof(req) - 1, &h, &hl) != SV_HTTP_OK)
            return 1;
        sink += hl;
    }
    double t1 = now_ns();
    struct sv_http_rewrite rw = {
        .xff = SV_STR_LIT("198.51.100.7"), .xf_proto = SV_STR_LIT("http"), .xf_port = 80};
    for (long i = 0; i < iters; i++) {
        ssize_t n = sv_http_write_request_head(&h, &rw, out, sizeof(out));
        if (n < 0)
            return 1;
        sink += (size_t)n;
    }
    double t2 = now_ns();
    for (long i = 0; i < iters; i++) {
        sv_http_parser_init(&p, SV_HTTP_RESPONSE, NULL);
        sv_http_head_init(&h, hdrs, 64);
        if (sv_http_parse_head(&p, resp, sizeof(resp) - 1, &h, &hl) != SV_HTTP_OK)
            return 1;
        ssize_t n =
            sv_http_write_response_head(&h, NULL, SV_HTTP_RESP_KEEP_ALIVE, out, sizeof(out));
        if (n < 0)
            return 1;
        sink += (size_t)n;
    }
    double t3 = now_ns();

    /* chunked framing: 16 KiB chunks, 1 MiB per message, fed in 16 KiB pieces */
    static char body[(16384 + 16) * 64 + 5];
    size_t bl = 0;
    for (int c = 0; c < 64; c++) {
        bl += (size_t)sprintf(body + bl, "4000\r\n");
        memset(body + bl, 'x', 16384);
        bl += 16384;
        memcpy(body + bl, "\r\n", 2);
        bl += 2;
    }
    memcpy(body + bl, "0\r\n\r\n", 5);
    bl += 5;
    const char *chead = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    long msgs = iters / 1000 + 1;
    double t4 = now_ns();
    for (long m = 0; m < msgs; m++) {
        sv_http_parser_init(&p, SV_HTTP_REQUEST, NULL);
        sv_http_head_init(&h, hdrs, 64);
        if (sv_http_parse_head(&p, chead, strlen(chead), &h, &hl) != SV_HTTP_OK ||
            sv_http_body_begin(&p) != SV_HTTP_BODY_CHUNKED)
            return 1;
        size_t off = 0;
        bool done = false;
        while (!done && off < bl) {
            size_t piece = bl - off < 16384 ? bl - off : 16384, used;
            if (sv_http_parse_body(&p, body + off, piece, &used, &done) != SV_HTTP_OK)
                return 1;
            off += used;
        }
        if (!done)
            return 1;
        sink += off;
    }
    double t5 = now_ns();
    printf("request head parse (%zu bytes, %u headers): %.0f ns\n", sizeof(req) - 1, 9u,
           (t1 - t0) / (double)iters);
    printf("upstream request head write (+XFF/XFP/port):  %.0f ns\n", (t2 - t1) / (double)iters);
    printf("response head parse + write (%zu bytes):     %.0f ns\n", sizeof(resp) - 1,
           (t3 - t2) / (double)iters);
    printf("chunked framing (16 KiB chunks):              %.2f GB/s\n",
           (double)bl * (double)msgs / (t5 - t4));
    return sink == 0;
}

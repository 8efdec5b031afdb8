/* libFuzzer target for the HTTP/1.1 head parser and body framer (not built by `make test`).
 *
 *   tests/fuzz/build-http.sh && build/fuzz/fuzz_http_head -max_total_time=60
 *
 * The first input byte picks request/response, the request method a response answers and the
 * piece size used to feed the rest; the parser must give the same answer fed at once and in
 * pieces, never claim bytes it was not given, and (under ASan) never read past the input. The
 * written request/response head must parse again. */
#include "serval/http/message.h"
#include "serval/http/parser.h"
#include "serval/http/serialize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse <buf>[<n>] offered in growing prefixes of <piece> bytes, each in an exact-size heap copy
 * so ASan sees any read past the prefix. The last copy (which the head points into) is returned
 * in *<keep>; the caller frees it. */
static int parse(struct sv_http_parser *p, struct sv_http_head *h, struct sv_http_header *hdrs,
                 enum sv_http_kind kind, enum sv_http_method m, const char *buf, size_t n,
                 size_t piece, size_t *hl, char **keep, uint32_t cap)
{
    sv_http_parser_init(p, kind, NULL);
    sv_http_parser_set_request_method(p, m);
    sv_http_head_init(h, hdrs, cap);
    int rc = SV_HTTP_AGAIN;
    *keep = NULL;
    for (size_t k = piece < n ? piece : n; rc == SV_HTTP_AGAIN; k = k + piece < n ? k + piece : n) {
        free(*keep);
        *keep = malloc(k ? k : 1);
        memcpy(*keep, buf, k);
        rc = sv_http_parse_head(p, *keep, k, h, hl);
        if (k == n)
            break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum sv_http_kind kind = (data[0] & 1) ? SV_HTTP_RESPONSE : SV_HTTP_REQUEST;
    enum sv_http_method m = (enum sv_http_method)((data[0] >> 1) % SV_HTTP_METHOD_COUNT);
    size_t piece = 1 + (data[0] >> 5) * 7;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    static struct sv_http_parser p1, p2;
    static struct sv_http_head h1, h2;
    static struct sv_http_header d1[64], d2[64];
    size_t hl1 = 0, hl2 = 0;
    char *whole, *pieces, *again = NULL;
    int rc1 = parse(&p1, &h1, d1, kind, m, in, n, n ? n : 1, &hl1, &whole, 64);
    int rc2 = parse(&p2, &h2, d2, kind, m, in, n, piece, &hl2, &pieces, 64);
    if (rc1 != rc2 || (rc1 == SV_HTTP_OK && hl1 != hl2))
        abort();
    if (rc1 == SV_HTTP_OK) {
        if (hl1 > n || h1.n_headers != h2.n_headers || h1.flags != h2.flags)
            abort();
        static char out[1 << 17];
        ssize_t w =
            kind == SV_HTTP_REQUEST
                ? sv_http_write_request_head(&h1, NULL, out, sizeof(out))
                : sv_http_write_response_head(&h1, NULL, SV_HTTP_RESP_KEEP_ALIVE, out, sizeof(out));
        if (w > 0) {
            size_t hl3 = 0;
            static struct sv_http_parser p3;
            static struct sv_http_head h3;
            static struct sv_http_header d3[128]; /* the writer may add Host */
            if (parse(&p3, &h3, d3, kind, m, out, (size_t)w, (size_t)w, &hl3, &again, 128) !=
                    SV_HTTP_OK ||
                hl3 != (size_t)w)
                abort();
        }
        enum sv_http_body_kind k = sv_http_body_begin(&p1);
        if (k == SV_HTTP_BODY_LENGTH || k == SV_HTTP_BODY_CHUNKED) {
            size_t used = 0;
            bool done = false;
            char *body = malloc(n - hl1 ? n - hl1 : 1);
            memcpy(body, whole + hl1, n - hl1);
            int rc = sv_http_parse_body(&p1, body, n - hl1, &used, &done);
            if (rc == SV_HTTP_OK && (used > n - hl1 || (!done && used != n - hl1)))
                abort();
            free(body);
        }
    }
    free(whole);
    free(pieces);
    free(again);
    return 0;
}

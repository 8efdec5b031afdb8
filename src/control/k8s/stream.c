/* HTTP response heads, chunked decoding, newline framing, backoff (pure). */
#include "serval/control/k8s_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serval/base/str.h"

static bool token_in_list(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

int sv_k8s_parse_head(const char *p, size_t n, struct sv_k8s_resp_head *h)
{
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    h->retry_after_s = -1;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -EINVAL;
    bool http10 = p[7] == '0';
    if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -EINVAL;
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *end = p + n;
    const char *line = memchr(p, '\n', n);
    if (!line)
        return -EINVAL;
    line++;
    bool keep_alive = false;
    for (unsigned guard = 0; line < end && guard < 1000; guard++) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            return -EINVAL;
        size_t ln = (size_t)(eol - line);
        if (ln && line[ln - 1] == '\r')
            ln--;
        if (ln == 0)
            break;
        const char *colon = memchr(line, ':', ln);
        if (!colon || colon == line)
            return -EINVAL;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vl = ln - nl - 1;
        struct sv_str val = sv_str_trim(sv_str_make(v, vl));
        struct sv_str name = sv_str_make(line, nl);
        if (sv_str_eq_nocase(name, sv_str_cstr("content-length"))) {
            uint64_t cl;
            if (sv_str_to_u64(val, INT64_MAX, &cl) != 0)
                return -EINVAL;
            if (h->content_length >= 0 && (uint64_t)h->content_length != cl)
                return -EINVAL;
            h->content_length = (int64_t)cl;
        } else if (sv_str_eq_nocase(name, sv_str_cstr("transfer-encoding"))) {
            if (token_in_list(val.ptr, val.len, "chunked"))
                h->chunked = true;
            else
                return -EINVAL; /* no other coding is offered by us */
        } else if (sv_str_eq_nocase(name, sv_str_cstr("connection"))) {
            if (token_in_list(val.ptr, val.len, "close"))
                h->close = true;
            if (token_in_list(val.ptr, val.len, "keep-alive"))
                keep_alive = true;
        } else if (sv_str_eq_nocase(name, sv_str_cstr("retry-after"))) {
            uint64_t ra;
            if (sv_str_to_u64(val, 86400, &ra) == 0)
                h->retry_after_s = (int)ra;
        } else if (sv_str_eq_nocase(name, sv_str_cstr("content-encoding"))) {
            if (token_in_list(val.ptr, val.len, "gzip"))
                h->gzip = true;
        }
        line = eol + 1;
    }
    if (h->chunked)
        h->content_length = -1;
    if (http10 && !keep_alive)
        h->close = true;
    return 0;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF,
       CH_DONE };

#define MAX_CHUNK_LINE 4096

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sv_k8s_chunked_feed(struct sv_k8s_chunked *c, const char *p, size_t n, size_t *used,
                        sv_k8s_bytes_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        switch (c->_state) {
        case CH_SIZE: {
            int v = hexv(ch);
            if (v >= 0) {
                if (++c->_digits > 15)
                    return -EINVAL;
                c->_rem = c->_rem * 16 + (uint64_t)v;
                i++;
            } else if (c->_digits == 0) {
                return -EINVAL;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->_state = CH_EXT;
                c->_ext = 0;
                i++;
            } else if (ch == '\r') {
                c->_state = CH_SIZE_LF;
                i++;
            } else {
                return -EINVAL;
            }
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                c->_state = CH_SIZE_LF;
            else if (ch == '\n' || ++c->_ext > MAX_CHUNK_LINE)
                return -EINVAL;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return -EINVAL;
            i++;
            c->_digits = 0;
            if (c->_rem == 0) {
                c->_state = CH_TRAILER;
                c->_ext = 0;
            } else {
                c->_state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > c->_rem)
                take = (size_t)c->_rem;
            int rc = fn(ctx, p + i, take);
            if (rc < 0)
                return rc;
            i += take;
            c->_rem -= take;
            if (c->_rem == 0)
                c->_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return -EINVAL;
            c->_state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -EINVAL;
            c->_state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER: /* a trailer line, or the empty line that ends the body */
            if (ch == '\r') {
                c->_state = CH_TRAILER_LF;
            } else if (ch == '\n' || ++c->_ext > MAX_CHUNK_LINE) {
                return -EINVAL;
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return -EINVAL;
            i++;
            if (c->_ext == 0) {
                c->_state = CH_DONE;
                *used = i;
                return 1;
            }
            c->_ext = 0;
            c->_state = CH_TRAILER;
            break;
        default:
            *used = i;
            return 1;
        }
    }
    *used = n;
    return c->_state == CH_DONE ? 1 : 0;
}

int sv_k8s_lines_feed(struct sv_k8s_lines *l, const char *p, size_t n, sv_k8s_bytes_fn fn,
                      void *ctx)
{
    size_t max = l->max ? l->max : SV_K8S_MAX_EVENT;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (l->_len + take > max)
            return -E2BIG;
        const char *line = p;
        size_t ll = take;
        if (l->_len > 0 || !nl) {
            if (l->_len + take + 1 > l->_cap) {
                size_t cap = l->_cap ? l->_cap : 4096;
                while (cap < l->_len + take + 1)
                    cap *= 2;
                char *b = realloc(l->_buf, cap);
                if (!b)
                    return -ENOMEM;
                l->_buf = b;
                l->_cap = cap;
            }
            memcpy(l->_buf + l->_len, p, take);
            l->_len += take;
            line = l->_buf;
            ll = l->_len;
        }
        if (!nl)
            return 0;
        p += take + 1;
        n -= take + 1;
        if (ll && line[ll - 1] == '\r')
            ll--;
        l->_len = 0;
        if (ll) {
            int rc = fn(ctx, line, ll);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

size_t sv_k8s_lines_pending(const struct sv_k8s_lines *l)
{
    return l->_len;
}

void sv_k8s_lines_reset(struct sv_k8s_lines *l)
{
    free(l->_buf);
    l->_buf = NULL;
    l->_len = l->_cap = 0;
}

uint64_t sv_k8s_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

uint32_t sv_k8s_backoff_next(struct sv_k8s_backoff *b)
{
    uint64_t base = b->base_ms ? b->base_ms : 100, cap = b->cap_ms ? b->cap_ms : 30000;
    uint64_t d = base;
    for (uint32_t i = 0; i < b->failures && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (b->failures < 64)
        b->failures++;
    uint64_t half = d / 2;
    return (uint32_t)(half + sv_k8s_rand(&b->_rng) % (d - half + 1));
}

uint32_t sv_k8s_backoff_retry_after(struct sv_k8s_backoff *b, int retry_after_s)
{
    uint32_t d = sv_k8s_backoff_next(b);
    if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > d)
        d = (uint32_t)retry_after_s * 1000;
    return d;
}

void sv_k8s_backoff_reset(struct sv_k8s_backoff *b)
{
    b->failures = 0;
}

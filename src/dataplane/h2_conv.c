/* HTTP/2 <-> HTTP/1.1 head conversion (see h2_conv.h). */
#include "dataplane/h2_conv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serval/http/serialize.h"

static bool put(char *out, size_t cap, size_t *n, const char *p, size_t len)
{
    if (len > cap - *n)
        return false;
    memcpy(out + *n, p, len);
    *n += len;
    return true;
}

#define PUTS(s) put(out, cap, &n, (s), strlen(s))
#define PUTV(v) put(out, cap, &n, (v).ptr, (v).len)

ssize_t sv_h2_request_head(const struct sv_h2_req *r, char *out, size_t cap)
{
    size_t n = 0;
    struct sv_str host = r->authority.len ? r->authority : r->host;
    bool ok = PUTV(r->method) && PUTS(" ") && PUTV(r->path) && PUTS(" HTTP/1.1\r\n");
    if (ok && host.len)
        ok = PUTS("Host: ") && PUTV(host) && PUTS("\r\n");
    /* the fields, with cookie crumbs joined into one field (RFC 9113 §8.2.3) */
    bool cookie = false;
    for (int pass = 0; pass < 2 && ok; pass++) {
        size_t pos = 0;
        for (size_t i = 0; i < r->lines.len && pos < r->lines.len && ok; i++) {
            const char *ln = r->lines.ptr + pos;
            const char *end = memmem(ln, r->lines.len - pos, "\r\n", 2);
            size_t len = end ? (size_t)(end - ln) + 2 : r->lines.len - pos;
            pos += len;
            bool is_cookie = len >= 10 && memcmp(ln, "cookie: ", 8) == 0;
            if (pass == 0 && !is_cookie) {
                ok = put(out, cap, &n, ln, len);
            } else if (pass == 1 && is_cookie) {
                ok = (cookie ? PUTS("; ") : PUTS("cookie: ")) &&
                     put(out, cap, &n, ln + 8, len - 10);
                cookie = true;
            }
        }
    }
    if (ok && cookie)
        ok = PUTS("\r\n");
    if (ok && r->body && !r->has_cl)
        ok = PUTS("Transfer-Encoding: chunked\r\n");
    if (ok && !r->body && !r->has_cl &&
        (sv_str_eq(r->method, SV_STR_LIT("POST")) || sv_str_eq(r->method, SV_STR_LIT("PUT")) ||
         sv_str_eq(r->method, SV_STR_LIT("PATCH"))))
        ok = PUTS("Content-Length: 0\r\n");
    ok = ok && PUTS("\r\n");
    return ok ? (ssize_t)n : -ENOSPC;
}

bool sv_h2_is_connection_header(const struct sv_http_head *h, struct sv_str name)
{
    return sv_http_is_hop_by_hop(h, name) || sv_str_eq_nocase(name, SV_STR_LIT("upgrade")) ||
           sv_str_eq_nocase(name, SV_STR_LIT("transfer-encoding")) ||
           sv_str_eq_nocase(name, SV_STR_LIT("keep-alive")) ||
           sv_str_eq_nocase(name, SV_STR_LIT("proxy-connection")) ||
           sv_str_eq_nocase(name, SV_STR_LIT("connection")) ||
           sv_str_eq_nocase(name, SV_STR_LIT("te")) || sv_str_eq_nocase(name, SV_STR_LIT("trailer"));
}

ssize_t sv_h2_response_nv(const struct sv_http_head *h, nghttp2_nv *nv, size_t nv_cap,
                          char *scratch, size_t scap)
{
    if (nv_cap < 1 || scap < 3 || h->status < 100 || h->status > 999)
        return -ENOSPC;
    size_t used = 3;
    scratch[0] = (char)('0' + h->status / 100);
    scratch[1] = (char)('0' + h->status / 10 % 10);
    scratch[2] = (char)('0' + h->status % 10);
    static const char st[] = ":status";
    nv[0] = (nghttp2_nv){(uint8_t *)st, (uint8_t *)scratch, sizeof(st) - 1, 3, NGHTTP2_NV_FLAG_NONE};
    size_t k = 1;
    for (uint32_t i = 0; i < h->n_headers; i++) {
        const struct sv_http_header *f = &h->headers[i];
        if (sv_h2_is_connection_header(h, f->name))
            continue;
        if (k == nv_cap || f->name.len > scap - used)
            return -ENOSPC;
        char *lname = scratch + used;
        for (size_t j = 0; j < f->name.len; j++) {
            char ch = f->name.ptr[j];
            lname[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        used += f->name.len;
        nv[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)f->value.ptr, f->name.len,
                               f->value.len, NGHTTP2_NV_FLAG_NONE};
    }
    return (ssize_t)k;
}

ssize_t sv_h2_request_nv(const struct sv_http_head *h, nghttp2_nv *nv, size_t nv_cap,
                         char *scratch, size_t scap)
{
    if (nv_cap < 4)
        return -ENOSPC;
    size_t used = 0, k = 0;
    static const char m[] = ":method", s[] = ":scheme", a[] = ":authority", p[] = ":path";
    static const char http[] = "http";
    struct sv_str path = h->target;
    if (h->target_form != SV_HTTP_TARGET_ORIGIN) { /* absolute-form: path and query only */
        size_t n = 0;
        char *out = scratch;
        size_t cap = scap;
        bool ok = PUTV(h->path) && (!(h->flags & SV_HTTP_F_QUERY) ||
                                    (PUTS("?") && PUTV(h->query)));
        if (!ok)
            return -ENOSPC;
        used = n;
        path = sv_str_make(scratch, n);
    }
#define NV(name, v)                                                                              \
    (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(v).ptr, sizeof(name) - 1, (v).len,              \
                 NGHTTP2_NV_FLAG_NONE}
    nv[k++] = NV(m, h->method_str);
    nv[k++] = NV(s, SV_STR_LIT(http));
    if (h->host.len)
        nv[k++] = NV(a, h->host);
    nv[k++] = NV(p, path);
#undef NV
    for (uint32_t i = 0; i < h->n_headers; i++) {
        const struct sv_http_header *f = &h->headers[i];
        if (sv_h2_is_connection_header(h, f->name) ||
            sv_str_eq_nocase(f->name, SV_STR_LIT("host")))
            continue;
        if (k == nv_cap || f->name.len > scap - used)
            return -ENOSPC;
        char *lname = scratch + used;
        for (size_t j = 0; j < f->name.len; j++) {
            char ch = f->name.ptr[j];
            lname[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        used += f->name.len;
        nv[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)f->value.ptr, f->name.len,
                               f->value.len, NGHTTP2_NV_FLAG_NONE};
    }
    return (ssize_t)k;
}

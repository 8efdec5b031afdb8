/* CORS filter helpers (GATEWAY_API_RULES.md §4 CORS): origin pattern validation and matching,
 * and the Access-Control-* headers of an answer. Pure functions over the compiled filter (no
 * allocation); the data plane decides when to call them. */
#include <string.h>

#include "serval/base/str.h"
#include "serval/http/message.h"
#include "serval/routing/table.h"

/* An origin (or origin pattern) split into its parts. port.ptr NULL = no port given. */
struct origin_parts {
    struct sv_str scheme;
    struct sv_str host;
    struct sv_str port;
};

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Split scheme "://" host [":" port]. Returns false when the shape is wrong (no "://", empty
 * host, a '/' or anything after the port, bad scheme characters). */
static bool split_origin(struct sv_str s, struct origin_parts *o)
{
    memset(o, 0, sizeof(*o));
    size_t i = 0;
    while (i < s.len && s.ptr[i] != ':') {
        char ch = s.ptr[i];
        if (!(is_alpha(ch) || (i > 0 && (is_digit(ch) || ch == '+' || ch == '-' || ch == '.'))))
            return false;
        i++;
    }
    if (i == 0 || s.len - i < 3 || memcmp(s.ptr + i, "://", 3) != 0)
        return false;
    o->scheme = sv_str_make(s.ptr, i);
    struct sv_str rest = sv_str_make(s.ptr + i + 3, s.len - i - 3);
    size_t hl;
    if (rest.len && rest.ptr[0] == '[') { /* IPv6 literal */
        const char *end = memchr(rest.ptr, ']', rest.len);
        if (!end)
            return false;
        hl = (size_t)(end - rest.ptr) + 1;
    } else {
        hl = 0;
        while (hl < rest.len && rest.ptr[hl] != ':')
            hl++;
    }
    if (hl == 0)
        return false;
    o->host = sv_str_make(rest.ptr, hl);
    if (hl < rest.len) {
        if (rest.ptr[hl] != ':')
            return false;
        o->port = sv_str_make(rest.ptr + hl + 1, rest.len - hl - 1);
    }
    return true;
}

/* The port as a number: the given one, else the scheme's default (http 80, https 443), else 0.
 * -1 when the given port is not 1..65535. */
static long port_of(const struct origin_parts *o)
{
    if (!o->port.ptr) {
        if (sv_str_eq_nocase(o->scheme, SV_STR_LIT("http")))
            return 80;
        if (sv_str_eq_nocase(o->scheme, SV_STR_LIT("https")))
            return 443;
        return 0;
    }
    if (o->port.len == 0 || o->port.len > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < o->port.len; i++) {
        if (!is_digit(o->port.ptr[i]))
            return -1;
        v = v * 10 + (o->port.ptr[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

static bool host_chars_ok(struct sv_str h)
{
    if (h.ptr[0] == '[') {
        for (size_t i = 1; i + 1 < h.len; i++) {
            char ch = h.ptr[i];
            if (!(is_digit(ch) || ch == ':' || ch == '.' || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F')))
                return false;
        }
        return h.len > 2;
    }
    for (size_t i = 0; i < h.len; i++) {
        char ch = h.ptr[i];
        if (!(is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_'))
            return false;
    }
    return h.ptr[0] != '.' && h.ptr[h.len - 1] != '.';
}

bool sv_route_cors_pattern_valid(struct sv_str pattern)
{
    if (sv_str_eq(pattern, SV_STR_LIT("*")))
        return true;
    struct origin_parts o;
    if (!pattern.ptr || !split_origin(pattern, &o) || port_of(&o) < 0)
        return false;
    struct sv_str h = o.host;
    if (sv_str_eq(h, SV_STR_LIT("*")))
        return true;
    if (h.len > 2 && h.ptr[0] == '*' && h.ptr[1] == '.')
        h = sv_str_make(h.ptr + 2, h.len - 2);
    return host_chars_ok(h);
}

/* <host> ends with <suffix> (ASCII case-insensitive) and has at least one byte before it. */
static bool ends_with_nocase(struct sv_str host, struct sv_str suffix)
{
    if (host.len <= suffix.len)
        return false;
    return sv_str_eq_nocase(sv_str_make(host.ptr + host.len - suffix.len, suffix.len), suffix);
}

static bool pattern_matches(struct sv_str pattern, const struct origin_parts *o, long oport)
{
    if (sv_str_eq(pattern, SV_STR_LIT("*")))
        return true;
    struct origin_parts p;
    if (!split_origin(pattern, &p) || !sv_str_eq_nocase(p.scheme, o->scheme) ||
        port_of(&p) != oport)
        return false;
    if (sv_str_eq(p.host, SV_STR_LIT("*")))
        return true;
    if (p.host.len > 2 && p.host.ptr[0] == '*' && p.host.ptr[1] == '.')
        return ends_with_nocase(o->host, sv_str_make(p.host.ptr + 1, p.host.len - 1));
    return sv_str_eq_nocase(p.host, o->host);
}

bool sv_route_cors_origin_allowed(const struct sv_route_cors *c, struct sv_str origin)
{
    if (!c || !origin.ptr || origin.len == 0)
        return false;
    struct origin_parts o;
    bool parsed = split_origin(origin, &o);
    long oport = parsed ? port_of(&o) : -1;
    for (uint32_t i = 0; i < c->n_origins; i++) {
        if (sv_str_eq(c->origins[i], SV_STR_LIT("*")))
            return true; /* also "null" and other opaque origins */
        if (parsed && oport >= 0 && pattern_matches(c->origins[i], &o, oport))
            return true;
    }
    return false;
}

uint32_t sv_route_cors_headers(const struct sv_route_cors *c, struct sv_str origin, bool preflight,
                               struct sv_str req_method, struct sv_str req_headers,
                               struct sv_http_header *out, uint32_t cap)
{
    uint32_t n = 0;
    if (!c || cap < SV_ROUTE_CORS_MAX_HEADERS)
        return 0;
    out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Allow-Origin"), origin};
    if (c->allow_credentials)
        out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Allow-Credentials"),
                                           SV_STR_LIT("true")};
    if (preflight) {
        struct sv_str m = c->any_method ? req_method : c->allow_methods;
        if (m.len)
            out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Allow-Methods"), m};
        struct sv_str h = c->any_header ? req_headers : c->allow_headers;
        if (req_headers.ptr && h.len)
            out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Allow-Headers"), h};
    }
    if (c->expose_headers.len)
        out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Expose-Headers"),
                                           c->expose_headers};
    if (preflight && c->max_age.len)
        out[n++] = (struct sv_http_header){SV_STR_LIT("Access-Control-Max-Age"), c->max_age};
    return n;
}

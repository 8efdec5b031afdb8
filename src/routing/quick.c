/* Quick mode: --listen / --route flag values -> one generation through the builder.
 * Each --listen is an HTTP bind with one hostname-less listener ("tls-passthrough:ADDR:PORT": a
 * TLS passthrough bind, routed by the ClientHello SNI as HOST with path "/"); each --route is an HTTPRoute
 * "quick/route-N" (created N: the earlier flag wins a tie) attached to every listener under its
 * HOST with one rule: PathPrefix PREFIX -> backend set "route-N" (its endpoints, round robin). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/routing/builder.h"
#include "serval/routing/quick.h"

#define QUICK_MAX_FLAGS 4096
#define QUICK_MAX_ENDPOINTS 1024

SV_PRINTF(3, 4) static void qerr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parse "A.B.C.D:PORT" or "[v6]:PORT" (the whole of s[0..n)). Returns NULL on success or a
 * static description of what is wrong. */
static const char *parse_hostport(const char *s, size_t n, union sv_route_sockaddr *out,
                                  socklen_t *len)
{
    char host[64];
    const char *colon;
    size_t hl;
    bool v6 = n > 0 && s[0] == '[';
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return "empty address";
    if (v6) {
        const char *close = memchr(s, ']', n);
        if (!close)
            return "missing ']' after IPv6 address";
        colon = close + 1;
        if (colon >= s + n || *colon != ':')
            return "missing port (want [ADDR]:PORT)";
        hl = (size_t)(close - s - 1);
        if (hl >= sizeof(host))
            return "address too long";
        memcpy(host, s + 1, hl);
    } else {
        colon = memrchr(s, ':', n);
        if (!colon)
            return "missing port (want ADDR:PORT)";
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return "address too long";
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    uint64_t port;
    struct sv_str ps = sv_str_make(colon + 1, (size_t)(s + n - colon - 1));
    if (ps.len == 0 || sv_str_to_u64(ps, 65535, &port) != 0 || port == 0)
        return "bad port (want 1-65535)";
    if (v6) {
        if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) != 1)
            return "bad IPv6 address";
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = htons((uint16_t)port);
        *len = sizeof(out->in6);
    } else {
        if (hl == 0 || inet_pton(AF_INET, host, &out->in.sin_addr) != 1)
            return "bad IPv4 address (want A.B.C.D:PORT or [IPv6]:PORT)";
        out->in.sin_family = AF_INET;
        out->in.sin_port = htons((uint16_t)port);
        *len = sizeof(out->in);
    }
    return NULL;
}

/* A prefix without its trailing '/' ("/a/" and "/a" are the same PathPrefix). */
static struct sv_str prefix_key(struct sv_str p)
{
    if (p.len && p.ptr[p.len - 1] == '/')
        p.len--;
    return p;
}

struct quick_route {
    struct sv_str host, prefix;
};

static int parse_route(const char *v, struct quick_route *r, struct sv_route_builder *b,
                       uint32_t set, char *err, size_t errlen)
{
    size_t n = strlen(v);
    const char *eq = memchr(v, '=', n);
    if (!eq) {
        qerr(err, errlen, "--route \"%s\": missing '=' (want [HOST]/PREFIX=IP:PORT[,...])", v);
        return -1;
    }
    const char *slash = memchr(v, '/', (size_t)(eq - v));
    if (!slash) {
        qerr(err, errlen, "--route \"%s\": missing /PREFIX before '='", v);
        return -1;
    }
    r->host = sv_str_make(v, (size_t)(slash - v));
    r->prefix = sv_str_make(slash, (size_t)(eq - slash));
    for (size_t i = 0; i < r->host.len; i++) {
        char c = r->host.ptr[i];
        if (!(c == '-' || c == '.' || c == '*' || (c >= '0' && c <= '9') ||
              (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            qerr(err, errlen, "--route \"%s\": bad character '%c' in host \"%.*s\"", v, c,
                 (int)r->host.len, r->host.ptr);
            return -1;
        }
    }
    if (r->host.len && r->host.ptr[0] == '*' && (r->host.len < 3 || r->host.ptr[1] != '.')) {
        qerr(err, errlen, "--route \"%s\": bad wildcard host \"%.*s\" (want *.example.com)", v,
             (int)r->host.len, r->host.ptr);
        return -1;
    }
    if (memmem(r->prefix.ptr, r->prefix.len, "//", 2)) {
        qerr(err, errlen, "--route \"%s\": prefix \"%.*s\" contains \"//\"", v,
             (int)r->prefix.len, r->prefix.ptr);
        return -1;
    }
    for (size_t i = 0; i < r->prefix.len; i++) {
        unsigned char c = (unsigned char)r->prefix.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
            qerr(err, errlen, "--route \"%s\": bad character in prefix \"%.*s\"", v,
                 (int)r->prefix.len, r->prefix.ptr);
            return -1;
        }
    }
    const char *p = eq + 1, *end = v + n;
    if (p == end) {
        qerr(err, errlen, "--route \"%s\": no backend after '=' (want IP:PORT[,IP:PORT...])", v);
        return -1;
    }
    for (unsigned count = 0; p <= end; count++) {
        if (count >= QUICK_MAX_ENDPOINTS) {
            qerr(err, errlen, "--route \"%s\": more than %d backends", v, QUICK_MAX_ENDPOINTS);
            return -1;
        }
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *ee = comma ? comma : end;
        union sv_route_sockaddr sa;
        socklen_t sl;
        const char *why = parse_hostport(p, (size_t)(ee - p), &sa, &sl);
        if (why) {
            qerr(err, errlen, "--route \"%s\": backend \"%.*s\": %s", v, (int)(ee - p), p, why);
            return -1;
        }
        if (sv_route_builder_add_endpoint(b, set, &sa.sa, sl) < 0) {
            qerr(err, errlen, "--route \"%s\": %s", v, sv_route_builder_error(b));
            return -1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

struct sv_generation *sv_quick_build(const char *const *listens, size_t n_listens,
                                     const char *const *routes, size_t n_routes, char *err,
                                     size_t errlen)
{
    if (n_listens == 0) {
        qerr(err, errlen, "quick mode needs at least one --listen ADDR:PORT");
        return NULL;
    }
    if (n_listens > QUICK_MAX_FLAGS || n_routes > QUICK_MAX_FLAGS) {
        qerr(err, errlen, "too many --listen/--route flags (max %d each)", QUICK_MAX_FLAGS);
        return NULL;
    }
    struct sv_route_builder *b = sv_route_builder_new();
    struct quick_route *qr = calloc(n_routes + 1, sizeof(*qr));
    uint32_t *listener_ids = calloc(n_listens + 1, sizeof(uint32_t));
    size_t n_listeners = 0;
    if (!b || !qr || !listener_ids) {
        qerr(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_listens; i++) {
        union sv_route_sockaddr sa;
        socklen_t sl;
        static const char pt[] = "tls-passthrough:";
        bool passthrough = strncmp(listens[i], pt, sizeof(pt) - 1) == 0;
        const char *hp = listens[i] + (passthrough ? sizeof(pt) - 1 : 0);
        const char *why = parse_hostport(hp, strlen(hp), &sa, &sl);
        if (why) {
            qerr(err, errlen, "--listen \"%s\": %s", listens[i], why);
            goto fail;
        }
        int bind = sv_route_builder_add_bind(
            b, &sa.sa, sl, passthrough ? SV_ROUTE_PROTO_TLS_PASSTHROUGH : SV_ROUTE_PROTO_HTTP);
        if (bind < 0) {
            qerr(err, errlen, "--listen \"%s\": %s", listens[i], sv_route_builder_error(b));
            goto fail;
        }
        if ((size_t)bind < n_listeners)
            continue; /* the same address twice: binds and listeners are created in step */
        char name[48];
        snprintf(name, sizeof(name), "quick/listen-%zu", i);
        int l = sv_route_builder_add_listener(b, (uint32_t)bind, sv_str_cstr(name), SV_STR_NULL);
        if (l < 0) {
            qerr(err, errlen, "--listen \"%s\": %s", listens[i], sv_route_builder_error(b));
            goto fail;
        }
        listener_ids[n_listeners++] = (uint32_t)l; /* listener index == bind index here */
    }
    for (size_t i = 0; i < n_routes; i++) {
        char name[48];
        snprintf(name, sizeof(name), "route-%zu", i);
        int set = sv_route_builder_add_backend_set(b, sv_str_cstr(name));
        if (set < 0 || parse_route(routes[i], &qr[i], b, (uint32_t)set, err, errlen) < 0) {
            if (set < 0)
                qerr(err, errlen, "--route \"%s\": %s", routes[i], sv_route_builder_error(b));
            goto fail;
        }
        for (size_t k = 0; k < i; k++) {
            if (sv_str_eq_nocase(qr[k].host, qr[i].host) &&
                sv_str_eq(prefix_key(qr[k].prefix), prefix_key(qr[i].prefix))) {
                qerr(err, errlen, "--route \"%s\": same host and prefix as --route \"%s\"",
                     routes[i], routes[k]);
                goto fail;
            }
        }
        struct sv_route_route_spec rs = {SV_STR_LIT("quick"), sv_str_cstr(name), (int64_t)i};
        int r = sv_route_builder_add_route(b, &rs);
        if (r < 0) {
            qerr(err, errlen, "--route \"%s\": %s", routes[i], sv_route_builder_error(b));
            goto fail;
        }
        for (size_t k = 0; k < n_listeners; k++) {
            if (sv_route_builder_attach(b, (uint32_t)r, listener_ids[k], qr[i].host) < 0) {
                qerr(err, errlen, "--route \"%s\": %s", routes[i], sv_route_builder_error(b));
                goto fail;
            }
        }
        struct sv_route_match_spec m = {.path_type = SV_ROUTE_PATH_PREFIX, .path = qr[i].prefix};
        struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET,
                                           .set_id = (uint32_t)set,
                                           .weight = 1};
        struct sv_route_rule_spec rule = {.matches = &m, .n_matches = 1, .backends = &be,
                                          .n_backends = 1};
        if (sv_route_builder_add_rule(b, (uint32_t)r, &rule) < 0) {
            qerr(err, errlen, "--route \"%s\": %s", routes[i], sv_route_builder_error(b));
            goto fail;
        }
    }
    free(qr);
    free(listener_ids);
    return sv_route_builder_finish(b, err, errlen);
fail:
    free(qr);
    free(listener_ids);
    sv_route_builder_free(b);
    return NULL;
}

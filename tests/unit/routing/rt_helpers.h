/* Small helpers shared by the routing unit tests. */
#ifndef SERVAL_TESTS_ROUTING_HELPERS_H
#define SERVAL_TESTS_ROUTING_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serval/base/compiler.h"
#include "serval/routing/builder.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"

static inline union sv_route_sockaddr rt_sa(const char *ip, uint16_t port)
{
    union sv_route_sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    if (strchr(ip, ':')) {
        sa.in6.sin6_family = AF_INET6;
        sa.in6.sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &sa.in6.sin6_addr);
    } else {
        sa.in.sin_family = AF_INET;
        sa.in.sin_port = htons(port);
        inet_pton(AF_INET, ip, &sa.in.sin_addr);
    }
    return sa;
}

static inline socklen_t rt_salen(const union sv_route_sockaddr *sa)
{
    return sa->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Request headers as "Name: value" strings; the callback joins repeated names with ",". */
struct rt_headers {
    const char *const *lines;
    size_t n;
};

static inline ssize_t rt_header_fn(const void *ctx, struct sv_str name, char *out, size_t cap)
{
    const struct rt_headers *h = ctx;
    size_t len = 0;
    int found = 0;
    for (size_t i = 0; i < h->n; i++) {
        const char *colon = strchr(h->lines[i], ':');
        if (!colon)
            continue;
        struct sv_str n = sv_str_make(h->lines[i], (size_t)(colon - h->lines[i]));
        if (!sv_str_eq_nocase(n, name))
            continue;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        size_t vl = strlen(v);
        if (len + (found ? 1 : 0) + vl > cap)
            return -ENOSPC;
        if (found)
            out[len++] = ',';
        memcpy(out + len, v, vl);
        len += vl;
        found = 1;
    }
    return found ? (ssize_t)len : -ENOENT;
}

/* Look up "METHOD host target" arriving on local ip:port with optional headers. */
static inline int rt_lookup(const struct sv_generation *g, const char *ip, uint16_t port,
                            const char *method, const char *host, const char *target,
                            const char *const *headers, size_t n_headers,
                            struct sv_route_result *res)
{
    union sv_route_sockaddr local = rt_sa(ip, port);
    struct rt_headers h = {headers, n_headers};
    const char *q = strchr(target, '?');
    struct sv_route_request req = {
        .local = &local.sa,
        .host = sv_str_cstr(host),
        .path = q ? sv_str_make(target, (size_t)(q - target)) : sv_str_cstr(target),
        .query = q ? sv_str_cstr(q + 1) : SV_STR_LIT(""),
        .method = sv_str_cstr(method),
        .header = rt_header_fn,
        .header_ctx = &h,
    };
    return sv_route_lookup(g, &req, res);
}

/* "route-name#rule" of the winner, or "404" / "404-nolistener". */
static inline const char *rt_who(const struct sv_generation *g, const char *ip, uint16_t port,
                                 const char *method, const char *host, const char *target,
                                 const char *const *headers, size_t n_headers)
{
    static __thread char buf[256];
    struct sv_route_result res;
    int rc = rt_lookup(g, ip, port, method, host, target, headers, n_headers, &res);
    if (rc != 0)
        return res.listener ? "404" : "404-nolistener";
    snprintf(buf, sizeof(buf), "%.*s#%u", (int)res.action->route_name.len,
             res.action->route_name.ptr, res.action->rule_index);
    return buf;
}

#endif

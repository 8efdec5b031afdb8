/* What a worker does after the lookup: weighted backend pick, round-robin endpoint pick,
 * ReplacePrefixMatch / ReplaceFullPath, RequestRedirect Location. No allocation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"

const struct sv_route_backend *sv_route_pick_backend(const struct sv_route_action *a, uint64_t rnd)
{
    if (!a || a->n_backends == 0)
        return NULL;
    if (a->n_backends == 1) /* no prefix sums stored for one backend */
        return a->backends[0].weight ? &a->backends[0] : NULL;
    uint64_t sum = a->_cum_weight[a->n_backends - 1];
    if (sum == 0)
        return NULL;
    uint64_t r = rnd % sum;
    /* first i with cum[i] > r; zero-weight backends have cum equal to their predecessor's and
     * are never the first */
    uint32_t lo = 0, hi = a->n_backends - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->_cum_weight[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    SV_DASSERT(a->backends[lo].weight > 0);
    return &a->backends[lo];
}

bool sv_route_mirror_pick(const struct sv_route_mirror *m, uint64_t rnd)
{
    if (!m || m->denominator == 0)
        return false;
    return rnd % m->denominator < m->numerator;
}

static bool ep_equal(const struct sv_route_endpoint *a, const struct sv_route_endpoint *b)
{
    if (a->addr.sa.sa_family != b->addr.sa.sa_family)
        return false;
    if (a->addr.sa.sa_family == AF_INET)
        return a->addr.in.sin_port == b->addr.in.sin_port &&
               a->addr.in.sin_addr.s_addr == b->addr.in.sin_addr.s_addr;
    return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
           memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

const struct sv_route_endpoint *sv_generation_pick_endpoint(const struct sv_generation *gen,
                                                            uint32_t set_id, uint32_t *cursor,
                                                            const struct sv_route_endpoint *avoid)
{
    sv_generation_check(gen);
    if (set_id >= gen->table->n_sets)
        return NULL;
    const struct sv_route_epset *s = &gen->sets[set_id];
    if (s->n == 0)
        return NULL;
    /* at most two tries: endpoints are unique within a set, so only one can equal <avoid> */
    for (uint32_t tries = 0; tries < 2 && tries < s->n; tries++) {
        uint32_t i = *cursor % s->n;
        *cursor = i + 1;
        const struct sv_route_endpoint *ep = &s->eps[i];
        if (!avoid || !ep_equal(ep, avoid))
            return ep;
    }
    return NULL;
}

/* ---- paths ------------------------------------------------------------------------------- */

struct outbuf {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct outbuf *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

ssize_t sv_route_replace_prefix(struct sv_str path, size_t prefix_len, struct sv_str replacement,
                                char *out, size_t cap)
{
    struct outbuf o = {out, cap, 0, false};
    struct sv_str rest = prefix_len <= path.len
                             ? sv_str_make(path.ptr + prefix_len, path.len - prefix_len)
                             : SV_STR_LIT("");
    put(&o, replacement.ptr, replacement.len);
    if (replacement.len && replacement.ptr[replacement.len - 1] == '/' && rest.len &&
        rest.ptr[0] == '/') {
        rest.ptr++;
        rest.len--;
    }
    put(&o, rest.ptr, rest.len);
    if (!o.overflow && o.len == 0)
        put(&o, "/", 1);
    return o.overflow ? -ENOSPC : (ssize_t)o.len;
}

ssize_t sv_route_apply_path_mod(const struct sv_route_path_mod *mod,
                                const struct sv_route_result *res, struct sv_str path, char *out,
                                size_t cap)
{
    struct outbuf o = {out, cap, 0, false};
    switch (mod ? mod->type : SV_ROUTE_PATH_MOD_NONE) {
    case SV_ROUTE_PATH_MOD_FULL:
        put(&o, mod->value.ptr, mod->value.len);
        if (!o.overflow && o.len == 0)
            put(&o, "/", 1);
        break;
    case SV_ROUTE_PATH_MOD_PREFIX:
        return sv_route_replace_prefix(path, res ? res->prefix_len : 0, mod->value, out, cap);
    default:
        put(&o, path.ptr, path.len);
        break;
    }
    return o.overflow ? -ENOSPC : (ssize_t)o.len;
}

int sv_route_redirect_status(const struct sv_route_result *res)
{
    if (!res || !res->action || !res->action->ext->redirect || !res->action->ext->redirect->status)
        return 302;
    return res->action->ext->redirect->status;
}

static struct sv_str host_without_port(struct sv_str h)
{
    if (h.len && h.ptr[0] == '[') {
        const char *close = memchr(h.ptr, ']', h.len);
        return close ? sv_str_make(h.ptr, (size_t)(close - h.ptr) + 1) : h;
    }
    const char *colon = memchr(h.ptr, ':', h.len);
    return colon ? sv_str_make(h.ptr, (size_t)(colon - h.ptr)) : h;
}

ssize_t sv_route_redirect_location(const struct sv_route_result *res, struct sv_str req_scheme,
                                   struct sv_str req_host, struct sv_str path, struct sv_str query,
                                   char *out, size_t cap)
{
    if (!res || !res->action || !res->action->ext->redirect)
        return -EINVAL;
    const struct sv_route_redirect *r = res->action->ext->redirect;
    struct outbuf o = {out, cap, 0, false};

    struct sv_str scheme = r->scheme.len ? r->scheme : req_scheme;
    struct sv_str host = r->hostname.len ? r->hostname : host_without_port(req_host);
    unsigned port;
    if (r->port)
        port = r->port;
    else if (r->scheme.len)
        port = sv_str_eq(r->scheme, SV_STR_LIT("https")) ? 443 : 80;
    else
        port = res->listener ? res->listener->port : 0;
    bool is_https = sv_str_eq(scheme, SV_STR_LIT("https"));
    bool default_port = port == 0 || (is_https && port == 443) ||
                        (!is_https && sv_str_eq(scheme, SV_STR_LIT("http")) && port == 80);

    put(&o, scheme.ptr, scheme.len);
    put(&o, "://", 3);
    put(&o, host.ptr, host.len);
    if (!default_port) {
        char pb[8];
        int n = snprintf(pb, sizeof(pb), ":%u", port);
        put(&o, pb, (size_t)n);
    }
    if (o.overflow)
        return -ENOSPC;
    ssize_t pl = sv_route_apply_path_mod(&r->path, res, path.len ? path : SV_STR_LIT("/"),
                                         out + o.len, cap - o.len);
    if (pl < 0)
        return pl;
    o.len += (size_t)pl;
    if (query.len) {
        put(&o, "?", 1);
        put(&o, query.ptr, query.len);
    }
    return o.overflow ? -ENOSPC : (ssize_t)o.len;
}

/* Request lookup: bind -> listener -> host buckets -> rule, plus the generation accessors.
 * Runs on worker threads: no allocation, every loop bounded by the input length or by sizes
 * fixed when the table was built. */
#include <errno.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"

/* ---- hashing ----------------------------------------------------------------------------- */

#if defined(SV_DEBUG) && SV_DEBUG
_Thread_local uint64_t sv_route_work_, sv_route_probes_;
#endif

/* Word-at-a-time multiply-xorshift hash (8 bytes per step). */
uint64_t sv_route_hash_(uint64_t seed, const char *p, size_t n)
{
    const uint64_t k = 0x9fb21c651e98df25ull;
    uint64_t h = (seed + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    for (; n >= 8; p += 8, n -= 8) { /* bounded by the input length */
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    if (n) { /* 1..7 bytes left: two overlapping loads, no byte loop (the length is mixed in) */
        uint64_t w;
        if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + n - 4, 4);
            w = a | (uint64_t)b << 32;
        } else {
            w = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << 8 |
                (uint64_t)(unsigned char)p[n - 1] << 16;
        }
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hkey_seed(uint32_t scope, uint32_t kind)
{
    return ((uint64_t)scope << 8) | kind;
}

int64_t sv_route_hfind_(const struct sv_route_htab *ht, uint32_t scope, uint32_t kind,
                        struct sv_str name)
{
    if (!ht->slots)
        return -1;
    uint64_t h = sv_route_hash_(hkey_seed(scope, kind), name.ptr, name.len);
    SV_ROUTE_WORK(1);
    for (uint32_t i = 0; i <= ht->mask; i++) { /* at most half full: ends at an empty slot */
        const struct sv_route_hslot *s = &ht->slots[(h + i) & ht->mask];
        SV_ROUTE_PROBE(1);
        if (!s->used)
            return -1;
        if (s->hash == h && s->scope == scope && s->kind == kind && s->name_len == name.len &&
            memcmp(s->name, name.ptr, name.len) == 0)
            return s->value;
    }
    return -1;
}

/* Child of <nd> for segment <seg> (hash <h>), or -1. Children are sorted by hash: binary search
 * down to a few, then a scan over the equal-hash run. */
static int64_t child_find(const struct sv_route_table *t, const struct sv_route_node *nd,
                          struct sv_str seg, uint32_t h)
{
    uint32_t lo = nd->child_off, hi = nd->child_off + nd->child_n, end = hi;
    while (hi - lo > 4) {
        uint32_t mid = lo + (hi - lo) / 2;
        SV_ROUTE_WORK(1);
        if (t->nodes[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < end; lo++) {
        const struct sv_route_node *c = &t->nodes[lo];
        SV_ROUTE_WORK(1);
        if (c->hash > h)
            break;
        /* the node's edge is <seg>, or <seg> followed by "/..." (a compressed chain) */
        if (c->hash == h && c->seg_len >= seg.len &&
            memcmp(t->segs + c->seg_off, seg.ptr, seg.len) == 0 &&
            (c->seg_len == seg.len || t->segs[c->seg_off + seg.len] == '/'))
            return lo;
    }
    return -1;
}

/* ---- accessors --------------------------------------------------------------------------- */

const struct sv_route_bind *sv_generation_binds(const struct sv_generation *gen, size_t *n)
{
    sv_generation_check(gen);
    *n = gen->table->n_binds;
    return gen->table->binds;
}

void *sv_generation_bind_tls(const struct sv_generation *gen, uint32_t bind)
{
    sv_generation_check(gen);
    /* an overlay's own table has no TLS contexts: its base holds them */
    const struct sv_route_table *t = gen->base ? gen->base : gen->table;
    return bind < t->n_bind_tls ? t->bind_tls[bind].ctx : NULL;
}

void *sv_generation_backend_tls(const struct sv_generation *gen, uint32_t set_id)
{
    sv_generation_check(gen);
    const struct sv_route_table *t = gen->table;
    void *ctx = set_id < t->n_set_tls ? t->set_tls[set_id].ctx : NULL;
    /* an overlay: a set of the base that none of its own routes resolved keeps the base's
     * context (same id, same policy: overlays exist only while policies are unchanged) */
    if (!ctx && gen->base && set_id < gen->base->n_set_tls)
        ctx = gen->base->set_tls[set_id].ctx;
    return ctx;
}

const struct sv_route_listener *sv_generation_listeners(const struct sv_generation *gen, size_t *n)
{
    sv_generation_check(gen);
    *n = gen->table->n_listeners;
    return gen->table->listeners;
}

static bool addr_is_any(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->sa_family == AF_INET6) {
        static const struct in6_addr any = IN6ADDR_ANY_INIT;
        return memcmp(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, &any,
                      sizeof(any)) == 0;
    }
    return false;
}

static bool addr_port(const struct sockaddr *sa, uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        *port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        *port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
        return true;
    }
    return false;
}

/* Same family, address and port (IPv6 scope ignored). */
static bool addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

int sv_generation_find_bind(const struct sv_generation *gen, const struct sockaddr *sa)
{
    sv_generation_check(gen);
    const struct sv_route_table *t = gen->table;
    uint16_t port;
    if (!sa || !addr_port(sa, &port))
        return -1;
    int any = -1;
    for (uint32_t i = 0; i < t->n_binds; i++) {
        const struct sv_route_bind *b = &t->binds[i];
        if (addr_equal(&b->addr.sa, sa))
            return (int)i;
        if (any < 0 && b->addr.sa.sa_family == sa->sa_family && b->port == port &&
            addr_is_any(&b->addr.sa))
            any = (int)i;
    }
    return any;
}

uint32_t sv_generation_n_backend_sets(const struct sv_generation *gen)
{
    sv_generation_check(gen);
    return gen->table->n_sets;
}

struct sv_str sv_generation_backend_set_name(const struct sv_generation *gen, uint32_t set_id)
{
    sv_generation_check(gen);
    if (set_id >= gen->table->n_sets)
        return SV_STR_LIT("");
    return gen->table->set_names[set_id];
}

const struct sv_route_endpoint *sv_generation_endpoints(const struct sv_generation *gen,
                                                        uint32_t set_id, size_t *n)
{
    sv_generation_check(gen);
    if (set_id >= gen->table->n_sets) {
        *n = 0;
        return NULL;
    }
    *n = gen->sets[set_id].n;
    return gen->sets[set_id].eps;
}

int64_t sv_generation_find_backend_set(const struct sv_generation *gen, struct sv_str name)
{
    sv_generation_check(gen);
    return sv_route_hfind_(&gen->table->hash, 0, SV_HK_SET, name);
}

/* ---- host normalisation ------------------------------------------------------------------ */

/* Lower-case <host> without ":port" (and without a trailing dot) into buf. Returns the length,
 * or -1 when it cannot match any configured name (too long). An IPv6 literal keeps its
 * brackets. */
static int normalise_host(struct sv_str host, char *buf, size_t cap)
{
    size_t n = host.len;
    if (n > 0 && host.ptr[0] == '[') {
        const char *close = memchr(host.ptr, ']', n);
        if (close)
            n = (size_t)(close - host.ptr) + 1;
    } else if (n > 0) { /* no Host (HTTP/1.0): ptr may be NULL */
        const char *colon = memchr(host.ptr, ':', n);
        if (colon)
            n = (size_t)(colon - host.ptr);
    }
    if (n > 0 && host.ptr[n - 1] == '.')
        n--;
    if (n > cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] = sv_ascii_lower(host.ptr[i]);
    return (int)n;
}

/* ---- matching ---------------------------------------------------------------------------- */

/* First value of query parameter <name> (case-sensitive). Returns true and sets *val when
 * present. Bounded by the query length. */
static bool query_get(struct sv_str query, struct sv_str name, struct sv_str *val)
{
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == name.len && memcmp(p, name.ptr, name.len) == 0) {
            *val = eq ? sv_str_make(eq + 1, (size_t)(pe - eq - 1)) : sv_str_make(pe, 0);
            return true;
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}

static bool cond_value_ok(const struct sv_route_cond *c, struct sv_str v)
{
    if (c->type == SV_COND_REGEX)
        return sv_regex_match_(c->re, v) == 1;
    return sv_str_eq(c->value, v);
}

/* Everything but the path's place in the trie: regex path, method, headers, query. */
static bool cond_matches(const struct sv_route_entry_cond *e, const struct sv_route_request *req,
                         struct sv_str path)
{
    if (e->path_re && sv_regex_match_(e->path_re, path) != 1)
        return false;
    if (e->method_len && !sv_str_eq(sv_str_make(e->method, e->method_len), req->method))
        return false;
    for (uint32_t i = 0; i < e->n_query; i++) {
        struct sv_str v;
        if (!query_get(req->query, e->query[i].name, &v) || !cond_value_ok(&e->query[i], v))
            return false;
    }
    if (e->n_headers) {
        char buf[SV_ROUTE_MAX_HEADER_VALUE];
        if (!req->header)
            return false;
        for (uint32_t i = 0; i < e->n_headers; i++) {
            ssize_t n = req->header(req->header_ctx, e->headers[i].name, buf, sizeof(buf));
            if (n < 0 || !cond_value_ok(&e->headers[i], sv_str_make(buf, (size_t)n)))
                return false;
        }
    }
    return true;
}

static bool try_list(const struct sv_route_table *t, uint32_t off, uint32_t n,
                     const struct sv_route_request *req, struct sv_str path,
                     struct sv_route_result *res)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct sv_route_entry *e = &t->lists[off + i];
        SV_ROUTE_WORK(1);
        if (e->cond != SV_ROUTE_NO_COND && !cond_matches(&t->conds[e->cond], req, path))
            continue;
        res->action = &t->actions[e->action];
        res->path_type = (enum sv_route_path_type)e->path_type;
        res->prefix_len = e->path_type == SV_ROUTE_PATH_PREFIX ? e->path_len : 0;
        return true;
    }
    return false;
}

/* Exact, then regex, then PathPrefix entries from the deepest trie node up. */
static bool bucket_lookup(const struct sv_route_table *t, const struct sv_route_bucket *bk,
                          const struct sv_route_request *req, struct sv_str path,
                          struct sv_route_result *res)
{
    uint32_t stack[SV_ROUTE_MAX_SEGMENTS + 2];
    uint32_t depth = 0;
    uint32_t node = bk->root;
    bool full = true;
    if (t->nodes[node].prefix_n)
        stack[depth++] = node;
    if (path.len > 1) {
        const char *p = path.ptr + 1, *end = path.ptr + path.len;
        for (;;) { /* one iteration per segment: bounded by the path length */
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *se = slash ? slash : end;
            struct sv_str seg = sv_str_make(p, (size_t)(se - p));
            int64_t child =
                child_find(t, &t->nodes[node], seg, sv_route_seg_hash_(seg.ptr, seg.len));
            if (child < 0) {
                full = false;
                break;
            }
            node = (uint32_t)child;
            const struct sv_route_node *nd = &t->nodes[node];
            if (nd->seg_len > seg.len) {
                /* a compressed edge "seg/more/..." (its inner nodes had no entries): the path
                 * must go on with exactly "/more/..." up to a segment end, else no deeper node
                 * matches */
                const char *rest = t->segs + nd->seg_off + seg.len; /* starts with '/' */
                size_t rl = nd->seg_len - seg.len;
                SV_ROUTE_WORK(1);
                if ((size_t)(end - se) < rl || memcmp(se, rest, rl) != 0 ||
                    (se + rl < end && se[rl] != '/')) {
                    full = false;
                    break;
                }
                se += rl;
                slash = se < end ? se : NULL;
            }
            if (nd->prefix_n) {
                SV_ASSERT(depth < SV_ARRAY_SIZE(stack));
                stack[depth++] = node;
            }
            if (!slash)
                break;
            p = slash + 1;
        }
    }
    if (full && t->nodes[node].exact_n &&
        try_list(t, t->nodes[node].list_off, t->nodes[node].exact_n, req, path, res))
        return true;
    if (bk->regex_n && try_list(t, bk->regex_off, bk->regex_n, req, path, res))
        return true;
    while (depth > 0) {
        const struct sv_route_node *nd = &t->nodes[stack[--depth]];
        if (try_list(t, nd->list_off + nd->exact_n, nd->prefix_n, req, path, res))
            return true;
    }
    return false;
}

/* The tiers of host bucket <k> in order (one in the common case; a chain bounded by the number
 * of buckets). */
static bool tiers_lookup(const struct sv_route_table *t, uint32_t k,
                         const struct sv_route_request *req, struct sv_str path,
                         struct sv_route_result *res)
{
    for (uint32_t n = 0; k != UINT32_MAX && n < t->n_buckets; n++, k = t->buckets[k].next)
        if (bucket_lookup(t, &t->buckets[k], req, path, res))
            return true;
    return false;
}

/* Host bucket (kind, name) of listener <li> in an overlay generation (overlay.c): from the
 * overlay's own table when it overrides that name, else from the base table (*tb says which). */
static int64_t overlay_bucket(const struct sv_generation *gen, uint32_t li, uint32_t kind,
                              struct sv_str name, const struct sv_route_table **tb)
{
    if (sv_route_hfind_(&gen->ovr, li, kind, name) >= 0) {
        *tb = gen->table;
        return sv_route_hfind_(&gen->table->hash, li, kind, name);
    }
    *tb = gen->base;
    return sv_route_hfind_(&gen->base->hash, li, kind, name);
}

/* The buckets of listener <li> in precedence order (as in sv_route_lookup), each from the table
 * that serves its name in overlay generation <gen>. */
static int overlay_lookup(const struct sv_generation *gen, uint32_t li, struct sv_str host,
                          const struct sv_route_request *req, struct sv_str path,
                          struct sv_route_result *res)
{
    const struct sv_route_table *tb;
    if (host.len) {
        int64_t b = overlay_bucket(gen, li, SV_HK_BUCKET_EXACT, host, &tb);
        if (b >= 0 && tiers_lookup(tb, (uint32_t)b, req, path, res))
            return 0;
        if (gen->table->listener_wild[li] || gen->base->listener_wild[li]) {
            for (size_t i = 0; i < host.len; i++) {
                if (host.ptr[i] != '.')
                    continue;
                b = overlay_bucket(gen, li, SV_HK_BUCKET_WILD,
                                   sv_str_make(host.ptr + i + 1, host.len - i - 1), &tb);
                if (b >= 0 && tiers_lookup(tb, (uint32_t)b, req, path, res))
                    return 0;
            }
        }
    }
    tb = gen->ovr_any[li] ? gen->table : gen->base;
    int32_t any = tb->listener_any[li];
    if (any >= 0 && tiers_lookup(tb, (uint32_t)any, req, path, res))
        return 0;
    return -ENOENT;
}

/* Listener of <bind> for a normalised host: exact, wildcard with the most labels, none. */
static int64_t select_listener(const struct sv_route_table *t, uint32_t bind, struct sv_str host)
{
    int64_t li = -1;
    if (host.len) {
        li = sv_route_hfind_(&t->lhash, bind, SV_HK_LISTENER_EXACT, host);
        if (li < 0 && t->bind_wild[bind]) {
            for (size_t i = 0; i < host.len && li < 0; i++)
                if (host.ptr[i] == '.')
                    li = sv_route_hfind_(&t->lhash, bind, SV_HK_LISTENER_WILD,
                                         sv_str_make(host.ptr + i + 1, host.len - i - 1));
        }
    }
    return li >= 0 ? li : t->bind_any[bind];
}

int sv_generation_select_listener(const struct sv_generation *gen, const struct sockaddr *local,
                                  struct sv_str host)
{
    sv_generation_check(gen);
    int bind = sv_generation_find_bind(gen, local);
    if (bind < 0)
        return -1;
    char hbuf[SV_ROUTE_MAX_HOST];
    int hl = normalise_host(host, hbuf, sizeof(hbuf));
    return (int)select_listener(gen->table, (uint32_t)bind,
                                hl > 0 ? sv_str_make(hbuf, (size_t)hl) : SV_STR_NULL);
}

int sv_route_lookup(const struct sv_generation *gen, const struct sv_route_request *req,
                    struct sv_route_result *res)
{
    sv_generation_check(gen);
    const struct sv_route_table *t = gen->table;
    memset(res, 0, sizeof(*res));
    int bind = sv_generation_find_bind(gen, req->local);
    if (bind < 0)
        return -ENOENT;

    char hbuf[SV_ROUTE_MAX_HOST];
    int hl = normalise_host(req->host, hbuf, sizeof(hbuf));
    struct sv_str host = hl > 0 ? sv_str_make(hbuf, (size_t)hl) : SV_STR_NULL;

    int64_t li = select_listener(t, (uint32_t)bind, host);
    if (li < 0)
        return -ENOENT;
    res->listener = &t->listeners[li];

    struct sv_str path = req->path.len ? req->path : SV_STR_LIT("/");
    if (path.ptr[0] != '/')
        return -ENOENT;

    if (sv_unlikely(gen->base != NULL))
        return overlay_lookup(gen, (uint32_t)li, host, req, path, res);
    /* buckets of this listener in precedence order */
    if (host.len) {
        int64_t b = sv_route_hfind_(&t->hash, (uint32_t)li, SV_HK_BUCKET_EXACT, host);
        if (b >= 0 && tiers_lookup(t, (uint32_t)b, req, path, res))
            return 0;
        if (t->listener_wild[li]) {
            for (size_t i = 0; i < host.len; i++) {
                if (host.ptr[i] != '.')
                    continue;
                b = sv_route_hfind_(&t->hash, (uint32_t)li, SV_HK_BUCKET_WILD,
                                    sv_str_make(host.ptr + i + 1, host.len - i - 1));
                if (b >= 0 && tiers_lookup(t, (uint32_t)b, req, path, res))
                    return 0;
            }
        }
    }
    int32_t any = t->listener_any[li];
    if (any >= 0 && tiers_lookup(t, (uint32_t)any, req, path, res))
        return 0;
    return -ENOENT;
}

/* Incremental translation of HTTPRoute changes (sv_translate_routes): a full translation
 * records where every HTTPRoute attached (listener, host name) in an index; when a later store
 * differs from the indexed one in HTTPRoutes alone, only the host names the changed routes
 * attached to (before or after) are rebuilt, with every route attached to them, into an overlay
 * generation over the current one (serval/routing/overlay.h). Everything else falls back to a
 * full translation (-EAGAIN). Control thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/arena.h"
#include "serval/base/assert.h"
#include "serval/routing/generation.h"
#include "serval/routing/overlay.h"

#define DELTA_MAX_CHANGED 256 /* changed HTTPRoutes an overlay takes; more: full rebuild */
#define DELTA_MAX_ROUTES 1024 /* routes an overlay re-translates; more: full rebuild */
#define DELTA_MAX_KEYS 1024   /* host names an overlay overrides; more: full rebuild */

/* One attachment: HTTPRoute <route> on builder listener <listener> under <host> (lower-cased,
 * no trailing dot: the builder's bucket name). */
struct att {
    uint32_t route;
    uint32_t listener;
    const char *host;
    uint64_t key; /* hash of (listener, host) */
};

struct sv_tx_rec {
    struct att *v;
    size_t n, cap;
    struct sv_arena strs; /* host copies */
    bool nomem;
};

struct idx_route {
    const char *ns, *name;
    uint64_t content_hash;
    uint32_t att_off, att_n; /* its attachments: atts[att_off, att_off + att_n) */
};

struct sv_tx_index {
    struct sv_arena a;
    uint64_t digest[SV_KIND__COUNT]; /* sv_store_digest of the indexed store */
    const char *controller, *bind, *pool;
    const void *ticket_keys;
    struct idx_route *routes; /* the indexed store's HTTPRoutes, sv_store_list order */
    size_t n_routes;
    struct att *atts; /* by route */
    size_t n_atts;
};

static uint64_t key_of(uint32_t listener, const char *host)
{
    uint64_t h = 1469598103934665603ull ^ ((uint64_t)listener * 0x9e3779b97f4a7c15ull);
    for (const char *p = host; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h ^ (h >> 31);
}

static bool same_key(const struct att *x, const struct att *y)
{
    return x->key == y->key && x->listener == y->listener && strcmp(x->host, y->host) == 0;
}

static int rec_init(struct sv_tx_rec *r)
{
    memset(r, 0, sizeof(*r));
    return sv_arena_init(&r->strs, 4096, false);
}

static void rec_fini(struct sv_tx_rec *r)
{
    free(r->v);
    sv_arena_destroy(&r->strs);
}

void sv_tx_rec_attach(struct tx *t, uint32_t listener, const char *host)
{
    struct sv_tx_rec *r = t->rec;
    if (r->nomem)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct att *v = realloc(r->v, cap * sizeof(*v));
        if (!v) {
            r->nomem = true;
            return;
        }
        r->v = v;
        r->cap = cap;
    }
    size_t len = strlen(host);
    if (len && host[len - 1] == '.')
        len--;
    char *copy = sv_arena_alloc(&r->strs, len + 1);
    if (!copy) {
        r->nomem = true;
        return;
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = sv_ascii_lower(host[i]);
    copy[len] = '\0';
    r->v[r->n++] = (struct att){t->rec_route, listener, copy, key_of(listener, copy)};
}

/* ---- the index ---------------------------------------------------------------------------- */

static const char *idx_strdup(struct sv_tx_index *x, const char *s)
{
    return s ? sv_arena_strndup(&x->a, s, strlen(s)) : NULL;
}

void sv_tx_index_free(struct sv_tx_index *idx)
{
    if (!idx)
        return;
    free(idx->routes);
    free(idx->atts);
    sv_arena_destroy(&idx->a);
    free(idx);
}

/* The index of a full translation of <store> that recorded <rec>; NULL when out of memory. */
static struct sv_tx_index *index_build(struct sv_store *store,
                                       const struct sv_translate_opts *opts,
                                       struct sv_tx_rec *rec)
{
    if (rec->nomem)
        return NULL;
    size_t n;
    const struct sv_object *const *v = sv_store_list(store, SV_KIND_HTTPROUTE, &n);
    if (!v && sv_store_list_failed(store))
        return NULL;
    struct sv_tx_index *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    if (sv_arena_init(&x->a, 16384, false) != 0) {
        free(x);
        return NULL;
    }
    for (int k = 0; k < SV_KIND__COUNT; k++)
        x->digest[k] = sv_store_digest(store, (enum sv_kind)k);
    x->controller = idx_strdup(x, opts && opts->controller_name ? opts->controller_name
                                                                : SV_DEFAULT_CONTROLLER_NAME);
    x->bind = idx_strdup(x, opts && opts->bind_addr ? opts->bind_addr : "0.0.0.0");
    x->pool = opts ? idx_strdup(x, opts->address_pool) : NULL;
    x->ticket_keys = opts ? opts->ticket_keys : NULL;
    x->routes = calloc(n ? n : 1, sizeof(*x->routes));
    x->atts = calloc(rec->n ? rec->n : 1, sizeof(*x->atts));
    bool ok = x->routes && x->atts && x->controller && x->bind;
    for (size_t i = 0; ok && i < n; i++) {
        struct idx_route *r = &x->routes[i];
        r->ns = idx_strdup(x, v[i]->meta.ns);
        r->name = idx_strdup(x, v[i]->meta.name);
        r->content_hash = v[i]->content_hash;
        ok = r->ns && r->name;
    }
    x->n_routes = n;
    /* recorded in route order (sv_tx_routes translates them one after the other) */
    for (size_t i = 0; ok && i < rec->n; i++) {
        struct att a = rec->v[i];
        SV_ASSERT(a.route < n);
        SV_ASSERT(i == 0 || rec->v[i - 1].route <= a.route);
        a.host = idx_strdup(x, a.host);
        ok = a.host != NULL;
        struct idx_route *r = &x->routes[a.route];
        if (r->att_n == 0)
            r->att_off = (uint32_t)i;
        r->att_n++;
        x->atts[i] = a;
    }
    x->n_atts = rec->n;
    if (!ok) {
        sv_tx_index_free(x);
        return NULL;
    }
    return x;
}

int sv_translate_indexed(struct sv_store *store, const struct sv_translate_opts *opts,
                         struct sv_generation **gen_out, struct sv_status **status_out,
                         struct sv_tx_index **index_out, char *err, size_t errlen)
{
    *index_out = NULL;
    struct sv_tx_rec rec;
    if (rec_init(&rec) != 0)
        return sv_tx_translate(store, opts, NULL, gen_out, status_out, err, errlen);
    int rc = sv_tx_translate(store, opts, &rec, gen_out, status_out, err, errlen);
    if (rc == 0)
        *index_out = index_build(store, opts, &rec); /* NULL: only the shortcut is lost */
    rec_fini(&rec);
    return rc;
}

void sv_tx_index_endpoints_changed(struct sv_tx_index *idx, const struct sv_store *store)
{
    if (idx)
        idx->digest[SV_KIND_ENDPOINTSLICE] = sv_store_digest(store, SV_KIND_ENDPOINTSLICE);
}

/* ---- the incremental translation ---------------------------------------------------------- */

static bool same_cstr(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_opts(const struct sv_tx_index *x, const struct sv_translate_opts *opts)
{
    return same_cstr(x->controller, opts && opts->controller_name ? opts->controller_name
                                                                  : SV_DEFAULT_CONTROLLER_NAME) &&
           same_cstr(x->bind, opts && opts->bind_addr ? opts->bind_addr : "0.0.0.0") &&
           same_cstr(x->pool, opts ? opts->address_pool : NULL) &&
           x->ticket_keys == (opts ? opts->ticket_keys : NULL);
}

static int cmp_route_key(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
    int c = strcmp(ns1, ns2);
    return c ? c : strcmp(n1, n2);
}

/* Is (listener, host) of <a> among keys[n]? */
static bool key_in(const struct att *a, const struct att *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (same_key(a, &keys[i]))
            return true;
    return false;
}

/* Add <a>'s key to keys[*n] unless present. false when full. */
static bool key_add(const struct att *a, struct att *keys, size_t *n)
{
    if (key_in(a, keys, *n))
        return true;
    if (*n >= DELTA_MAX_KEYS)
        return false;
    keys[(*n)++] = *a;
    return true;
}

int sv_translate_routes(struct sv_store *store, const struct sv_translate_opts *opts,
                        const struct sv_tx_index *idx, const struct sv_generation *base,
                        struct sv_generation **gen_out, struct sv_translate_routes_info *info,
                        char *err, size_t errlen)
{
    *gen_out = NULL;
    memset(info, 0, sizeof(*info));
    if (err && errlen)
        err[0] = '\0';
    if (!idx || !base || sv_generation_is_overlay(base) || !same_opts(idx, opts))
        return -EAGAIN;
    for (int k = 0; k < SV_KIND__COUNT; k++) {
        if (k != SV_KIND_HTTPROUTE && sv_store_digest(store, (enum sv_kind)k) != idx->digest[k])
            return -EAGAIN;
    }
    size_t n;
    const struct sv_object *const *v = sv_store_list(store, SV_KIND_HTTPROUTE, &n);
    if (!v && sv_store_list_failed(store))
        return -ENOMEM;

    /* Changed routes: a merge of two lists sorted by (namespace, name). */
    const struct sv_object *changed[DELTA_MAX_CHANGED];
    size_t n_changed = 0, n_gone = 0;
    uint8_t *old_changed = calloc(idx->n_routes + 1, 1); /* per indexed route: changed/removed */
    struct att *keys = malloc(DELTA_MAX_KEYS * sizeof(*keys));
    struct sv_route_host_key *hk = malloc(DELTA_MAX_KEYS * sizeof(*hk));
    uint32_t *rest = malloc(DELTA_MAX_ROUTES * sizeof(*rest));
    int rc = -ENOMEM;
    struct tx t;
    bool begun = false;
    struct sv_tx_rec rec;
    bool rec_ok = false;
    if (!old_changed || !keys || !hk || !rest)
        goto out;
    rc = -EAGAIN;
    size_t i = 0, j = 0;
    while (i < n || j < idx->n_routes) { /* bounded: each step advances i or j */
        int c = i == n               ? 1
                : j == idx->n_routes ? -1
                                     : cmp_route_key(v[i]->meta.ns, v[i]->meta.name,
                                                     idx->routes[j].ns, idx->routes[j].name);
        if (c == 0 && v[i]->content_hash == idx->routes[j].content_hash) {
            i++, j++;
            continue;
        }
        if (c <= 0) { /* added or changed */
            if (n_changed == DELTA_MAX_CHANGED)
                goto out;
            changed[n_changed++] = v[i++];
        }
        if (c >= 0) { /* changed or removed: its old attachments */
            old_changed[j++] = 1;
            n_gone += c > 0;
        }
    }
    info->changed = n_changed + n_gone;
    if (info->changed == 0)
        goto out; /* nothing to do here: the caller decides */

    if ((rc = sv_tx_begin(&t, store, opts, err, errlen)) != 0)
        goto out;
    begun = true;
    rc = -ENOMEM;
    /* The base's backend sets first, with the same ids; their endpoints come from the base
     * (sv_generation_overlay), so mark them filled. */
    uint32_t nb = sv_generation_n_backend_sets(base);
    for (uint32_t s = 0; s < nb; s++) {
        int id = sv_route_builder_add_backend_set(t.b, sv_generation_backend_set_name(base, s));
        if (id < 0)
            goto out;
        if ((uint32_t)id != s) {
            rc = -EAGAIN; /* duplicate names in the base: cannot mirror its numbering */
            goto out;
        }
    }
    t.set_cap = nb > 64 ? nb : 64;
    t.set_filled = calloc(t.set_cap, 1);
    if (!t.set_filled)
        goto out;
    memset(t.set_filled, 1, nb);
    t.st->routes = sv_arena_zalloc(t.a, (DELTA_MAX_CHANGED + DELTA_MAX_ROUTES) *
                                            sizeof(*t.st->routes));
    if (!t.st->routes || rec_init(&rec) != 0)
        goto out;
    rec_ok = true;

    /* The changed routes, recording where they attach now. */
    t.rec = &rec;
    for (size_t c = 0; c < n_changed; c++) {
        t.rec_route = (uint32_t)c;
        if ((rc = sv_tx_route(&t, changed[c], &t.st->routes[t.st->n_routes++])) != 0)
            goto out;
    }
    t.rec = NULL;
    rc = -ENOMEM;
    if (rec.nomem || t.nomem)
        goto out;
    /* Host names to rebuild: where the changed routes attach now and where they attached. */
    size_t n_keys = 0;
    rc = -EAGAIN;
    for (size_t a = 0; a < rec.n; a++)
        if (!key_add(&rec.v[a], keys, &n_keys))
            goto out;
    for (size_t r = 0; r < idx->n_routes; r++) {
        if (!old_changed[r])
            continue;
        const struct idx_route *ir = &idx->routes[r];
        for (uint32_t a = 0; a < ir->att_n; a++)
            if (!key_add(&idx->atts[ir->att_off + a], keys, &n_keys))
                goto out;
    }
    /* Every unchanged route attached to one of those names, in store order. */
    size_t n_rest = 0;
    for (size_t r = 0; r < idx->n_routes; r++) {
        const struct idx_route *ir = &idx->routes[r];
        if (old_changed[r])
            continue;
        bool hit = false;
        for (uint32_t a = 0; a < ir->att_n && !hit; a++)
            hit = key_in(&idx->atts[ir->att_off + a], keys, n_keys);
        if (!hit)
            continue;
        if (n_rest == DELTA_MAX_ROUTES)
            goto out;
        rest[n_rest++] = (uint32_t)r;
    }
    for (size_t r = 0; r < n_rest; r++) {
        const struct idx_route *ir = &idx->routes[rest[r]];
        const struct sv_object *o = sv_store_get(store, SV_KIND_HTTPROUTE, ir->ns, ir->name);
        SV_ASSERT(o != NULL); /* unchanged routes are in the store */
        if ((rc = sv_tx_route(&t, o, &t.st->routes[t.st->n_routes++])) != 0)
            goto out;
    }
    rc = -ENOMEM;
    if (t.nomem)
        goto out;
    char berr[256] = "";
    struct sv_generation *gen = sv_route_builder_finish(t.b, berr, sizeof(berr));
    t.b = NULL;
    if (!gen) {
        snprintf(err, errlen, "building the overlay failed: %s", berr);
        goto out;
    }
    for (size_t k = 0; k < n_keys; k++)
        hk[k] = (struct sv_route_host_key){keys[k].listener, sv_str_cstr(keys[k].host)};
    rc = sv_generation_overlay(gen, base, hk, n_keys, err, errlen);
    if (rc != 0) {
        sv_generation_free_unpublished(gen);
        rc = rc == -EINVAL ? -EAGAIN : rc; /* layouts differ: translate in full */
        goto out;
    }
    info->routes = n_changed + n_rest;
    info->hosts = n_keys;
    *gen_out = gen;
    rc = 0;
out:
    if (begun)
        sv_tx_abort(&t);
    if (rec_ok)
        rec_fini(&rec);
    free(old_changed);
    free(keys);
    free(hk);
    free(rest);
    return rc;
}

/* Overlay generations (serval/routing/overlay.h): a small route table for the host names a
 * change touched, in front of the current generation's table. Control thread only; lookup.c
 * reads the result on the workers (overlay_lookup). */
#include "serval/routing/overlay.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"

#define PSTR(s) (int)SV_MIN((s).len, 200), ((s).ptr ? (s).ptr : "")

/* The (kind, lower-cased name) a builder hostname is filed under (builder.c parse_hostname):
 * "" -> 0, "*.x" -> wild "x", else exact. Lower-cases into buf[cap]. -EINVAL if malformed. */
static int key_parse(struct sv_str h, char *buf, size_t cap, uint32_t *kind, struct sv_str *name)
{
    if (h.len && h.ptr[h.len - 1] == '.')
        h.len--;
    if (h.len == 0) {
        *kind = 0;
        *name = SV_STR_LIT("");
        return 0;
    }
    *kind = SV_HK_BUCKET_EXACT;
    if (h.ptr[0] == '*') {
        if (h.len < 3 || h.ptr[1] != '.')
            return -EINVAL;
        h = sv_str_make(h.ptr + 2, h.len - 2);
        *kind = SV_HK_BUCKET_WILD;
    }
    if (h.len > cap)
        return -EINVAL;
    for (size_t i = 0; i < h.len; i++)
        buf[i] = sv_ascii_lower(h.ptr[i]);
    *name = sv_str_make(buf, h.len);
    return 0;
}

/* Insert (scope, kind, name) into <ht> (at most half full by construction); the name is
 * copied into <ar>. Same hashing as the builder's tables, so sv_route_hfind_ finds it. */
static int ovr_put(struct sv_arena *ar, struct sv_route_htab *ht, uint32_t scope, uint32_t kind,
                   struct sv_str name)
{
    uint64_t h = sv_route_hash_(((uint64_t)scope << 8) | kind, name.ptr, name.len);
    for (uint32_t i = 0; i <= ht->mask; i++) {
        struct sv_route_hslot *s = &ht->slots[(h + i) & ht->mask];
        if (!s->used) {
            char *copy = sv_arena_alloc(ar, name.len + 1);
            if (!copy)
                return -ENOMEM;
            memcpy(copy, name.ptr, name.len);
            copy[name.len] = '\0';
            *s = (struct sv_route_hslot){copy, h, (uint32_t)name.len, scope, 1, (uint16_t)kind, 1};
            return 0;
        }
        if (s->hash == h && s->scope == scope && s->kind == kind && s->name_len == name.len &&
            memcmp(s->name, name.ptr, name.len) == 0)
            return 0; /* listed twice */
    }
    return -ENOSPC;
}

/* Same binds, listeners and leading backend sets as <b>? Message in err otherwise. */
static bool same_layout(const struct sv_route_table *o, const struct sv_route_table *b, char *err,
                        size_t errlen)
{
    if (o->n_binds != b->n_binds || o->n_listeners != b->n_listeners || o->n_sets < b->n_sets) {
        snprintf(err, errlen, "overlay: %u binds, %u listeners, %u sets over %u, %u, %u",
                 o->n_binds, o->n_listeners, o->n_sets, b->n_binds, b->n_listeners, b->n_sets);
        return false;
    }
    for (uint32_t i = 0; i < o->n_binds; i++) {
        if (o->binds[i].proto != b->binds[i].proto || o->binds[i].port != b->binds[i].port ||
            o->binds[i].addrlen != b->binds[i].addrlen ||
            memcmp(&o->binds[i].addr, &b->binds[i].addr, o->binds[i].addrlen) != 0) {
            snprintf(err, errlen, "overlay: bind %u differs", i);
            return false;
        }
    }
    for (uint32_t i = 0; i < o->n_listeners; i++) {
        const struct sv_route_listener *x = &o->listeners[i], *y = &b->listeners[i];
        if (x->bind != y->bind || x->port != y->port || x->proto != y->proto ||
            !sv_str_eq(x->name, y->name) || !sv_str_eq(x->hostname, y->hostname)) {
            snprintf(err, errlen, "overlay: listener %u differs", i);
            return false;
        }
    }
    for (uint32_t i = 0; i < b->n_sets; i++) {
        if (!sv_str_eq(o->set_names[i], b->set_names[i])) {
            snprintf(err, errlen, "overlay: backend set %u is \"%.*s\", base has \"%.*s\"", i,
                     PSTR(o->set_names[i]), PSTR(b->set_names[i]));
            return false;
        }
    }
    return true;
}

int sv_generation_overlay(struct sv_generation *gen, const struct sv_generation *base,
                          const struct sv_route_host_key *keys, size_t n_keys, char *err,
                          size_t errlen)
{
    sv_generation_check(gen);
    sv_generation_check(base);
    SV_ASSERT(gen->id == 0);
    if (err && errlen)
        err[0] = '\0';
    if (gen->base || base->base) {
        snprintf(err, errlen, "overlay: an overlay cannot be stacked");
        return -EINVAL;
    }
    const struct sv_route_table *o = gen->table, *bt = base->table;
    if (!same_layout(o, bt, err, errlen))
        return -EINVAL;
    for (size_t i = 0; i < n_keys; i++) {
        if (keys[i].listener >= o->n_listeners) {
            snprintf(err, errlen, "overlay: no listener %u", keys[i].listener);
            return -EINVAL;
        }
    }
    /* Everything below allocates from the generation's own arena: on failure it is only
     * unused memory there until the generation is freed. */
    struct sv_route_htab ovr = {0};
    uint8_t *any = sv_arena_zalloc(&gen->arena, o->n_listeners + 1);
    if (!any)
        return -ENOMEM;
    uint32_t size = 16;
    while (size < 2 * n_keys + 2 && size < (1u << 30))
        size *= 2;
    ovr.mask = size - 1;
    ovr.slots = sv_arena_zalloc(&gen->arena, (size_t)size * sizeof(*ovr.slots));
    if (!ovr.slots)
        return -ENOMEM;
    for (size_t i = 0; i < n_keys; i++) {
        char buf[SV_ROUTE_MAX_HOST];
        uint32_t kind;
        struct sv_str name;
        if (key_parse(keys[i].hostname, buf, sizeof(buf), &kind, &name) != 0) {
            snprintf(err, errlen, "overlay: bad hostname \"%.*s\"", PSTR(keys[i].hostname));
            return -EINVAL;
        }
        if (kind == 0) {
            any[keys[i].listener] = 1;
            continue;
        }
        int rc = ovr_put(&gen->arena, &ovr, keys[i].listener, kind, name);
        if (rc < 0)
            return rc == -ENOSPC ? -ENOMEM : rc;
    }
    /* the endpoints of the base's sets (the overlay's builder declared them without any) */
    for (uint32_t s = 0; s < bt->n_sets; s++) {
        const struct sv_route_epset *src = &base->sets[s];
        struct sv_route_endpoint *copy = NULL;
        if (src->n) {
            copy = sv_arena_alloc(&gen->arena, src->n * sizeof(*copy));
            if (!copy)
                return -ENOMEM;
            memcpy(copy, src->eps, src->n * sizeof(*copy));
        }
        gen->sets[s] = (struct sv_route_epset){copy, src->n};
    }
    struct sv_route_table *shared = (struct sv_route_table *)bt; /* refs is the mutable part */
    atomic_fetch_add_explicit(&shared->refs, 1, memory_order_relaxed); /* alive: base holds one */
    gen->base = shared;
    gen->ovr = ovr;
    gen->ovr_any = any;
    return 0;
}

bool sv_generation_is_overlay(const struct sv_generation *gen)
{
    sv_generation_check(gen);
    return gen->base != NULL;
}

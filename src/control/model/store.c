/* Object store: one open-addressing hash table (linear probing, backward-shift deletion) per
 * kind, keyed by namespace/name, plus a sorted list per kind for snapshots (built on demand,
 * then kept sorted by upsert/delete). */
#include "serval/control/store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "serval/base/assert.h"

struct kind_table {
    struct sv_object **slots; /* capacity is a power of two; NULL = empty */
    size_t cap;
    size_t count;
    const struct sv_object **sorted; /* cache; valid when sorted_ok (kept up to date by
                                        upsert/delete while valid, else rebuilt on demand) */
    size_t sorted_cap;
    size_t moves; /* inserts/deletes applied to the cache since the last sv_store_list */
    bool sorted_ok;
    uint64_t digest; /* sum of obj_digest() over the objects (sv_store_digest) */
};

struct sv_store {
    struct kind_table kinds[SV_KIND__COUNT];
    uint64_t changes;
    int list_failed;
};

static uint64_t key_hash(const char *ns, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = ns; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* One object's share of its kind's digest: key and content, well mixed (splitmix64 finaliser)
 * so that the sum over a set of objects changes whenever one of them does. */
static uint64_t obj_digest(const struct sv_object *o)
{
    uint64_t x = key_hash(o->meta.ns, o->meta.name) ^ (o->content_hash * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool key_eq(const struct sv_object *o, const char *ns, const char *name)
{
    return strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0;
}

/* Inserts and deletes moved into the sorted cache between two sv_store_list calls; beyond, the
 * cache is dropped and sorted again on demand (each move is O(n): many of them cost more than
 * one sort). */
#define SORTED_MOVES_MAX 64

/* Index of the first entry of the sorted cache not ordered before (ns, name). */
static size_t sorted_pos(const struct kind_table *t, size_t n, const char *ns, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* binary search: log2(n) steps */
        size_t mid = lo + (hi - lo) / 2;
        const struct sv_object *o = t->sorted[mid];
        int c = strcmp(o->meta.ns, ns);
        if (!c)
            c = strcmp(o->meta.name, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Keep a valid sorted cache valid across the insertion of a new key (count not yet raised):
 * one binary search and a move, instead of a full sort on the next sv_store_list (a watch
 * event or a route edit must not cost a sort of the whole kind). Out of memory only drops the
 * cache. */
static void sorted_insert(struct kind_table *t, const struct sv_object *obj)
{
    if (!t->sorted_ok)
        return;
    if (++t->moves > SORTED_MOVES_MAX) { /* a mass change (relist): one sort is cheaper */
        t->sorted_ok = false;
        return;
    }
    if (t->sorted_cap < t->count + 1) {
        size_t cap = t->sorted_cap ? t->sorted_cap * 2 : 16;
        const struct sv_object **v = realloc(t->sorted, cap * sizeof(*v));
        if (!v) {
            t->sorted_ok = false;
            return;
        }
        t->sorted = v;
        t->sorted_cap = cap;
    }
    size_t p = sorted_pos(t, t->count, obj->meta.ns, obj->meta.name);
    memmove(&t->sorted[p + 1], &t->sorted[p], (t->count - p) * sizeof(*t->sorted));
    t->sorted[p] = obj;
}

struct sv_store *sv_store_new(void)
{
    return calloc(1, sizeof(struct sv_store));
}

void sv_store_free(struct sv_store *s)
{
    if (!s)
        return;
    for (int k = 0; k < SV_KIND__COUNT; k++) {
        struct kind_table *t = &s->kinds[k];
        for (size_t i = 0; i < t->cap; i++)
            sv_object_free(t->slots[i]);
        free(t->slots);
        free(t->sorted);
    }
    free(s);
}

/* Slot index holding the key, or the empty slot where it would go. Table must not be full. */
static size_t find_slot(const struct kind_table *t, const char *ns, const char *name)
{
    size_t mask = t->cap - 1, i = (size_t)key_hash(ns, name) & mask;
    for (size_t probes = 0; probes < t->cap; probes++, i = (i + 1) & mask) {
        if (!t->slots[i] || key_eq(t->slots[i], ns, name))
            return i;
    }
    SV_ASSERT(!"store table full");
    return 0;
}

static int grow(struct kind_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 16;
    struct sv_object **old = t->slots;
    size_t ocap = t->cap;
    t->slots = calloc(ncap, sizeof(*t->slots));
    if (!t->slots) {
        t->slots = old;
        return -ENOMEM;
    }
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i])
            t->slots[find_slot(t, old[i]->meta.ns, old[i]->meta.name)] = old[i];
    }
    free(old);
    return 0;
}

int sv_store_upsert(struct sv_store *s, struct sv_object *obj)
{
    SV_ASSERT(obj && obj->kind < SV_KIND__COUNT && obj->meta.name && obj->meta.ns);
    struct kind_table *t = &s->kinds[obj->kind];
    if ((t->count + 1) * 4 > t->cap * 3 && grow(t) != 0) {
        sv_object_free(obj);
        return -ENOMEM;
    }
    size_t i = find_slot(t, obj->meta.ns, obj->meta.name);
    struct sv_object *old = t->slots[i];
    if (old && old->meta.resource_version && obj->meta.resource_version &&
        strcmp(old->meta.resource_version, obj->meta.resource_version) == 0) {
        sv_object_free(obj);
        return 0;
    }
    t->slots[i] = obj;
    t->digest += obj_digest(obj);
    if (old) {
        t->digest -= obj_digest(old);
        if (t->sorted_ok) { /* same key: same place */
            size_t p = sorted_pos(t, t->count, obj->meta.ns, obj->meta.name);
            SV_ASSERT(p < t->count && t->sorted[p] == old);
            t->sorted[p] = obj;
        }
        sv_object_free(old);
    } else {
        sorted_insert(t, obj);
        t->count++;
    }
    s->changes++;
    return 1;
}

int sv_store_delete(struct sv_store *s, enum sv_kind kind, const char *ns, const char *name)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    struct kind_table *t = &s->kinds[kind];
    if (!t->count)
        return 0;
    size_t mask = t->cap - 1, i = find_slot(t, ns, name);
    if (!t->slots[i])
        return 0;
    t->digest -= obj_digest(t->slots[i]);
    if (t->sorted_ok && ++t->moves > SORTED_MOVES_MAX)
        t->sorted_ok = false; /* a mass change (relist): one sort is cheaper */
    if (t->sorted_ok) {
        size_t p = sorted_pos(t, t->count, ns, name);
        SV_ASSERT(p < t->count && t->sorted[p] == t->slots[i]);
        memmove(&t->sorted[p], &t->sorted[p + 1], (t->count - p - 1) * sizeof(*t->sorted));
    }
    sv_object_free(t->slots[i]);
    t->slots[i] = NULL;
    t->count--;
    /* Backward-shift: move later members of the probe run into the hole when that is where
     * they belong. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask, probes = 0; t->slots[j] && probes < t->cap;
         j = (j + 1) & mask, probes++) {
        size_t home = (size_t)key_hash(t->slots[j]->meta.ns, t->slots[j]->meta.name) & mask;
        /* Can slot j move to the hole? Only if its home is not in (hole, j] cyclically. */
        bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            t->slots[hole] = t->slots[j];
            t->slots[j] = NULL;
            hole = j;
        }
    }
    s->changes++;
    return 1;
}

const struct sv_object *sv_store_get(const struct sv_store *s, enum sv_kind kind, const char *ns,
                                     const char *name)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    const struct kind_table *t = &s->kinds[kind];
    if (!t->count)
        return NULL;
    return t->slots[find_slot(t, ns ? ns : "", name)];
}

size_t sv_store_count(const struct sv_store *s, enum sv_kind kind)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    return s->kinds[kind].count;
}

static int cmp_obj(const void *a, const void *b)
{
    const struct sv_object *x = *(const struct sv_object *const *)a;
    const struct sv_object *y = *(const struct sv_object *const *)b;
    int c = strcmp(x->meta.ns, y->meta.ns);
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

const struct sv_object *const *sv_store_list(struct sv_store *s, enum sv_kind kind, size_t *n)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    struct kind_table *t = &s->kinds[kind];
    s->list_failed = 0;
    t->moves = 0;
    *n = 0;
    if (!t->count)
        return NULL;
    if (!t->sorted_ok) {
        const struct sv_object **v = realloc(t->sorted, t->count * sizeof(*v));
        if (!v) {
            s->list_failed = 1;
            return NULL;
        }
        t->sorted = v;
        t->sorted_cap = t->count;
        size_t k = 0;
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i])
                v[k++] = t->slots[i];
        }
        SV_ASSERT(k == t->count);
        qsort(v, k, sizeof(*v), cmp_obj);
        t->sorted_ok = true;
    }
    *n = t->count;
    return t->sorted;
}

int sv_store_list_failed(const struct sv_store *s)
{
    return s->list_failed;
}

uint64_t sv_store_changes(const struct sv_store *s)
{
    return s->changes;
}

uint64_t sv_store_digest(const struct sv_store *s, enum sv_kind kind)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    return s->kinds[kind].digest;
}

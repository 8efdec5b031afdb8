/* RCU-style publication of routing generations: one atomic pointer, a per-worker epoch for the
 * grace period (IO_URING.md §5.2) and per-worker reference counters for requests that outlive a
 * loop iteration. See generation.h for the contract and why this is not liburcu.
 *
 * Memory ordering, in short:
 *  - publish: exchange(cur) then fetch_add(epoch) (both seq_cst); the old generation is retired
 *    with the new epoch value e.
 *  - quiescent: seen[w] = load(epoch) (acquire load, release store). A worker whose seen >= e read
 *    the epoch after the exchange, so every later acquire of cur returns the new generation,
 *    and all its reads of the old one happened before its release store of seen.
 *  - offline: seen[w] = UINT64_MAX (release). online: seen[w] = epoch, full fence, then the caller
 *    acquires cur: the Dekker pair with the publisher's exchange + seq_cst scan of seen.
 *  - refs: single writer per counter (the worker), release stores; reclaim loads them (acquire)
 *    after it observed the grace period, so increments made before a quiescent state are seen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"
#include "serval/routing/builder.h"

#define SV_OFFLINE UINT64_MAX

struct sv_gen_reader {
    _Atomic uint64_t seen;
    _Atomic uint32_t registered;
    char _pad[SV_CACHELINE - sizeof(uint64_t) - sizeof(uint32_t)];
};

struct sv_generation_domain {
    _Atomic(struct sv_generation *) cur;
    _Atomic uint64_t epoch;
    char _pad0[SV_CACHELINE - sizeof(void *) - sizeof(uint64_t)];
    /* control-thread state */
    unsigned n_workers;
    uint64_t next_id;
    sv_generation_wake_fn wake;
    void *wake_arg;
    struct sv_generation *retired; /* oldest first */
    struct sv_generation *retired_tail;
    size_t n_retired;
    struct sv_gen_reader readers[SV_MAX_WORKERS] SV_ALIGNED_CACHELINE;
};

SV_STATIC_ASSERT(sizeof(struct sv_gen_reader) == SV_CACHELINE, "one cache line per reader");
SV_STATIC_ASSERT(sizeof(struct sv_gen_refcount) == SV_CACHELINE, "one cache line per counter");

/* ---- generations and tables ------------------------------------------------------------ */

static _Atomic size_t live_generations;
static _Atomic size_t live_tables;

size_t sv_generation_live_count(void)
{
    return atomic_load(&live_generations);
}

size_t sv_route_table_live_count(void)
{
    return atomic_load(&live_tables);
}

struct sv_generation *sv_generation_alloc_(struct sv_route_table *t, size_t endpoints)
{
    struct sv_generation *g = aligned_alloc(SV_CACHELINE, sizeof(*g));
    if (!g)
        return NULL;
    memset(g, 0, sizeof(*g));
    /* one block for the set table and every endpoint array (each rounded to 16 bytes) */
    size_t need = (t->n_sets * sizeof(g->sets[0]) + 15) / 16 * 16 +
                  endpoints * sizeof(struct sv_route_endpoint) + (size_t)t->n_sets * 16;
    if (sv_arena_init(&g->arena, need > 4096 ? need : 4096, false) != 0) {
        free(g);
        return NULL;
    }
    g->sets = t->n_sets ? sv_arena_zalloc(&g->arena, t->n_sets * sizeof(g->sets[0])) : NULL;
    if (t->n_sets && !g->sets) {
        sv_arena_destroy(&g->arena);
        free(g);
        return NULL;
    }
    g->magic = SV_GEN_MAGIC;
    g->table = t;
    atomic_fetch_add(&live_generations, 1);
    if (atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed) == 0)
        atomic_fetch_add(&live_tables, 1); /* the table's first generation */
    return g;
}

void sv_route_table_unref_(struct sv_route_table *t)
{
    if (!t)
        return;
    uint32_t before = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
    SV_ASSERT(before > 0);
    if (before != 1)
        return;
    for (uint32_t i = 0; i < t->n_regexes; i++)
        sv_regex_free_(t->regexes[i]);
    free(t->regexes);
    free(t->actions);
    sv_route_table_release_tls_(t);
    sv_arena_destroy(&t->arena);
    free(t);
    atomic_fetch_sub(&live_tables, 1);
}

static void generation_free(struct sv_generation *g)
{
    sv_generation_check(g);
    g->magic = SV_GEN_POISON;
    sv_route_table_unref_(g->table);
    g->table = NULL;
    sv_route_table_unref_(g->base); /* an overlay's base table (NULL is a no-op) */
    g->base = NULL;
    sv_arena_destroy(&g->arena);
    free(g);
    atomic_fetch_sub(&live_generations, 1);
}

void sv_generation_free_unpublished(struct sv_generation *gen)
{
    if (!gen)
        return;
    SV_ASSERT(gen->id == 0);
    generation_free(gen);
}

void sv_generation_check(const struct sv_generation *gen)
{
    SV_ASSERT(gen != NULL);
    SV_ASSERT(gen->magic == SV_GEN_MAGIC);
}

uint64_t sv_generation_id(const struct sv_generation *gen)
{
    sv_generation_check(gen);
    return gen->id;
}

int sv_generation_same_routes(const struct sv_generation *a, const struct sv_generation *b)
{
    sv_generation_check(a);
    sv_generation_check(b);
    return a->table == b->table;
}

/* ---- domain ---------------------------------------------------------------------------- */

struct sv_generation_domain *sv_generation_domain_new(unsigned n_workers)
{
    if (n_workers == 0 || n_workers > SV_MAX_WORKERS)
        return NULL;
    struct sv_generation_domain *d = aligned_alloc(SV_CACHELINE, sizeof(*d));
    if (!d)
        return NULL;
    memset(d, 0, sizeof(*d));
    atomic_init(&d->cur, NULL);
    atomic_init(&d->epoch, 1);
    d->n_workers = n_workers;
    for (unsigned i = 0; i < SV_MAX_WORKERS; i++) {
        atomic_init(&d->readers[i].seen, SV_OFFLINE);
        atomic_init(&d->readers[i].registered, 0);
    }
    return d;
}

void sv_generation_domain_free(struct sv_generation_domain *d)
{
    if (!d)
        return;
    struct sv_generation *g = d->retired;
    while (g) {
        struct sv_generation *next = g->retired_next;
        generation_free(g);
        g = next;
    }
    g = atomic_load_explicit(&d->cur, memory_order_relaxed);
    if (g)
        generation_free(g);
    free(d);
}

void sv_generation_domain_set_wake(struct sv_generation_domain *d, sv_generation_wake_fn fn,
                                   void *arg)
{
    d->wake = fn;
    d->wake_arg = arg;
}

uint64_t sv_generation_publish(struct sv_generation_domain *d, struct sv_generation *gen)
{
    sv_generation_check(gen);
    SV_ASSERT(gen->id == 0);
    gen->id = ++d->next_id;
    struct sv_generation *old = atomic_exchange_explicit(&d->cur, gen, memory_order_seq_cst);
    uint64_t e = atomic_fetch_add_explicit(&d->epoch, 1, memory_order_seq_cst) + 1;
    if (old) {
        old->retire_epoch = e;
        old->retired_next = NULL;
        if (d->retired_tail)
            d->retired_tail->retired_next = old;
        else
            d->retired = old;
        d->retired_tail = old;
        d->n_retired++;
    }
    if (d->wake)
        d->wake(d->wake_arg);
    return gen->id;
}

/* Lowest epoch every registered, online worker has passed (UINT64_MAX if all offline). */
static uint64_t min_seen(struct sv_generation_domain *d)
{
    uint64_t m = SV_OFFLINE;
    for (unsigned w = 0; w < d->n_workers; w++) {
        uint64_t s = atomic_load_explicit(&d->readers[w].seen, memory_order_seq_cst);
        if (s < m)
            m = s;
    }
    return m;
}

static bool refs_zero(const struct sv_generation *g, unsigned n_workers)
{
    for (unsigned w = 0; w < n_workers; w++) {
        int64_t n = atomic_load_explicit(&g->refs[w].n, memory_order_acquire);
        SV_ASSERT(n >= 0);
        if (n != 0)
            return false;
    }
    return true;
}

size_t sv_generation_reclaim(struct sv_generation_domain *d)
{
    uint64_t passed = min_seen(d);
    size_t freed = 0;
    struct sv_generation **link = &d->retired;
    struct sv_generation *prev = NULL;
    /* Bounded by the retired list length, which only the control thread changes. */
    while (*link) {
        struct sv_generation *g = *link;
        if (g->retire_epoch <= passed && refs_zero(g, d->n_workers)) {
            *link = g->retired_next;
            if (d->retired_tail == g)
                d->retired_tail = prev;
            d->n_retired--;
            generation_free(g);
            freed++;
            continue;
        }
        prev = g;
        link = &g->retired_next;
    }
    return freed;
}

size_t sv_generation_retired_count(const struct sv_generation_domain *d)
{
    return d->n_retired;
}

const struct sv_generation *sv_generation_current(const struct sv_generation_domain *d)
{
    return atomic_load_explicit(&d->cur, memory_order_acquire);
}

/* ---- readers --------------------------------------------------------------------------- */

int sv_generation_reader_register(struct sv_generation_domain *d, unsigned w)
{
    if (w >= d->n_workers)
        return -EINVAL;
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong(&d->readers[w].registered, &expected, 1))
        return -EBUSY;
    sv_generation_online(d, w);
    return 0;
}

void sv_generation_reader_unregister(struct sv_generation_domain *d, unsigned w)
{
    SV_ASSERT(w < d->n_workers);
    sv_generation_offline(d, w);
    atomic_store_explicit(&d->readers[w].registered, 0, memory_order_release);
}

const struct sv_generation *sv_generation_acquire(struct sv_generation_domain *d, unsigned w)
{
    SV_DASSERT(w < d->n_workers);
    SV_DASSERT(atomic_load_explicit(&d->readers[w].seen, memory_order_relaxed) != SV_OFFLINE);
    (void)w;
    return atomic_load_explicit(&d->cur, memory_order_acquire);
}

void sv_generation_quiescent(struct sv_generation_domain *d, unsigned w)
{
    SV_DASSERT(w < d->n_workers);
    uint64_t e = atomic_load_explicit(&d->epoch, memory_order_acquire);
    atomic_store_explicit(&d->readers[w].seen, e, memory_order_release);
}

void sv_generation_offline(struct sv_generation_domain *d, unsigned w)
{
    SV_DASSERT(w < d->n_workers);
    atomic_store_explicit(&d->readers[w].seen, SV_OFFLINE, memory_order_release);
}

void sv_generation_online(struct sv_generation_domain *d, unsigned w)
{
    SV_DASSERT(w < d->n_workers);
    uint64_t e = atomic_load_explicit(&d->epoch, memory_order_seq_cst);
    atomic_store_explicit(&d->readers[w].seen, e, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

void sv_generation_ref(const struct sv_generation *gen, unsigned w)
{
    SV_DASSERT(w < SV_MAX_WORKERS);
    sv_generation_check(gen);
    struct sv_generation *g = (struct sv_generation *)gen; /* counters are the mutable part */
    int64_t n = atomic_load_explicit(&g->refs[w].n, memory_order_relaxed);
    atomic_store_explicit(&g->refs[w].n, n + 1, memory_order_release);
}

void sv_generation_unref(const struct sv_generation *gen, unsigned w)
{
    SV_DASSERT(w < SV_MAX_WORKERS);
    sv_generation_check(gen);
    struct sv_generation *g = (struct sv_generation *)gen;
    int64_t n = atomic_load_explicit(&g->refs[w].n, memory_order_relaxed);
    SV_ASSERT(n > 0);
    atomic_store_explicit(&g->refs[w].n, n - 1, memory_order_release);
}

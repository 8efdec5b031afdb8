/* Internal layout of route tables and generations (routing module only). */
#ifndef SERVAL_ROUTING_TABLE_INT_H
#define SERVAL_ROUTING_TABLE_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "serval/base/arena.h"
#include "serval/base/compiler.h"
#include "serval/base/limits.h"
#include "serval/base/str.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"

#define SV_GEN_MAGIC 0x5356474e4c495645ull  /* live generation */
#define SV_GEN_POISON 0xdeadbeefdeadbeefull /* freed generation */
#define SV_ROUTE_MAX_SEGMENTS 255           /* configured path depth limit (trie depth) */
#define SV_ROUTE_MAX_HOST 255               /* longest hostname we match against */
#define SV_ROUTE_MAX_HEADER_VALUE 8192      /* joined header value scratch for header matches */

struct sv_regex; /* regex.c */

/* One header or query condition. */
struct sv_route_cond {
    enum sv_route_value_type_int { SV_COND_EXACT = 0, SV_COND_REGEX = 1 } type;
    struct sv_str name;
    struct sv_str value;
    struct sv_regex *re; /* REGEX only */
};

/* What a (rule, match) pair tests besides its path's place in the trie; only pairs that have
 * one of these get a record (most have none). */
struct sv_route_entry_cond {
    struct sv_regex *path_re;            /* REGEX path, else NULL */
    const char *method;                  /* "" = any */
    const struct sv_route_cond *headers;
    const struct sv_route_cond *query;
    uint32_t method_len;
    uint16_t n_headers;
    uint16_t n_query;
};

#define SV_ROUTE_NO_COND UINT32_MAX

/* One (rule, match) pair as the lookup tests it (16 bytes). The precedence keys it was sorted by
 * and its path (now a trie position) stay in the builder. */
struct sv_route_entry {
    uint32_t action;   /* index in table->actions */
    uint32_t path_len; /* PREFIX: length of the prefix without its trailing '/' */
    uint32_t cond;     /* index in table->conds, or SV_ROUTE_NO_COND: any method, no header or
                          query conditions, not a regex */
    uint8_t path_type; /* enum sv_route_path_type */
};
_Static_assert(sizeof(struct sv_route_entry) == 16, "four lookup entries per cache line");

/* A host bucket of one listener (exact host, wildcard suffix or none): one tier of the routes
 * served under that name, those whose original hostnames rank alike (GATEWAY_API_RULES.md §3
 * step 2). The hash names the best tier; <next> chains the others in precedence order. */
struct sv_route_bucket {
    uint32_t root;       /* trie node */
    uint32_t regex_off;  /* range in table->lists */
    uint32_t regex_n;
    uint32_t next;       /* next tier of the same name, UINT32_MAX = none */
};

/* Segment trie node. The nodes of one bucket are stored together in breadth-first order, so the
 * children of a node are consecutive (sorted by segment hash: a short scan or a binary search,
 * never a walk over other buckets). Lists are ranges in table->lists (entries, sorted). */
struct sv_route_node {
    uint32_t hash;                 /* sv_route_seg_hash_ of the segment leading here */
    uint32_t seg_off, seg_len;     /* that segment, in table->segs */
    uint32_t child_off, child_n;   /* children: nodes [child_off, child_off + child_n) */
    uint32_t list_off;             /* Exact entries [list_off, +exact_n), then the PathPrefix
                                      ones [list_off + exact_n, +prefix_n) */
    uint32_t exact_n, prefix_n;
};
_Static_assert(sizeof(struct sv_route_node) == 32, "two trie nodes per cache line");

/* Open-addressing hash slots: (scope, kind, name) -> value. Listeners (scope = bind) have their
 * own small table; buckets (scope = listener) and backend sets (scope 0) share the other. */
struct sv_route_hslot {
    const char *name;
    uint64_t hash;
    uint32_t name_len;
    uint32_t scope;
    uint32_t value;
    uint16_t kind;
    uint16_t used;
};

enum {
    SV_HK_LISTENER_EXACT = 1,
    SV_HK_LISTENER_WILD,
    SV_HK_BUCKET_EXACT,
    SV_HK_BUCKET_WILD,
    SV_HK_SET, /* backend set name -> id (scope 0) */
};

struct sv_route_htab {
    struct sv_route_hslot *slots;
    uint32_t mask;
};

/* The shared immutable route table. */
struct sv_route_table {
    _Atomic uint32_t refs; /* generations using it */
    struct sv_arena arena;

    struct sv_route_bind *binds;
    uint32_t n_binds;
    struct sv_route_listener *listeners;
    uint32_t n_listeners;
    int32_t *bind_any;         /* per bind: listener without hostname, or -1 */
    uint8_t *bind_wild;        /* per bind: has wildcard listeners */
    int32_t *listener_any;     /* per listener: hostname-less bucket, or -1 */
    uint8_t *listener_wild;    /* per listener: has wildcard buckets */

    struct sv_route_action *actions; /* malloc'd (the builder's array), freed with the table */
    uint32_t n_actions;
    /* the (rule, match) entries of every trie node and bucket regex list, stored in list order
     * (an entry attached under several hostnames appears in each of their lists): a lookup
     * reads the entries of one bucket from one compact range */
    struct sv_route_entry *lists;
    uint32_t n_lists;
    struct sv_route_entry_cond *conds;
    uint32_t n_conds;
    struct sv_route_bucket *buckets;
    uint32_t n_buckets;
    struct sv_route_node *nodes;
    uint32_t n_nodes;
    char *segs; /* path segments of the trie nodes */

    struct sv_route_htab lhash; /* listeners */
    struct sv_route_htab hash;  /* host buckets and backend sets */

    struct sv_str *set_names;
    uint32_t n_sets;

    struct sv_regex **regexes; /* every compiled regex, freed with the table */
    uint32_t n_regexes;

    /* per bind (n_bind_tls entries, malloc'd): opaque TLS context attached by the translator
     * (a struct sv_tls_server), released with the table */
    struct sv_route_bind_tls *bind_tls;
    uint32_t n_bind_tls;

    /* per backend set (n_set_tls entries, malloc'd): opaque upstream TLS context attached by the
     * translator (a struct sv_tls_client, BackendTLSPolicy), released with the table */
    struct sv_route_bind_tls *set_tls;
    uint32_t n_set_tls;
};

struct sv_route_bind_tls {
    void *ctx;
    sv_route_release_fn release;
};

/* Release every attached TLS context (binds and backend sets) and the arrays (table teardown). */
void sv_route_table_release_tls_(struct sv_route_table *t);

struct sv_route_epset {
    const struct sv_route_endpoint *eps;
    uint32_t n;
};

struct sv_gen_refcount {
    _Atomic int64_t n;
    char _pad[SV_CACHELINE - sizeof(int64_t)];
};

struct sv_generation {
    uint64_t magic;
    uint64_t id;
    struct sv_route_table *table;
    struct sv_arena arena;        /* endpoint table */
    struct sv_route_epset *sets;  /* n = table->n_sets */
    /* overlay (overlay.c): host names in <ovr> (scope = listener, kind = SV_HK_BUCKET_*) and
     * listeners with ovr_any[l] set are served by <table>, all others by <base> (a reference);
     * NULL base = an ordinary generation */
    struct sv_route_table *base;
    struct sv_route_htab ovr;
    uint8_t *ovr_any;
    struct sv_generation *retired_next;
    uint64_t retire_epoch;
    struct sv_gen_refcount refs[SV_MAX_WORKERS] SV_ALIGNED_CACHELINE;
};

/* generation.c */
/* A generation of table <t> whose endpoint arena is sized for about <endpoints> endpoints. */
struct sv_generation *sv_generation_alloc_(struct sv_route_table *t, size_t endpoints);
void sv_route_table_unref_(struct sv_route_table *t);

/* lookup.c helpers */
uint64_t sv_route_hash_(uint64_t seed, const char *p, size_t n);
static inline uint32_t sv_route_seg_hash_(const char *p, size_t n)
{
    return (uint32_t)sv_route_hash_(0, p, n);
}
int64_t sv_route_hfind_(const struct sv_route_htab *h, uint32_t scope, uint32_t kind,
                        struct sv_str name);

#if defined(SV_DEBUG) && SV_DEBUG
/* Test builds: work done by lookups on this thread, so unit tests can check that it does not
 * grow with unrelated routes. sv_route_work_: hash lookups, trie children compared, rule entries
 * tried. sv_route_probes_: hash slots probed (open addressing at most half full: a short chain
 * whose length varies with the table, bounded on average). */
extern _Thread_local uint64_t sv_route_work_, sv_route_probes_;
#define SV_ROUTE_WORK(n) (sv_route_work_ += (n))
#define SV_ROUTE_PROBE(n) (sv_route_probes_ += (n))
#else
#define SV_ROUTE_WORK(n) ((void)0)
#define SV_ROUTE_PROBE(n) ((void)0)
#endif

/* regex.c: anchored full-match PCRE2 (JIT when available); no allocation at match time. */
struct sv_regex *sv_regex_compile_(struct sv_str pattern, char *err, size_t errlen);
void sv_regex_free_(struct sv_regex *re);
int sv_regex_match_(const struct sv_regex *re, struct sv_str subject); /* 1 / 0 */

#endif

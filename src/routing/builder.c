/* The generation builder (control thread). Declarations are validated and copied into the new
 * table's arena as they arrive; sv_route_builder_finish compiles the lookup indexes:
 *  - a small open-addressing hash for (bind, listener hostname) and one for (listener, route
 *    hostname) and backend set names, each at most half full;
 *  - per host bucket a segment trie whose nodes hold the Exact entries ending there and the
 *    PathPrefix entries whose prefix ends there, plus a list of regex entries; every list is
 *    pre-sorted by the remaining precedence keys. A bucket's nodes are laid out together,
 *    breadth first, children of a node consecutive and sorted by segment hash (the lookup
 *    binary-searches them), segments copied next to each other: a lookup touches one compact
 *    region of the table whatever the number of other hostnames.
 * Every index is sized from what it holds (no upper-bound allocations). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"
#include "serval/http/serialize.h"
#include "serval/routing/builder.h"

#define MAX_MATCHES 64
#define MAX_CONDS 32
#define MAX_BACKENDS 256
#define MAX_MIRRORS 16
#define MAX_MODS 64
#define MAX_OBJECTS (1u << 24)

struct b_set {
    struct sv_str name;
    struct sv_route_endpoint *eps;
    uint32_t n, cap;
};

struct b_route {
    struct sv_str key; /* "namespace/name" */
    int64_t created;
    uint32_t n_rules;
};

/* One (rule, match) pair with its precedence keys; compiled into a struct sv_route_entry. */
struct b_entry {
    enum sv_route_path_type path_type;
    struct sv_str path;     /* EXACT: the path; PREFIX: without trailing '/'; REGEX: pattern.
                               In the builder's scratch arena: the table keeps only the trie */
    struct sv_regex *path_re;
    struct sv_str method;   /* "" = any */
    const struct sv_route_cond *headers;
    uint32_t n_headers;
    const struct sv_route_cond *query;
    uint32_t n_query;
    /* precedence keys after specificity (creation time and "namespace/name": the route's) */
    uint32_t route_idx, rule_idx, match_idx;
};

/* An interned backend array (see sv_route_builder.bsets). */
struct b_bset {
    const struct sv_route_backend *be;
    const uint64_t *cum;
    uint64_t hash;
    uint32_t n;
};

/* An interned action extension block (see sv_route_builder.exts). */
struct b_ext {
    const struct sv_route_action_ext *x;
    uint64_t hash;
};

struct b_attach {
    uint32_t route, listener, bucket;
    uint32_t kind; /* SV_HK_BUCKET_EXACT / _WILD, or 0 = no hostname */
    struct sv_str name;
    uint32_t host_rank; /* of the route's original hostname: host_rank(); larger ranks first */
    uint32_t group;     /* compile: the (listener, hostname) hash entry; its tiers are buckets */
};

struct sv_route_builder {
    struct sv_route_table *t;
    char err[512];

    struct sv_route_bind *binds;
    uint32_t n_binds, cap_binds;
    struct sv_route_listener *listeners;
    uint32_t n_listeners, cap_listeners;
    uint32_t *listener_kind; /* 0 none, SV_HK_LISTENER_EXACT, SV_HK_LISTENER_WILD */
    struct sv_str *listener_key;
    uint32_t cap_lk, cap_lk2;
    struct b_set *sets;
    uint32_t n_sets, cap_sets;
    uint32_t *set_hash; /* open addressing: set index + 1, 0 = empty */
    uint32_t set_hmask;
    struct b_route *routes;
    uint32_t n_routes, cap_routes;
    struct b_attach *attach;
    uint32_t n_attach, cap_attach;
    struct sv_route_action *actions;
    uint32_t n_actions, cap_actions;
    struct b_entry *entries;
    uint32_t *entry_action;
    uint32_t n_entries, cap_entries, cap_entry_action;
    struct sv_regex **regexes;
    uint32_t n_regexes, cap_regexes;
    /* identical weighted-backend arrays are stored once (interned by content): a rule's array
     * is assembled in be_tmp/cum_tmp (MAX_BACKENDS each, malloc'd on first use) and looked up */
    struct sv_route_backend *be_tmp;
    uint64_t *cum_tmp;
    struct b_bset *bsets; /* open addressing, at most half full; be == NULL = empty */
    uint32_t n_bsets, bset_mask;
    /* identical action extension blocks are stored once (most rules share the empty one) */
    struct b_ext *exts; /* open addressing, at most half full; x == NULL = empty */
    uint32_t n_exts, ext_mask;
    /* what only the build needs (match paths): freed by sv_route_builder_finish */
    struct sv_arena scratch;
    /* small strings are packed into chunks of the table's arena (no 16-byte rounding) */
    char *pack;
    size_t pack_left;
};

static int grow(void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return 0;
    if (need > MAX_OBJECTS)
        return -ENOMEM;
    uint32_t nc = *cap ? *cap : 8;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), sizeof(*(arr)), (need))

SV_PRINTF(3, 4) static int fail(struct sv_route_builder *b, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof(b->err), fmt, ap);
    va_end(ap);
    return rc;
}

#define PACK_CHUNK 4096
#define PACK_MAX 256 /* longer strings get an arena allocation of their own */

/* A NUL-terminated copy of <s> in the table's arena: short strings packed byte-tight into
 * shared chunks, longer ones on their own. */
static struct sv_str copy_str(struct sv_route_builder *b, struct sv_str s)
{
    if (!s.len)
        return SV_STR_LIT("");
    if (s.len >= PACK_MAX) {
        char *p = sv_arena_strndup(&b->t->arena, s.ptr, s.len);
        return p ? sv_str_make(p, s.len) : SV_STR_NULL;
    }
    if (b->pack_left < s.len + 1) {
        b->pack = sv_arena_alloc(&b->t->arena, PACK_CHUNK);
        if (!b->pack) {
            b->pack_left = 0;
            return SV_STR_NULL;
        }
        b->pack_left = PACK_CHUNK;
    }
    char *p = b->pack;
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    b->pack += s.len + 1;
    b->pack_left -= s.len + 1;
    return sv_str_make(p, s.len);
}

/* A NUL-terminated copy of <s> in the builder's scratch arena (gone after the build). */
static struct sv_str scratch_str(struct sv_route_builder *b, struct sv_str s)
{
    char *p = sv_arena_strndup(&b->scratch, s.ptr, s.len);
    return p ? sv_str_make(p, s.len) : SV_STR_NULL;
}

static struct sv_str copy_lower(struct sv_route_builder *b, struct sv_str s)
{
    struct sv_str c = copy_str(b, s);
    if (c.ptr && c.len) {
        char *p = (char *)c.ptr;
        for (size_t i = 0; i < c.len; i++)
            p[i] = sv_ascii_lower(p[i]);
    }
    return c;
}

#define PSTR(s) (int)SV_MIN((s).len, 200), ((s).ptr ? (s).ptr : "")

struct sv_route_builder *sv_route_builder_new(void)
{
    struct sv_route_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->t = calloc(1, sizeof(*b->t));
    if (!b->t || sv_arena_init(&b->t->arena, 64 * 1024, false) != 0) {
        free(b->t);
        free(b);
        return NULL;
    }
    if (sv_arena_init(&b->scratch, 64 * 1024, false) != 0) {
        sv_arena_destroy(&b->t->arena);
        free(b->t);
        free(b);
        return NULL;
    }
    atomic_init(&b->t->refs, 0);
    return b;
}

static void builder_release(struct sv_route_builder *b, bool free_table)
{
    for (uint32_t i = 0; i < b->n_sets; i++)
        free(b->sets[i].eps);
    free(b->binds);
    free(b->listeners);
    free(b->listener_kind);
    free(b->listener_key);
    free(b->sets);
    free(b->set_hash);
    free(b->routes);
    free(b->attach);
    free(b->actions);
    free(b->entries);
    free(b->entry_action);
    free(b->be_tmp);
    free(b->cum_tmp);
    free(b->bsets);
    free(b->exts);
    sv_arena_destroy(&b->scratch);
    if (free_table) {
        for (uint32_t i = 0; i < b->n_regexes; i++)
            sv_regex_free_(b->regexes[i]);
        free(b->regexes);
        free(b->t->actions);
        sv_route_table_release_tls_(b->t);
        sv_arena_destroy(&b->t->arena);
        free(b->t);
    }
    free(b);
}

void sv_route_builder_free(struct sv_route_builder *b)
{
    if (b)
        builder_release(b, true);
}

void sv_route_table_release_tls_(struct sv_route_table *t)
{
    for (uint32_t i = 0; i < t->n_bind_tls; i++)
        if (t->bind_tls[i].ctx && t->bind_tls[i].release)
            t->bind_tls[i].release(t->bind_tls[i].ctx);
    free(t->bind_tls);
    t->bind_tls = NULL;
    t->n_bind_tls = 0;
    for (uint32_t i = 0; i < t->n_set_tls; i++)
        if (t->set_tls[i].ctx && t->set_tls[i].release)
            t->set_tls[i].release(t->set_tls[i].ctx);
    free(t->set_tls);
    t->set_tls = NULL;
    t->n_set_tls = 0;
}

int sv_route_builder_set_backend_tls(struct sv_route_builder *b, uint32_t set_id, void *ctx,
                                     sv_route_release_fn release)
{
    if (set_id >= b->n_sets) {
        snprintf(b->err, sizeof(b->err), "TLS context for backend set %u: no such set", set_id);
        return -EINVAL;
    }
    struct sv_route_table *t = b->t;
    if (set_id >= t->n_set_tls) {
        struct sv_route_bind_tls *n = realloc(t->set_tls, (set_id + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        memset(n + t->n_set_tls, 0, (set_id + 1 - t->n_set_tls) * sizeof(*n));
        t->set_tls = n;
        t->n_set_tls = set_id + 1;
    }
    struct sv_route_bind_tls *e = &t->set_tls[set_id];
    if (e->ctx && e->release)
        e->release(e->ctx);
    e->ctx = ctx;
    e->release = release;
    return 0;
}

int sv_route_builder_set_bind_tls(struct sv_route_builder *b, uint32_t bind, void *ctx,
                                  sv_route_release_fn release)
{
    if (bind >= b->n_binds || b->binds[bind].proto != SV_ROUTE_PROTO_HTTPS) {
        snprintf(b->err, sizeof(b->err), "TLS context for bind %u: not an HTTPS bind", bind);
        return -EINVAL;
    }
    struct sv_route_table *t = b->t;
    if (bind >= t->n_bind_tls) {
        struct sv_route_bind_tls *n = realloc(t->bind_tls, (bind + 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        memset(n + t->n_bind_tls, 0, (bind + 1 - t->n_bind_tls) * sizeof(*n));
        t->bind_tls = n;
        t->n_bind_tls = bind + 1;
    }
    struct sv_route_bind_tls *e = &t->bind_tls[bind];
    if (e->ctx && e->release)
        e->release(e->ctx);
    e->ctx = ctx;
    e->release = release;
    return 0;
}

const char *sv_route_builder_error(const struct sv_route_builder *b)
{
    return b->err;
}

/* ---- binds, listeners, sets ---------------------------------------------------------------- */

static int sockaddr_copy(union sv_route_sockaddr *dst, socklen_t *dlen, const struct sockaddr *sa,
                         socklen_t salen, uint16_t *port)
{
    memset(dst, 0, sizeof(*dst));
    if (!sa)
        return -EINVAL;
    if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        memcpy(&dst->in, sa, sizeof(struct sockaddr_in));
        *dlen = sizeof(struct sockaddr_in);
        *port = ntohs(dst->in.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        memcpy(&dst->in6, sa, sizeof(struct sockaddr_in6));
        *dlen = sizeof(struct sockaddr_in6);
        *port = ntohs(dst->in6.sin6_port);
        return 0;
    }
    return -EAFNOSUPPORT;
}

static bool same_addr(const union sv_route_sockaddr *a, const union sv_route_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

int sv_route_builder_add_bind(struct sv_route_builder *b, const struct sockaddr *sa,
                              socklen_t salen, enum sv_route_proto proto)
{
    struct sv_route_bind nb = {0};
    int rc = sockaddr_copy(&nb.addr, &nb.addrlen, sa, salen, &nb.port);
    if (rc < 0)
        return fail(b, rc, "bind address must be IPv4 or IPv6");
    if (proto != SV_ROUTE_PROTO_HTTP && proto != SV_ROUTE_PROTO_HTTPS &&
        proto != SV_ROUTE_PROTO_TLS_PASSTHROUGH)
        return fail(b, -EINVAL, "bad bind protocol %d", (int)proto);
    nb.proto = proto;
    for (uint32_t i = 0; i < b->n_binds; i++) {
        if (same_addr(&b->binds[i].addr, &nb.addr)) {
            if (b->binds[i].proto != proto)
                return fail(b, -EEXIST, "port %u is already bound with another protocol",
                            (unsigned)nb.port);
            return (int)i;
        }
    }
    if (GROW(b->binds, b->cap_binds, b->n_binds + 1))
        return fail(b, -ENOMEM, "out of memory");
    b->binds[b->n_binds] = nb;
    return (int)b->n_binds++;
}

/* Split a hostname into (kind, key): "" -> 0; "*.x" -> wild "x"; "a.b" -> exact. Lower-cased
 * copy in *key: in the table's arena, or in the scratch arena when <scratch> (the caller copies
 * it into the table later). Returns 0 or -EINVAL. */
static int parse_hostname(struct sv_route_builder *b, struct sv_str h, uint32_t exact_kind,
                          uint32_t wild_kind, bool scratch, uint32_t *kind, struct sv_str *key)
{
    if (h.len && h.ptr[h.len - 1] == '.')
        h.len--;
    if (h.len == 0) {
        *kind = 0;
        *key = SV_STR_LIT("");
        return 0;
    }
    if (h.len > SV_ROUTE_MAX_HOST)
        return fail(b, -EINVAL, "hostname too long");
    struct sv_str body = h;
    *kind = exact_kind;
    if (h.ptr[0] == '*') {
        if (h.len < 3 || h.ptr[1] != '.')
            return fail(b, -EINVAL, "bad wildcard hostname \"%.*s\" (want \"*.suffix\")", PSTR(h));
        body = sv_str_make(h.ptr + 2, h.len - 2);
        *kind = wild_kind;
    }
    for (size_t i = 0; i < body.len; i++) {
        char c = body.ptr[i];
        if (c == '*' || c == '/' || c == ' ' || c == ':' || (unsigned char)c < 0x21 ||
            (unsigned char)c > 0x7e || (c == '.' && (i == 0 || body.ptr[i - 1] == '.')))
            return fail(b, -EINVAL, "bad hostname \"%.*s\"", PSTR(h));
    }
    *key = scratch ? scratch_str(b, body) : copy_str(b, body);
    for (size_t i = 0; key->ptr && i < key->len; i++)
        ((char *)key->ptr)[i] = sv_ascii_lower(key->ptr[i]);
    if (!key->ptr)
        return fail(b, -ENOMEM, "out of memory");
    return 0;
}

int sv_route_builder_add_listener(struct sv_route_builder *b, uint32_t bind, struct sv_str name,
                                  struct sv_str hostname)
{
    if (bind >= b->n_binds)
        return fail(b, -EINVAL, "listener \"%.*s\": no bind %u", PSTR(name), bind);
    uint32_t kind;
    struct sv_str key;
    int rc = parse_hostname(b, hostname, SV_HK_LISTENER_EXACT, SV_HK_LISTENER_WILD, false, &kind,
                            &key);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < b->n_listeners; i++)
        if (b->listeners[i].bind == bind && b->listener_kind[i] == kind &&
            sv_str_eq(b->listener_key[i], key))
            return fail(b, -EEXIST, "listener \"%.*s\": hostname \"%.*s\" already on this port",
                        PSTR(name), PSTR(hostname));
    if (GROW(b->listeners, b->cap_listeners, b->n_listeners + 1) ||
        GROW(b->listener_kind, b->cap_lk, b->n_listeners + 1) ||
        GROW(b->listener_key, b->cap_lk2, b->n_listeners + 1))
        return fail(b, -ENOMEM, "out of memory");
    struct sv_route_listener *l = &b->listeners[b->n_listeners];
    l->name = copy_str(b, name);
    l->hostname = copy_lower(b, hostname);
    if (!l->name.ptr || !l->hostname.ptr)
        return fail(b, -ENOMEM, "out of memory");
    l->bind = bind;
    l->port = b->binds[bind].port;
    l->proto = b->binds[bind].proto;
    b->listener_kind[b->n_listeners] = kind;
    b->listener_key[b->n_listeners] = key;
    return (int)b->n_listeners++;
}

/* Slot of <name> in the set-name hash (its index + 1 there, or an empty slot). */
static uint32_t *set_slot(struct sv_route_builder *b, struct sv_str name)
{
    uint64_t h = sv_route_hash_(0, name.ptr, name.len);
    for (uint32_t i = 0;; i++) { /* the table is never more than half full */
        uint32_t *slot = &b->set_hash[(h + i) & b->set_hmask];
        if (*slot == 0 || sv_str_eq(b->sets[*slot - 1].name, name))
            return slot;
    }
}

static int set_hash_grow(struct sv_route_builder *b)
{
    uint32_t size = b->set_hash ? (b->set_hmask + 1) * 2 : 64;
    uint32_t *nh = calloc(size, sizeof(uint32_t));
    if (!nh)
        return -ENOMEM;
    free(b->set_hash);
    b->set_hash = nh;
    b->set_hmask = size - 1;
    for (uint32_t i = 0; i < b->n_sets; i++)
        *set_slot(b, b->sets[i].name) = i + 1;
    return 0;
}

int sv_route_builder_add_backend_set(struct sv_route_builder *b, struct sv_str name)
{
    if (!name.len)
        return fail(b, -EINVAL, "backend set needs a name");
    if ((!b->set_hash || 2 * (b->n_sets + 1) > b->set_hmask + 1) && set_hash_grow(b) < 0)
        return fail(b, -ENOMEM, "out of memory");
    uint32_t *slot = set_slot(b, name);
    if (*slot)
        return (int)(*slot - 1);
    if (GROW(b->sets, b->cap_sets, b->n_sets + 1))
        return fail(b, -ENOMEM, "out of memory");
    struct b_set *s = &b->sets[b->n_sets];
    memset(s, 0, sizeof(*s));
    s->name = copy_str(b, name);
    if (!s->name.ptr)
        return fail(b, -ENOMEM, "out of memory");
    *slot = b->n_sets + 1;
    return (int)b->n_sets++;
}

static bool ep_same(const struct sv_route_endpoint *a, const struct sv_route_endpoint *c)
{
    return same_addr(&a->addr, &c->addr);
}

int sv_route_builder_add_endpoint(struct sv_route_builder *b, uint32_t set_id,
                                  const struct sockaddr *sa, socklen_t salen)
{
    if (set_id >= b->n_sets)
        return fail(b, -EINVAL, "no backend set %u", set_id);
    struct sv_route_endpoint ep;
    uint16_t port;
    if (sockaddr_copy(&ep.addr, &ep.addrlen, sa, salen, &port) < 0 || port == 0)
        return fail(b, -EINVAL, "endpoint of \"%.*s\" must be an IPv4/IPv6 address with a port",
                    PSTR(b->sets[set_id].name));
    struct b_set *s = &b->sets[set_id]; /* duplicates are dropped by fill_set */
    if (GROW(s->eps, s->cap, s->n + 1))
        return fail(b, -ENOMEM, "out of memory");
    s->eps[s->n++] = ep;
    return 0;
}

/* ---- routes and rules -------------------------------------------------------------------- */

int sv_route_builder_add_route(struct sv_route_builder *b, const struct sv_route_route_spec *spec)
{
    if (GROW(b->routes, b->cap_routes, b->n_routes + 1))
        return fail(b, -ENOMEM, "out of memory");
    struct b_route *r = &b->routes[b->n_routes];
    memset(r, 0, sizeof(*r));
    char *key = sv_arena_alloc(&b->scratch, spec->namespace_.len + spec->name.len + 2);
    if (!key)
        return fail(b, -ENOMEM, "out of memory");
    size_t n = 0;
    if (spec->namespace_.len) {
        memcpy(key, spec->namespace_.ptr, spec->namespace_.len);
        n = spec->namespace_.len;
        key[n++] = '/';
    }
    if (spec->name.len)
        memcpy(key + n, spec->name.ptr, spec->name.len);
    n += spec->name.len;
    key[n] = '\0';
    r->key = copy_str(b, sv_str_make(key, n));
    if (!r->key.ptr)
        return fail(b, -ENOMEM, "out of memory");
    r->created = spec->creation_ts;
    return (int)b->n_routes++;
}

/* Precedence of a route's own hostname among routes on one host bucket (GATEWAY_API_RULES.md §3
 * step 2): more characters of non-wildcard hostname, then more characters; no hostname = 0. */
static uint32_t host_rank(struct sv_str h)
{
    if (h.len && h.ptr[h.len - 1] == '.')
        h.len--;
    uint32_t len = (uint32_t)SV_MIN(h.len, (size_t)0xffff);
    bool wild = h.len && h.ptr[0] == '*';
    return (wild ? 0 : len << 16) | len;
}

int sv_route_builder_reserve(struct sv_route_builder *b, uint32_t routes, uint32_t rules,
                             uint32_t matches)
{
    if (GROW(b->routes, b->cap_routes, routes) || GROW(b->attach, b->cap_attach, routes) ||
        GROW(b->actions, b->cap_actions, rules) || GROW(b->entries, b->cap_entries, matches) ||
        GROW(b->entry_action, b->cap_entry_action, matches))
        return fail(b, -ENOMEM, "out of memory");
    return 0;
}

int sv_route_builder_attach_original(struct sv_route_builder *b, uint32_t route, uint32_t listener,
                                     struct sv_str hostname, struct sv_str original)
{
    if (route >= b->n_routes || listener >= b->n_listeners)
        return fail(b, -EINVAL, "attach: no route %u or listener %u", route, listener);
    uint32_t kind;
    struct sv_str key;
    int rc = parse_hostname(b, hostname, SV_HK_BUCKET_EXACT, SV_HK_BUCKET_WILD, true, &kind, &key);
    if (rc < 0)
        return rc;
    if (GROW(b->attach, b->cap_attach, b->n_attach + 1))
        return fail(b, -ENOMEM, "out of memory");
    b->attach[b->n_attach++] =
        (struct b_attach){route, listener, 0, kind, key, host_rank(original), 0};
    return 0;
}

int sv_route_builder_attach(struct sv_route_builder *b, uint32_t route, uint32_t listener,
                            struct sv_str hostname)
{
    return sv_route_builder_attach_original(b, route, listener, hostname, hostname);
}

static int count_segments(struct sv_str path)
{
    int n = 0;
    for (size_t i = 0; i < path.len; i++)
        n += path.ptr[i] == '/';
    return n;
}

static int add_regex(struct sv_route_builder *b, struct sv_str pattern, struct sv_regex **out)
{
    char msg[300];
    if (GROW(b->regexes, b->cap_regexes, b->n_regexes + 1))
        return fail(b, -ENOMEM, "out of memory");
    struct sv_regex *re = sv_regex_compile_(pattern, msg, sizeof(msg));
    if (!re)
        return fail(b, -EINVAL, "%s", msg);
    b->regexes[b->n_regexes++] = re; /* freed with the table, even if the rule is refused */
    *out = re;
    return 0;
}

/* Copy header (names case-insensitive) or query (case-sensitive) conditions; a repeated name
 * keeps its first entry only. */
static int copy_conds(struct sv_route_builder *b, const struct sv_route_kv_match *in, uint32_t n,
                      bool headers, const struct sv_route_cond **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    if (n > MAX_CONDS || !in)
        return fail(b, -EINVAL, "too many %s matches (%u > %u)", headers ? "header" : "query",
                    n, MAX_CONDS);
    struct sv_route_cond *c = sv_arena_zalloc(&b->t->arena, n * sizeof(*c));
    if (!c)
        return fail(b, -ENOMEM, "out of memory");
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!in[i].name.len)
            return fail(b, -EINVAL, "%s match without a name", headers ? "header" : "query");
        if (in[i].type != SV_ROUTE_VALUE_EXACT && in[i].type != SV_ROUTE_VALUE_REGEX)
            return fail(b, -EINVAL, "unsupported %s match type %d", headers ? "header" : "query",
                        (int)in[i].type);
        bool dup = false;
        for (uint32_t j = 0; j < k && !dup; j++)
            dup = headers ? sv_str_eq_nocase(c[j].name, in[i].name)
                          : sv_str_eq(c[j].name, in[i].name);
        if (dup)
            continue;
        c[k].type = in[i].type == SV_ROUTE_VALUE_REGEX ? SV_COND_REGEX : SV_COND_EXACT;
        c[k].name = copy_str(b, in[i].name);
        c[k].value = copy_str(b, in[i].value);
        if (!c[k].name.ptr || !c[k].value.ptr)
            return fail(b, -ENOMEM, "out of memory");
        if (c[k].type == SV_COND_REGEX) {
            int rc = add_regex(b, in[i].value, &c[k].re);
            if (rc < 0)
                return rc;
        }
        k++;
    }
    *out = c;
    *n_out = k;
    return 0;
}

static int copy_kvs(struct sv_route_builder *b, const struct sv_route_header_kv *in, uint32_t n,
                    const struct sv_http_header **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (n > MAX_MODS || !in)
        return fail(b, -EINVAL, "too many header modifications");
    struct sv_http_header *h = sv_arena_zalloc(&b->t->arena, n * sizeof(*h));
    if (!h)
        return fail(b, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        if (!in[i].name.len)
            return fail(b, -EINVAL, "header modifier without a name");
        h[i].name = copy_str(b, in[i].name);
        h[i].value = copy_str(b, in[i].value);
        if (!h[i].name.ptr || !h[i].value.ptr)
            return fail(b, -ENOMEM, "out of memory");
    }
    *out = h;
    return 0;
}

static int copy_mods(struct sv_route_builder *b, const struct sv_route_header_mods_spec *in,
                     const struct sv_http_header_mods **out)
{
    *out = NULL;
    if (!in || (in->n_set == 0 && in->n_add == 0 && in->n_remove == 0))
        return 0;
    struct sv_http_header_mods *m = sv_arena_zalloc(&b->t->arena, sizeof(*m));
    if (!m)
        return fail(b, -ENOMEM, "out of memory");
    int rc = copy_kvs(b, in->set, in->n_set, &m->set);
    if (rc == 0)
        rc = copy_kvs(b, in->add, in->n_add, &m->add);
    if (rc < 0)
        return rc;
    m->n_set = in->n_set;
    m->n_add = in->n_add;
    if (in->n_remove) {
        if (in->n_remove > MAX_MODS || !in->remove)
            return fail(b, -EINVAL, "too many header removals");
        struct sv_str *r = sv_arena_zalloc(&b->t->arena, in->n_remove * sizeof(*r));
        if (!r)
            return fail(b, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i < in->n_remove; i++) {
            r[i] = copy_str(b, in->remove[i]);
            if (!r[i].ptr)
                return fail(b, -ENOMEM, "out of memory");
        }
        m->remove = r;
        m->n_remove = in->n_remove;
    }
    *out = m;
    return 0;
}

static int copy_path_mod(struct sv_route_builder *b, const struct sv_route_path_mod *in,
                         struct sv_route_path_mod *out, const char *what)
{
    *out = (struct sv_route_path_mod){SV_ROUTE_PATH_MOD_NONE, SV_STR_LIT("")};
    if (in->type == SV_ROUTE_PATH_MOD_NONE)
        return 0;
    if (in->type != SV_ROUTE_PATH_MOD_FULL && in->type != SV_ROUTE_PATH_MOD_PREFIX)
        return fail(b, -EINVAL, "%s: unsupported path modifier type %d", what, (int)in->type);
    if (in->value.len && in->value.ptr[0] != '/')
        return fail(b, -EINVAL, "%s: path \"%.*s\" must start with '/'", what, PSTR(in->value));
    out->type = in->type;
    out->value = copy_str(b, in->value);
    return out->value.ptr ? 0 : fail(b, -ENOMEM, "out of memory");
}

static bool name_in(const struct sv_str *names, uint32_t n, struct sv_str name)
{
    for (uint32_t i = 0; i < n; i++)
        if (sv_str_eq_nocase(names[i], name))
            return true;
    return false;
}

static bool name_in_headers(const struct sv_http_header *h, uint32_t n, struct sv_str name)
{
    for (uint32_t i = 0; i < n; i++)
        if (sv_str_eq_nocase(h[i].name, name))
            return true;
    return false;
}

/* One modifier set equivalent to applying <a> then <b> (each applied as remove, set, add):
 * remove = a.remove + b.remove; set = a.set without names b removes or sets, then b.set;
 * add = a.add without names b removes or sets, then b.add. */
static int merge_mods(struct sv_route_builder *b, const struct sv_http_header_mods *x,
                      const struct sv_http_header_mods *y, const struct sv_http_header_mods **out)
{
    if (!x || !y) {
        *out = x ? x : y;
        return 0;
    }
    struct sv_http_header_mods *m = sv_arena_zalloc(&b->t->arena, sizeof(*m));
    struct sv_str *rm = sv_arena_zalloc(&b->t->arena, (x->n_remove + y->n_remove + 1) * sizeof(*rm));
    struct sv_http_header *set =
        sv_arena_zalloc(&b->t->arena, (x->n_set + y->n_set + 1) * sizeof(*set));
    struct sv_http_header *add =
        sv_arena_zalloc(&b->t->arena, (x->n_add + y->n_add + 1) * sizeof(*add));
    if (!m || !rm || !set || !add)
        return fail(b, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < x->n_remove; i++)
        rm[m->n_remove++] = x->remove[i];
    for (uint32_t i = 0; i < y->n_remove; i++)
        rm[m->n_remove++] = y->remove[i];
    for (uint32_t i = 0; i < x->n_set; i++)
        if (!name_in(y->remove, y->n_remove, x->set[i].name) &&
            !name_in_headers(y->set, y->n_set, x->set[i].name))
            set[m->n_set++] = x->set[i];
    for (uint32_t i = 0; i < y->n_set; i++)
        set[m->n_set++] = y->set[i];
    for (uint32_t i = 0; i < x->n_add; i++)
        if (!name_in(y->remove, y->n_remove, x->add[i].name) &&
            !name_in_headers(y->set, y->n_set, x->add[i].name))
            add[m->n_add++] = x->add[i];
    for (uint32_t i = 0; i < y->n_add; i++)
        add[m->n_add++] = y->add[i];
    m->remove = rm;
    m->set = set;
    m->add = add;
    *out = m;
    return 0;
}

static bool uses_prefix_mod(const struct sv_route_rule_spec *s)
{
    if ((s->redirect && s->redirect->path.type == SV_ROUTE_PATH_MOD_PREFIX) ||
        (s->rewrite && s->rewrite->path.type == SV_ROUTE_PATH_MOD_PREFIX))
        return true;
    for (uint32_t i = 0; s->backends && i < s->n_backends && i < MAX_BACKENDS; i++) {
        const struct sv_route_backend_spec *be = &s->backends[i];
        if ((be->redirect && be->redirect->path.type == SV_ROUTE_PATH_MOD_PREFIX) ||
            (be->rewrite && be->rewrite->path.type == SV_ROUTE_PATH_MOD_PREFIX))
            return true;
    }
    return false;
}

static int check_backend_set(struct sv_route_builder *b, uint32_t set_id, const char *what)
{
    return set_id < b->n_sets ? 0 : fail(b, -EINVAL, "%s: no backend set %u", what, set_id);
}

static bool is_token(struct sv_str s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && strchr(extra, ch))))
            return false;
    }
    return true;
}

/* Join the tokens in[n] with ", " into the arena (checked: tokens, "*" only alone when
 * <star_ok>, in which case *star is set and nothing is joined). */
static int cors_list(struct sv_route_builder *b, const char *what, const struct sv_str *in,
                     uint32_t n, bool star_ok, struct sv_str *out, bool *star)
{
    *out = SV_STR_LIT("");
    if (star)
        *star = false;
    if (n == 0)
        return 0;
    if (n > SV_ROUTE_CORS_MAX_ITEMS || !in)
        return fail(b, -EINVAL, "CORS %s: too many entries (%u)", what, n);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (star_ok && sv_str_eq(in[i], SV_STR_LIT("*"))) {
            if (n != 1)
                return fail(b, -EINVAL, "CORS %s: \"*\" must be the only entry", what);
            *star = true;
            return 0;
        }
        if (!is_token(in[i]))
            return fail(b, -EINVAL, "CORS %s: \"%.*s\" is not a valid token", what, PSTR(in[i]));
        total += in[i].len + 2;
    }
    char *p = sv_arena_alloc(&b->t->arena, total);
    if (!p)
        return fail(b, -ENOMEM, "out of memory");
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i) {
            p[k++] = ',';
            p[k++] = ' ';
        }
        memcpy(p + k, in[i].ptr, in[i].len);
        k += in[i].len;
    }
    *out = sv_str_make(p, k);
    return 0;
}

static int build_cors(struct sv_route_builder *b, const struct sv_route_cors_spec *in,
                      const struct sv_route_cors **out)
{
    int rc;
    struct sv_route_cors *c = sv_arena_zalloc(&b->t->arena, sizeof(*c));
    if (!c)
        return fail(b, -ENOMEM, "out of memory");
    if (in->n_allow_origins > SV_ROUTE_CORS_MAX_ITEMS ||
        (in->n_allow_origins && !in->allow_origins))
        return fail(b, -EINVAL, "CORS allowOrigins: too many entries (%u)", in->n_allow_origins);
    if (in->n_allow_origins) {
        struct sv_str *o = sv_arena_zalloc(&b->t->arena, in->n_allow_origins * sizeof(*o));
        if (!o)
            return fail(b, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i < in->n_allow_origins; i++) {
            if (!sv_route_cors_pattern_valid(in->allow_origins[i]))
                return fail(b, -EINVAL, "CORS allowOrigins: \"%.*s\" is not a valid origin",
                            PSTR(in->allow_origins[i]));
            o[i] = copy_lower(b, in->allow_origins[i]);
            if (!o[i].ptr)
                return fail(b, -ENOMEM, "out of memory");
        }
        c->origins = o;
        c->n_origins = in->n_allow_origins;
    }
    if ((rc = cors_list(b, "allowMethods", in->allow_methods, in->n_allow_methods, true,
                        &c->allow_methods, &c->any_method)) < 0 ||
        (rc = cors_list(b, "allowHeaders", in->allow_headers, in->n_allow_headers, true,
                        &c->allow_headers, &c->any_header)) < 0 ||
        (rc = cors_list(b, "exposeHeaders", in->expose_headers, in->n_expose_headers, false,
                        &c->expose_headers, NULL)) < 0)
        return rc;
    char num[16];
    int nl = snprintf(num, sizeof(num), "%u", in->max_age);
    c->max_age = copy_str(b, sv_str_make(num, (size_t)nl));
    if (!c->max_age.ptr)
        return fail(b, -ENOMEM, "out of memory");
    c->allow_credentials = in->allow_credentials;
    *out = c;
    return 0;
}

static int build_redirect(struct sv_route_builder *b, const struct sv_route_redirect_spec *in,
                          const struct sv_route_redirect **out)
{
    int rc;
    struct sv_route_redirect *r = sv_arena_zalloc(&b->t->arena, sizeof(*r));
    if (!r)
        return fail(b, -ENOMEM, "out of memory");
    if (in->scheme.len && !sv_str_eq(in->scheme, SV_STR_LIT("http")) &&
        !sv_str_eq(in->scheme, SV_STR_LIT("https")))
        return fail(b, -EINVAL, "RequestRedirect: unsupported scheme \"%.*s\"", PSTR(in->scheme));
    uint16_t st = in->status ? in->status : 302;
    if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308)
        return fail(b, -EINVAL, "RequestRedirect: unsupported status %u", (unsigned)st);
    r->scheme = copy_str(b, in->scheme);
    r->hostname = copy_str(b, in->hostname);
    r->port = in->port;
    r->status = st;
    if (!r->scheme.ptr || !r->hostname.ptr)
        return fail(b, -ENOMEM, "out of memory");
    if ((rc = copy_path_mod(b, &in->path, &r->path, "RequestRedirect")) < 0)
        return rc;
    *out = r;
    return 0;
}

/* URLRewrite <in>; with <base> (the rule's, for a backendRef's), the fields <in> leaves unset
 * come from <base>. */
static int build_rewrite(struct sv_route_builder *b, const struct sv_route_rewrite_spec *in,
                         const struct sv_route_rewrite *base, const struct sv_route_rewrite **out)
{
    int rc;
    struct sv_route_rewrite *w = sv_arena_zalloc(&b->t->arena, sizeof(*w));
    if (!w)
        return fail(b, -ENOMEM, "out of memory");
    w->hostname = copy_str(b, in->hostname);
    if (!w->hostname.ptr)
        return fail(b, -ENOMEM, "out of memory");
    if ((rc = copy_path_mod(b, &in->path, &w->path, "URLRewrite")) < 0)
        return rc;
    if (base && !w->hostname.len)
        w->hostname = base->hostname;
    if (base && w->path.type == SV_ROUTE_PATH_MOD_NONE)
        w->path = base->path;
    *out = w;
    return 0;
}

/* The interned copy of backend array be[n] with prefix sums cum[n] (kept when n > 1): an
 * existing identical one (same sets, weights, protocols and modifier pointers — arrays of rules
 * without backendRef filters are shared between every rule sending to the same backends), else
 * a new copy in the table's arena. NULL when out of memory. */
static const struct b_bset *intern_backends(struct sv_route_builder *b,
                                            const struct sv_route_backend *be,
                                            const uint64_t *cum, uint32_t n)
{
    if ((b->n_bsets + 1) * 2 > (b->bsets ? b->bset_mask + 1 : 0)) {
        uint32_t cap = b->bsets ? (b->bset_mask + 1) * 2 : 256;
        struct b_bset *nv = calloc(cap, sizeof(*nv));
        if (!nv)
            return NULL;
        for (uint32_t i = 0; b->bsets && i <= b->bset_mask; i++) {
            if (!b->bsets[i].be)
                continue;
            for (uint64_t k = b->bsets[i].hash;; k++) { /* half full: ends at an empty slot */
                if (!nv[k & (cap - 1)].be) {
                    nv[k & (cap - 1)] = b->bsets[i];
                    break;
                }
            }
        }
        free(b->bsets);
        b->bsets = nv;
        b->bset_mask = cap - 1;
    }
    uint64_t h = sv_route_hash_(n, (const char *)be, n * sizeof(*be));
    for (uint64_t k = h;; k++) { /* half full: ends at an empty slot */
        struct b_bset *slot = &b->bsets[k & b->bset_mask];
        if (slot->be && slot->hash == h && slot->n == n &&
            memcmp(slot->be, be, n * sizeof(*be)) == 0)
            return slot;
        if (slot->be)
            continue;
        struct sv_route_backend *c = sv_arena_alloc(&b->t->arena, n * sizeof(*c));
        uint64_t *cc = n > 1 ? sv_arena_alloc(&b->t->arena, n * sizeof(*cc)) : NULL;
        if (!c || (n > 1 && !cc))
            return NULL;
        memcpy(c, be, n * sizeof(*c));
        if (cc) /* one backend needs no prefix sums (sv_route_pick_backend) */
            memcpy(cc, cum, n * sizeof(*cc));
        *slot = (struct b_bset){c, cc, h, n};
        b->n_bsets++;
        return slot;
    }
}

/* The interned copy of extension block <x> (padding zeroed by the caller): an existing one with
 * the same bytes (every rule without filters, timeouts or retries shares one), else a new copy
 * in the table's arena. NULL when out of memory. */
static const struct sv_route_action_ext *intern_ext(struct sv_route_builder *b,
                                                    const struct sv_route_action_ext *x)
{
    if ((b->n_exts + 1) * 2 > (b->exts ? b->ext_mask + 1 : 0)) {
        uint32_t cap = b->exts ? (b->ext_mask + 1) * 2 : 64;
        struct b_ext *nv = calloc(cap, sizeof(*nv));
        if (!nv)
            return NULL;
        for (uint32_t i = 0; b->exts && i <= b->ext_mask; i++) {
            if (!b->exts[i].x)
                continue;
            for (uint64_t k = b->exts[i].hash;; k++) { /* half full: ends at an empty slot */
                if (!nv[k & (cap - 1)].x) {
                    nv[k & (cap - 1)] = b->exts[i];
                    break;
                }
            }
        }
        free(b->exts);
        b->exts = nv;
        b->ext_mask = cap - 1;
    }
    uint64_t h = sv_route_hash_(0, (const char *)x, sizeof(*x));
    for (uint64_t k = h;; k++) { /* half full: ends at an empty slot */
        struct b_ext *slot = &b->exts[k & b->ext_mask];
        if (slot->x && slot->hash == h && memcmp(slot->x, x, sizeof(*x)) == 0)
            return slot->x;
        if (slot->x)
            continue;
        struct sv_route_action_ext *c = sv_arena_alloc(&b->t->arena, sizeof(*c));
        if (!c)
            return NULL;
        memcpy(c, x, sizeof(*c));
        *slot = (struct b_ext){c, h};
        b->n_exts++;
        return c;
    }
}

static int build_action(struct sv_route_builder *b, uint32_t route,
                        const struct sv_route_rule_spec *s, struct sv_route_action *a)
{
    int rc;
    struct sv_route_action_ext x;
    memset(&x, 0, sizeof(x)); /* padding too: the block is interned by its bytes */
    memset(a, 0, sizeof(*a));
    a->route_name = b->routes[route].key;
    a->rule_index = b->routes[route].n_rules;
    if (s->fixed_status && (s->fixed_status < 100 || s->fixed_status > 599))
        return fail(b, -EINVAL, "bad fixed status %u", (unsigned)s->fixed_status);
    x.fixed_status = s->fixed_status;
    x.request_timeout_ms = s->request_timeout_ms;
    x.backend_timeout_ms = s->backend_timeout_ms;
    if ((rc = copy_mods(b, s->request_mods, &x.request_mods)) < 0 ||
        (rc = copy_mods(b, s->response_mods, &x.response_mods)) < 0)
        return rc;
    if (s->redirect) {
        if (s->rewrite)
            return fail(b, -EINVAL, "RequestRedirect cannot be combined with URLRewrite");
        if (s->n_backends)
            return fail(b, -EINVAL, "RequestRedirect cannot be combined with backendRefs");
        if ((rc = build_redirect(b, s->redirect, &x.redirect)) < 0)
            return rc;
    }
    if (s->rewrite && (rc = build_rewrite(b, s->rewrite, NULL, &x.rewrite)) < 0)
        return rc;
    if (s->cors && (rc = build_cors(b, s->cors, &x.cors)) < 0)
        return rc;
    if (s->retry && s->retry->attempts > 0) {
        struct sv_route_retry *rt = sv_arena_zalloc(&b->t->arena, sizeof(*rt));
        if (!rt)
            return fail(b, -ENOMEM, "out of memory");
        *rt = *s->retry;
        if (rt->attempts > SV_ROUTE_RETRY_MAX_ATTEMPTS)
            rt->attempts = SV_ROUTE_RETRY_MAX_ATTEMPTS;
        x.retry = rt;
    }
    if (s->n_mirrors) {
        if (s->n_mirrors > MAX_MIRRORS || !s->mirrors)
            return fail(b, -EINVAL, "too many RequestMirror filters");
        struct sv_route_mirror *m = sv_arena_zalloc(&b->t->arena, s->n_mirrors * sizeof(*m));
        if (!m)
            return fail(b, -ENOMEM, "out of memory");
        for (uint32_t i = 0; i < s->n_mirrors; i++) {
            const struct sv_route_mirror_spec *in = &s->mirrors[i];
            if ((rc = check_backend_set(b, in->set_id, "RequestMirror")) < 0)
                return rc;
            m[i].set_id = in->set_id;
            m[i].denominator = in->denominator ? in->denominator : 100;
            m[i].numerator = in->numerator;
            if (m[i].numerator > m[i].denominator)
                return fail(b, -EINVAL, "RequestMirror: fraction %u/%u above 1", m[i].numerator,
                            m[i].denominator);
        }
        x.mirrors = m;
        x.n_mirrors = s->n_mirrors;
    }
    if (s->n_backends) {
        if (s->n_backends > MAX_BACKENDS || !s->backends)
            return fail(b, -EINVAL, "too many backendRefs (%u)", s->n_backends);
        if (!b->be_tmp) {
            b->be_tmp = malloc(MAX_BACKENDS * sizeof(*b->be_tmp));
            b->cum_tmp = malloc(MAX_BACKENDS * sizeof(*b->cum_tmp));
            if (!b->be_tmp || !b->cum_tmp)
                return fail(b, -ENOMEM, "out of memory");
        }
        struct sv_route_backend *be = b->be_tmp;
        uint64_t *cum = b->cum_tmp;
        memset(be, 0, s->n_backends * sizeof(*be));
        uint64_t sum = 0;
        for (uint32_t i = 0; i < s->n_backends; i++) {
            const struct sv_route_backend_spec *in = &s->backends[i];
            if (in->kind == SV_ROUTE_BACKEND_SET) {
                if ((rc = check_backend_set(b, in->set_id, "backendRef")) < 0)
                    return rc;
            } else if (in->kind != SV_ROUTE_BACKEND_INVALID) {
                return fail(b, -EINVAL, "backendRef: bad kind %d", (int)in->kind);
            }
            if (in->app_proto > SV_ROUTE_APP_WS)
                return fail(b, -EINVAL, "backendRef: bad appProtocol %d", (int)in->app_proto);
            be[i].kind = in->kind;
            be[i].set_id = in->kind == SV_ROUTE_BACKEND_SET ? in->set_id : 0;
            be[i].weight = in->weight;
            be[i].app_proto = in->app_proto;
            if ((rc = copy_mods(b, in->request_mods, &be[i].request_mods)) < 0 ||
                (rc = copy_mods(b, in->response_mods, &be[i].response_mods)) < 0)
                return rc;
            if ((rc = merge_mods(b, x.request_mods, be[i].request_mods,
                                 &be[i].combined_request_mods)) < 0 ||
                (rc = merge_mods(b, x.response_mods, be[i].response_mods,
                                 &be[i].combined_response_mods)) < 0)
                return rc;
            if (in->redirect && in->rewrite)
                return fail(b, -EINVAL, "backendRef: RequestRedirect cannot be combined with "
                                        "URLRewrite");
            if (in->redirect && (rc = build_redirect(b, in->redirect, &be[i].redirect)) < 0)
                return rc;
            if (in->rewrite && (rc = build_rewrite(b, in->rewrite, x.rewrite, &be[i].rewrite)) < 0)
                return rc;
            sum += in->weight;
            cum[i] = sum;
        }
        const struct b_bset *bs = intern_backends(b, be, cum, s->n_backends);
        if (!bs)
            return fail(b, -ENOMEM, "out of memory");
        a->backends = bs->be;
        a->n_backends = s->n_backends;
        a->_cum_weight = bs->cum;
    }
    static const struct sv_route_action_ext empty; /* most rules: nothing to intern */
    a->ext = memcmp(&x, &empty, sizeof(x)) == 0 ? &empty : intern_ext(b, &x);
    if (!a->ext)
        return fail(b, -ENOMEM, "out of memory");
    return 0;
}

static const struct sv_route_match_spec default_match = {.path_type = SV_ROUTE_PATH_PREFIX,
                                                         .path = {"/", 1}};

static int build_entry(struct sv_route_builder *b, uint32_t route, uint32_t match_idx,
                       const struct sv_route_match_spec *m, struct b_entry *e)
{
    int rc;
    memset(e, 0, sizeof(*e));
    struct sv_str path = m->path.len ? m->path : SV_STR_LIT("/");
    if (path.len > UINT32_MAX || m->method.len > UINT32_MAX) /* entries keep 32-bit lengths */
        return fail(b, -EINVAL, "path or method too long");
    e->path_type = m->path_type;
    switch (m->path_type) {
    case SV_ROUTE_PATH_EXACT:
    case SV_ROUTE_PATH_PREFIX:
        if (path.ptr[0] != '/')
            return fail(b, -EINVAL, "path \"%.*s\" must start with '/'", PSTR(path));
        if (count_segments(path) > SV_ROUTE_MAX_SEGMENTS)
            return fail(b, -EINVAL, "path \"%.*s\" has too many segments", PSTR(path));
        if (m->path_type == SV_ROUTE_PATH_PREFIX && path.ptr[path.len - 1] == '/')
            path.len--; /* the trailing '/' of a prefix is ignored ("/" -> "") */
        e->path = scratch_str(b, path);
        if (!e->path.ptr)
            return fail(b, -ENOMEM, "out of memory");
        break;
    case SV_ROUTE_PATH_REGEX:
        e->path = scratch_str(b, m->path);
        if (!e->path.ptr)
            return fail(b, -ENOMEM, "out of memory");
        if ((rc = add_regex(b, m->path, &e->path_re)) < 0)
            return rc;
        break;
    default:
        return fail(b, -EINVAL, "unsupported path match type %d", (int)m->path_type);
    }
    if ((rc = copy_conds(b, m->headers, m->n_headers, true, &e->headers, &e->n_headers)) < 0 ||
        (rc = copy_conds(b, m->query, m->n_query, false, &e->query, &e->n_query)) < 0)
        return rc;
    e->method = copy_str(b, m->method);
    if (!e->method.ptr)
        return fail(b, -ENOMEM, "out of memory");
    e->route_idx = route;
    e->rule_idx = b->routes[route].n_rules;
    e->match_idx = match_idx;
    return 0;
}

int sv_route_builder_add_rule(struct sv_route_builder *b, uint32_t route,
                              const struct sv_route_rule_spec *spec)
{
    if (route >= b->n_routes)
        return fail(b, -EINVAL, "no route %u", route);
    uint32_t nm = spec->n_matches ? spec->n_matches : 1;
    const struct sv_route_match_spec *ms = spec->n_matches ? spec->matches : &default_match;
    if (nm > MAX_MATCHES || !ms)
        return fail(b, -EINVAL, "too many matches (%u > %u)", nm, MAX_MATCHES);
    if (uses_prefix_mod(spec))
        for (uint32_t i = 0; i < nm; i++)
            if (ms[i].path_type != SV_ROUTE_PATH_PREFIX)
                return fail(b, -EINVAL, "ReplacePrefixMatch needs PathPrefix matches");
    if (GROW(b->actions, b->cap_actions, b->n_actions + 1) ||
        GROW(b->entries, b->cap_entries, b->n_entries + nm) ||
        GROW(b->entry_action, b->cap_entry_action, b->n_entries + nm))
        return fail(b, -ENOMEM, "out of memory");
    struct sv_route_action *a = &b->actions[b->n_actions];
    int rc = build_action(b, route, spec, a);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < nm; i++) {
        rc = build_entry(b, route, i, &ms[i], &b->entries[b->n_entries + i]);
        if (rc < 0)
            return rc;
        b->entry_action[b->n_entries + i] = b->n_actions;
    }
    a->id = b->n_actions++;
    b->n_entries += nm;
    b->err[0] = '\0';
    return (int)b->routes[route].n_rules++;
}

/* ---- compile ----------------------------------------------------------------------------- */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 16;
    while (p < n && p < (1u << 30))
        p *= 2;
    return p;
}

static int hash_put(struct sv_route_htab *ht, uint32_t scope, uint32_t kind, struct sv_str name,
                    uint32_t value, uint32_t *existing)
{
    uint64_t h = sv_route_hash_(((uint64_t)scope << 8) | kind, name.ptr, name.len);
    for (uint32_t i = 0; i <= ht->mask; i++) {
        struct sv_route_hslot *s = &ht->slots[(h + i) & ht->mask];
        if (!s->used) {
            *s = (struct sv_route_hslot){name.ptr, h, (uint32_t)name.len, scope, value,
                                         (uint16_t)kind, 1};
            return 0;
        }
        if (s->hash == h && s->scope == scope && s->kind == kind && s->name_len == name.len &&
            memcmp(s->name, name.ptr, name.len) == 0) {
            *existing = s->value;
            return 1;
        }
    }
    return -ENOSPC;
}

static int htab_init(struct sv_arena *ar, struct sv_route_htab *ht, uint64_t n)
{
    ht->mask = pow2_at_least(2 * n + 2) - 1;
    ht->slots = sv_arena_zalloc(ar, ((size_t)ht->mask + 1) * sizeof(*ht->slots));
    return ht->slots ? 0 : -ENOMEM;
}

/* The trie while it is built: nodes in creation order, found by (parent, segment) through a
 * growing open-addressing hash (malloc, freed after compile). */
struct tnode {
    const char *seg;
    uint32_t seg_len;
    uint32_t hash; /* sv_route_seg_hash_ of seg */
    uint32_t parent; /* UINT32_MAX for roots */
};

#define TRIE_DEAD (UINT32_MAX - 1) /* tnode.parent of a node merged into its child */

struct trie {
    struct tnode *nodes;
    uint32_t n, cap;
    uint32_t *slots; /* node index + 1; 0 = empty */
    uint32_t mask;
};

static uint64_t tslot_hash(uint32_t parent, uint32_t seg_hash)
{
    uint64_t x = ((uint64_t)parent << 32 | seg_hash) * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 31);
}

static int trie_rehash(struct trie *tr, uint32_t size)
{
    uint32_t *ns = calloc(size, sizeof(uint32_t));
    if (!ns)
        return -ENOMEM;
    free(tr->slots);
    tr->slots = ns;
    tr->mask = size - 1;
    for (uint32_t i = 0; i < tr->n; i++) {
        if (tr->nodes[i].parent == UINT32_MAX)
            continue;
        uint64_t h = tslot_hash(tr->nodes[i].parent, tr->nodes[i].hash);
        for (uint32_t p = 0;; p++) { /* at most half full */
            uint32_t *s = &tr->slots[(h + p) & tr->mask];
            if (*s == 0) {
                *s = i + 1;
                break;
            }
        }
    }
    return 0;
}

static int64_t trie_add(struct trie *tr, uint32_t parent, struct sv_str seg, uint32_t hash)
{
    if (GROW(tr->nodes, tr->cap, tr->n + 1))
        return -ENOMEM;
    tr->nodes[tr->n] = (struct tnode){seg.ptr, (uint32_t)seg.len, hash, parent};
    return tr->n++;
}

/* The child of <parent> for <seg>, created when missing. Returns its index or -ENOMEM. */
static int64_t trie_child(struct trie *tr, uint32_t parent, struct sv_str seg)
{
    if (seg.len > UINT32_MAX)
        return -ENOMEM;
    if (2 * ((uint64_t)tr->n + 1) > (uint64_t)tr->mask + 1 &&
        trie_rehash(tr, tr->slots ? (tr->mask + 1) * 2 : 1024) < 0)
        return -ENOMEM;
    uint32_t sh = sv_route_seg_hash_(seg.ptr, seg.len);
    uint64_t h = tslot_hash(parent, sh);
    for (uint32_t p = 0;; p++) { /* at most half full: ends at an empty slot */
        uint32_t *s = &tr->slots[(h + p) & tr->mask];
        if (*s == 0) {
            int64_t c = trie_add(tr, parent, seg, sh);
            if (c >= 0)
                *s = (uint32_t)c + 1;
            return c;
        }
        const struct tnode *n = &tr->nodes[*s - 1];
        if (n->parent == parent && n->hash == sh && n->seg_len == seg.len &&
            memcmp(n->seg, seg.ptr, seg.len) == 0)
            return *s - 1;
    }
}

static int rank(const struct b_entry *e)
{
    return e->path_type == SV_ROUTE_PATH_EXACT ? 0 : e->path_type == SV_ROUTE_PATH_REGEX ? 1 : 2;
}

static int cmp_entries(const void *pa, const void *pb, void *ctx)
{
    const struct sv_route_builder *b = ctx;
    const struct b_entry *x = &b->entries[*(const uint32_t *)pa];
    const struct b_entry *y = &b->entries[*(const uint32_t *)pb];
    if (rank(x) != rank(y))
        return rank(x) - rank(y);
    if (x->path.len != y->path.len) /* longer prefix / longer regex first */
        return x->path.len > y->path.len ? -1 : 1;
    if ((x->method.len > 0) != (y->method.len > 0))
        return x->method.len > 0 ? -1 : 1;
    if (x->n_headers != y->n_headers)
        return x->n_headers > y->n_headers ? -1 : 1;
    if (x->n_query != y->n_query)
        return x->n_query > y->n_query ? -1 : 1;
    if (x->route_idx != y->route_idx) {
        const struct b_route *rx = &b->routes[x->route_idx], *ry = &b->routes[y->route_idx];
        if (rx->created != ry->created)
            return rx->created < ry->created ? -1 : 1;
        size_t n = SV_MIN(rx->key.len, ry->key.len);
        int c = n ? memcmp(rx->key.ptr, ry->key.ptr, n) : 0;
        if (c)
            return c;
        if (rx->key.len != ry->key.len)
            return rx->key.len < ry->key.len ? -1 : 1;
        return x->route_idx < y->route_idx ? -1 : 1;
    }
    if (x->rule_idx != y->rule_idx)
        return x->rule_idx < y->rule_idx ? -1 : 1;
    if (x->match_idx != y->match_idx)
        return x->match_idx < y->match_idx ? -1 : 1;
    return 0;
}

/* Attachments by host group, then route, the best-ranked original hostname first (so the first
 * of a run with one group and route is the attachment that counts). */
static int cmp_attach_route(const void *pa, const void *pb)
{
    const struct b_attach *x = pa, *y = pb;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->route != y->route)
        return x->route < y->route ? -1 : 1;
    if (x->host_rank != y->host_rank)
        return x->host_rank > y->host_rank ? -1 : 1;
    return 0;
}

/* Attachments by host group, then tier (original hostname rank, best first), then route. */
static int cmp_attach(const void *pa, const void *pb)
{
    const struct b_attach *x = pa, *y = pb;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->host_rank != y->host_rank)
        return x->host_rank > y->host_rank ? -1 : 1;
    if (x->route != y->route)
        return x->route < y->route ? -1 : 1;
    return 0;
}

/* Sort <n> indexes with <cmp>: insertion sort for the short lists most buckets and nodes have
 * (no call overhead, stable), qsort_r beyond. */
static void sort_idx(uint32_t *a, uint32_t n, int (*cmp)(const void *, const void *, void *),
                     void *ctx)
{
    if (n > 16) {
        qsort_r(a, n, sizeof(uint32_t), cmp, ctx);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = a[i], j = i;
        for (; j > 0 && cmp(&a[j - 1], &v, ctx) > 0; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

/* (node, list kind, entry) emitted in precedence order; grouped into per-node lists after. */
struct tuple {
    uint32_t node, kind, entry;
};

/* Children of a node in lookup order: by segment hash (the key of child_find's search). */
static int cmp_child(const void *pa, const void *pb, void *ctx)
{
    const struct tnode *N = ctx;
    uint32_t i = *(const uint32_t *)pa, j = *(const uint32_t *)pb;
    uint32_t x = N[i].hash, y = N[j].hash;
    if (x != y)
        return x < y ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int compile(struct sv_route_builder *b)
{
    struct sv_route_table *t = b->t;
    struct sv_arena *ar = &t->arena;
    int rc = -ENOMEM;
    uint32_t *route_off = NULL, *route_ents = NULL, *order = NULL, *counts = NULL;
    uint32_t *group_first = NULL, *n_child = NULL;
    uint8_t *has_ent = NULL;
    struct sv_arena cat; /* concatenated edges of compressed trie nodes */
    bool cat_ok = false;
    uint32_t *cstart = NULL, *clist = NULL, *cpos = NULL, *bfs = NULL, *newid = NULL;
    struct tuple *tuples = NULL;
    struct sv_route_entry *ents = NULL;
    struct sv_str *bname = NULL;
    uint32_t *name_off = NULL;
    struct trie tr = {0};

    /* binds and listeners */
    t->n_binds = b->n_binds;
    t->n_listeners = b->n_listeners;
    t->binds = sv_arena_zalloc(ar, (b->n_binds + 1) * sizeof(*t->binds));
    t->listeners = sv_arena_zalloc(ar, (b->n_listeners + 1) * sizeof(*t->listeners));
    t->bind_any = sv_arena_alloc(ar, (b->n_binds + 1) * sizeof(int32_t));
    t->bind_wild = sv_arena_zalloc(ar, b->n_binds + 1);
    t->listener_any = sv_arena_alloc(ar, (b->n_listeners + 1) * sizeof(int32_t));
    t->listener_wild = sv_arena_zalloc(ar, b->n_listeners + 1);
    if (!t->binds || !t->listeners || !t->bind_any || !t->bind_wild || !t->listener_any ||
        !t->listener_wild)
        goto out;
    if (b->n_binds)
        memcpy(t->binds, b->binds, b->n_binds * sizeof(*t->binds));
    if (b->n_listeners)
        memcpy(t->listeners, b->listeners, b->n_listeners * sizeof(*t->listeners));
    for (uint32_t i = 0; i < b->n_binds; i++)
        t->bind_any[i] = -1;
    for (uint32_t i = 0; i < b->n_listeners; i++)
        t->listener_any[i] = -1;

    /* sets */
    t->n_sets = b->n_sets;
    t->set_names = sv_arena_zalloc(ar, (b->n_sets + 1) * sizeof(*t->set_names));
    if (!t->set_names)
        goto out;
    for (uint32_t i = 0; i < b->n_sets; i++)
        t->set_names[i] = b->sets[i].name;

    /* actions and entries (the compact form the lookup reads) */
    t->n_actions = b->n_actions;
    /* the builder's array becomes the table's (malloc'd, freed with the table): no copy */
    if (b->n_actions && b->n_actions < b->cap_actions) {
        struct sv_route_action *shrunk = realloc(b->actions, b->n_actions * sizeof(*shrunk));
        if (shrunk)
            b->actions = shrunk;
    }
    t->actions = b->actions;
    b->actions = NULL;
    b->cap_actions = 0;
    ents = malloc((b->n_entries + 1) * sizeof(*ents)); /* copied into the lists below */
    if ((b->n_actions && !t->actions) || !ents)
        goto out;
    uint32_t n_conds = 0;
    for (uint32_t i = 0; i < b->n_entries; i++) {
        const struct b_entry *be = &b->entries[i];
        n_conds += be->path_re || be->method.len || be->n_headers || be->n_query;
    }
    t->conds = n_conds ? sv_arena_alloc(ar, n_conds * sizeof(*t->conds)) : NULL;
    if (n_conds && !t->conds)
        goto out;
    for (uint32_t i = 0; i < b->n_entries; i++) {
        const struct b_entry *be = &b->entries[i];
        uint32_t cond = SV_ROUTE_NO_COND;
        if (be->path_re || be->method.len || be->n_headers || be->n_query) {
            cond = t->n_conds++;
            t->conds[cond] = (struct sv_route_entry_cond){
                .path_re = be->path_re,
                .method = be->method.ptr,
                .headers = be->headers,
                .query = be->query,
                .method_len = (uint32_t)be->method.len,
                .n_headers = (uint16_t)be->n_headers,
                .n_query = (uint16_t)be->n_query,
            };
        }
        ents[i] = (struct sv_route_entry){
            .action = b->entry_action[i],
            .path_len = (uint32_t)be->path.len,
            .cond = cond,
            .path_type = (uint8_t)be->path_type,
        };
    }

    /* hashes: listeners alone (small, hot), buckets and sets together */
    if (htab_init(ar, &t->lhash, b->n_listeners) < 0 ||
        htab_init(ar, &t->hash, (uint64_t)b->n_attach + b->n_sets) < 0)
        goto out;
    for (uint32_t i = 0; i < b->n_sets; i++) {
        uint32_t ex;
        if (hash_put(&t->hash, 0, SV_HK_SET, b->sets[i].name, i, &ex) < 0)
            goto out;
    }
    for (uint32_t i = 0; i < b->n_listeners; i++) {
        uint32_t bind = b->listeners[i].bind, kind = b->listener_kind[i], ex;
        if (kind == 0) {
            t->bind_any[bind] = (int32_t)i;
            continue;
        }
        if (kind == SV_HK_LISTENER_WILD)
            t->bind_wild[bind] = 1;
        if (hash_put(&t->lhash, bind, kind, b->listener_key[i], i, &ex) < 0)
            goto out;
    }

    /* host groups from attachments: one per (listener, hostname), found by the hash */
    uint32_t n_groups = 0, n_buckets = 0;
    for (uint32_t i = 0; i < b->n_attach; i++) {
        struct b_attach *at = &b->attach[i];
        if (at->kind == 0) {
            if (t->listener_any[at->listener] < 0)
                t->listener_any[at->listener] = (int32_t)n_groups++;
            at->group = (uint32_t)t->listener_any[at->listener];
            continue;
        }
        if (at->kind == SV_HK_BUCKET_WILD)
            t->listener_wild[at->listener] = 1;
        uint32_t ex = 0;
        int r = hash_put(&t->hash, at->listener, at->kind, at->name, n_groups, &ex);
        if (r < 0)
            goto out;
        at->group = r == 1 ? ex : n_groups++;
    }
    /* a route attached to one group twice (several of its hostnames intersect the listener's
     * to one name) keeps its best-ranked original hostname */
    if (b->n_attach) {
        qsort(b->attach, b->n_attach, sizeof(*b->attach), cmp_attach_route);
        uint32_t n = 1;
        for (uint32_t i = 1; i < b->n_attach; i++)
            if (b->attach[i].group != b->attach[n - 1].group ||
                b->attach[i].route != b->attach[n - 1].route)
                b->attach[n++] = b->attach[i];
        b->n_attach = n;
        qsort(b->attach, b->n_attach, sizeof(*b->attach), cmp_attach);
    }
    /* buckets: one per (group, original hostname rank), a group's tiers consecutive, best
     * first; the hash and listener_any name the first tier */
    group_first = malloc(((size_t)n_groups + 1) * sizeof(uint32_t));
    if (!group_first)
        goto out;
    for (uint32_t i = 0; i < b->n_attach; i++) {
        struct b_attach *at = &b->attach[i];
        bool same_group = i && at->group == b->attach[i - 1].group;
        if (!same_group)
            group_first[at->group] = n_buckets;
        if (!same_group || at->host_rank != b->attach[i - 1].host_rank)
            n_buckets++;
        at->bucket = n_buckets - 1;
    }
    for (uint32_t s = 0; t->hash.slots && s <= t->hash.mask; s++) {
        struct sv_route_hslot *h = &t->hash.slots[s];
        if (h->used && (h->kind == SV_HK_BUCKET_EXACT || h->kind == SV_HK_BUCKET_WILD))
            h->value = group_first[h->value];
    }
    for (uint32_t l = 0; l < b->n_listeners; l++)
        if (t->listener_any[l] >= 0)
            t->listener_any[l] = (int32_t)group_first[t->listener_any[l]];
    t->n_buckets = n_buckets;
    t->buckets = sv_arena_zalloc(ar, (n_buckets + 1) * sizeof(*t->buckets));
    if (!t->buckets)
        goto out;
    for (uint32_t i = 0; i < b->n_attach; i++) {
        uint32_t k = b->attach[i].bucket;
        bool next_tier = i + 1 < b->n_attach && b->attach[i + 1].group == b->attach[i].group &&
                         b->attach[i + 1].bucket != k;
        if (next_tier || t->buckets[k].next == 0)
            t->buckets[k].next = next_tier ? k + 1 : UINT32_MAX;
    }

    /* entries per route (counting sort) */
    route_off = calloc(b->n_routes + 1, sizeof(uint32_t));
    route_ents = malloc((b->n_entries + 1) * sizeof(uint32_t));
    order = malloc((b->n_entries + 1) * sizeof(uint32_t));
    if (!route_off || !route_ents || !order)
        goto out;
    for (uint32_t i = 0; i < b->n_entries; i++)
        route_off[b->entries[i].route_idx + 1]++;
    for (uint32_t r = 0; r < b->n_routes; r++)
        route_off[r + 1] += route_off[r];
    {
        uint32_t *fill = calloc(b->n_routes + 1, sizeof(uint32_t));
        if (!fill)
            goto out;
        for (uint32_t i = 0; i < b->n_entries; i++) {
            uint32_t r = b->entries[i].route_idx;
            route_ents[route_off[r] + fill[r]++] = i;
        }
        free(fill);
    }

    /* tuples: one per (distinct attachment, entry of its route) */
    uint64_t n_tuples = 0;
    for (uint32_t i = 0; i < b->n_attach; i++) {
        uint32_t r = b->attach[i].route;
        n_tuples += route_off[r + 1] - route_off[r];
    }
    if (n_tuples > MAX_OBJECTS)
        goto out;
    tuples = malloc((n_tuples + 1) * sizeof(*tuples));
    if (!tuples)
        goto out;
    for (uint32_t k = 0; k < n_buckets; k++) /* roots are trie nodes 0..n_buckets-1 */
        if (trie_add(&tr, UINT32_MAX, SV_STR_LIT(""), 0) < 0)
            goto out;

    /* per bucket: collect, sort, walk paths into the trie, emit tuples */
    uint32_t nt = 0;
    for (uint32_t i = 0; i < b->n_attach;) {
        uint32_t bucket = b->attach[i].bucket, n_ord = 0;
        for (; i < b->n_attach && b->attach[i].bucket == bucket; i++) {
            uint32_t r = b->attach[i].route;
            for (uint32_t k = route_off[r]; k < route_off[r + 1]; k++)
                order[n_ord++] = route_ents[k];
        }
        sort_idx(order, n_ord, cmp_entries, b);
        for (uint32_t k = 0; k < n_ord; k++) {
            const struct b_entry *e = &b->entries[order[k]];
            uint32_t node = bucket;
            if (e->path_type == SV_ROUTE_PATH_REGEX) {
                tuples[nt++] = (struct tuple){node, 2, order[k]};
                continue;
            }
            if (e->path.len > 1 || (e->path_type == SV_ROUTE_PATH_PREFIX && e->path.len == 1)) {
                const char *p = e->path.ptr + 1, *end = e->path.ptr + e->path.len;
                for (;;) { /* one step per segment: bounded by the path length */
                    const char *slash = memchr(p, '/', (size_t)(end - p));
                    const char *se = slash ? slash : end;
                    int64_t c = trie_child(&tr, node, sv_str_make(p, (size_t)(se - p)));
                    if (c < 0)
                        goto out;
                    node = (uint32_t)c;
                    if (!slash)
                        break;
                    p = slash + 1;
                }
            }
            tuples[nt++] = (struct tuple){node, e->path_type == SV_ROUTE_PATH_EXACT ? 0 : 1,
                                          order[k]};
        }
    }
    uint32_t nn = tr.n;

    /* path compression: a node (not a bucket root) with one child and no entries of its own is
     * merged into that child, whose edge becomes "seg/childseg" (hash still of the first
     * segment: the key children are searched by); a lookup steps over the chain at once. A
     * parent is always created before its children, so one pass in index order collapses whole
     * chains. Merged nodes get parent TRIE_DEAD. */
    n_child = calloc((size_t)nn + 1, sizeof(uint32_t));
    has_ent = calloc((size_t)nn + 1, 1);
    if (!n_child || !has_ent || sv_arena_init(&cat, 16 * 1024, false) != 0)
        goto out;
    cat_ok = true;
    for (uint32_t k = 0; k < nt; k++)
        has_ent[tuples[k].node] = 1;
    for (uint32_t i = 0; i < nn; i++)
        if (tr.nodes[i].parent != UINT32_MAX)
            n_child[tr.nodes[i].parent]++;
    uint32_t live = nn;
    for (uint32_t i = 0; i < nn; i++) {
        struct tnode *c = &tr.nodes[i];
        uint32_t x = c->parent;
        if (x == UINT32_MAX || tr.nodes[x].parent == UINT32_MAX || n_child[x] != 1 || has_ent[x])
            continue;
        struct tnode *xn = &tr.nodes[x];
        SV_ASSERT(x < i && xn->parent != TRIE_DEAD);
        char *cs = sv_arena_alloc(&cat, (size_t)xn->seg_len + 1 + c->seg_len);
        if (!cs)
            goto out;
        memcpy(cs, xn->seg, xn->seg_len);
        cs[xn->seg_len] = '/';
        memcpy(cs + xn->seg_len + 1, c->seg, c->seg_len);
        c->seg = cs;
        c->seg_len += xn->seg_len + 1;
        c->hash = xn->hash;
        c->parent = xn->parent;
        xn->parent = TRIE_DEAD;
        live--;
    }

    /* children of each node (grouped by parent), sorted by segment hash */
    cstart = calloc((size_t)nn + 1, sizeof(uint32_t));
    cpos = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    clist = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    bfs = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    newid = malloc(((size_t)nn + 1) * sizeof(uint32_t));
    if (!cstart || !cpos || !clist || !bfs || !newid)
        goto out;
    for (uint32_t i = 0; i < nn; i++)
        if (tr.nodes[i].parent < TRIE_DEAD)
            cstart[tr.nodes[i].parent + 1]++;
    for (uint32_t i = 0; i < nn; i++)
        cstart[i + 1] += cstart[i];
    memcpy(cpos, cstart, (size_t)nn * sizeof(uint32_t));
    for (uint32_t i = 0; i < nn; i++)
        if (tr.nodes[i].parent < TRIE_DEAD)
            clist[cpos[tr.nodes[i].parent]++] = i;
    size_t seg_bytes = 0;
    for (uint32_t i = 0; i < nn; i++) {
        if (tr.nodes[i].parent != TRIE_DEAD)
            seg_bytes += tr.nodes[i].seg_len;
        sort_idx(clist + cstart[i], cstart[i + 1] - cstart[i], cmp_child, tr.nodes);
    }
    /* each bucket's host name goes just before its segments: the hash lookup's name check and
     * the trie walk read neighbouring bytes */
    bname = calloc((size_t)n_buckets + 1, sizeof(*bname));
    name_off = malloc(((size_t)n_buckets + 1) * sizeof(*name_off));
    if (!bname || !name_off)
        goto out;
    for (uint32_t i = 0; i < b->n_attach; i++)
        bname[b->attach[i].bucket] = b->attach[i].name;
    for (uint32_t k = 0; k < n_buckets; k++)
        seg_bytes += bname[k].len;
    if (seg_bytes > UINT32_MAX) /* 32-bit offsets */
        goto out;

    /* layout: each bucket's nodes together, breadth first, so a node's children are consecutive
     * and one lookup touches one compact region */
    uint32_t next = 0;
    for (uint32_t k = 0; k < n_buckets; k++) {
        uint32_t head = next;
        bfs[next++] = k;
        while (head < next) { /* every node is queued once: bounded by nn */
            uint32_t old = bfs[head++];
            for (uint32_t j = cstart[old]; j < cstart[old + 1]; j++)
                bfs[next++] = clist[j];
        }
    }
    SV_ASSERT(next == live);
    nn = live; /* from here on: new (breadth-first) node ids */
    for (uint32_t i = 0; i < nn; i++)
        newid[bfs[i]] = i;
    t->n_nodes = nn;
    /* 32-byte nodes on 32-byte boundaries (the arena gives 16): none straddles a cache line */
    char *node_mem = sv_arena_alloc(ar, ((size_t)nn + 1) * sizeof(*t->nodes) + 16);
    t->segs = sv_arena_alloc(ar, seg_bytes + 1);
    if (!node_mem || !t->segs)
        goto out;
    t->nodes = (struct sv_route_node *)(void *)(((uintptr_t)node_mem + 31) & ~(uintptr_t)31);
    size_t seg_off = 0;
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t old = bfs[i];
        const struct tnode *tn = &tr.nodes[old];
        struct sv_route_node *nd = &t->nodes[i];
        if (old < n_buckets) { /* a bucket root: its name first */
            name_off[old] = (uint32_t)seg_off;
            if (bname[old].len)
                memcpy(t->segs + seg_off, bname[old].ptr, bname[old].len);
            seg_off += bname[old].len;
        }
        nd->hash = tn->hash;
        nd->seg_off = (uint32_t)seg_off;
        nd->seg_len = tn->seg_len;
        if (tn->seg_len)
            memcpy(t->segs + seg_off, tn->seg, tn->seg_len);
        seg_off += tn->seg_len;
        nd->child_n = cstart[old + 1] - cstart[old];
        nd->child_off = nd->child_n ? newid[clist[cstart[old]]] : 0;
    }
    for (uint32_t k = 0; k < n_buckets; k++)
        t->buckets[k].root = newid[k];
    for (uint32_t s = 0; t->hash.slots && s <= t->hash.mask; s++) { /* same bytes, moved */
        struct sv_route_hslot *h = &t->hash.slots[s];
        if (h->used && (h->kind == SV_HK_BUCKET_EXACT || h->kind == SV_HK_BUCKET_WILD)) {
            SV_ASSERT(h->value < n_buckets && bname[h->value].len == h->name_len);
            h->name = t->segs + name_off[h->value];
        }
    }

    /* group tuples into per-node lists, keeping their order */
    counts = calloc((size_t)nn * 3 + 1, sizeof(uint32_t));
    t->lists = sv_arena_alloc(ar, (nt + 1) * sizeof(*t->lists));
    t->n_lists = nt;
    if (!counts || !t->lists)
        goto out;
    for (uint32_t k = 0; k < nt; k++) {
        tuples[k].node = newid[tuples[k].node];
        counts[tuples[k].node * 3 + tuples[k].kind + 1]++;
    }
    for (uint32_t k = 0; k < nn * 3; k++)
        counts[k + 1] += counts[k];
    for (uint32_t nd = 0; nd < nn; nd++) {
        t->nodes[nd].list_off = counts[nd * 3];
        t->nodes[nd].exact_n = counts[nd * 3 + 1] - counts[nd * 3];
        t->nodes[nd].prefix_n = counts[nd * 3 + 2] - counts[nd * 3 + 1];
    }
    for (uint32_t k = 0; k < n_buckets; k++) {
        uint32_t root = t->buckets[k].root;
        t->buckets[k].regex_off = counts[root * 3 + 2];
        t->buckets[k].regex_n = counts[root * 3 + 3] - counts[root * 3 + 2];
    }
    for (uint32_t k = 0; k < nt; k++)
        t->lists[counts[tuples[k].node * 3 + tuples[k].kind]++] = ents[tuples[k].entry];

    /* the table owns the regexes from now on */
    t->regexes = b->regexes;
    t->n_regexes = b->n_regexes;
    b->regexes = NULL;
    b->n_regexes = 0;
    rc = 0;
out:
    free(route_off);
    free(route_ents);
    free(order);
    free(group_first);
    free(n_child);
    free(has_ent);
    if (cat_ok)
        sv_arena_destroy(&cat);
    free(counts);
    free(tuples);
    free(ents);
    free(bname);
    free(name_off);
    free(cstart);
    free(cpos);
    free(clist);
    free(bfs);
    free(newid);
    free(tr.nodes);
    free(tr.slots);
    return rc;
}

static uint64_t ep_hash(const struct sv_route_endpoint *e)
{
    if (e->addr.sa.sa_family == AF_INET6)
        return sv_route_hash_(e->addr.in6.sin6_port, (const char *)&e->addr.in6.sin6_addr,
                              sizeof(e->addr.in6.sin6_addr));
    return sv_route_hash_(e->addr.in.sin_port, (const char *)&e->addr.in.sin_addr,
                          sizeof(e->addr.in.sin_addr));
}

static int fill_set(struct sv_generation *g, uint32_t set, const struct sv_route_endpoint *eps,
                    size_t n)
{
    if (n == 0) {
        g->sets[set] = (struct sv_route_epset){NULL, 0};
        return 0;
    }
    if (n > MAX_OBJECTS)
        return -ENOMEM;
    struct sv_route_endpoint *copy = sv_arena_alloc(&g->arena, n * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    uint32_t k = 0;
    if (n <= 16) {
        for (size_t i = 0; i < n; i++) {
            bool dup = false;
            for (uint32_t j = 0; j < k && !dup; j++)
                dup = ep_same(&copy[j], &eps[i]);
            if (!dup)
                copy[k++] = eps[i];
        }
    } else {
        /* drop duplicates in linear time: a temporary hash of kept indexes (+1; 0 = empty) */
        uint32_t mask = pow2_at_least(2 * (uint64_t)n) - 1;
        uint32_t *seen = calloc((size_t)mask + 1, sizeof(uint32_t));
        if (!seen)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            uint64_t h = ep_hash(&eps[i]);
            for (uint32_t p = 0; p <= mask; p++) {
                uint32_t *slot = &seen[(h + p) & mask];
                if (*slot == 0) {
                    copy[k] = eps[i];
                    *slot = ++k;
                    break;
                }
                if (ep_same(&copy[*slot - 1], &eps[i]))
                    break;
            }
        }
        free(seen);
    }
    g->sets[set] = (struct sv_route_epset){copy, k};
    return 0;
}

struct sv_generation *sv_route_builder_finish(struct sv_route_builder *b, char *err, size_t errlen)
{
    if (compile(b) < 0) {
        snprintf(err, errlen, "out of memory while compiling the route table");
        builder_release(b, true);
        return NULL;
    }
    struct sv_route_table *t = b->t;
    size_t n_eps = 0;
    for (uint32_t i = 0; i < b->n_sets; i++)
        n_eps += b->sets[i].n;
    struct sv_generation *g = sv_generation_alloc_(t, n_eps);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        builder_release(b, true);
        return NULL;
    }
    for (uint32_t i = 0; i < b->n_sets; i++) {
        if (fill_set(g, i, b->sets[i].eps, b->sets[i].n) < 0) {
            snprintf(err, errlen, "out of memory");
            builder_release(b, false);
            sv_generation_free_unpublished(g); /* frees the table too */
            return NULL;
        }
    }
    builder_release(b, false);
    return g;
}

struct sv_generation *sv_generation_new_with_endpoints(const struct sv_generation *base,
                                                       const struct sv_route_endpoint_update *updates,
                                                       size_t n_updates, char *err, size_t errlen)
{
    sv_generation_check(base);
    struct sv_route_table *t = base->table;
    for (size_t i = 0; i < n_updates; i++) {
        if (updates[i].set_id >= t->n_sets) {
            snprintf(err, errlen, "endpoint update: no backend set %u", updates[i].set_id);
            return NULL;
        }
        for (size_t k = 0; k < updates[i].n_endpoints; k++) {
            const struct sv_route_endpoint *ep = &updates[i].endpoints[k];
            int fam = ep->addr.sa.sa_family;
            if ((fam != AF_INET && fam != AF_INET6) ||
                (fam == AF_INET ? ep->addr.in.sin_port : ep->addr.in6.sin6_port) == 0) {
                snprintf(err, errlen, "endpoint update of \"%.*s\": bad address #%zu",
                         PSTR(t->set_names[updates[i].set_id]), k);
                return NULL;
            }
        }
    }
    size_t n_eps = 0;
    for (uint32_t s = 0; s < t->n_sets; s++)
        n_eps += base->sets[s].n;
    for (size_t i = 0; i < n_updates; i++)
        n_eps += updates[i].n_endpoints;
    struct sv_generation *g = sv_generation_alloc_(t, n_eps);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t s = 0; s < t->n_sets; s++)
        g->sets[s] = base->sets[s]; /* placeholder; replaced below by copies */
    int rc = 0;
    for (uint32_t s = 0; s < t->n_sets && rc == 0; s++) {
        const struct sv_route_endpoint *eps = base->sets[s].eps;
        size_t n = base->sets[s].n;
        for (size_t i = 0; i < n_updates; i++) /* last update of a set wins */
            if (updates[i].set_id == s) {
                eps = updates[i].endpoints;
                n = updates[i].n_endpoints;
            }
        rc = fill_set(g, s, eps, n);
    }
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        sv_generation_free_unpublished(g);
        return NULL;
    }
    return g;
}

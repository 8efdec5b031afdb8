/* HTTPRoutes: parent attachment (sectionName/port, allowedRoutes, hostname intersection), rules
 * (matches, filters, backendRefs -> backend sets with EndpointSlice endpoints), route status. */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/routing/generation.h"
#include "serval/tls/tls.h"

bool sv_tx_grant_allows(struct tx *t, const char *from_kind, const char *from_ns,
                        const char *to_group, const char *to_kind, const char *to_ns,
                        const char *to_name);

#define SV_RETRY_DEFAULT_BACKOFF_MS 25u /* retry.backoff unset (implementation-specific) */
#define MAX_ROUTE_HOSTS 64 /* distinct intersected hostnames kept per listener */

/* Outcome of translating the rules of one route (the same for every parent). */
struct rules_result {
    size_t valid, dropped;
    bool incompatible_only; /* every dropped rule was dropped for IncompatibleFilters */
    char drop_msg[512];
    const char *refs_reason; /* first ResolvedRefs problem, NULL if none */
    char refs_msg[512];
};

static void *scratch(struct tx *t, size_t n)
{
    static max_align_t none; /* n == 0 (no matches, filters...): a valid pointer, never written */
    if (n == 0)
        return &none;
    void *p = sv_arena_zalloc(&t->scratch, n);
    if (!p)
        t->nomem = true;
    return p;
}

static void refs_problem(struct rules_result *rr, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refs_problem(struct rules_result *rr, const char *reason, const char *fmt, ...)
{
    if (rr->refs_reason)
        return;
    rr->refs_reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rr->refs_msg, sizeof(rr->refs_msg), fmt, ap);
    va_end(ap);
}

/* ---- backends ------------------------------------------------------------------------------ */

static bool set_filled(struct tx *t, uint32_t id)
{
    if (id >= t->set_cap) {
        size_t cap = t->set_cap ? t->set_cap : 64;
        while (cap <= id)
            cap *= 2;
        uint8_t *v = realloc(t->set_filled, cap);
        if (!v) {
            t->nomem = true;
            return true;
        }
        memset(v + t->set_cap, 0, cap - t->set_cap);
        t->set_filled = v;
        t->set_cap = cap;
    }
    bool was = t->set_filled[id];
    t->set_filled[id] = 1;
    return was;
}

/* The memo slot of (svc, port): the entry holding it or the empty slot where it goes. */
static struct tx_set_memo *memo_slot(struct tx *t, const struct sv_object *svc, int port)
{
    uint64_t h = ((uint64_t)(uintptr_t)svc ^ ((uint64_t)(uint32_t)port << 48)) *
                 0x9e3779b97f4a7c15ull;
    for (size_t i = (size_t)(h >> 20);; i++) { /* at most half full: ends at an empty slot */
        struct tx_set_memo *m = &t->memo[i & t->memo_mask];
        if (!m->svc || (m->svc == svc && m->port == port))
            return m;
    }
}

static const struct tx_set_memo *memo_find(struct tx *t, const struct sv_object *svc, int port)
{
    if (!t->memo)
        return NULL;
    const struct tx_set_memo *m = memo_slot(t, svc, port);
    return m->svc ? m : NULL;
}

/* Remember a resolved (svc, port). Out of memory only costs the shortcut. */
static void memo_put(struct tx *t, const struct sv_object *svc, int port, uint32_t set_id,
                     enum sv_route_app_proto ap)
{
    if ((t->memo_n + 1) * 2 > (t->memo ? t->memo_mask + 1 : 0)) {
        size_t cap = t->memo ? (t->memo_mask + 1) * 2 : 256;
        struct tx_set_memo *old = t->memo, *nv = calloc(cap, sizeof(*nv));
        if (!nv)
            return;
        size_t old_cap = old ? t->memo_mask + 1 : 0;
        t->memo = nv;
        t->memo_mask = cap - 1;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].svc)
                *memo_slot(t, old[i].svc, old[i].port) = old[i];
        free(old);
    }
    *memo_slot(t, svc, port) = (struct tx_set_memo){svc, port, set_id, (uint8_t)ap};
    t->memo_n++;
}

/* The slice port for Service port <sp>: by name (Kubernetes names slice ports after Service
 * ports), else the tolerance of GATEWAY_API_RULES.md §5. -1 if none. */
static int slice_port(const struct sv_object *slice, const struct sv_service_port *sp)
{
    const struct sv_endpointslice *es = &slice->u.endpointslice;
    for (size_t i = 0; i < es->n_ports; i++) {
        if (strcmp(es->ports[i].name, sp->name) == 0 && es->ports[i].port > 0)
            return es->ports[i].port;
    }
    for (size_t i = 0; i < es->n_ports; i++) {
        const struct sv_slice_port *p = &es->ports[i];
        bool ok = (sp->target_port && p->port == sp->target_port) ||
                  (sp->target_port_name && strcmp(p->name, sp->target_port_name) == 0) ||
                  (es->n_ports == 1 && p->port > 0);
        if (ok && p->port > 0) {
            sv_log_rl(1, SV_LOG_WARN, "translate",
                      "EndpointSlice %s/%s has no port named \"%s\"; using port %d", slice->meta.ns,
                      slice->meta.name, sp->name, p->port);
            return p->port;
        }
    }
    return -1;
}

/* Dotted-quad IPv4 as inet_pton(AF_INET) accepts it (four decimal octets <= 255, no leading
 * zeros), without its generality: this runs for every endpoint of every referenced Service. */
static bool parse_ipv4(const char *s, struct in_addr *out)
{
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (part && *s++ != '.')
            return false;
        if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
            return false;
        uint32_t o = 0;
        for (int d = 0; d < 3 && *s >= '0' && *s <= '9'; d++)
            o = o * 10 + (uint32_t)(*s++ - '0');
        if (o > 255 || (*s >= '0' && *s <= '9'))
            return false;
        v = v << 8 | o;
    }
    if (*s)
        return false;
    out->s_addr = htonl(v);
    return true;
}

typedef void (*endpoint_fn)(void *arg, const union sv_route_sockaddr *sa, socklen_t len);

/* Call <fn> for every ready endpoint address of Service <svc> port <sp> (EndpointSlices of the
 * service, port by name, conditions.ready not false). */
static void for_each_endpoint(struct tx *t, const struct sv_object *svc,
                              const struct sv_service_port *sp, endpoint_fn fn, void *arg)
{
    if (!t->slices_ok && sv_tx_index_slices(t) != 0) { /* incremental.c leaves it to here */
        t->nomem = true;
        return;
    }
    /* Binary search the first slice of this service. */
    size_t lo = 0, hi = t->n_slices;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct sv_object *s = t->slices[mid];
        int c = strcmp(s->meta.ns, svc->meta.ns);
        if (!c)
            c = strcmp(s->u.endpointslice.service_name, svc->meta.name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < t->n_slices; i++) {
        const struct sv_object *s = t->slices[i];
        if (strcmp(s->meta.ns, svc->meta.ns) != 0 ||
            strcmp(s->u.endpointslice.service_name, svc->meta.name) != 0)
            break;
        int port = slice_port(s, sp);
        if (port <= 0)
            continue;
        const struct sv_endpointslice *es = &s->u.endpointslice;
        for (size_t e = 0; e < es->n_endpoints; e++) {
            if (es->endpoints[e].ready == 0)
                continue;
            for (size_t k = 0; k < es->endpoints[e].n_addresses; k++) {
                union sv_route_sockaddr sa;
                socklen_t len;
                memset(&sa, 0, sizeof(sa));
                const char *addr = es->endpoints[e].addresses[k];
                if (parse_ipv4(addr, &sa.in.sin_addr)) {
                    sa.in.sin_family = AF_INET;
                    sa.in.sin_port = htons((uint16_t)port);
                    len = sizeof(sa.in);
                } else if (inet_pton(AF_INET6, addr, &sa.in6.sin6_addr) == 1) {
                    sa.in6.sin6_family = AF_INET6;
                    sa.in6.sin6_port = htons((uint16_t)port);
                    len = sizeof(sa.in6);
                } else {
                    continue; /* FQDN slices are not supported */
                }
                fn(arg, &sa, len);
            }
        }
    }
}

struct add_ctx {
    struct tx *t;
    uint32_t set_id;
};

static void add_one(void *arg, const union sv_route_sockaddr *sa, socklen_t len)
{
    struct add_ctx *c = arg;
    if (sv_route_builder_add_endpoint(c->t->b, c->set_id, &sa->sa, len) == -ENOMEM)
        c->t->nomem = true;
}

static void add_endpoints(struct tx *t, uint32_t set_id, const struct sv_object *svc,
                          const struct sv_service_port *sp)
{
    struct add_ctx c = {t, set_id};
    for_each_endpoint(t, svc, sp, add_one, &c);
}

/* ---- endpoint-only update --------------------------------------------------------------- */

struct collect {
    struct sv_route_endpoint *v;
    size_t n, cap;
    bool nomem;
};

static void collect_one(void *arg, const union sv_route_sockaddr *sa, socklen_t len)
{
    struct collect *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].addrlen == len && memcmp(&c->v[i].addr, sa, len) == 0)
            return; /* duplicates are ignored, as the builder does */
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct sv_route_endpoint *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->nomem = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
    memcpy(&c->v[c->n].addr, sa, len);
    c->v[c->n++].addrlen = len;
}

/* Endpoints of backend set "<ns>/<svc>:<port>" from the store (n = 0 when the Service or port
 * is gone: 503). */
static int set_endpoints(struct tx *t, struct sv_str name, struct collect *c)
{
    char buf[600];
    if (name.len >= sizeof(buf))
        return 0;
    memcpy(buf, name.ptr, name.len);
    buf[name.len] = '\0';
    char *slash = strchr(buf, '/'), *colon = strrchr(buf, ':');
    if (!slash || !colon || colon < slash)
        return 0;
    *slash = '\0';
    *colon = '\0';
    int port = atoi(colon + 1);
    const struct sv_object *svc = sv_store_get(t->store, SV_KIND_SERVICE, buf, slash + 1);
    if (!svc)
        return 0;
    for (size_t i = 0; i < svc->u.service.n_ports; i++) {
        if (svc->u.service.ports[i].port == port) {
            for_each_endpoint(t, svc, &svc->u.service.ports[i], collect_one, c);
            break;
        }
    }
    return c->nomem ? -ENOMEM : 0;
}

int sv_tx_endpoint_update(struct tx *t, const struct sv_generation *base,
                          struct sv_generation **out, size_t *changed, char *err, size_t errlen);

int sv_tx_endpoint_update(struct tx *t, const struct sv_generation *base,
                          struct sv_generation **out, size_t *changed, char *err, size_t errlen)
{
    uint32_t n_sets = sv_generation_n_backend_sets(base);
    struct sv_route_endpoint_update *ups = calloc(n_sets ? n_sets : 1, sizeof(*ups));
    struct collect *cs = calloc(n_sets ? n_sets : 1, sizeof(*cs));
    int rc = 0;
    size_t n_up = 0;
    if (!ups || !cs) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t id = 0; id < n_sets && rc == 0; id++) {
        rc = set_endpoints(t, sv_generation_backend_set_name(base, id), &cs[id]);
        size_t n_old = 0;
        const struct sv_route_endpoint *old = sv_generation_endpoints(base, id, &n_old);
        bool same = n_old == cs[id].n;
        for (size_t k = 0; same && k < n_old; k++)
            same = old[k].addrlen == cs[id].v[k].addrlen &&
                   memcmp(&old[k].addr, &cs[id].v[k].addr, old[k].addrlen) == 0;
        if (!same)
            ups[n_up++] = (struct sv_route_endpoint_update){id, cs[id].v, cs[id].n};
    }
    if (rc == 0) {
        *out = sv_generation_new_with_endpoints(base, ups, n_up, err, errlen);
        if (!*out)
            rc = -ENOMEM;
        *changed = n_up;
    }
out:
    for (uint32_t id = 0; cs && id < n_sets; id++)
        free(cs[id].v);
    free(cs);
    free(ups);
    return rc;
}

static void release_tls_client(void *ctx)
{
    sv_tls_client_unref(ctx);
}

/* Resolve one backendRef into <out>. Problems make it an INVALID backend (500 share) and are
 * reported through rr. */
static void resolve_backend(struct tx *t, const struct sv_object *route,
                            const struct sv_backend_ref *br, struct sv_route_backend_spec *out,
                            struct rules_result *rr)
{
    const char *ns = br->ns ? br->ns : route->meta.ns;
    out->kind = SV_ROUTE_BACKEND_INVALID;
    out->weight = (uint32_t)br->weight;
    if (br->group[0] || strcmp(br->kind, "Service") != 0) {
        refs_problem(rr, "InvalidKind", "backendRef %s/%s %s: unsupported kind", br->group,
                     br->kind, br->name);
        return;
    }
    if (strcmp(ns, route->meta.ns) != 0 &&
        !sv_tx_grant_allows(t, sv_kind_name(route->kind), route->meta.ns, "", "Service", ns,
                            br->name)) {
        refs_problem(rr, "RefNotPermitted",
                     "backendRef %s/%s: no ReferenceGrant in %s allows it", ns, br->name, ns);
        return;
    }
    const struct sv_object *svc = sv_store_get(t->store, SV_KIND_SERVICE, ns, br->name);
    if (!svc) {
        refs_problem(rr, "BackendNotFound", "Service %s/%s not found", ns, br->name);
        return;
    }
    if (br->port == 0) {
        refs_problem(rr, "BackendNotFound", "backendRef %s/%s: port is required", ns, br->name);
        return;
    }
    const struct tx_set_memo *memo = memo_find(t, svc, br->port);
    if (memo) { /* resolved before: same set, endpoints already added */
        out->kind = SV_ROUTE_BACKEND_SET;
        out->set_id = memo->set_id;
        out->app_proto = (enum sv_route_app_proto)memo->app_proto;
        return;
    }
    if (strcmp(svc->u.service.type, "ExternalName") == 0) {
        refs_problem(rr, "BackendNotFound", "Service %s/%s: ExternalName is not supported", ns,
                     br->name);
        return;
    }
    const struct sv_service_port *sp = NULL;
    for (size_t i = 0; i < svc->u.service.n_ports && !sp; i++) {
        if (svc->u.service.ports[i].port == br->port)
            sp = &svc->u.service.ports[i];
    }
    if (!sp) {
        refs_problem(rr, "BackendNotFound", "Service %s/%s has no port %d", ns, br->name,
                     br->port);
        return;
    }
    const struct tx_policy *pol = sv_tx_policy_for(t, ns, br->name, sp->name);
    if (pol && !pol->valid)
        return; /* an invalid BackendTLSPolicy: no plaintext fallback, a 500 share */
    const char *ap = sp->app_protocol;
    if (!ap || !ap[0] || strcasecmp(ap, "http") == 0 || strcmp(ap, "kubernetes.io/http") == 0)
        out->app_proto = SV_ROUTE_APP_HTTP1;
    else if (pol && strcasecmp(ap, "https") == 0)
        out->app_proto = SV_ROUTE_APP_HTTP1; /* HTTP/1.1 over the policy's TLS */
    else if (strcmp(ap, "kubernetes.io/h2c") == 0)
        out->app_proto = SV_ROUTE_APP_H2C;
    else if (strcmp(ap, "kubernetes.io/ws") == 0)
        out->app_proto = SV_ROUTE_APP_WS;
    else {
        refs_problem(rr, "UnsupportedProtocol", "Service %s/%s port %d: appProtocol %s", ns,
                     br->name, br->port, ap);
        return;
    }
    struct sv_tls_client *tls = NULL; /* a valid policy: TLS to the endpoints, never plaintext */
    if (pol && !(tls = sv_tx_policy_client(t, pol, route)))
        return;
    char name[600];
    snprintf(name, sizeof(name), "%s/%s:%d", ns, br->name, br->port);
    int id = sv_route_builder_add_backend_set(t->b, sv_str_cstr(name));
    if (id < 0) {
        sv_tls_client_unref(tls);
        t->nomem = t->nomem || id == -ENOMEM;
        return;
    }
    if (tls) {
        int trc = sv_route_builder_set_backend_tls(t->b, (uint32_t)id, tls, release_tls_client);
        if (trc != 0) {
            sv_tls_client_unref(tls);
            t->nomem = t->nomem || trc == -ENOMEM;
            return;
        }
    }
    if (!set_filled(t, (uint32_t)id))
        add_endpoints(t, (uint32_t)id, svc, sp);
    out->kind = SV_ROUTE_BACKEND_SET;
    out->set_id = (uint32_t)id;
    memo_put(t, svc, br->port, (uint32_t)id, out->app_proto);
}

/* ---- rules ------------------------------------------------------------------------------------ */

static const struct sv_route_header_mods_spec *mods_spec(struct tx *t,
                                                         const struct sv_header_modifier *h)
{
    struct sv_route_header_mods_spec *m = scratch(t, sizeof(*m));
    struct sv_route_header_kv *set = scratch(t, h->n_set * sizeof(*set));
    struct sv_route_header_kv *add = scratch(t, h->n_add * sizeof(*add));
    struct sv_str *rm = scratch(t, h->n_remove * sizeof(*rm));
    if (!m || !set || !add || !rm)
        return NULL;
    for (size_t i = 0; i < h->n_set; i++)
        set[i] = (struct sv_route_header_kv){sv_str_cstr(h->set[i].key),
                                             sv_str_cstr(h->set[i].value)};
    for (size_t i = 0; i < h->n_add; i++)
        add[i] = (struct sv_route_header_kv){sv_str_cstr(h->add[i].key),
                                             sv_str_cstr(h->add[i].value)};
    for (size_t i = 0; i < h->n_remove; i++)
        rm[i] = sv_str_cstr(h->remove[i]);
    m->set = set;
    m->n_set = (uint32_t)h->n_set;
    m->add = add;
    m->n_add = (uint32_t)h->n_add;
    m->remove = rm;
    m->n_remove = (uint32_t)h->n_remove;
    return m;
}

static bool valid_method(const char *m)
{
    static const char *const methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                          "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
    for (size_t i = 0; methods[i]; i++) {
        if (strcmp(m, methods[i]) == 0)
            return true;
    }
    return false;
}

/* The CORS filter <c> as a builder spec in the scratch arena. Returns 0, 1 with <why> set (bad
 * value; the builder checks the rest: origin syntax, tokens, a lone "*"), or -ENOMEM. */
static int cors_spec(struct tx *t, const struct sv_cors *c, const struct sv_route_cors_spec **out,
                     char *why, size_t whylen)
{
    struct sv_route_cors_spec *cs = scratch(t, sizeof(*cs));
    if (!cs)
        return -ENOMEM;
    const char **const lists[] = {c->allow_origins, c->allow_methods, c->allow_headers,
                                  c->expose_headers};
    const size_t counts[] = {c->n_allow_origins, c->n_allow_methods, c->n_allow_headers,
                             c->n_expose_headers};
    static const char *const names[] = {"allowOrigins", "allowMethods", "allowHeaders",
                                        "exposeHeaders"};
    struct sv_str *conv[4];
    for (size_t k = 0; k < 4; k++) {
        if (counts[k] > SV_ROUTE_CORS_MAX_ITEMS) {
            snprintf(why, whylen, "CORS %s has more than %d entries", names[k],
                     SV_ROUTE_CORS_MAX_ITEMS);
            return 1;
        }
        conv[k] = scratch(t, counts[k] * sizeof(*conv[k]));
        if (!conv[k])
            return -ENOMEM;
        for (size_t i = 0; i < counts[k]; i++)
            conv[k][i] = sv_str_cstr(lists[k][i]);
    }
    for (size_t i = 0; i < c->n_allow_methods; i++) {
        const char *m = c->allow_methods[i];
        if (strcmp(m, "*") != 0 && !valid_method(m)) {
            snprintf(why, whylen, "CORS allowMethods: %s is not a supported method", m);
            return 1;
        }
    }
    cs->allow_origins = conv[0];
    cs->n_allow_origins = (uint32_t)c->n_allow_origins;
    cs->allow_methods = conv[1];
    cs->n_allow_methods = (uint32_t)c->n_allow_methods;
    cs->allow_headers = conv[2];
    cs->n_allow_headers = (uint32_t)c->n_allow_headers;
    cs->expose_headers = conv[3];
    cs->n_expose_headers = (uint32_t)c->n_expose_headers;
    cs->allow_credentials = c->allow_credentials;
    cs->max_age = c->max_age > 0 ? (uint32_t)c->max_age : 0;
    *out = cs;
    return 0;
}

/* A path match value: starts with '/', no "//", "/./", "/../", "%2f" (any case) or '#'. One
 * pass (this runs for every match of every route). */
static bool valid_path(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *c = p; *c; c++) {
        if (*c == '#')
            return false;
        if (*c == '%' && c[1] == '2' && (c[2] == 'f' || c[2] == 'F'))
            return false;
        if (*c != '/')
            continue;
        if (c[1] == '/' || (c[1] == '.' && c[2] == '/') ||
            (c[1] == '.' && c[2] == '.' && c[3] == '/'))
            return false;
    }
    return true;
}

static int path_mod(const struct sv_path_modifier *pm, struct sv_route_path_mod *out)
{
    memset(out, 0, sizeof(*out));
    switch (pm->type) {
    case SV_PATHMOD_NONE:
        return 0;
    case SV_PATHMOD_FULL:
        out->type = SV_ROUTE_PATH_MOD_FULL;
        break;
    case SV_PATHMOD_PREFIX:
        out->type = SV_ROUTE_PATH_MOD_PREFIX;
        break;
    default:
        return -1;
    }
    out->value = sv_str_cstr(pm->value ? pm->value : "");
    return 0;
}

/* A RequestRedirect filter into the builder's form (scratch memory) in *out. Returns 0, 1 (rule
 * unsupported; message in why) or -ENOMEM. */
static int redirect_spec(struct tx *t, const struct sv_redirect *rd,
                         struct sv_route_redirect_spec **out, char *why, size_t whylen)
{
    if (rd->scheme && strcmp(rd->scheme, "http") != 0 && strcmp(rd->scheme, "https") != 0) {
        snprintf(why, whylen, "redirect scheme %s is not supported", rd->scheme);
        return 1;
    }
    int sc = rd->status_code;
    if (sc != 301 && sc != 302 && sc != 303 && sc != 307 && sc != 308) {
        snprintf(why, whylen, "redirect statusCode %d is not supported", sc);
        return 1;
    }
    struct sv_route_redirect_spec *redirect = scratch(t, sizeof(*redirect));
    if (!redirect)
        return -ENOMEM;
    redirect->scheme = sv_str_cstr(rd->scheme ? rd->scheme : "");
    redirect->hostname = sv_str_cstr(rd->hostname ? rd->hostname : "");
    redirect->port = (uint16_t)rd->port;
    redirect->status = (uint16_t)sc;
    if (path_mod(&rd->path, &redirect->path) != 0) {
        snprintf(why, whylen, "redirect path type %s is not supported", rd->path.type_raw);
        return 1;
    }
    *out = redirect;
    return 0;
}

/* A URLRewrite filter into the builder's form (scratch memory) in *out. Returns 0, 1 (rule
 * unsupported; message in why) or -ENOMEM. */
static int rewrite_spec(struct tx *t, const struct sv_url_rewrite *rwf,
                        struct sv_route_rewrite_spec **out,
                        char *why, size_t whylen)
{
    struct sv_route_rewrite_spec *rewrite = scratch(t, sizeof(*rewrite));
    if (!rewrite)
        return -ENOMEM;
    rewrite->hostname = sv_str_cstr(rwf->hostname ? rwf->hostname : "");
    if (path_mod(&rwf->path, &rewrite->path) != 0) {
        snprintf(why, whylen, "URLRewrite path type %s is not supported", rwf->path.type_raw);
        return 1;
    }
    *out = rewrite;
    return 0;
}

/* HTTPRouteRetry into the builder's form: codes must be 400..599 (GATEWAY_API_RULES §5 Retry),
 * attempts >= 0 (unset: 1), backoff unset: SV_RETRY_DEFAULT_BACKOFF_MS. Returns 0, or 1 with
 * <why> set. */
static int retry_spec(const struct sv_retry *in, struct sv_route_retry *out, char *why,
                      size_t whylen)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < in->n_codes; i++) {
        int32_t c = in->codes[i];
        if (c < 400 || c > 599) {
            snprintf(why, whylen, "retry.codes: %d is not an HTTP status in 400-599", (int)c);
            return 1;
        }
        out->codes[(c - 400) / 64] |= UINT64_C(1) << ((c - 400) % 64);
    }
    if (in->has_attempts && in->attempts < 0) {
        snprintf(why, whylen, "retry.attempts must not be negative");
        return 1;
    }
    out->attempts = in->has_attempts ? (uint32_t)in->attempts : 1u;
    if (in->backoff_ms < 0)
        out->backoff_ms = SV_RETRY_DEFAULT_BACKOFF_MS;
    else
        out->backoff_ms = in->backoff_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)in->backoff_ms;
    return 0;
}

/* Translate one rule. Returns 0 (added), or 1 with why/incompatible set when the rule is
 * dropped. */
static int tx_rule(struct tx *t, const struct sv_object *route, uint32_t route_idx, size_t ri,
                   struct rules_result *rr, char *why, size_t whylen, bool *incompatible)
{
    const struct sv_route_rule *r = &route->u.httproute.rules[ri];
    struct sv_route_rule_spec spec;
    memset(&spec, 0, sizeof(spec));
    *incompatible = false;
    sv_arena_reset(&t->scratch);

    struct sv_route_match_spec *ms = scratch(t, r->n_matches * sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_matches; i++) {
        const struct sv_route_match *m = &r->matches[i];
        switch (m->path_type) {
        case SV_PATH_PREFIX:
            ms[i].path_type = SV_ROUTE_PATH_PREFIX;
            break;
        case SV_PATH_EXACT:
            ms[i].path_type = SV_ROUTE_PATH_EXACT;
            break;
        case SV_PATH_REGEX:
            ms[i].path_type = SV_ROUTE_PATH_REGEX;
            break;
        default:
            snprintf(why, whylen, "path type %s is not supported", m->path_type_raw);
            return 1;
        }
        if (m->path_type != SV_PATH_REGEX && !valid_path(m->path)) {
            snprintf(why, whylen, "path \"%s\" is not a valid path", m->path);
            return 1;
        }
        ms[i].path = sv_str_cstr(m->path);
        if (m->method && !valid_method(m->method)) {
            snprintf(why, whylen, "method %s is not supported", m->method);
            return 1;
        }
        ms[i].method = sv_str_cstr(m->method ? m->method : "");
        for (int pass = 0; pass < 2; pass++) {
            const struct sv_kv_match *src = pass ? m->query : m->headers;
            size_t n = pass ? m->n_query : m->n_headers;
            struct sv_route_kv_match *dst = scratch(t, n * sizeof(*dst));
            if (!dst)
                return -ENOMEM;
            for (size_t k = 0; k < n; k++) {
                if (src[k].type == SV_MATCH_UNSUPPORTED) {
                    snprintf(why, whylen, "%s match type %s is not supported",
                             pass ? "query param" : "header", src[k].type_raw);
                    return 1;
                }
                dst[k].type = src[k].type == SV_MATCH_REGEX ? SV_ROUTE_VALUE_REGEX
                                                            : SV_ROUTE_VALUE_EXACT;
                dst[k].name = sv_str_cstr(src[k].name);
                dst[k].value = sv_str_cstr(src[k].value);
            }
            if (pass) {
                ms[i].query = dst;
                ms[i].n_query = (uint32_t)n;
            } else {
                ms[i].headers = dst;
                ms[i].n_headers = (uint32_t)n;
            }
        }
    }
    spec.matches = ms;
    spec.n_matches = (uint32_t)r->n_matches;

    struct sv_route_mirror_spec *mirrors = scratch(t, r->n_filters * sizeof(*mirrors));
    struct sv_route_redirect_spec *redirect = NULL;
    struct sv_route_rewrite_spec *rewrite = NULL;
    if (!mirrors)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_filters; i++) {
        const struct sv_filter *f = &r->filters[i];
        if (f->type == SV_FILTER_UNSUPPORTED) {
            snprintf(why, whylen, "filter %s is not supported", f->type_raw);
            return 1;
        }
        if (!f->has_config && f->type != SV_FILTER_EXTENSION_REF) {
            snprintf(why, whylen, "filter %s without its configuration", f->type_raw);
            return 1;
        }
        switch (f->type) {
        case SV_FILTER_REQUEST_HEADER_MODIFIER:
        case SV_FILTER_RESPONSE_HEADER_MODIFIER: {
            bool req = f->type == SV_FILTER_REQUEST_HEADER_MODIFIER;
            if (req ? spec.request_mods != NULL : spec.response_mods != NULL) {
                snprintf(why, whylen, "filter %s given twice", f->type_raw);
                *incompatible = true;
                return 1;
            }
            const struct sv_route_header_mods_spec *m = mods_spec(t, &f->u.headers);
            if (!m)
                return -ENOMEM;
            if (req)
                spec.request_mods = m;
            else
                spec.response_mods = m;
            break;
        }
        case SV_FILTER_REQUEST_REDIRECT:
        case SV_FILTER_URL_REWRITE: {
            bool redir = f->type == SV_FILTER_REQUEST_REDIRECT;
            if (redir ? redirect != NULL : rewrite != NULL) {
                snprintf(why, whylen, "%s given twice", f->type_raw);
                *incompatible = true;
                return 1;
            }
            int frc = redir ? redirect_spec(t, &f->u.redirect, &redirect, why, whylen)
                            : rewrite_spec(t, &f->u.rewrite, &rewrite, why, whylen);
            if (frc != 0)
                return frc;
            spec.redirect = redirect;
            spec.rewrite = rewrite;
            break;
        }
        case SV_FILTER_REQUEST_MIRROR: {
            const struct sv_mirror *m = &f->u.mirror;
            struct sv_route_backend_spec be;
            memset(&be, 0, sizeof(be));
            resolve_backend(t, route, m->backend, &be, rr);
            if (be.kind != SV_ROUTE_BACKEND_SET)
                break; /* not configured; primary traffic unaffected */
            struct sv_route_mirror_spec *ms2 = &mirrors[spec.n_mirrors++];
            ms2->set_id = be.set_id;
            if (m->percent >= 0) {
                ms2->numerator = (uint32_t)m->percent;
                ms2->denominator = 100;
            } else if (m->fraction_num >= 0) {
                ms2->numerator = (uint32_t)m->fraction_num;
                ms2->denominator = (uint32_t)m->fraction_den;
            } else {
                ms2->numerator = ms2->denominator = 100;
            }
            break;
        }
        case SV_FILTER_CORS: {
            if (spec.cors) {
                snprintf(why, whylen, "CORS given twice");
                *incompatible = true;
                return 1;
            }
            int crc = cors_spec(t, &f->u.cors, &spec.cors, why, whylen);
            if (crc != 0)
                return crc;
            break;
        }
        case SV_FILTER_EXTENSION_REF:
            spec.fixed_status = 500;
            refs_problem(rr, "InvalidKind", "ExtensionRef %s/%s %s is not supported",
                         f->u.extension.group ? f->u.extension.group : "",
                         f->u.extension.kind ? f->u.extension.kind : "",
                         f->u.extension.name ? f->u.extension.name : "");
            break;
        default:
            break;
        }
    }
    spec.mirrors = mirrors;
    if (redirect && rewrite) {
        snprintf(why, whylen, "RequestRedirect and URLRewrite cannot be combined");
        *incompatible = true;
        return 1;
    }
    if (redirect && r->n_backends) {
        snprintf(why, whylen, "RequestRedirect and backendRefs cannot be combined");
        *incompatible = true;
        return 1;
    }
    struct sv_route_backend_spec *bs = scratch(t, r->n_backends * sizeof(*bs));
    if (!bs)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_backends; i++) {
        const struct sv_backend_ref *br = &r->backends[i];
        for (size_t k = 0; k < br->n_filters; k++) {
            const struct sv_filter *f = &br->filters[k];
            bool req = f->type == SV_FILTER_REQUEST_HEADER_MODIFIER;
            if (f->has_config &&
                (f->type == SV_FILTER_REQUEST_REDIRECT || f->type == SV_FILTER_URL_REWRITE)) {
                bool redir = f->type == SV_FILTER_REQUEST_REDIRECT;
                if (redir ? bs[i].redirect != NULL : bs[i].rewrite != NULL) {
                    snprintf(why, whylen, "backendRef filter %s given twice", f->type_raw);
                    *incompatible = true;
                    return 1;
                }
                struct sv_route_redirect_spec *brd = NULL;
                struct sv_route_rewrite_spec *brw = NULL;
                int frc = redir ? redirect_spec(t, &f->u.redirect, &brd, why, whylen)
                                : rewrite_spec(t, &f->u.rewrite, &brw, why, whylen);
                if (frc != 0)
                    return frc;
                if (redir)
                    bs[i].redirect = brd;
                else
                    bs[i].rewrite = brw;
                if (bs[i].redirect && bs[i].rewrite) {
                    snprintf(why, whylen, "backendRef RequestRedirect and URLRewrite cannot be "
                                          "combined");
                    *incompatible = true;
                    return 1;
                }
                continue;
            }
            if ((!req && f->type != SV_FILTER_RESPONSE_HEADER_MODIFIER) || !f->has_config) {
                snprintf(why, whylen, "backendRef filter %s is not supported", f->type_raw);
                return 1;
            }
            if (req ? bs[i].request_mods != NULL : bs[i].response_mods != NULL) {
                snprintf(why, whylen, "backendRef filter %s given twice", f->type_raw);
                *incompatible = true;
                return 1;
            }
            const struct sv_route_header_mods_spec *m = mods_spec(t, &f->u.headers);
            if (!m)
                return -ENOMEM;
            if (req)
                bs[i].request_mods = m;
            else
                bs[i].response_mods = m;
        }
        resolve_backend(t, route, br, &bs[i], rr);
    }
    spec.backends = bs;
    spec.n_backends = (uint32_t)r->n_backends;

    int64_t req_ms = r->timeout_request_ms, be_ms = r->timeout_backend_ms;
    if (req_ms > 0 && be_ms > req_ms) {
        snprintf(why, whylen, "timeouts.backendRequest must not exceed timeouts.request");
        return 1;
    }
    if ((req_ms > 0 && req_ms < 1) || (be_ms > 0 && be_ms < 1)) {
        snprintf(why, whylen, "timeouts must be at least 1ms");
        return 1;
    }
    /* model: -1 = unset, 0 = "0s", which the spec says disables the timeout */
    spec.request_timeout_ms = req_ms > 0 ? (uint64_t)req_ms : req_ms == 0 ? SV_ROUTE_TIMEOUT_OFF : 0;
    spec.backend_timeout_ms = be_ms > 0 ? (uint64_t)be_ms : be_ms == 0 ? SV_ROUTE_TIMEOUT_OFF : 0;
    struct sv_route_retry retry;
    if (r->retry) {
        int rc = retry_spec(r->retry, &retry, why, whylen);
        if (rc != 0)
            return rc;
        spec.retry = &retry;
    }
    if (t->nomem)
        return -ENOMEM;
    int rc = sv_route_builder_add_rule(t->b, route_idx, &spec);
    if (rc == -ENOMEM)
        return -ENOMEM;
    if (rc < 0) {
        snprintf(why, whylen, "%s", sv_route_builder_error(t->b));
        *incompatible = strstr(why, "ReplacePrefixMatch") != NULL;
        return 1;
    }
    return 0;
}

static int tx_rules(struct tx *t, const struct sv_object *route, uint32_t route_idx,
                    struct rules_result *rr)
{
    const struct sv_httproute *hr = &route->u.httproute;
    size_t off = 0;
    rr->incompatible_only = true;
    for (size_t i = 0; i < hr->n_rules; i++) {
        char why[300];
        bool incompatible = false;
        int rc = tx_rule(t, route, route_idx, i, rr, why, sizeof(why), &incompatible);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            rr->valid++;
            continue;
        }
        rr->dropped++;
        rr->incompatible_only = rr->incompatible_only && incompatible;
        if (off < sizeof(rr->drop_msg)) {
            int n = snprintf(rr->drop_msg + off, sizeof(rr->drop_msg) - off, "%sDropped Rule %zu: %s",
                             off ? "; " : "", i, why);
            off += n > 0 ? (size_t)n : 0;
        }
    }
    return 0;
}

/* ---- attachment -------------------------------------------------------------------------------- */

static bool ns_allowed(struct tx *t, const struct tx_gateway *g, const struct tx_listener *tl,
                       const char *route_ns)
{
    switch (tl->l->from) {
    case SV_FROM_SAME: /* a ListenerSet's listener: the ListenerSet's namespace */
        return strcmp(route_ns, tl->owner ? tl->owner->obj->meta.ns : g->obj->meta.ns) == 0;
    case SV_FROM_ALL:
        return true;
    case SV_FROM_SELECTOR: {
        if (!tl->l->has_selector)
            return false;
        const struct sv_object *ns = sv_store_get(t->store, SV_KIND_NAMESPACE, "", route_ns);
        if (ns)
            return sv_label_selector_matches(&tl->l->selector, ns->meta.labels,
                                             ns->meta.n_labels);
        struct sv_kv only = {"kubernetes.io/metadata.name", route_ns};
        return sv_label_selector_matches(&tl->l->selector, &only, 1);
    }
    default:
        return false;
    }
}

/* Rank of a route hostname for precedence (GATEWAY_API_RULES.md §3 step 2): more characters of
 * non-wildcard hostname, then more characters. Only compared between hostnames that intersect
 * one listener hostname to the same name. */
static size_t host_rank(const char *h)
{
    size_t len = strlen(h);
    return h[0] == '*' ? len : (len << 16) | len;
}

/* Intersected hostnames of <route> on <tl> into out[] (deduplicated), each with the route's own
 * hostname it came from in orig[] ("" when the route has none; of several originals giving one
 * intersection, the most specific: that is the one matching a request's Host best). Returns the
 * count. */
static size_t route_hosts(const struct sv_httproute *hr, const struct tx_listener *tl,
                          const char **out, const char **orig)
{
    size_t n = 0;
    const char *lh = tl->host[0] ? tl->host : NULL;
    if (hr->n_hostnames == 0) {
        orig[n] = "";
        out[n++] = lh ? lh : "";
        return n;
    }
    for (size_t i = 0; i < hr->n_hostnames && n < MAX_ROUTE_HOSTS; i++) {
        const char *h = sv_tx_host_intersect(lh, hr->hostnames[i]);
        size_t k = 0;
        for (; h && k < n; k++)
            if (strcasecmp(out[k], h) == 0)
                break;
        if (!h)
            continue;
        if (k < n) {
            if (host_rank(hr->hostnames[i]) > host_rank(orig[k]))
                orig[k] = hr->hostnames[i];
            continue;
        }
        orig[n] = hr->hostnames[i];
        out[n++] = h;
    }
    return n;
}

struct attached {
    const struct tx_listener *tl;
    const char *host;
};

/* Make *buf hold at least <n> elements of <size> bytes (contents not kept). 0 or -ENOMEM. */
static int grow_scratch(void **buf, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    void *p = malloc(c * size);
    if (!p)
        return -ENOMEM;
    free(*buf);
    *buf = p;
    *cap = c;
    return 0;
}

int sv_tx_route(struct tx *t, const struct sv_object *route, struct sv_status_route *sr)
{
    const struct sv_httproute *hr = &route->u.httproute;
    int64_t gen = route->meta.generation;
    bool ours = false;
    for (size_t pi = 0; pi < hr->n_parents && !ours; pi++) {
        const struct tx_listenerset *owner;
        ours = sv_tx_parent(t, &hr->parents[pi], route->meta.ns, &owner) != NULL;
    }
    sr->obj = route;
    if (!ours)
        return 0; /* not for our Gateways: nothing to build or report */
    sr->parents = sv_arena_zalloc(t->a, (hr->n_parents ? hr->n_parents : 1) * sizeof(*sr->parents));
    if (!sr->parents)
        return -ENOMEM;

    /* Rules first: their validity decides Accepted for every parent. */
    struct sv_route_route_spec rs = {
        .namespace_ = sv_str_cstr(route->meta.ns),
        .name = sv_str_cstr(route->meta.name),
        .creation_ts = route->meta.creation_ns,
    };
    int ridx = sv_route_builder_add_route(t->b, &rs);
    if (ridx < 0)
        return -ENOMEM;
    struct rules_result rr;
    memset(&rr, 0, sizeof(rr));
    int rc = tx_rules(t, route, (uint32_t)ridx, &rr);
    if (rc < 0)
        return rc;

    /* Listeners the route is counted on / attached to (deduplicated across parentRefs). */
    size_t cap = 0;
    for (size_t gi = 0; gi < t->n_gws; gi++)
        cap += t->gws[gi].n_ls;
    /* scratch kept in <t> across routes (only the first n_att / n_counted entries are read) */
    if (grow_scratch(&t->route_att, &t->route_att_cap, cap * MAX_ROUTE_HOSTS + 1,
                     sizeof(struct attached)) < 0 ||
        grow_scratch(&t->route_counted, &t->route_counted_cap, cap + 1,
                     sizeof(const struct tx_listener *)) < 0)
        return -ENOMEM;
    struct attached *att = t->route_att;
    const struct tx_listener **counted = t->route_counted;
    size_t n_att = 0, n_counted = 0;

    for (size_t pi = 0; pi < hr->n_parents; pi++) {
        const struct sv_parent_ref *p = &hr->parents[pi];
        const char *gns = p->ns ? p->ns : route->meta.ns;
        /* a Gateway (its own listeners) or a ListenerSet attached to one (its listeners) */
        const struct tx_listenerset *owner;
        struct tx_gateway *g = sv_tx_parent(t, p, route->meta.ns, &owner);
        if (!g)
            continue; /* not our Gateway: no status entry from us */
        struct sv_status_route_parent *sp = &sr->parents[sr->n_parents++];
        sp->ref = *p;
        sp->controller_name = t->controller;

        size_t selected = 0, allowed = 0, hosted = 0;
        for (size_t j = 0; j < g->n_ls; j++) {
            struct tx_listener *tl = &g->ls[j];
            if (tl->owner != owner)
                continue;
            if (p->section_name && strcmp(p->section_name, tl->l->name) != 0)
                continue;
            if (p->port && p->port != tl->l->port)
                continue;
            selected++;
            bool kind_ok = route->kind == SV_KIND_TLSROUTE
                               ? tl->passthrough && tl->status->n_supported_kinds > 0
                               : tl->http_routes;
            if (!kind_ok || !ns_allowed(t, g, tl, route->meta.ns))
                continue;
            allowed++;
            const char *hosts[MAX_ROUTE_HOSTS], *origs[MAX_ROUTE_HOSTS];
            size_t nh = route_hosts(hr, tl, hosts, origs);
            if (nh == 0)
                continue;
            hosted++;
            if (rr.valid == 0)
                continue;
            bool seen = false;
            for (size_t k = 0; k < n_counted && !seen; k++)
                seen = counted[k] == tl;
            if (!seen) {
                counted[n_counted++] = tl;
                tl->status->attached_routes++;
            }
            for (size_t h = 0; h < nh && tl->programmed; h++) {
                bool dup = false;
                for (size_t k = 0; k < n_att && !dup; k++)
                    dup = att[k].tl == tl && strcasecmp(att[k].host, hosts[h]) == 0;
                if (dup)
                    continue;
                att[n_att++] = (struct attached){tl, hosts[h]};
                if (t->rec && route->kind == SV_KIND_HTTPROUTE)
                    sv_tx_rec_attach(t, (uint32_t)tl->builder_index, hosts[h]);
                rc = sv_route_builder_attach_original(t->b, (uint32_t)ridx,
                                                      (uint32_t)tl->builder_index,
                                                      sv_str_cstr(hosts[h]),
                                                      sv_str_cstr(origs[h]));
                if (rc == -ENOMEM)
                    return -ENOMEM;
                if (rc < 0)
                    sv_warn("translate", "HTTPRoute %s/%s: attach %s: %s", route->meta.ns,
                            route->meta.name, hosts[h], sv_route_builder_error(t->b));
            }
        }
        struct sv_condition_set *cs = &sp->conds;
        if (selected == 0)
            sv_tx_cond(t, cs, "Accepted", false, "NoMatchingParent", gen,
                       "no listener of %s/%s matches sectionName/port", gns, p->name);
        else if (allowed == 0)
            sv_tx_cond(t, cs, "Accepted", false, "NotAllowedByListeners", gen,
                       "no listener of %s/%s allows this route (namespace or kind)", gns, p->name);
        else if (hosted == 0)
            sv_tx_cond(t, cs, "Accepted", false, "NoMatchingListenerHostname", gen,
                       "no listener hostname of %s/%s intersects the route's hostnames", gns,
                       p->name);
        else if (rr.valid == 0)
            sv_tx_cond(t, cs, "Accepted", false,
                       rr.incompatible_only ? "IncompatibleFilters" : "UnsupportedValue", gen,
                       "%s", rr.drop_msg);
        else
            sv_tx_cond(t, cs, "Accepted", true, "Accepted", gen, "Route accepted");
        if (rr.refs_reason)
            sv_tx_cond(t, cs, "ResolvedRefs", false, rr.refs_reason, gen, "%s", rr.refs_msg);
        else
            sv_tx_cond(t, cs, "ResolvedRefs", true, "ResolvedRefs", gen, "References resolved");
        if (rr.valid > 0 && rr.dropped > 0)
            sv_tx_cond(t, cs, "PartiallyInvalid", true, "UnsupportedValue", gen, "%s",
                       rr.drop_msg);
    }
    return t->nomem ? -ENOMEM : 0;
}

int sv_tx_routes(struct tx *t)
{
    /* HTTPRoutes, then TLSRoutes (same shape: see SV_KIND_TLSROUTE) */
    size_t n, nt;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_HTTPROUTE, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    const struct sv_object *const *vt = sv_store_list(t->store, SV_KIND_TLSROUTE, &nt);
    if (!vt && sv_store_list_failed(t->store))
        return -ENOMEM;
    /* room for every route's rules and matches at once (a hint: a failure only costs growth) */
    uint64_t rules = 0, matches = 0;
    for (size_t i = 0; i < n + nt; i++) {
        const struct sv_httproute *hr = &(i < n ? v[i] : vt[i - n])->u.httproute;
        rules += hr->n_rules;
        for (size_t r = 0; r < hr->n_rules; r++)
            matches += hr->rules[r].n_matches ? hr->rules[r].n_matches : 1;
    }
    if (n + nt && matches < UINT32_MAX)
        sv_route_builder_reserve(t->b, (uint32_t)(n + nt), (uint32_t)rules, (uint32_t)matches);
    t->st->routes = sv_arena_zalloc(t->a, (n + nt ? n + nt : 1) * sizeof(*t->st->routes));
    if (!t->st->routes)
        return -ENOMEM;
    for (size_t i = 0; i < n + nt; i++) {
        struct sv_status_route *sr = &t->st->routes[t->st->n_routes];
        t->rec_route = (uint32_t)i; /* an HTTPRoute's index in v[] while i < n */
        int rc = sv_tx_route(t, i < n ? v[i] : vt[i - n], sr);
        if (rc < 0)
            return rc;
        if (sr->n_parents)
            t->st->n_routes++;
    }
    return 0;
}

/* BackendTLSPolicy (Gateway API v1): which policy applies to a Service port, whether it is
 * valid, and its status.ancestors (the Gateways whose routes use a targeted Service).
 *
 * Resolution (GEP-713 / BackendTLSPolicy v1):
 *  - a target is a core Service, optionally narrowed to one port by sectionName (port name);
 *  - two policies targeting the same Service with the same sectionName (or both without one)
 *    conflict: the oldest (creationTimestamp, then namespace/name) wins, the other gets
 *    Accepted=False/Conflicted. A policy with a sectionName is more specific than one without,
 *    so they do not conflict; for a port the sectionName policy applies;
 *  - validation.caCertificateRefs must be core ConfigMaps holding a PEM CA in "ca.crt": a ref of
 *    another kind is ResolvedRefs=False/InvalidKind, a missing ConfigMap or a bad certificate
 *    ResolvedRefs=False/InvalidCACertificateRef; with no usable CA at all the policy is
 *    Accepted=False/NoValidCACertificate, and routes to the Service port get a 500 share.
 *
 * Upstream TLS: a valid policy becomes one struct sv_tls_client per backend set (hostname or
 * SANs, the CA bundle or the system bundle, the Gateway's client certificate), attached to the
 * set in the generation. Contexts are cached by content across translations: the cache holds one
 * reference per entry and drops entries the previous and the current translation did not use.
 * Control thread only. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/tls/tls.h"

#define CA_KEY "ca.crt"

static int cmp_policy_age(const void *a, const void *b)
{
    const struct sv_object *x = *(const struct sv_object *const *)a;
    const struct sv_object *y = *(const struct sv_object *const *)b;
    if (x->meta.creation_ns != y->meta.creation_ns)
        return x->meta.creation_ns < y->meta.creation_ns ? -1 : 1;
    int c = strcmp(x->meta.ns, y->meta.ns);
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

static bool service_target(const struct sv_policy_target *tg)
{
    return tg->group[0] == '\0' && strcmp(tg->kind, "Service") == 0;
}

static bool same_section(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Does an older, already resolved policy claim one of <p>'s targets? */
static bool conflicted(const struct tx_policy *older, size_t n, const struct sv_object *p)
{
    const struct sv_backendtlspolicy *bp = &p->u.backendtlspolicy;
    for (size_t i = 0; i < n; i++) {
        if (older[i].conflicted || strcmp(older[i].obj->meta.ns, p->meta.ns) != 0)
            continue;
        const struct sv_backendtlspolicy *op = &older[i].obj->u.backendtlspolicy;
        for (size_t a = 0; a < bp->n_targets; a++) {
            for (size_t b = 0; b < op->n_targets; b++) {
                if (service_target(&bp->targets[a]) && service_target(&op->targets[b]) &&
                    strcmp(bp->targets[a].name, op->targets[b].name) == 0 &&
                    same_section(bp->targets[a].section_name, op->targets[b].section_name))
                    return true;
            }
        }
    }
    return false;
}

/* Check the CA references of one policy: sets valid, the reasons and the first usable CA. */
static void check_validation(struct tx *t, struct tx_policy *tp)
{
    const struct sv_object *o = tp->obj;
    const struct sv_backendtlspolicy *bp = &o->u.backendtlspolicy;
    size_t usable = 0;
    tp->refs_reason = NULL;
    for (size_t i = 0; i < bp->n_ca_refs; i++) {
        const struct sv_object_ref *r = &bp->ca_refs[i];
        if (r->group[0] || strcmp(r->kind, "ConfigMap") != 0) {
            if (!tp->refs_reason) {
                tp->refs_reason = "InvalidKind";
                tp->refs_msg = sv_tx_strdup(t, "caCertificateRefs: only core ConfigMaps are "
                                               "supported");
            }
            continue;
        }
        const struct sv_object *cm = sv_store_get(t->store, SV_KIND_CONFIGMAP, o->meta.ns,
                                                  r->name);
        const char *pem = NULL;
        for (size_t k = 0; cm && k < cm->u.configmap.n_data && !pem; k++) {
            if (strcmp(cm->u.configmap.data[k].key, CA_KEY) == 0)
                pem = cm->u.configmap.data[k].value;
        }
        char why[160] = "";
        int rc = pem ? sv_tls_ca_check(pem, strlen(pem), why, sizeof(why)) : -1;
        if (rc == -ENOMEM)
            t->nomem = true;
        if (rc != 0) {
            if (!tp->refs_reason) {
                tp->refs_reason = "InvalidCACertificateRef";
                tp->refs_msg = sv_tx_strdup(t, !cm    ? "caCertificateRefs: ConfigMap not found"
                                               : !pem ? "caCertificateRefs: ConfigMap has no "
                                                        "ca.crt"
                                                      : why);
            }
            continue;
        }
        if (!tp->ca_pem) {
            tp->ca_pem = pem;
        } else { /* every usable CA is a trust anchor: one bundle */
            size_t a = strlen(tp->ca_pem), b = strlen(pem);
            char *both = sv_arena_zalloc(t->a, a + b + 2);
            if (!both) {
                t->nomem = true;
                continue;
            }
            memcpy(both, tp->ca_pem, a);
            both[a] = '\n';
            memcpy(both + a + 1, pem, b);
            tp->ca_pem = both;
        }
        usable++;
    }
    bool well_known = bp->well_known_ca && strcmp(bp->well_known_ca, "System") == 0;
    if (bp->well_known_ca && !well_known) {
        tp->valid = false;
        tp->accepted_reason = "Invalid";
        tp->accepted_msg = sv_tx_strdup(t, "wellKnownCACertificates: only System is supported");
    } else if (!bp->hostname || !bp->hostname[0]) {
        tp->valid = false;
        tp->accepted_reason = "Invalid";
        tp->accepted_msg = sv_tx_strdup(t, "validation.hostname is required");
    } else if (usable == 0 && !well_known) {
        tp->valid = false;
        tp->accepted_reason = "NoValidCACertificate";
        tp->accepted_msg = sv_tx_strdup(t, "no usable CA certificate");
    } else {
        tp->valid = true;
        tp->accepted_reason = "Accepted";
        tp->accepted_msg = sv_tx_strdup(t, "Policy accepted");
    }
}

/* ---- upstream TLS contexts, cached by content ------------------------------------------------ */

#define CACHE_MAX 1024u

struct client_ent {
    char *key; /* every input of the context, length-prefixed */
    size_t key_len;
    struct sv_tls_client *cl;
    uint64_t used; /* epoch of the last translation that used it */
};

/* Translations normally run on the one control thread; the lock only keeps tests that
 * translate on several threads honest. */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct client_ent cache[CACHE_MAX];
static size_t cache_n;
static uint64_t cache_epoch;

/* A new translation: forget contexts neither it nor the previous one used. */
static void cache_age(void)
{
    pthread_mutex_lock(&cache_mu);
    cache_epoch++;
    size_t k = 0;
    for (size_t i = 0; i < cache_n; i++) {
        if (cache[i].used + 1 >= cache_epoch) {
            cache[k++] = cache[i];
            continue;
        }
        sv_tls_client_unref(cache[i].cl);
        free(cache[i].key);
    }
    cache_n = k;
    pthread_mutex_unlock(&cache_mu);
}

struct keybuf {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void key_put(struct keybuf *k, char tag, const void *v, size_t n)
{
    size_t need = k->len + 1 + sizeof(n) + n;
    if (k->nomem)
        return;
    if (need > k->cap) {
        size_t cap = need * 2;
        char *p = realloc(k->p, cap);
        if (!p) {
            k->nomem = true;
            return;
        }
        k->p = p;
        k->cap = cap;
    }
    k->p[k->len++] = tag;
    memcpy(k->p + k->len, &n, sizeof(n));
    k->len += sizeof(n);
    if (n)
        memcpy(k->p + k->len, v, n);
    k->len += n;
}

/* The cached context for <spec>, or a new one (cached). Returns a new reference or NULL. */
static struct sv_tls_client *client_get(struct tx *t, const struct sv_tls_client_spec *spec,
                                        char *why, size_t whylen)
{
    struct keybuf k = {0};
    key_put(&k, 'h', spec->hostname.ptr, spec->hostname.len);
    key_put(&k, 'c', spec->ca_pem.ptr, spec->ca_pem.len);
    key_put(&k, 'y', spec->system_cas ? "1" : "0", 1);
    for (uint32_t i = 0; i < spec->n_sans; i++)
        key_put(&k, spec->sans[i].uri ? 'u' : 'd', spec->sans[i].value.ptr,
                spec->sans[i].value.len);
    key_put(&k, 'e', spec->cert_pem.ptr, spec->cert_pem.len);
    key_put(&k, 'k', spec->key_pem.ptr, spec->key_pem.len);
    if (k.nomem) {
        free(k.p);
        t->nomem = true;
        return NULL;
    }
    struct sv_tls_client *cl = NULL;
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < cache_n && !cl; i++) {
        if (cache[i].key_len == k.len && memcmp(cache[i].key, k.p, k.len) == 0) {
            cl = cache[i].cl;
            cache[i].used = cache_epoch;
            sv_tls_client_ref(cl);
        }
    }
    pthread_mutex_unlock(&cache_mu);
    if (cl) {
        free(k.p);
        return cl;
    }
    cl = sv_tls_client_new(spec, why, whylen);
    if (!cl) {
        free(k.p);
        return NULL;
    }
    pthread_mutex_lock(&cache_mu);
    if (cache_n < CACHE_MAX) {
        sv_tls_client_ref(cl); /* the cache's own reference */
        cache[cache_n++] = (struct client_ent){k.p, k.len, cl, cache_epoch};
        k.p = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    free(k.p);
    return cl;
}

struct sv_tls_client *sv_tx_policy_client(struct tx *t, const struct tx_policy *tp,
                                          const struct sv_object *route)
{
    const struct sv_backendtlspolicy *bp = &tp->obj->u.backendtlspolicy;
    SV_ASSERT(tp->valid && !tp->conflicted && bp->hostname);
    struct sv_tls_san sans[SV_TLS_CLIENT_MAX_SANS];
    uint32_t n_sans = 0;
    for (size_t i = 0; i < bp->n_sans; i++) {
        const struct sv_san *sn = &bp->sans[i];
        if (sn->type == SV_SAN_UNSUPPORTED || !sn->value || !sn->value[0])
            continue;
        if (n_sans == SV_TLS_CLIENT_MAX_SANS) {
            sv_warn("translate", "BackendTLSPolicy %s/%s: more than %u subjectAltNames",
                    tp->obj->meta.ns, tp->obj->meta.name, SV_TLS_CLIENT_MAX_SANS);
            return NULL;
        }
        sans[n_sans++] = (struct sv_tls_san){sv_str_cstr(sn->value), sn->type == SV_SAN_URI};
    }
    struct sv_tls_client_spec spec = {
        .hostname = sv_str_cstr(bp->hostname),
        .ca_pem = tp->ca_pem ? sv_str_cstr(tp->ca_pem) : sv_str_cstr(""),
        .system_cas = bp->well_known_ca && strcmp(bp->well_known_ca, "System") == 0,
        .sans = sans,
        .n_sans = n_sans,
    };
    /* the client certificate of the first of the route's Gateways that has one */
    const struct sv_httproute *hr = &route->u.httproute;
    for (size_t i = 0; i < hr->n_parents; i++) {
        const struct tx_listenerset *owner = NULL;
        const struct tx_gateway *g = sv_tx_parent(t, &hr->parents[i], route->meta.ns, &owner);
        if (g && g->backend_cert) {
            const struct sv_secret *sec = &g->backend_cert->u.secret;
            spec.cert_pem = sv_str_make((const char *)sec->tls_crt->data, sec->tls_crt->len);
            spec.key_pem = sv_str_make((const char *)sec->tls_key->data, sec->tls_key->len);
            break;
        }
    }
    char why[160] = "";
    struct sv_tls_client *cl = client_get(t, &spec, why, sizeof(why));
    if (!cl && !t->nomem)
        sv_warn("translate", "BackendTLSPolicy %s/%s: no TLS context for its backends: %s",
                tp->obj->meta.ns, tp->obj->meta.name, why);
    return cl;
}

int sv_tx_policies_resolve(struct tx *t)
{
    cache_age();
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_BACKENDTLSPOLICY, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    if (n == 0)
        return 0;
    const struct sv_object **sorted = sv_arena_zalloc(t->a, n * sizeof(*sorted));
    t->pols = sv_arena_zalloc(t->a, n * sizeof(*t->pols));
    if (!sorted || !t->pols)
        return -ENOMEM;
    memcpy(sorted, v, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_policy_age);
    for (size_t i = 0; i < n; i++) {
        struct tx_policy *tp = &t->pols[i];
        tp->obj = sorted[i];
        tp->conflicted = conflicted(t->pols, i, sorted[i]);
        check_validation(t, tp);
    }
    t->n_pols = n;
    return t->nomem ? -ENOMEM : 0;
}

const struct tx_policy *sv_tx_policy_for(const struct tx *t, const char *ns, const char *svc,
                                         const char *port_name)
{
    const struct tx_policy *whole = NULL;
    for (size_t i = 0; i < t->n_pols; i++) {
        const struct tx_policy *tp = &t->pols[i];
        if (tp->conflicted || strcmp(tp->obj->meta.ns, ns) != 0)
            continue;
        const struct sv_backendtlspolicy *bp = &tp->obj->u.backendtlspolicy;
        for (size_t k = 0; k < bp->n_targets; k++) {
            const struct sv_policy_target *tg = &bp->targets[k];
            if (!service_target(tg) || strcmp(tg->name, svc) != 0)
                continue;
            if (tg->section_name) {
                if (port_name && strcmp(tg->section_name, port_name) == 0)
                    return tp; /* the most specific one */
            } else if (!whole) {
                whole = tp;
            }
        }
    }
    return whole;
}

/* Does <route> (ours, with status parents) send traffic to a Service port <tp> targets? */
static bool route_uses(const struct tx *t, const struct sv_object *route,
                       const struct tx_policy *tp)
{
    const struct sv_httproute *hr = &route->u.httproute;
    for (size_t r = 0; r < hr->n_rules; r++) {
        for (size_t b = 0; b < hr->rules[r].n_backends; b++) {
            const struct sv_backend_ref *br = &hr->rules[r].backends[b];
            const char *ns = br->ns ? br->ns : route->meta.ns;
            if (br->group[0] || strcmp(br->kind, "Service") != 0)
                continue;
            const struct sv_object *svc = sv_store_get(t->store, SV_KIND_SERVICE, ns, br->name);
            const char *port_name = NULL;
            for (size_t i = 0; svc && i < svc->u.service.n_ports; i++) {
                if (svc->u.service.ports[i].port == br->port)
                    port_name = svc->u.service.ports[i].name;
            }
            if (sv_tx_policy_for(t, ns, br->name, port_name) == tp)
                return true;
            /* a conflicted policy still reports on the Services it targets */
            const struct sv_backendtlspolicy *bp = &tp->obj->u.backendtlspolicy;
            for (size_t k = 0; tp->conflicted && k < bp->n_targets; k++) {
                const struct sv_policy_target *tg = &bp->targets[k];
                if (service_target(tg) && strcmp(tg->name, br->name) == 0 &&
                    strcmp(tp->obj->meta.ns, ns) == 0 &&
                    (!tg->section_name || (port_name && strcmp(tg->section_name, port_name) == 0)))
                    return true;
            }
        }
    }
    return false;
}

int sv_tx_policies_status(struct tx *t)
{
    if (t->n_pols == 0)
        return 0;
    t->st->policies = sv_arena_zalloc(t->a, t->n_pols * sizeof(*t->st->policies));
    if (!t->st->policies)
        return -ENOMEM;
    size_t cap = t->n_gws ? t->n_gws : 1;
    for (size_t i = 0; i < t->n_pols; i++) {
        const struct tx_policy *tp = &t->pols[i];
        struct sv_status_policy *sp = &t->st->policies[t->st->n_policies];
        sp->obj = tp->obj;
        sp->ancestors = sv_arena_zalloc(t->a, cap * sizeof(*sp->ancestors));
        if (!sp->ancestors)
            return -ENOMEM;
        int64_t gen = tp->obj->meta.generation;
        for (size_t r = 0; r < t->st->n_routes; r++) {
            const struct sv_status_route *sr = &t->st->routes[r];
            if (!route_uses(t, sr->obj, tp))
                continue;
            for (size_t p = 0; p < sr->n_parents; p++) {
                const struct sv_parent_ref *ref = &sr->parents[p].ref;
                const char *gns = ref->ns ? ref->ns : sr->obj->meta.ns;
                bool dup = false;
                for (size_t k = 0; k < sp->n_ancestors && !dup; k++)
                    dup = strcmp(sp->ancestors[k].ref.ns, gns) == 0 &&
                          strcmp(sp->ancestors[k].ref.name, ref->name) == 0;
                if (dup)
                    continue;
                SV_ASSERT(sp->n_ancestors < cap); /* parents are our Gateways, deduplicated */
                struct sv_status_policy_ancestor *a = &sp->ancestors[sp->n_ancestors++];
                a->ref = (struct sv_parent_ref){.group = SV_GATEWAY_API_GROUP,
                                                .kind = "Gateway",
                                                .ns = gns,
                                                .name = ref->name};
                a->controller_name = t->controller;
                if (tp->conflicted)
                    sv_tx_cond(t, &a->conds, "Accepted", false, "Conflicted", gen,
                               "an older BackendTLSPolicy targets the same Service and section");
                else
                    sv_tx_cond(t, &a->conds, "Accepted", tp->valid, tp->accepted_reason, gen,
                               "%s", tp->accepted_msg);
                if (tp->refs_reason)
                    sv_tx_cond(t, &a->conds, "ResolvedRefs", false, tp->refs_reason, gen, "%s",
                               tp->refs_msg);
                else
                    sv_tx_cond(t, &a->conds, "ResolvedRefs", true, "ResolvedRefs", gen,
                               "References resolved");
            }
        }
        if (sp->n_ancestors)
            t->st->n_policies++;
    }
    return t->nomem ? -ENOMEM : 0;
}

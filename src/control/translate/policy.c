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
 * Control thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"
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
        if (!tp->ca_pem)
            tp->ca_pem = pem;
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

int sv_tx_policies_resolve(struct tx *t)
{
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

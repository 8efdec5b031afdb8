/* Translation entry point: GatewayClasses, Gateways and their listeners (binds, conflicts,
 * certificates, status), then routes (route.c), then the builder's finish. */
#include "serval/control/translate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/routing/generation.h"
#include "serval/routing/overlay.h"
#include "serval/tls/tls.h"

#define STATUS_ARENA_BLOCK (16 * 1024)

const char *sv_tx_host_intersect(const char *lh, const char *rh)
{
    if (!lh || !lh[0])
        return rh;
    bool lw = lh[0] == '*' && lh[1] == '.', rw = rh[0] == '*' && rh[1] == '.';
    size_t ll = strlen(lh), rl = strlen(rh);
    if (!lw && !rw)
        return strcasecmp(lh, rh) == 0 ? rh : NULL;
    if (lw && !rw) {
        /* "*.sfx" covers one or more labels before ".sfx". */
        size_t sl = ll - 1; /* ".sfx" */
        return rl > sl && strcasecmp(rh + rl - sl, lh + 1) == 0 ? rh : NULL;
    }
    if (!lw && rw) {
        size_t sl = rl - 1;
        return ll > sl && strcasecmp(lh + ll - sl, rh + 1) == 0 ? lh : NULL;
    }
    /* Both wildcards: the more specific one, if it falls under the other. */
    const char *longer = ll >= rl ? lh : rh, *shorter = ll >= rl ? rh : lh;
    size_t lo = strlen(longer), sh = strlen(shorter);
    if (lo == sh)
        return strcasecmp(longer, shorter) == 0 ? rh : NULL;
    return strcasecmp(longer + lo - (sh - 1), shorter + 1) == 0 ? longer : NULL;
}

/* ---- GatewayClasses ---------------------------------------------------------------------- */

static bool class_accepted(struct tx *t, const char *name)
{
    for (size_t i = 0; i < t->st->n_classes; i++) {
        const struct sv_status_gatewayclass *c = &t->st->classes[i];
        if (strcmp(c->obj->meta.name, name) == 0)
            return strcmp(sv_condition_find(&c->conds, "Accepted")->status, "True") == 0;
    }
    return false;
}

static bool class_ours(struct tx *t, const char *name)
{
    for (size_t i = 0; i < t->st->n_classes; i++) {
        if (strcmp(t->st->classes[i].obj->meta.name, name) == 0)
            return true;
    }
    return false;
}

static int tx_classes(struct tx *t)
{
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_GATEWAYCLASS, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    t->st->classes = sv_arena_zalloc(t->a, (n ? n : 1) * sizeof(*t->st->classes));
    if (!t->st->classes)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct sv_object *o = v[i];
        if (strcmp(o->u.gatewayclass.controller_name, t->controller) != 0)
            continue;
        struct sv_status_gatewayclass *c = &t->st->classes[t->st->n_classes++];
        c->obj = o;
        if (o->u.gatewayclass.has_parameters_ref)
            sv_tx_cond(t, &c->conds, "Accepted", false, "InvalidParameters", o->meta.generation,
                       "parametersRef is not supported by %s", t->controller);
        else
            sv_tx_cond(t, &c->conds, "Accepted", true, "Accepted", o->meta.generation,
                       "Accepted by %s", t->controller);
    }
    return 0;
}

/* ---- Gateways ------------------------------------------------------------------------------ */

static int cmp_gateway_age(const void *a, const void *b)
{
    const struct sv_object *x = *(const struct sv_object *const *)a;
    const struct sv_object *y = *(const struct sv_object *const *)b;
    if (x->meta.creation_ns != y->meta.creation_ns)
        return x->meta.creation_ns < y->meta.creation_ns ? -1 : 1;
    int c = strcmp(x->meta.ns, y->meta.ns);
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

static bool grant_allows(struct tx *t, const char *from_kind, const char *from_ns,
                         const char *to_group, const char *to_kind, const char *to_ns,
                         const char *to_name)
{
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_REFERENCEGRANT, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sv_referencegrant *g = &v[i]->u.referencegrant;
        if (strcmp(v[i]->meta.ns, to_ns) != 0)
            continue;
        bool from_ok = false, to_ok = false;
        for (size_t k = 0; k < g->n_from && !from_ok; k++)
            from_ok = strcmp(g->from[k].group, SV_GATEWAY_API_GROUP) == 0 &&
                      strcmp(g->from[k].kind, from_kind) == 0 &&
                      strcmp(g->from[k].ns, from_ns) == 0;
        for (size_t k = 0; k < g->n_to && !to_ok; k++)
            to_ok = strcmp(g->to[k].group, to_group) == 0 && strcmp(g->to[k].kind, to_kind) == 0 &&
                    (!g->to[k].name || strcmp(g->to[k].name, to_name) == 0);
        if (from_ok && to_ok)
            return true;
    }
    return false;
}

/* Exported to route.c through a tiny wrapper to keep one grant implementation. */
bool sv_tx_grant_allows(struct tx *t, const char *from_kind, const char *from_ns,
                        const char *to_group, const char *to_kind, const char *to_ns,
                        const char *to_name);
bool sv_tx_grant_allows(struct tx *t, const char *from_kind, const char *from_ns,
                        const char *to_group, const char *to_kind, const char *to_ns,
                        const char *to_name)
{
    return grant_allows(t, from_kind, from_ns, to_group, to_kind, to_ns, to_name);
}

static bool pem_like(const struct sv_bytes_kv *kv)
{
    return kv && kv->len > 10 && memmem(kv->data, kv->len, "-----BEGIN", 10) != NULL;
}

/* Check every certificateRef of the listener: a core Secret, permitted, present, holding a PEM
 * certificate chain and a private key that parse and match (sv_tls_cert_check). Fills out[] with
 * the Secrets and returns how many (all refs), or 0 with the ResolvedRefs condition set. */
static size_t listener_certs(struct tx *t, struct tx_gateway *g, struct tx_listener *tl,
                             const struct sv_object **out, size_t max)
{
    /* a ListenerSet's listener refers from the ListenerSet (namespace, ReferenceGrant kind) */
    const struct sv_object *gw = tl->owner ? tl->owner->obj : g->obj;
    const char *from_kind = tl->owner ? "ListenerSet" : "Gateway";
    int64_t gen = gw->meta.generation;
    const struct sv_listener_tls *tls = &tl->l->tls;
    struct sv_condition_set *cs = &tl->status->conds;
    if (!tl->l->has_tls || tls->n_cert_refs == 0) {
        sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                   "HTTPS listener needs tls.certificateRefs");
        return 0;
    }
    if (tls->n_cert_refs > max) {
        sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                   "at most %zu certificateRefs per listener", max);
        return 0;
    }
    for (size_t i = 0; i < tls->n_cert_refs; i++) {
        const struct sv_object_ref *r = &tls->cert_refs[i];
        const char *ns = r->ns ? r->ns : gw->meta.ns;
        if (r->group[0] || strcmp(r->kind, "Secret") != 0) {
            sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                       "certificateRef %s/%s: only core Secrets are supported", r->group,
                       r->kind);
            return 0;
        }
        if (strcmp(ns, gw->meta.ns) != 0 &&
            !grant_allows(t, from_kind, gw->meta.ns, "", "Secret", ns, r->name)) {
            sv_tx_cond(t, cs, "ResolvedRefs", false, "RefNotPermitted", gen,
                       "Secret %s/%s: no ReferenceGrant allows it", ns, r->name);
            return 0;
        }
        const struct sv_object *s = sv_store_get(t->store, SV_KIND_SECRET, ns, r->name);
        if (!s) {
            sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                       "Secret %s/%s not found", ns, r->name);
            return 0;
        }
        if (!pem_like(s->u.secret.tls_crt) || !pem_like(s->u.secret.tls_key)) {
            sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                       "Secret %s/%s: tls.crt and tls.key must hold PEM data", ns, r->name);
            return 0;
        }
        char why[160];
        if (sv_tls_cert_check(s->u.secret.tls_crt->data, s->u.secret.tls_crt->len,
                              s->u.secret.tls_key->data, s->u.secret.tls_key->len, NULL, why,
                              sizeof(why)) != 0) {
            sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCertificateRef", gen,
                       "Secret %s/%s: %s", ns, r->name, why);
            return 0;
        }
        out[i] = s;
    }
    return tls->n_cert_refs;
}

/* The frontend TLS settings that apply to <port>: its perPort entry, else the default. */
static const struct sv_frontend_tls *frontend_for(const struct sv_gateway *gw, int32_t port)
{
    for (size_t i = 0; i < gw->n_frontend_ports; i++) {
        if (gw->frontend_ports[i].port == port)
            return &gw->frontend_ports[i].tls;
    }
    return &gw->frontend_default;
}

/* Client certificate validation of an HTTPS listener (Gateway spec.tls.frontend): every
 * caCertificateRef must be a core ConfigMap, permitted (ReferenceGrant across namespaces),
 * present, with a ca.crt that parses. The valid bundles are concatenated into *pem (status
 * arena). Returns 1 with *pem, *len and *optional set when the listener validates client
 * certificates, 0 when it does not, -1 when no reference is usable (ResolvedRefs False with the
 * reason of the first bad reference, Accepted False NoValidCACertificate), -ENOMEM. */
static int listener_client_ca(struct tx *t, struct tx_gateway *g, struct tx_listener *tl,
                              const uint8_t **pem, size_t *len, bool *optional)
{
    const struct sv_object *gw = g->obj;
    int64_t gen = gw->meta.generation;
    struct sv_condition_set *cs = &tl->status->conds;
    const struct sv_frontend_tls *fe = frontend_for(&gw->u.gateway, tl->l->port);
    *pem = NULL;
    *len = 0;
    *optional = fe->mode == SV_FRONTEND_ALLOW_INSECURE_FALLBACK;
    if (!fe->has_validation)
        return 0;
    if (fe->mode == SV_FRONTEND_MODE_UNSUPPORTED) {
        sv_tx_cond(t, cs, "Accepted", false, "UnsupportedValue", gen,
                   "tls.frontend validation mode %s is not supported", fe->mode_raw);
        return -1;
    }
    const char **ok = sv_arena_zalloc(t->a, (fe->n_ca_refs + 1) * sizeof(*ok));
    if (!ok)
        return -ENOMEM;
    size_t n_ok = 0, total = 0;
    bool bad = false;
    for (size_t i = 0; i < fe->n_ca_refs; i++) {
        const struct sv_object_ref *r = &fe->ca_refs[i];
        const char *ns = r->ns ? r->ns : gw->meta.ns;
        const char *reason = NULL;
        char msg[400];
        const struct sv_object *cm = NULL;
        const char *crt = NULL;
        if (r->group[0] || strcmp(r->kind, "ConfigMap") != 0) {
            reason = "InvalidCACertificateKind";
            snprintf(msg, sizeof(msg), "caCertificateRef %s/%s %s: only core ConfigMaps are "
                     "supported", r->group[0] ? r->group : "core", r->kind, r->name);
        } else if (strcmp(ns, gw->meta.ns) != 0 &&
                   !grant_allows(t, "Gateway", gw->meta.ns, "", "ConfigMap", ns, r->name)) {
            reason = "RefNotPermitted";
            snprintf(msg, sizeof(msg), "ConfigMap %s/%s: no ReferenceGrant allows it", ns,
                     r->name);
        } else if (!(cm = sv_store_get(t->store, SV_KIND_CONFIGMAP, ns, r->name))) {
            reason = "InvalidCACertificateRef";
            snprintf(msg, sizeof(msg), "ConfigMap %s/%s not found", ns, r->name);
        } else if (!(crt = sv_configmap_get(&cm->u.configmap, "ca.crt"))) {
            reason = "InvalidCACertificateRef";
            snprintf(msg, sizeof(msg), "ConfigMap %s/%s has no ca.crt", ns, r->name);
        } else {
            char why[160];
            if (sv_tls_ca_check(crt, strlen(crt), why, sizeof(why)) < 0) {
                reason = "InvalidCACertificateRef";
                snprintf(msg, sizeof(msg), "ConfigMap %s/%s: %s", ns, r->name, why);
            }
        }
        if (reason) {
            if (!bad)
                sv_tx_cond(t, cs, "ResolvedRefs", false, reason, gen, "%s", msg);
            bad = true;
            continue;
        }
        ok[n_ok++] = crt;
        total += strlen(crt) + 1;
    }
    if (n_ok == 0) {
        if (!bad)
            sv_tx_cond(t, cs, "ResolvedRefs", false, "InvalidCACertificateRef", gen,
                       "tls.frontend validation has no caCertificateRefs");
        sv_tx_cond(t, cs, "Accepted", false, "NoValidCACertificate", gen,
                   "no valid CA certificate for client certificate validation");
        return -1;
    }
    uint8_t *buf = sv_arena_alloc(t->a, total + 1);
    if (!buf)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n_ok; i++) {
        size_t l = strlen(ok[i]);
        memcpy(buf + off, ok[i], l);
        off += l;
        buf[off++] = '\n';
    }
    buf[off] = '\0';
    *pem = buf;
    *len = off;
    return 1;
}

static bool same_host(const char *a, const char *b)
{
    return strcasecmp(a ? a : "", b ? b : "") == 0;
}

static bool same_addr(const struct tx_gateway *a, const struct tx_gateway *b)
{
    if (a->addr.sa.sa_family != b->addr.sa.sa_family)
        return false;
    if (a->addr.sa.sa_family == AF_INET)
        return a->addr.in.sin_addr.s_addr == b->addr.in.sin_addr.s_addr;
    return memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Within one Gateway, may listener b (index j) make listener a (index i) conflicted? Between the
 * Gateway's own listeners nobody wins; a ListenerSet's listener loses to every valid listener
 * before it (the Gateway's own, then older ListenerSets: g->ls is in precedence order) and never
 * beats one. */
static bool conflict_applies(const struct tx_listener *a, size_t i, const struct tx_listener *b,
                             size_t j)
{
    if (!a->owner)
        return !b->owner;
    return j < i && b->accepted;
}

/* Mark listeners that cannot share a port. Within one Gateway nobody wins (same port with another
 * protocol, or the same port and hostname), except for ListenerSet listeners (conflict_applies).
 * Every Gateway shares --bind, so across Gateways the same port and hostname are merged into one
 * listener (their routes are served together), and only a protocol clash refuses the younger
 * Gateway's listener. */
static void tx_conflicts(struct tx *t)
{
    for (size_t gi = 0; gi < t->n_gws; gi++) {
        struct tx_gateway *g = &t->gws[gi];
        for (size_t i = 0; i < g->n_ls; i++) {
            struct tx_listener *a = &g->ls[i];
            /* a ListenerSet listener is reported as conflicted even when invalid otherwise */
            if (!a->accepted && !(a->owner && g->accepted))
                continue;
            const char *why = NULL;
            for (size_t j = 0; j < g->n_ls && !why; j++) {
                struct tx_listener *b = &g->ls[j];
                if (j == i || b->l->port != a->l->port || !conflict_applies(a, i, b, j))
                    continue;
                if (b->l->protocol != a->l->protocol)
                    why = "ProtocolConflict";
                else if (same_host(a->l->hostname, b->l->hostname))
                    why = "HostnameConflict";
            }
            for (size_t gj = 0; gj < gi && !why; gj++) {
                struct tx_gateway *h = &t->gws[gj];
                if (!same_addr(g, h))
                    continue; /* own address (--gateway-address-pool): no sharing */
                for (size_t j = 0; j < h->n_ls && !why; j++) {
                    struct tx_listener *b = &h->ls[j];
                    if (b->accepted && b->l->port == a->l->port &&
                        b->l->protocol != a->l->protocol)
                        why = "ProtocolConflict";
                }
            }
            if (why) {
                int64_t gen = sv_tx_listener_gen(g, a);
                sv_tx_cond(t, &a->status->conds, "Conflicted", true, why, gen,
                           "another listener uses port %d %s", a->l->port,
                           strcmp(why, "ProtocolConflict") == 0 ? "with another protocol"
                                                                 : "with the same hostname");
                if (a->owner) { /* it loses now, so that it does not beat later listeners */
                    a->accepted = false;
                    sv_tx_cond(t, &a->status->conds, "Accepted", false, why, gen,
                               "a listener with precedence uses port %d", a->l->port);
                }
            }
        }
    }
    /* Apply after the scan so that within a Gateway both sides of a conflict are refused. */
    for (size_t gi = 0; gi < t->n_gws; gi++) {
        for (size_t i = 0; i < t->gws[gi].n_ls; i++) {
            struct tx_listener *a = &t->gws[gi].ls[i];
            const struct sv_condition *c = sv_condition_find(&a->status->conds, "Conflicted");
            if (c && strcmp(c->status, "True") == 0)
                a->accepted = false;
        }
    }
}

/* A programmed listener of an older Gateway on the same address with the same port, protocol
 * and hostname, if any: its builder listener is shared. */
static const struct tx_listener *merged_with(struct tx *t, const struct tx_gateway *g,
                                             const struct tx_listener *tl)
{
    for (size_t gi = 0; gi < t->n_gws; gi++) {
        if (&t->gws[gi] != g && !same_addr(&t->gws[gi], g))
            continue;
        for (size_t j = 0; j < t->gws[gi].n_ls; j++) {
            const struct tx_listener *o = &t->gws[gi].ls[j];
            if (o == tl)
                return NULL;
            if (o->programmed && o->l->port == tl->l->port &&
                o->l->protocol == tl->l->protocol && same_host(o->l->hostname, tl->l->hostname))
                return o;
        }
    }
    return NULL;
}

static int tx_listener_status(struct tx *t, struct tx_gateway *g, size_t i)
{
    struct tx_listener *tl = &g->ls[i];
    const struct sv_listener *l = tl->l;
    struct sv_status_listener *ls = tl->status;
    int64_t gen = sv_tx_listener_gen(g, tl);
    tl->builder_index = -1;
    tl->host = l->hostname ? l->hostname : "";
    ls->name = l->name;
    bool http = l->protocol == SV_PROTO_HTTP || l->protocol == SV_PROTO_HTTPS;
    /* TLS passthrough: the data plane routes by SNI and relays untouched (TLSRoute) */
    bool passthrough =
        l->protocol == SV_PROTO_TLS && l->has_tls && l->tls.mode == SV_TLS_PASSTHROUGH;
    const char *kind = passthrough ? "TLSRoute" : "HTTPRoute";
    ls->supported_kinds =
        sv_arena_zalloc(t->a, (l->n_kinds ? l->n_kinds : 1) * sizeof(*ls->supported_kinds));
    if (!ls->supported_kinds)
        return -ENOMEM;
    bool bad_kind = false;
    if (l->n_kinds == 0) {
        if (http || passthrough) {
            ls->supported_kinds[0].group = SV_GATEWAY_API_GROUP;
            ls->supported_kinds[0].kind = kind;
            ls->n_supported_kinds = 1;
        }
    } else {
        for (size_t k = 0; k < l->n_kinds; k++) {
            if ((http || passthrough) && strcmp(l->kinds[k].group, SV_GATEWAY_API_GROUP) == 0 &&
                strcmp(l->kinds[k].kind, kind) == 0) {
                if (ls->n_supported_kinds == 0) /* listed twice: report once */
                    ls->supported_kinds[ls->n_supported_kinds++] = l->kinds[k];
            } else {
                bad_kind = true;
            }
        }
    }
    tl->http_routes = http && ls->n_supported_kinds > 0;
    tl->passthrough = passthrough;

    if (!http && !passthrough) {
        sv_tx_cond(t, &ls->conds, "Accepted", false, "UnsupportedProtocol", gen,
                   "protocol %s is not supported%s", l->protocol_raw,
                   l->protocol == SV_PROTO_TLS ? " (only with tls.mode Passthrough)" : "");
    } else if (l->from == SV_FROM_UNSUPPORTED) {
        sv_tx_cond(t, &ls->conds, "Accepted", false, "UnsupportedValue", gen,
                   "allowedRoutes.namespaces.from %s is not supported", l->from_raw);
    } else if (l->protocol == SV_PROTO_HTTPS && l->has_tls && l->tls.mode != SV_TLS_TERMINATE) {
        sv_tx_cond(t, &ls->conds, "Accepted", false, "UnsupportedValue", gen,
                   "tls.mode %s is not supported on HTTPS listeners", l->tls.mode_raw);
    } else {
        sv_tx_cond(t, &ls->conds, "Accepted", true, "Accepted", gen, "Listener accepted");
        tl->accepted = true;
    }
    if (bad_kind)
        sv_tx_cond(t, &ls->conds, "ResolvedRefs", false, "InvalidRouteKinds", gen,
                   "only gateway.networking.k8s.io/%s is supported", kind);
    else
        sv_tx_cond(t, &ls->conds, "ResolvedRefs", true, "ResolvedRefs", gen, "References resolved");
    return 0;
}

/* Fill binds/listeners of the builder for accepted, unconflicted listeners. */
static int tx_program_listeners(struct tx *t, struct tx_gateway *g)
{
    for (size_t i = 0; i < g->n_ls; i++) {
        struct tx_listener *tl = &g->ls[i];
        struct sv_status_listener *ls = tl->status;
        int64_t gen = sv_tx_listener_gen(g, tl);
        if (!sv_condition_find(&ls->conds, "Conflicted"))
            sv_tx_cond(t, &ls->conds, "Conflicted", false, "NoConflicts", gen, "No conflicts");
        const struct sv_object *secrets[SV_TLS_MAX_CERTS_PER_LISTENER];
        size_t n_secrets = 0;
        int bind = -1;
        const uint8_t *client_ca = NULL;
        size_t client_ca_len = 0;
        bool client_ca_optional = false;
        if (tl->accepted && tl->l->protocol == SV_PROTO_HTTPS) {
            n_secrets = listener_certs(t, g, tl, secrets, SV_TLS_MAX_CERTS_PER_LISTENER);
            if (!n_secrets)
                tl->accepted = false; /* not programmed; routes still counted */
        }
        if (tl->accepted && tl->l->protocol == SV_PROTO_HTTPS) {
            int crc = listener_client_ca(t, g, tl, &client_ca, &client_ca_len,
                                         &client_ca_optional);
            if (crc == -ENOMEM)
                return -ENOMEM;
            if (crc < 0)
                tl->accepted = false; /* refuses TLS: not programmed */
        }
        const char *why = NULL;
        const struct tx_listener *shared = NULL;
        const struct sv_condition *cf = sv_condition_find(&ls->conds, "Conflicted");
        if (!tl->accepted || (!tl->http_routes && !(tl->passthrough && ls->n_supported_kinds))) {
            why = tl->owner && strcmp(cf->status, "True") == 0 ? cf->reason : "Invalid";
        } else if ((shared = merged_with(t, g, tl)) != NULL) {
            tl->builder_index = shared->builder_index;
            tl->programmed = true;
            n_secrets = 0; /* the older Gateway's certificate serves this hostname */
        } else {
            union sv_route_sockaddr sa = g->addr;
            if (sa.sa.sa_family == AF_INET)
                sa.in.sin_port = htons((uint16_t)tl->l->port);
            else
                sa.in6.sin6_port = htons((uint16_t)tl->l->port);
            enum sv_route_proto proto = tl->passthrough ? SV_ROUTE_PROTO_TLS_PASSTHROUGH
                                        : tl->l->protocol == SV_PROTO_HTTPS ? SV_ROUTE_PROTO_HTTPS
                                                                            : SV_ROUTE_PROTO_HTTP;
            socklen_t salen = sa.sa.sa_family == AF_INET ? sizeof(sa.in) : sizeof(sa.in6);
            bind = sv_route_builder_add_bind(t->b, &sa.sa, salen, proto);
            if (bind == -ENOMEM)
                return -ENOMEM;
            char name[900];
            if (tl->owner)
                snprintf(name, sizeof(name), "%s/%s/%s/%s/%s", g->obj->meta.ns,
                         g->obj->meta.name, tl->owner->obj->meta.ns, tl->owner->obj->meta.name,
                         tl->l->name);
            else
                snprintf(name, sizeof(name), "%s/%s/%s", g->obj->meta.ns, g->obj->meta.name,
                         tl->l->name);
            int li = bind < 0 ? bind
                              : sv_route_builder_add_listener(t->b, (uint32_t)bind,
                                                              sv_str_cstr(name),
                                                              sv_str_cstr(tl->host));
            if (li == -ENOMEM)
                return -ENOMEM;
            if (li < 0) {
                sv_warn("translate", "listener %s not programmed: %s", name,
                        sv_route_builder_error(t->b));
                why = "Invalid";
            } else {
                tl->builder_index = li;
                tl->programmed = true;
            }
        }
        if (why) {
            sv_tx_cond(t, &ls->conds, "Programmed", false, why, gen, "Listener is not programmed");
        } else {
            sv_tx_cond(t, &ls->conds, "Programmed", true, "Programmed", gen, "Listener programmed");
            for (size_t j = 0; j < n_secrets && bind >= 0; j++) {
                const struct sv_object *secret = secrets[j];
                struct sv_status *st = t->st;
                SV_ASSERT(st->n_certs < t->cap_certs);
                struct sv_status_tls_cert *c = &st->certs[st->n_certs++];
                c->listener = (uint32_t)tl->builder_index;
                c->bind = (uint32_t)bind;
                c->hostname = tl->host;
                c->listener_name = sv_tx_strdup(t, tl->l->name);
                c->cert_pem = secret->u.secret.tls_crt->data;
                c->cert_len = secret->u.secret.tls_crt->len;
                c->key_pem = secret->u.secret.tls_key->data;
                c->key_len = secret->u.secret.tls_key->len;
                c->client_ca_pem = client_ca;
                c->client_ca_len = client_ca_len;
                c->client_ca_optional = client_ca_optional;
            }
        }
    }
    return 0;
}

static void tx_gateway_addresses(struct tx *t, struct tx_gateway *g, bool *unsupported,
                                 bool *unusable)
{
    const struct sv_gateway *gw = &g->obj->u.gateway;
    struct sv_status_gateway *s = g->status;
    s->addresses = sv_arena_zalloc(t->a, (gw->n_addresses + 1) * sizeof(*s->addresses));
    if (!s->addresses) {
        t->nomem = true;
        return;
    }
    for (size_t i = 0; i < gw->n_addresses; i++) {
        const struct sv_gateway_address *a = &gw->addresses[i];
        if (strcmp(a->type, "IPAddress") != 0) {
            *unsupported = true;
            continue;
        }
        if (!a->value || !a->value[0])
            continue;
        union sv_route_sockaddr sa;
        bool ok = false;
        if (t->pool)
            ok = inet_pton(AF_INET, a->value, &sa.in.sin_addr) == 1 &&
                 sa.in.sin_addr.s_addr == g->addr.in.sin_addr.s_addr;
        else if (inet_pton(AF_INET, a->value, &sa.in.sin_addr) == 1)
            ok = t->bind.sa.sa_family == AF_INET &&
                 (t->bind_wildcard || sa.in.sin_addr.s_addr == t->bind.in.sin_addr.s_addr);
        else if (inet_pton(AF_INET6, a->value, &sa.in6.sin6_addr) == 1)
            ok = t->bind.sa.sa_family == AF_INET6 &&
                 (t->bind_wildcard ||
                  memcmp(&sa.in6.sin6_addr, &t->bind.in6.sin6_addr, sizeof(sa.in6.sin6_addr)) == 0);
        if (!ok) {
            *unusable = true;
            continue;
        }
        s->addresses[s->n_addresses].type = "IPAddress";
        s->addresses[s->n_addresses++].value = a->value;
    }
    if (s->n_addresses == 0 && !*unsupported && !*unusable) {
        s->addresses[0].type = "IPAddress";
        s->addresses[0].value = g->addr_text;
        s->n_addresses = 1;
    }
}

static uint32_t fnv1a(const char *s, uint32_t h)
{
    for (size_t i = 0; s && s[i] && i < 4096; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool pool_has(const struct tx *t, uint32_t a)
{
    return a - t->pool_base < t->pool_n;
}

/* Each Gateway's address: --bind, or with --gateway-address-pool an address of its own (an
 * IPAddress of spec.addresses inside the pool, else hash of namespace/name with linear probing
 * over the addresses older Gateways took). Gateways are in age order, so an address stays put
 * while the Gateway exists unless an older Gateway claims it explicitly. */
static int tx_assign_addresses(struct tx *t)
{
    uint32_t *used = sv_arena_zalloc(t->a, (t->n_gws ? t->n_gws : 1) * sizeof(*used));
    if (!used)
        return -ENOMEM;
    for (size_t i = 0; i < t->n_gws; i++) {
        struct tx_gateway *g = &t->gws[i];
        const struct sv_gateway *gw = &g->obj->u.gateway;
        if (!t->pool) {
            g->addr = t->bind;
            g->addr_text = t->bind_text;
            continue;
        }
        uint32_t pick = 0;
        bool have = false;
        for (size_t k = 0; k < gw->n_addresses && !have; k++) {
            const struct sv_gateway_address *a = &gw->addresses[k];
            struct in_addr in;
            if (strcmp(a->type, "IPAddress") == 0 && a->value &&
                inet_pton(AF_INET, a->value, &in) == 1 && pool_has(t, ntohl(in.s_addr))) {
                pick = ntohl(in.s_addr);
                have = true;
            }
        }
        if (!have) {
            uint32_t h = fnv1a(g->obj->meta.ns, 2166136261u);
            h = fnv1a("/", h);
            h = fnv1a(g->obj->meta.name, h);
            uint32_t slot = h % t->pool_n;
            /* at most i addresses are taken, so i + 1 probes find a free one (bounded) */
            for (size_t probe = 0; probe <= i && probe < t->pool_n; probe++) {
                pick = t->pool_base + (uint32_t)((slot + probe) % t->pool_n);
                bool taken = false;
                for (size_t j = 0; j < i && !taken; j++)
                    taken = used[j] == pick;
                if (!taken)
                    break;
            }
        }
        used[i] = pick;
        memset(&g->addr, 0, sizeof(g->addr));
        g->addr.in.sin_family = AF_INET;
        g->addr.in.sin_addr.s_addr = htonl(pick);
        char text[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &g->addr.in.sin_addr, text, sizeof(text)))
            return -EINVAL;
        g->addr_text = sv_tx_strdup(t, text);
        if (!g->addr_text)
            return -ENOMEM;
    }
    return 0;
}

/* spec.tls.backend.clientCertificateRef: a core Secret (same namespace, or allowed by a
 * ReferenceGrant) holding a certificate and key that match. Sets the Gateway's ResolvedRefs. */
static void backend_client_cert(struct tx *t, struct tx_gateway *g)
{
    const struct sv_object *gw = g->obj;
    const struct sv_object_ref *r = &gw->u.gateway.backend_client_cert;
    const char *ns = r->ns ? r->ns : gw->meta.ns;
    int64_t gen = gw->meta.generation;
    struct sv_condition_set *cs = &g->status->conds;
    const struct sv_object *s = NULL;
    char why[160] = "";
    const char *reason = "InvalidClientCertificateRef";
    if (r->group[0] || strcmp(r->kind, "Secret") != 0)
        snprintf(why, sizeof(why), "clientCertificateRef %s/%s: only core Secrets are supported",
                 r->group, r->kind);
    else if (strcmp(ns, gw->meta.ns) != 0 &&
             !grant_allows(t, "Gateway", gw->meta.ns, "", "Secret", ns, r->name)) {
        snprintf(why, sizeof(why), "Secret %s/%s: no ReferenceGrant allows it", ns, r->name);
        reason = "RefNotPermitted";
    } else if (!(s = sv_store_get(t->store, SV_KIND_SECRET, ns, r->name)))
        snprintf(why, sizeof(why), "Secret %s/%s not found", ns, r->name);
    else if (!pem_like(s->u.secret.tls_crt) || !pem_like(s->u.secret.tls_key))
        snprintf(why, sizeof(why), "Secret %s/%s: tls.crt and tls.key must hold PEM data", ns,
                 r->name);
    else {
        char e[120];
        if (sv_tls_cert_check(s->u.secret.tls_crt->data, s->u.secret.tls_crt->len,
                              s->u.secret.tls_key->data, s->u.secret.tls_key->len, NULL, e,
                              sizeof(e)) != 0)
            snprintf(why, sizeof(why), "Secret %s/%s: %s", ns, r->name, e);
    }
    if (why[0])
        sv_tx_cond(t, cs, "ResolvedRefs", false, reason, gen, "%s", why);
    else
        sv_tx_cond(t, cs, "ResolvedRefs", true, "ResolvedRefs", gen, "References resolved");
    g->backend_cert = why[0] ? NULL : s; /* presented to BackendTLSPolicy backends (policy.c) */
}

/* Whether spec.tls.frontend lets clients without a valid certificate in anywhere. */
static bool insecure_fallback(const struct sv_gateway *gw)
{
    bool any = gw->frontend_default.has_validation &&
               gw->frontend_default.mode == SV_FRONTEND_ALLOW_INSECURE_FALLBACK;
    for (size_t i = 0; i < gw->n_frontend_ports && !any; i++)
        any = gw->frontend_ports[i].tls.has_validation &&
              gw->frontend_ports[i].tls.mode == SV_FRONTEND_ALLOW_INSECURE_FALLBACK;
    return any;
}

static int tx_gateways(struct tx *t)
{
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_GATEWAY, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    const struct sv_object **ours = sv_arena_zalloc(t->a, (n ? n : 1) * sizeof(*ours));
    if (!ours)
        return -ENOMEM;
    size_t k = 0, n_listeners = 0;
    for (size_t i = 0; i < n; i++) {
        if (class_ours(t, v[i]->u.gateway.class_name)) {
            ours[k++] = v[i];
            for (size_t j = 0; j < v[i]->u.gateway.n_listeners; j++) {
                const struct sv_listener *l = &v[i]->u.gateway.listeners[j];
                n_listeners += l->has_tls && l->tls.n_cert_refs ? l->tls.n_cert_refs : 1;
            }
        }
    }
    qsort(ours, k, sizeof(*ours), cmp_gateway_age);
    t->gws = sv_arena_zalloc(t->a, (k ? k : 1) * sizeof(*t->gws));
    t->st->gateways = sv_arena_zalloc(t->a, (k ? k : 1) * sizeof(*t->st->gateways));
    if (!t->gws || !t->st->gateways)
        return -ENOMEM;
    t->n_gws = k;
    t->st->n_gateways = k;
    for (size_t i = 0; i < k; i++)
        t->gws[i].obj = ours[i];
    if (sv_tx_lsets_collect(t, &n_listeners) != 0)
        return -ENOMEM;
    t->cap_certs = n_listeners;
    t->st->certs = sv_arena_zalloc(t->a, (n_listeners ? n_listeners : 1) * sizeof(*t->st->certs));
    if (!t->st->certs)
        return -ENOMEM;
    for (size_t i = 0; i < k; i++) {
        struct tx_gateway *g = &t->gws[i];
        const struct sv_gateway *gw = &ours[i]->u.gateway;
        g->status = &t->st->gateways[i];
        g->status->obj = ours[i];
        g->n_own = gw->n_listeners;
        g->n_ls = g->n_own + g->n_lset;
        g->ls = sv_arena_zalloc(t->a, (g->n_ls ? g->n_ls : 1) * sizeof(*g->ls));
        g->status->listeners =
            sv_arena_zalloc(t->a, (g->n_own ? g->n_own : 1) * sizeof(*g->status->listeners));
        if (!g->ls || !g->status->listeners)
            return -ENOMEM;
        g->status->n_listeners = g->n_own;
        g->accepted = class_accepted(t, gw->class_name);
        for (size_t j = 0; j < g->n_own; j++) {
            g->ls[j].l = &gw->listeners[j];
            g->ls[j].status = &g->status->listeners[j];
        }
        if (sv_tx_lsets_fill(t, g) != 0)
            return -ENOMEM;
        for (size_t j = 0; j < g->n_ls; j++) {
            if (tx_listener_status(t, g, j) != 0)
                return -ENOMEM;
            if (!g->accepted)
                g->ls[j].accepted = false;
        }
    }
    int arc = tx_assign_addresses(t);
    if (arc != 0)
        return arc;
    tx_conflicts(t);
    for (size_t i = 0; i < k; i++) {
        struct tx_gateway *g = &t->gws[i];
        int64_t gen = g->obj->meta.generation;
        struct sv_condition_set *cs = &g->status->conds;
        bool unsupported = false, unusable = false;
        tx_gateway_addresses(t, g, &unsupported, &unusable);
        if (!g->accepted) {
            for (size_t j = 0; j < g->n_ls; j++)
                g->ls[j].accepted = false;
        }
        if (tx_program_listeners(t, g) != 0)
            return -ENOMEM;
        /* A listener is valid when Accepted, not Conflicted and its references resolve. */
        size_t valid = 0;
        for (size_t j = 0; j < g->n_own; j++) {
            const struct sv_condition_set *lc = &g->ls[j].status->conds;
            const struct sv_condition *cf = sv_condition_find(lc, "Conflicted");
            valid += strcmp(sv_condition_find(lc, "Accepted")->status, "True") == 0 &&
                     strcmp(sv_condition_find(lc, "ResolvedRefs")->status, "True") == 0 &&
                     !(cf && strcmp(cf->status, "True") == 0);
        }
        if (!g->accepted) {
            sv_tx_cond(t, cs, "Accepted", false, "Invalid", gen,
                       "GatewayClass %s is not accepted", g->obj->u.gateway.class_name);
            sv_tx_cond(t, cs, "Programmed", false, "Invalid", gen, "Gateway is not accepted");
            continue;
        }
        if (g->obj->u.gateway.has_parameters_ref)
            sv_tx_cond(t, cs, "Accepted", false, "InvalidParameters", gen,
                       "infrastructure.parametersRef %s/%s is not supported",
                       g->obj->u.gateway.parameters_ref.kind, g->obj->u.gateway.parameters_ref.name);
        else if (unsupported)
            sv_tx_cond(t, cs, "Accepted", false, "UnsupportedAddress", gen,
                       "only IPAddress addresses are supported");
        else if (valid == 0)
            sv_tx_cond(t, cs, "Accepted", false, "ListenersNotValid", gen, "no valid listener");
        else if (valid < g->n_own)
            sv_tx_cond(t, cs, "Accepted", true, "ListenersNotValid", gen,
                       "%zu of %zu listeners are not valid", g->n_own - valid, g->n_own);
        else
            sv_tx_cond(t, cs, "Accepted", true, "Accepted", gen, "Gateway accepted");
        bool programmed = false;
        for (size_t j = 0; j < g->n_own; j++)
            programmed = programmed || g->ls[j].programmed;
        if (unusable)
            sv_tx_cond(t, cs, "Programmed", false, "AddressNotUsable", gen,
                       "requested address is not usable with %s %s",
                       t->pool ? "--gateway-address-pool, this Gateway has" : "--bind",
                       t->pool ? g->addr_text : t->bind_text);
        else if (strcmp(sv_condition_find(cs, "Accepted")->status, "True") != 0 || !programmed)
            sv_tx_cond(t, cs, "Programmed", false, "Invalid", gen, "Gateway is not programmed");
        else
            sv_tx_cond(t, cs, "Programmed", true, "Programmed", gen, "Gateway programmed");
        if (g->obj->u.gateway.has_backend_client_cert)
            backend_client_cert(t, g);
        if (insecure_fallback(&g->obj->u.gateway))
            sv_tx_cond(t, cs, "InsecureFrontendValidationMode", true, "ConfigurationChanged", gen,
                       "tls.frontend uses AllowInsecureFallback: clients without a valid "
                       "certificate are let in");
    }
    for (size_t i = 0; i < k; i++)
        sv_tx_lsets_status(t, &t->gws[i]);
    return 0;
}

/* ---- EndpointSlice index -------------------------------------------------------------------- */

static int cmp_slice(const void *a, const void *b)
{
    const struct sv_object *x = *(const struct sv_object *const *)a;
    const struct sv_object *y = *(const struct sv_object *const *)b;
    int c = strcmp(x->meta.ns, y->meta.ns);
    if (c)
        return c;
    const char *xs = x->u.endpointslice.service_name, *ys = y->u.endpointslice.service_name;
    c = strcmp(xs ? xs : "", ys ? ys : "");
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

int sv_tx_index_slices(struct tx *t)
{
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_ENDPOINTSLICE, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    t->slices = sv_arena_alloc(t->a, (n ? n : 1) * sizeof(*t->slices));
    if (!t->slices)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->u.endpointslice.service_name)
            t->slices[k++] = v[i];
    }
    qsort(t->slices, k, sizeof(*t->slices), cmp_slice);
    t->n_slices = k;
    t->slices_ok = true;
    return 0;
}

/* ---- entry ------------------------------------------------------------------------------------ */

static int parse_bind(struct tx *t, const char *text)
{
    memset(&t->bind, 0, sizeof(t->bind));
    t->bind_text = text;
    if (inet_pton(AF_INET, text, &t->bind.in.sin_addr) == 1) {
        t->bind.in.sin_family = AF_INET;
        t->bindlen = sizeof(t->bind.in);
        t->bind_wildcard = t->bind.in.sin_addr.s_addr == htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &t->bind.in6.sin6_addr) == 1) {
        t->bind.in6.sin6_family = AF_INET6;
        t->bindlen = sizeof(t->bind.in6);
        t->bind_wildcard = memcmp(&t->bind.in6.sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
        return 0;
    }
    return -EINVAL;
}

static void release_tls_server(void *ctx)
{
    sv_tls_server_unref(ctx);
}

/* One TLS server object per HTTPS bind from the certificates of its programmed listeners,
 * attached to the bind in the generation (routing owns it from then on). */
static int tx_tls(struct tx *t, struct sv_tls_ticket_keys *keys)
{
    const struct sv_status *st = t->st;
    if (st->n_certs == 0)
        return 0;
    if (!keys)
        return -ENOMEM;
    struct sv_tls_listener_spec *specs = calloc(st->n_certs, sizeof(*specs));
    struct sv_tls_cert_pem *pems = calloc(st->n_certs, sizeof(*pems));
    bool *done = calloc(st->n_certs, sizeof(*done));
    const struct sv_status_tls_cert **cas = calloc(st->n_certs, sizeof(*cas));
    int rc = 0;
    if (!specs || !pems || !done || !cas)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < st->n_certs; i++) {
        if (done[i])
            continue;
        uint32_t bind = st->certs[i].bind;
        size_t n_specs = 0, n_pems = 0;
        /* certificates of one listener are consecutive (added together) */
        for (size_t j = i; j < st->n_certs; j++) {
            const struct sv_status_tls_cert *c = &st->certs[j];
            if (c->bind != bind)
                continue;
            done[j] = true;
            if (n_specs == 0 || specs[n_specs - 1].id != c->listener) {
                specs[n_specs++] = (struct sv_tls_listener_spec){
                    .hostname = sv_str_cstr(c->hostname),
                    .id = c->listener,
                    .name = sv_str_cstr(c->listener_name),
                    .certs = &pems[n_pems],
                };
                cas[n_specs - 1] = c; /* its client CA settings */
            }
            pems[n_pems++] = (struct sv_tls_cert_pem){c->cert_pem, c->cert_len, c->key_pem,
                                                      c->key_len};
            specs[n_specs - 1].n_certs++;
        }
        char why[200];
        struct sv_tls_server *srv = sv_tls_server_new(specs, n_specs, keys, why, sizeof(why));
        if (!srv) {
            sv_warn("translate", "HTTPS bind %u has no TLS context: %s", bind, why);
            continue;
        }
        for (size_t k = 0; srv && k < n_specs; k++) {
            const struct sv_status_tls_cert *c = cas[k];
            if (c->client_ca_pem &&
                sv_tls_server_set_client_ca(srv, k, c->client_ca_pem, c->client_ca_len,
                                            c->client_ca_optional) != 0) {
                sv_warn("translate", "HTTPS bind %u: listener %s: client CA bundle does not load",
                        bind, c->listener_name);
                sv_tls_server_unref(srv); /* never serve it without the validation */
                srv = NULL;
            }
        }
        if (!srv)
            continue;
        int arc = sv_route_builder_set_bind_tls(t->b, bind, srv, release_tls_server);
        if (arc != 0) {
            sv_tls_server_unref(srv);
            if (arc == -ENOMEM)
                rc = -ENOMEM;
        }
    }
    free(specs);
    free(pems);
    free(done);
    free(cas);
    return rc;
}

/* "A.B.C.D/P" (8 <= P <= 32): the usable host addresses (network and broadcast excluded up to
 * /30). */
static int parse_pool(struct tx *t, const char *text)
{
    const char *slash = strchr(text, '/');
    char ip[INET_ADDRSTRLEN];
    if (!slash || (size_t)(slash - text) >= sizeof(ip))
        return -EINVAL;
    memcpy(ip, text, (size_t)(slash - text));
    ip[slash - text] = '\0';
    struct in_addr in;
    if (inet_pton(AF_INET, ip, &in) != 1)
        return -EINVAL;
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end || p < 8 || p > 32)
        return -EINVAL;
    uint32_t mask = p == 32 ? 0xffffffffu : ~(0xffffffffu >> p);
    uint32_t net = ntohl(in.s_addr) & mask;
    if (p <= 30) {
        t->pool_base = net + 1;
        t->pool_n = (1u << (32 - p)) - 2;
    } else {
        t->pool_base = net;
        t->pool_n = 1u << (32 - p);
    }
    t->pool = true;
    return 0;
}

/* Free what a translation holds besides its result (the builder unless finished, scratch, memo
 * and per-route lists); the status too when <keep_status> is false. */
static void tx_cleanup(struct tx *t, bool keep_status)
{
    sv_route_builder_free(t->b);
    t->b = NULL;
    if (t->scratch_ok)
        sv_arena_destroy(&t->scratch);
    t->scratch_ok = false;
    free(t->set_filled);
    free(t->memo);
    free(t->route_att);
    free(t->route_counted);
    t->set_filled = NULL;
    t->memo = NULL;
    t->route_att = t->route_counted = NULL;
    if (!keep_status)
        sv_status_free(t->st);
    t->st = NULL;
}

int sv_tx_begin(struct tx *t, struct sv_store *store, const struct sv_translate_opts *opts,
                char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->store = store;
    if (err && errlen)
        err[0] = '\0';
    t->controller = opts && opts->controller_name ? opts->controller_name
                                                  : SV_DEFAULT_CONTROLLER_NAME;
    if (parse_bind(t, opts && opts->bind_addr ? opts->bind_addr : "0.0.0.0") != 0) {
        snprintf(err, errlen, "bind address \"%s\" is not an IP address", opts->bind_addr);
        return -EINVAL;
    }
    if (opts && opts->address_pool && parse_pool(t, opts->address_pool) != 0) {
        snprintf(err, errlen, "gateway address pool \"%s\" is not an IPv4 CIDR (A.B.C.D/8..32)",
                 opts->address_pool);
        return -EINVAL;
    }
    struct sv_arena arena;
    if (sv_arena_init(&arena, STATUS_ARENA_BLOCK, false) != 0)
        return -ENOMEM;
    t->st = sv_arena_zalloc(&arena, sizeof(*t->st));
    if (!t->st) {
        sv_arena_destroy(&arena);
        return -ENOMEM;
    }
    t->st->_arena = arena;
    t->a = &t->st->_arena;
    t->bind_text = sv_tx_strdup(t, t->bind_text);
    int rc = -ENOMEM;
    if (sv_arena_init(&t->scratch, 8192, false) != 0)
        goto fail;
    t->scratch_ok = true;
    t->b = sv_route_builder_new();
    if (!t->b)
        goto fail;
    if ((rc = tx_classes(t)) != 0 || (rc = tx_gateways(t)) != 0 ||
        (rc = sv_tx_policies_resolve(t)) != 0)
        goto fail;
    return 0;
fail:
    if (err && errlen && !err[0])
        snprintf(err, errlen, "translation failed: %s", strerror(-rc));
    tx_cleanup(t, false);
    return rc;
}

void sv_tx_abort(struct tx *t)
{
    tx_cleanup(t, false);
}

int sv_tx_translate(struct sv_store *store, const struct sv_translate_opts *opts,
                    struct sv_tx_rec *rec, struct sv_generation **gen_out,
                    struct sv_status **status_out, char *err, size_t errlen)
{
    struct tx t;
    *gen_out = NULL;
    *status_out = NULL;
    int rc = sv_tx_begin(&t, store, opts, err, errlen);
    if (rc != 0)
        return rc;
    t.rec = rec;
    if ((rc = sv_tx_index_slices(&t)) != 0 || (rc = sv_tx_routes(&t)) != 0 ||
        (rc = sv_tx_policies_status(&t)) != 0)
        goto fail;
    if (t.nomem) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = tx_tls(&t, opts && opts->ticket_keys ? opts->ticket_keys
                                                   : sv_tls_default_ticket_keys())) != 0)
        goto fail;
    char berr[256] = "";
    struct sv_generation *gen = sv_route_builder_finish(t.b, berr, sizeof(berr));
    t.b = NULL;
    if (!gen) {
        snprintf(err, errlen, "building the generation failed: %s", berr);
        rc = -ENOMEM;
        goto fail;
    }
    *gen_out = gen;
    *status_out = t.st;
    tx_cleanup(&t, true);
    return 0;
fail:
    if (err && errlen && !err[0])
        snprintf(err, errlen, "translation failed: %s", strerror(-rc));
    tx_cleanup(&t, false);
    return rc;
}

int sv_translate(struct sv_store *store, const struct sv_translate_opts *opts,
                 struct sv_generation **gen_out, struct sv_status **status_out, char *err,
                 size_t errlen)
{
    return sv_tx_translate(store, opts, NULL, gen_out, status_out, err, errlen);
}

int sv_tx_endpoint_update(struct tx *t, const struct sv_generation *base,
                          struct sv_generation **out, size_t *changed, char *err, size_t errlen);

int sv_translate_endpoints(struct sv_store *store, const struct sv_generation *base,
                           struct sv_generation **gen_out, size_t *sets_changed, char *err,
                           size_t errlen)
{
    struct tx t = {.store = store};
    *gen_out = NULL;
    *sets_changed = 0;
    if (err && errlen)
        err[0] = '\0';
    if (sv_generation_is_overlay(base)) {
        snprintf(err, errlen, "endpoint update over an overlay generation");
        return -EINVAL; /* the caller translates in full */
    }
    struct sv_arena arena;
    if (sv_arena_init(&arena, 4096, false) != 0)
        return -ENOMEM;
    t.a = &arena;
    int rc = sv_tx_index_slices(&t);
    if (rc == 0)
        rc = sv_tx_endpoint_update(&t, base, gen_out, sets_changed, err, errlen);
    sv_arena_destroy(&arena);
    return rc;
}

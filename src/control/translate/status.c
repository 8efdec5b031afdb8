/* Status report: condition helpers, lookups, JSON rendering. */
#include "serval/control/status.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"

char *sv_tx_strdup(struct tx *t, const char *s)
{
    char *p = sv_arena_strndup(t->a, s, strlen(s));
    if (!p)
        t->nomem = true;
    return p ? p : (char *)"";
}

void sv_tx_cond(struct tx *t, struct sv_condition_set *set, const char *type, bool ok,
                const char *reason, int64_t gen, const char *fmt, ...)
{
    struct sv_condition *c = NULL;
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->c[i].type, type) == 0)
            c = &set->c[i];
    }
    if (!c) {
        SV_ASSERT(set->n < SV_STATUS_MAX_CONDITIONS);
        c = &set->c[set->n++];
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->type = type;
    c->status = ok ? "True" : "False";
    c->reason = reason;
    c->message = sv_tx_strdup(t, msg);
    c->observed_generation = gen;
}

const struct sv_condition *sv_condition_find(const struct sv_condition_set *set, const char *type)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->c[i].type, type) == 0)
            return &set->c[i];
    }
    return NULL;
}

void sv_status_free(struct sv_status *st)
{
    if (!st)
        return;
    struct sv_arena a = st->_arena;
    sv_arena_destroy(&a);
}

const struct sv_status_gateway *sv_status_gateway(const struct sv_status *st, const char *ns,
                                                  const char *name)
{
    for (size_t i = 0; i < st->n_gateways; i++) {
        const struct sv_object *o = st->gateways[i].obj;
        if (strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0)
            return &st->gateways[i];
    }
    return NULL;
}

const struct sv_status_route *sv_status_route(const struct sv_status *st, enum sv_kind kind,
                                              const char *ns, const char *name)
{
    for (size_t i = 0; i < st->n_routes; i++) {
        const struct sv_object *o = st->routes[i].obj;
        if (o->kind == kind && strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0)
            return &st->routes[i];
    }
    return NULL;
}

const struct sv_status_policy *sv_status_policy(const struct sv_status *st, const char *ns,
                                                const char *name)
{
    for (size_t i = 0; i < st->n_policies; i++) {
        const struct sv_object *o = st->policies[i].obj;
        if (strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0)
            return &st->policies[i];
    }
    return NULL;
}

const struct sv_status_listener *sv_status_listener(const struct sv_status_gateway *gw,
                                                    const char *name)
{
    for (size_t i = 0; i < gw->n_listeners; i++) {
        if (strcmp(gw->listeners[i].name, name) == 0)
            return &gw->listeners[i];
    }
    return NULL;
}

const struct sv_status_listenerset *sv_status_listenerset(const struct sv_status *st,
                                                          const char *ns, const char *name)
{
    for (size_t i = 0; i < st->n_listenersets; i++) {
        const struct sv_object *o = st->listenersets[i].obj;
        if (strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0)
            return &st->listenersets[i];
    }
    return NULL;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static cJSON *conds_json(const struct sv_condition_set *set)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < set->n; i++) {
        const struct sv_condition *c = &set->c[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "type", c->type);
        cJSON_AddStringToObject(o, "status", c->status);
        cJSON_AddStringToObject(o, "reason", c->reason);
        cJSON_AddStringToObject(o, "message", c->message);
        cJSON_AddNumberToObject(o, "observedGeneration", (double)c->observed_generation);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *named(cJSON *arr, const struct sv_object *o)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    if (o->meta.ns[0])
        cJSON_AddStringToObject(j, "namespace", o->meta.ns);
    cJSON_AddStringToObject(j, "name", o->meta.name);
    if (o->meta.uid)
        cJSON_AddStringToObject(j, "uid", o->meta.uid);
    if (o->source)
        cJSON_AddStringToObject(j, "source", o->source);
    cJSON_AddItemToArray(arr, j);
    return cJSON_AddObjectToObject(j, "status");
}

/* "listeners" array of a Gateway or ListenerSet status object <s>; false when out of memory. */
static bool listeners_json(cJSON *s, const struct sv_status_listener *v, size_t n)
{
    cJSON *ls = cJSON_AddArrayToObject(s, "listeners");
    for (size_t k = 0; ls && k < n; k++) {
        const struct sv_status_listener *l = &v[k];
        cJSON *lj = cJSON_CreateObject();
        if (!lj)
            return false;
        cJSON_AddStringToObject(lj, "name", l->name);
        cJSON *kinds = cJSON_AddArrayToObject(lj, "supportedKinds");
        for (size_t q = 0; kinds && q < l->n_supported_kinds; q++) {
            cJSON *kj = cJSON_CreateObject();
            if (!kj) {
                cJSON_Delete(lj);
                return false;
            }
            cJSON_AddStringToObject(kj, "group", l->supported_kinds[q].group);
            cJSON_AddStringToObject(kj, "kind", l->supported_kinds[q].kind);
            cJSON_AddItemToArray(kinds, kj);
        }
        cJSON_AddNumberToObject(lj, "attachedRoutes", l->attached_routes);
        cJSON_AddItemToObject(lj, "conditions", conds_json(&l->conds));
        cJSON_AddItemToArray(ls, lj);
    }
    return ls != NULL;
}

cJSON *sv_status_to_json(const struct sv_status *st)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON *classes = cJSON_AddArrayToObject(root, "gatewayClasses");
    cJSON *gws = cJSON_AddArrayToObject(root, "gateways");
    cJSON *routes = cJSON_AddArrayToObject(root, "httpRoutes");
    cJSON *tlsroutes = cJSON_AddArrayToObject(root, "tlsRoutes");
    cJSON *lsets = cJSON_AddArrayToObject(root, "listenerSets");
    cJSON *pols = cJSON_AddArrayToObject(root, "backendTLSPolicies");
    if (!classes || !gws || !routes || !tlsroutes || !lsets || !pols)
        goto fail;
    for (size_t i = 0; i < st->n_classes; i++) {
        cJSON *s = named(classes, st->classes[i].obj);
        if (!s || !cJSON_AddItemToObject(s, "conditions", conds_json(&st->classes[i].conds)))
            goto fail;
    }
    for (size_t i = 0; i < st->n_gateways; i++) {
        const struct sv_status_gateway *g = &st->gateways[i];
        cJSON *s = named(gws, g->obj);
        if (!s)
            goto fail;
        cJSON *addrs = cJSON_AddArrayToObject(s, "addresses");
        for (size_t k = 0; addrs && k < g->n_addresses; k++) {
            cJSON *a = cJSON_CreateObject();
            if (!a)
                goto fail;
            cJSON_AddStringToObject(a, "type", g->addresses[k].type);
            cJSON_AddStringToObject(a, "value", g->addresses[k].value);
            cJSON_AddItemToArray(addrs, a);
        }
        cJSON_AddItemToObject(s, "conditions", conds_json(&g->conds));
        if (!listeners_json(s, g->listeners, g->n_listeners))
            goto fail;
        cJSON_AddNumberToObject(s, "attachedListenerSets", g->attached_listener_sets);
    }
    for (size_t i = 0; i < st->n_routes; i++) {
        const struct sv_status_route *r = &st->routes[i];
        /* TLSRoutes share st->routes with HTTPRoutes; their status goes to their own list */
        cJSON *s = named(r->obj->kind == SV_KIND_TLSROUTE ? tlsroutes : routes, r->obj);
        if (!s)
            goto fail;
        cJSON *parents = cJSON_AddArrayToObject(s, "parents");
        for (size_t k = 0; parents && k < r->n_parents; k++) {
            const struct sv_status_route_parent *p = &r->parents[k];
            cJSON *pj = cJSON_CreateObject(), *ref;
            if (!pj)
                goto fail;
            ref = cJSON_AddObjectToObject(pj, "parentRef");
            if (ref) {
                cJSON_AddStringToObject(ref, "group", p->ref.group);
                cJSON_AddStringToObject(ref, "kind", p->ref.kind);
                if (p->ref.ns)
                    cJSON_AddStringToObject(ref, "namespace", p->ref.ns);
                cJSON_AddStringToObject(ref, "name", p->ref.name);
                if (p->ref.section_name)
                    cJSON_AddStringToObject(ref, "sectionName", p->ref.section_name);
                if (p->ref.port)
                    cJSON_AddNumberToObject(ref, "port", p->ref.port);
            }
            cJSON_AddStringToObject(pj, "controllerName", p->controller_name);
            cJSON_AddItemToObject(pj, "conditions", conds_json(&p->conds));
            cJSON_AddItemToArray(parents, pj);
        }
    }
    for (size_t i = 0; i < st->n_listenersets; i++) {
        const struct sv_status_listenerset *l = &st->listenersets[i];
        cJSON *s = named(lsets, l->obj);
        if (!s || !cJSON_AddItemToObject(s, "conditions", conds_json(&l->conds)) ||
            !listeners_json(s, l->listeners, l->n_listeners))
            goto fail;
    }
    for (size_t i = 0; i < st->n_policies; i++) {
        const struct sv_status_policy *p = &st->policies[i];
        cJSON *s = named(pols, p->obj);
        if (!s)
            goto fail;
        cJSON *anc = cJSON_AddArrayToObject(s, "ancestors");
        for (size_t k = 0; anc && k < p->n_ancestors; k++) {
            const struct sv_status_policy_ancestor *a = &p->ancestors[k];
            cJSON *aj = cJSON_CreateObject(), *ref;
            if (!aj)
                goto fail;
            ref = cJSON_AddObjectToObject(aj, "ancestorRef");
            if (ref) {
                cJSON_AddStringToObject(ref, "group", a->ref.group);
                cJSON_AddStringToObject(ref, "kind", a->ref.kind);
                cJSON_AddStringToObject(ref, "namespace", a->ref.ns);
                cJSON_AddStringToObject(ref, "name", a->ref.name);
            }
            cJSON_AddStringToObject(aj, "controllerName", a->controller_name);
            cJSON_AddItemToObject(aj, "conditions", conds_json(&a->conds));
            cJSON_AddItemToArray(anc, aj);
        }
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

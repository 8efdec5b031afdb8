/* ListenerSets (gateway.networking.k8s.io/v1): which ones attach to our Gateways
 * (spec.allowedListeners), their listeners merged behind the Gateway's own (precedence: the
 * Gateway's listeners, then the oldest ListenerSet, then namespace/name), their status and the
 * Gateway's attachedListenerSets. translate.c calls the hooks; route.c resolves parentRefs of
 * kind ListenerSet through sv_tx_parent. Control thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/translate/translate_int.h"
#include "serval/base/assert.h"

int64_t sv_tx_listener_gen(const struct tx_gateway *g, const struct tx_listener *tl)
{
    return tl->owner ? tl->owner->obj->meta.generation : g->obj->meta.generation;
}

static int cmp_age(const void *a, const void *b)
{
    const struct sv_object *x = *(const struct sv_object *const *)a;
    const struct sv_object *y = *(const struct sv_object *const *)b;
    if (x->meta.creation_ns != y->meta.creation_ns)
        return x->meta.creation_ns < y->meta.creation_ns ? -1 : 1;
    int c = strcmp(x->meta.ns, y->meta.ns);
    return c ? c : strcmp(x->meta.name, y->meta.name);
}

static struct tx_gateway *find_gateway(struct tx *t, const char *ns, const char *name)
{
    for (size_t i = 0; i < t->n_gws; i++) {
        const struct sv_object *o = t->gws[i].obj;
        if (strcmp(o->meta.ns, ns) == 0 && strcmp(o->meta.name, name) == 0)
            return &t->gws[i];
    }
    return NULL;
}

static struct tx_gateway *lset_parent(struct tx *t, const struct sv_object *o)
{
    const struct sv_parent_ref *p = &o->u.listenerset.parent;
    if (strcmp(p->group, SV_GATEWAY_API_GROUP) != 0 || strcmp(p->kind, "Gateway") != 0)
        return NULL;
    return find_gateway(t, p->ns ? p->ns : o->meta.ns, p->name);
}

/* Does the Gateway's allowedListeners select a ListenerSet in namespace <ns>? */
static bool lset_allowed(struct tx *t, const struct tx_gateway *g, const char *ns)
{
    const struct sv_gateway *gw = &g->obj->u.gateway;
    switch (gw->ls_from) {
    case SV_LSFROM_SAME:
        return strcmp(ns, g->obj->meta.ns) == 0;
    case SV_LSFROM_ALL:
        return true;
    case SV_LSFROM_SELECTOR: {
        if (!gw->has_ls_selector)
            return false;
        const struct sv_object *n = sv_store_get(t->store, SV_KIND_NAMESPACE, "", ns);
        if (n)
            return sv_label_selector_matches(&gw->ls_selector, n->meta.labels,
                                             n->meta.n_labels);
        struct sv_kv only = {"kubernetes.io/metadata.name", ns};
        return sv_label_selector_matches(&gw->ls_selector, &only, 1);
    }
    default: /* None, or a value we do not know */
        return false;
    }
}

int sv_tx_lsets_collect(struct tx *t, size_t *n_certs)
{
    size_t n;
    const struct sv_object *const *v = sv_store_list(t->store, SV_KIND_LISTENERSET, &n);
    if (!v && sv_store_list_failed(t->store))
        return -ENOMEM;
    const struct sv_object **mine = sv_arena_zalloc(t->a, (n ? n : 1) * sizeof(*mine));
    if (!mine)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (lset_parent(t, v[i]))
            mine[k++] = v[i];
    }
    qsort(mine, k, sizeof(*mine), cmp_age);
    t->lsets = sv_arena_zalloc(t->a, (k ? k : 1) * sizeof(*t->lsets));
    t->st->listenersets = sv_arena_zalloc(t->a, (k ? k : 1) * sizeof(*t->st->listenersets));
    if (!t->lsets || !t->st->listenersets)
        return -ENOMEM;
    t->n_lsets = k;
    t->st->n_listenersets = k;
    for (size_t i = 0; i < k; i++) {
        struct tx_listenerset *x = &t->lsets[i];
        const struct sv_listenerset *spec = &mine[i]->u.listenerset;
        x->obj = mine[i];
        x->status = &t->st->listenersets[i];
        x->status->obj = mine[i];
        x->g = lset_parent(t, mine[i]);
        x->allowed = lset_allowed(t, x->g, mine[i]->meta.ns);
        if (!x->allowed || spec->n_listeners == 0)
            continue;
        x->status->listeners =
            sv_arena_zalloc(t->a, spec->n_listeners * sizeof(*x->status->listeners));
        if (!x->status->listeners)
            return -ENOMEM;
        x->status->n_listeners = spec->n_listeners;
        x->g->n_lset += spec->n_listeners;
        for (size_t j = 0; j < spec->n_listeners; j++) {
            const struct sv_listener *l = &spec->listeners[j];
            *n_certs += l->has_tls && l->tls.n_cert_refs ? l->tls.n_cert_refs : 1;
        }
    }
    return 0;
}

int sv_tx_lsets_fill(struct tx *t, struct tx_gateway *g)
{
    size_t idx = g->n_own;
    for (size_t i = 0; i < t->n_lsets; i++) {
        struct tx_listenerset *x = &t->lsets[i];
        if (x->g != g || !x->allowed)
            continue;
        const struct sv_listenerset *spec = &x->obj->u.listenerset;
        for (size_t j = 0; j < spec->n_listeners; j++) {
            SV_ASSERT(idx < g->n_ls);
            g->ls[idx].l = &spec->listeners[j];
            g->ls[idx].owner = x;
            g->ls[idx].status = &x->status->listeners[j];
            idx++;
        }
    }
    SV_ASSERT(idx == g->n_ls);
    return 0;
}

static bool cond_true(const struct sv_condition_set *cs, const char *type)
{
    const struct sv_condition *c = sv_condition_find(cs, type);
    return c && strcmp(c->status, "True") == 0;
}

void sv_tx_lsets_status(struct tx *t, struct tx_gateway *g)
{
    bool gw_accepted = cond_true(&g->status->conds, "Accepted");
    for (size_t i = 0; i < t->n_lsets; i++) {
        struct tx_listenerset *x = &t->lsets[i];
        if (x->g != g)
            continue;
        struct sv_condition_set *cs = &x->status->conds;
        int64_t gen = x->obj->meta.generation;
        const char *gns = g->obj->meta.ns, *gname = g->obj->meta.name;
        if (!x->allowed) {
            sv_tx_cond(t, cs, "Accepted", false, "NotAllowed", gen,
                       "Gateway %s/%s does not allow ListenerSets from namespace %s", gns, gname,
                       x->obj->meta.ns);
            sv_tx_cond(t, cs, "Programmed", false, "NotAllowed", gen,
                       "ListenerSet is not attached");
            continue;
        }
        if (!gw_accepted) {
            sv_tx_cond(t, cs, "Accepted", false, "ParentNotAccepted", gen,
                       "Gateway %s/%s is not accepted", gns, gname);
            sv_tx_cond(t, cs, "Programmed", false, "ParentNotAccepted", gen,
                       "Gateway %s/%s is not accepted", gns, gname);
            continue;
        }
        size_t valid = 0, programmed = 0, total = 0;
        for (size_t j = g->n_own; j < g->n_ls; j++) {
            const struct tx_listener *tl = &g->ls[j];
            if (tl->owner != x)
                continue;
            const struct sv_condition_set *lc = &tl->status->conds;
            total++;
            valid += cond_true(lc, "Accepted") && cond_true(lc, "ResolvedRefs") &&
                     !cond_true(lc, "Conflicted");
            programmed += tl->programmed;
        }
        if (valid == 0) {
            sv_tx_cond(t, cs, "Accepted", false, "ListenersNotValid", gen, "no valid listener");
            sv_tx_cond(t, cs, "Programmed", false, "ListenersNotValid", gen, "no valid listener");
            continue;
        }
        if (valid < total)
            sv_tx_cond(t, cs, "Accepted", true, "ListenersNotValid", gen,
                       "%zu of %zu listeners are not valid", total - valid, total);
        else
            sv_tx_cond(t, cs, "Accepted", true, "Accepted", gen, "ListenerSet accepted");
        g->status->attached_listener_sets++;
        if (programmed)
            sv_tx_cond(t, cs, "Programmed", true, "Programmed", gen, "ListenerSet programmed");
        else
            sv_tx_cond(t, cs, "Programmed", false, "Invalid", gen, "no listener is programmed");
    }
}

struct tx_gateway *sv_tx_parent(struct tx *t, const struct sv_parent_ref *p,
                                const char *route_ns, const struct tx_listenerset **owner)
{
    *owner = NULL;
    if (strcmp(p->group, SV_GATEWAY_API_GROUP) != 0)
        return NULL;
    const char *ns = p->ns ? p->ns : route_ns;
    if (strcmp(p->kind, "Gateway") == 0)
        return find_gateway(t, ns, p->name);
    if (strcmp(p->kind, "ListenerSet") != 0)
        return NULL;
    for (size_t i = 0; i < t->n_lsets; i++) {
        const struct tx_listenerset *x = &t->lsets[i];
        if (x->allowed && strcmp(x->obj->meta.ns, ns) == 0 &&
            strcmp(x->obj->meta.name, p->name) == 0) {
            *owner = x;
            return x->g;
        }
    }
    return NULL;
}

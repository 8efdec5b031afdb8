/* Translation of ListenerSets (tests/data/translate/listenerset.yaml): attachment through the
 * Gateway's allowedListeners, listener precedence on conflicts, ListenerSet and Gateway status,
 * and routes attached through a parentRef of kind ListenerSet. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static const struct sv_route_action *find(const struct sv_generation *g, int port,
                                          const char *host, const char *path)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sv_route_request rq = {.local = (const struct sockaddr *)&sin,
                                  .host = sv_str_cstr(host),
                                  .path = sv_str_cstr(path),
                                  .method = SV_STR_LIT("GET")};
    struct sv_route_result res;
    return sv_route_lookup(g, &rq, &res) == 0 ? res.action : NULL;
}

/* "status/reason" of condition <type> in <set>, or "-" when absent. */
static const char *cond(const struct sv_condition_set *set, const char *type)
{
    static char buf[8][128];
    static int next;
    const struct sv_condition *c = sv_condition_find(set, type);
    if (!c)
        return "-";
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "%s/%s", c->status, c->reason);
    return b;
}

static const struct sv_status_listener *ls_listener(const struct sv_status_listenerset *s,
                                                    const char *name)
{
    for (size_t i = 0; s && i < s->n_listeners; i++) {
        if (strcmp(s->listeners[i].name, name) == 0)
            return &s->listeners[i];
    }
    return NULL;
}

TEST(translate_listenerset)
{
    char err[512];
    struct sv_test_tx t;
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    if (sv_test_tx_file(&t, "listenerset.yaml", &o, err, sizeof(err)) != 0)
        FAIL("%s", err);
    REQUIRE(t.n_objects == 19);
    REQUIRE(t.gen && t.st);
    struct sv_generation *g = t.gen;
    struct sv_status *st = t.st;

    /* not allowed: no allowedListeners (None), another namespace with Same, Selector mismatch */
    CHECK_EQ_INT(st->n_listenersets, 7);
    const struct sv_status_listenerset *s = sv_status_listenerset(st, "app", "ls-none");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "False/NotAllowed");
    CHECK_EQ_STR(cond(&s->conds, "Programmed"), "False/NotAllowed");
    CHECK_EQ_INT(sv_condition_find(&s->conds, "Accepted")->observed_generation, 2);
    CHECK_EQ_INT(s->n_listeners, 0);
    CHECK(find(g, 8080, "extra.test", "/") == NULL);
    s = sv_status_listenerset(st, "other", "ls-other");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "False/NotAllowed");
    s = sv_status_listenerset(st, "third", "ls-sel-no");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "False/NotAllowed");

    const struct sv_status_gateway *gw = sv_status_gateway(st, "app", "gw-none");
    REQUIRE(gw);
    CHECK_EQ_INT(gw->attached_listener_sets, 0);
    gw = sv_status_gateway(st, "app", "gw-sel");
    REQUIRE(gw);
    CHECK_EQ_INT(gw->attached_listener_sets, 1);
    gw = sv_status_gateway(st, "app", "gw");
    REQUIRE(gw);
    CHECK_EQ_INT(gw->attached_listener_sets, 1); /* ls-a; ls-b and ls-c have no valid listener */
    CHECK_EQ_INT(gw->n_listeners, 1);            /* its own listener only */
    CHECK_EQ_STR(cond(&gw->conds, "Accepted"), "True/Accepted");
    CHECK_EQ_STR(cond(&gw->listeners[0].conds, "Conflicted"), "False/NoConflicts");

    /* precedence: the Gateway's listener beats ls-a's "dup"; ls-a beats the younger ls-b */
    s = sv_status_listenerset(st, "app", "ls-a");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "True/ListenersNotValid");
    CHECK_EQ_STR(cond(&s->conds, "Programmed"), "True/Programmed");
    CHECK_EQ_INT(sv_condition_find(&s->conds, "Programmed")->observed_generation, 3);
    CHECK_EQ_INT(s->n_listeners, 3);
    const struct sv_status_listener *l = ls_listener(s, "a1");
    REQUIRE(l);
    CHECK_EQ_STR(cond(&l->conds, "Accepted"), "True/Accepted");
    CHECK_EQ_STR(cond(&l->conds, "Programmed"), "True/Programmed");
    CHECK_EQ_STR(cond(&l->conds, "ResolvedRefs"), "True/ResolvedRefs");
    CHECK_EQ_INT(l->attached_routes, 2); /* route-ls, route-section */
    l = ls_listener(s, "dup");
    REQUIRE(l);
    CHECK_EQ_STR(cond(&l->conds, "Conflicted"), "True/HostnameConflict");
    CHECK_EQ_STR(cond(&l->conds, "Accepted"), "False/HostnameConflict");
    CHECK_EQ_STR(cond(&l->conds, "Programmed"), "False/HostnameConflict");
    l = ls_listener(s, "shared");
    REQUIRE(l);
    CHECK_EQ_STR(cond(&l->conds, "Conflicted"), "False/NoConflicts");
    CHECK_EQ_INT(l->attached_routes, 1);
    s = sv_status_listenerset(st, "app", "ls-b");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "False/ListenersNotValid");
    CHECK_EQ_STR(cond(&s->conds, "Programmed"), "False/ListenersNotValid");
    CHECK_EQ_STR(cond(&ls_listener(s, "shared")->conds, "Conflicted"), "True/HostnameConflict");
    s = sv_status_listenerset(st, "app", "ls-c");
    REQUIRE(s);
    CHECK_EQ_STR(cond(&s->conds, "Accepted"), "False/ListenersNotValid");
    REQUIRE(ls_listener(s, "tcp"));
    CHECK_EQ_STR(cond(&ls_listener(s, "tcp")->conds, "Accepted"), "False/ProtocolConflict");
    CHECK_EQ_STR(cond(&ls_listener(s, "tcp")->conds, "Conflicted"), "True/ProtocolConflict");

    /* routing: a ListenerSet parent uses only the ListenerSet's listeners, a Gateway parent only
     * the Gateway's own */
    CHECK(find(g, 8081, "a.test", "/ls") != NULL);
    CHECK(find(g, 8081, "shared.test", "/ls") != NULL);
    CHECK(find(g, 8081, "gw.test", "/ls") == NULL);
    CHECK(find(g, 8081, "gw.test", "/gw") != NULL);
    CHECK(find(g, 8081, "a.test", "/gw") == NULL);
    CHECK(find(g, 8081, "a.test", "/section") != NULL);
    CHECK(find(g, 8081, "shared.test", "/section") == NULL);
    CHECK(find(g, 8081, "a.test", "/other") == NULL);
    CHECK(find(g, 8082, "s1.test", "/sel") != NULL);
    CHECK(find(g, 8082, "sel.test", "/sel") == NULL);

    const struct sv_status_route *r = sv_status_route(st, SV_KIND_HTTPROUTE, "app", "route-ls");
    REQUIRE(r && r->n_parents == 1);
    CHECK_EQ_STR(r->parents[0].ref.kind, "ListenerSet");
    CHECK_EQ_STR(cond(&r->parents[0].conds, "Accepted"), "True/Accepted");
    CHECK_EQ_INT(sv_condition_find(&r->parents[0].conds, "Accepted")->observed_generation, 4);
    r = sv_status_route(st, SV_KIND_HTTPROUTE, "app", "route-section");
    REQUIRE(r && r->n_parents == 2);
    CHECK_EQ_STR(cond(&r->parents[0].conds, "Accepted"), "True/Accepted");
    CHECK_EQ_STR(cond(&r->parents[1].conds, "Accepted"), "False/NoMatchingParent");
    r = sv_status_route(st, SV_KIND_HTTPROUTE, "other", "route-other");
    REQUIRE(r && r->n_parents == 1);
    CHECK_EQ_STR(cond(&r->parents[0].conds, "Accepted"), "False/NotAllowedByListeners");
    r = sv_status_route(st, SV_KIND_HTTPROUTE, "third", "route-sel");
    REQUIRE(r && r->n_parents == 1);
    CHECK_EQ_STR(cond(&r->parents[0].conds, "Accepted"), "True/Accepted");

    /* JSON: listenerSets with listeners, attachedListenerSets on Gateways */
    cJSON *doc = sv_status_to_json(st);
    REQUIRE(doc);
    const cJSON *lsets = cJSON_GetObjectItemCaseSensitive(doc, "listenerSets");
    CHECK_EQ_INT(cJSON_GetArraySize(lsets), 7);
    const cJSON *it;
    bool seen_a = false;
    cJSON_ArrayForEach(it, lsets)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!cJSON_IsString(nm) || strcmp(nm->valuestring, "ls-a") != 0)
            continue;
        seen_a = true;
        const cJSON *stj = cJSON_GetObjectItemCaseSensitive(it, "status");
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stj, "listeners")), 3);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stj, "conditions")), 2);
    }
    CHECK(seen_a);
    bool seen_gw = false;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "gateways"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!cJSON_IsString(nm) || strcmp(nm->valuestring, "gw") != 0)
            continue;
        seen_gw = true;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(it, "status"), "attachedListenerSets");
        CHECK(cJSON_IsNumber(a) && a->valueint == 1);
    }
    CHECK(seen_gw);
    cJSON_Delete(doc);

    sv_test_tx_free(&t);
}

TEST(model_listenerset_decode)
{
    char err[256];
    struct sv_object *objs[2];
    int n = sv_test_decode_yaml("apiVersion: gateway.networking.k8s.io/v1\n"
                                "kind: ListenerSet\n"
                                "metadata: {name: x, namespace: ns}\n"
                                "spec:\n"
                                "  parentRef: {name: gw}\n"
                                "  listeners:\n"
                                "  - {name: l, port: 80, protocol: HTTP}\n",
                                objs, 2, err, sizeof(err));
    if (n < 0)
        FAIL("decode: %s", err);
    REQUIRE(n == 1);
    const struct sv_listenerset *ls = &objs[0]->u.listenerset;
    CHECK_EQ_INT(objs[0]->kind, SV_KIND_LISTENERSET);
    CHECK_EQ_STR(ls->parent.group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_STR(ls->parent.kind, "Gateway");
    CHECK(ls->parent.ns == NULL);
    CHECK_EQ_INT(ls->n_listeners, 1);
    CHECK_EQ_INT(ls->listeners[0].from, SV_FROM_SAME);
    sv_object_free(objs[0]);

    /* parentRef is required; allowedListeners.namespaces.from defaults to None */
    n = sv_test_decode_yaml("apiVersion: gateway.networking.k8s.io/v1\n"
                            "kind: ListenerSet\n"
                            "metadata: {name: x, namespace: ns}\n"
                            "spec: {listeners: []}\n",
                            objs, 2, err, sizeof(err));
    CHECK_EQ_INT(n, -1);
    CHECK(strstr(err, "spec.parentRef") != NULL);
    n = sv_test_decode_yaml("apiVersion: gateway.networking.k8s.io/v1\n"
                            "kind: Gateway\n"
                            "metadata: {name: g, namespace: ns}\n"
                            "spec: {gatewayClassName: c, listeners: []}\n"
                            "---\n"
                            "apiVersion: gateway.networking.k8s.io/v1\n"
                            "kind: Gateway\n"
                            "metadata: {name: g2, namespace: ns}\n"
                            "spec: {gatewayClassName: c, allowedListeners: {namespaces: {from: "
                            "Sometimes}}}\n",
                            objs, 2, err, sizeof(err));
    if (n < 0)
        FAIL("decode: %s", err);
    REQUIRE(n == 2);
    CHECK_EQ_INT(objs[0]->u.gateway.ls_from, SV_LSFROM_NONE);
    CHECK_EQ_INT(objs[1]->u.gateway.ls_from, SV_LSFROM_UNSUPPORTED);
    CHECK_EQ_STR(objs[1]->u.gateway.ls_from_raw, "Sometimes");
    sv_object_free(objs[0]);
    sv_object_free(objs[1]);
}

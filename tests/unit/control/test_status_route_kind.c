/* sv_status_route keys on the kind as well as namespace/name: a TLSRoute and an HTTPRoute of the
 * same name each get their own status (src/control/translate/status.c). */
#include <string.h>

#include "../harness.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "support.h"

/* One name, two kinds: the HTTPRoute attaches to the HTTP listener; the TLSRoute names the HTTP
 * listener too, which does not allow TLSRoutes (NotAllowedByListeners). */
static const char same_name_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: serval}\n"
    "spec: {controllerName: serval.dev/gateway-controller}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
    "metadata: {name: gw, namespace: infra}\n"
    "spec:\n  gatewayClassName: serval\n  listeners:\n"
    "  - {name: pass, port: 8443, protocol: TLS, tls: {mode: Passthrough}}\n"
    "  - {name: http, port: 8080, protocol: HTTP}\n"
    "---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: infra}\n"
    "spec: {ports: [{port: 80}]}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
    "metadata: {name: same, namespace: infra}\n"
    "spec:\n  parentRefs: [{name: gw, sectionName: http}]\n"
    "  rules: [{backendRefs: [{name: web, port: 80}]}]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\n"
    "metadata: {name: same, namespace: infra}\n"
    "spec:\n  parentRefs: [{name: gw, sectionName: http}]\n"
    "  rules: [{backendRefs: [{name: web, port: 80}]}]\n";

static const char *accepted_reason(const struct sv_status_route *r)
{
    if (!r || r->n_parents != 1)
        return NULL;
    const struct sv_condition *c = sv_condition_find(&r->parents[0].conds, "Accepted");
    return c ? c->reason : NULL;
}

TEST(status_route_lookup_tells_tlsroute_from_httproute)
{
    char err[512];
    struct sv_test_tx t;
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    if (sv_test_tx_text(&t, same_name_yaml, &o, err, sizeof(err)) != 0)
        FAIL("%s", err);
    REQUIRE(t.n_objects == 5);
    REQUIRE(t.gen && t.st);
    struct sv_status *st = t.st;

    const struct sv_status_route *http = sv_status_route(st, SV_KIND_HTTPROUTE, "infra", "same");
    const struct sv_status_route *tls = sv_status_route(st, SV_KIND_TLSROUTE, "infra", "same");
    REQUIRE(http && tls);
    CHECK(http != tls);
    CHECK_EQ_INT(http->obj->kind, SV_KIND_HTTPROUTE);
    CHECK_EQ_INT(tls->obj->kind, SV_KIND_TLSROUTE);
    const char *hr = accepted_reason(http), *tr = accepted_reason(tls);
    REQUIRE(hr && tr);
    CHECK_EQ_STR(hr, "Accepted");
    CHECK_EQ_STR(tr, "NotAllowedByListeners");
    CHECK(sv_status_route(st, SV_KIND_GATEWAY, "infra", "same") == NULL);
    CHECK(sv_status_route(st, SV_KIND_TLSROUTE, "infra", "other") == NULL);

    sv_test_tx_free(&t);
}

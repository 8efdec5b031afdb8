/* BackendTLSPolicy in the translator: CA reference checks (kind, missing, unparsable), conflicts
 * (oldest wins, a sectionName policy is more specific), status.ancestors, 500 shares for Service
 * ports under an invalid policy, and the Gateway's spec.tls.backend.clientCertificateRef. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/k8s_status.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static const struct sv_route_action *find(const struct sv_generation *g, const char *path)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sv_route_request rq = {.local = (const struct sockaddr *)&sin,
                                  .host = SV_STR_LIT("tls.test"),
                                  .path = sv_str_cstr(path),
                                  .method = SV_STR_LIT("GET")};
    struct sv_route_result res;
    return sv_route_lookup(g, &rq, &res) == 0 ? res.action : NULL;
}

/* "<status>/<reason>" of condition <type> on the policy's only ancestor, or "-" */
static const char *cond_of(const struct sv_status *st, const char *name, const char *type,
                           char *buf, size_t cap)
{
    const struct sv_status_policy *p = sv_status_policy(st, "app", name);
    if (!p || p->n_ancestors != 1)
        return "-";
    const struct sv_condition *c = sv_condition_find(&p->ancestors[0].conds, type);
    if (!c)
        return "-";
    snprintf(buf, cap, "%s/%s@%lld", c->status, c->reason, (long long)c->observed_generation);
    return buf;
}

static enum sv_route_backend_kind backend_kind(const struct sv_generation *g, const char *path)
{
    const struct sv_route_action *a = find(g, path);
    if (!a || a->n_backends != 1)
        return (enum sv_route_backend_kind)-1;
    return a->backends[0].kind;
}

TEST(translate_backendtlspolicy)
{
    char err[512], b[128];
    char *text = sv_test_read_file("tests/data/translate/backendtls.yaml", NULL);
    REQUIRE(text);
    struct sv_object *objs[32];
    int n = sv_test_decode_yaml(text, objs, 32, err, sizeof(err));
    free(text);
    if (n < 0)
        FAIL("decode: %s", err);
    REQUIRE(n > 0);
    struct sv_store *store = sv_store_new();
    for (int i = 0; i < n; i++)
        sv_store_upsert(store, objs[i]);
    const struct sv_object *po = sv_store_get(store, SV_KIND_BACKENDTLSPOLICY, "app", "p-ok");
    REQUIRE(po);
    CHECK_EQ_INT(po->u.backendtlspolicy.n_sans, 2);
    CHECK_EQ_INT(po->u.backendtlspolicy.sans[1].type, SV_SAN_URI);
    CHECK_EQ_STR(po->u.backendtlspolicy.sans[1].value, "spiffe://abc.example.com/x");
    CHECK_EQ_STR(po->u.backendtlspolicy.hostname, "abc.example.com");

    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    struct sv_generation *g = NULL;
    struct sv_status *st = NULL;
    int rc = sv_translate(store, &o, &g, &st, err, sizeof(err));
    if (rc != 0)
        FAIL("translate: %d %s", rc, err);
    REQUIRE(g && st);

    CHECK_EQ_STR(cond_of(st, "p-ok", "Accepted", b, sizeof(b)), "True/Accepted@4");
    CHECK_EQ_STR(cond_of(st, "p-ok", "ResolvedRefs", b, sizeof(b)), "True/ResolvedRefs@4");
    CHECK_EQ_STR(cond_of(st, "p-kind", "Accepted", b, sizeof(b)), "False/NoValidCACertificate@1");
    CHECK_EQ_STR(cond_of(st, "p-kind", "ResolvedRefs", b, sizeof(b)), "False/InvalidKind@1");
    CHECK_EQ_STR(cond_of(st, "p-missing", "Accepted", b, sizeof(b)),
                 "False/NoValidCACertificate@1");
    CHECK_EQ_STR(cond_of(st, "p-missing", "ResolvedRefs", b, sizeof(b)),
                 "False/InvalidCACertificateRef@1");
    CHECK_EQ_STR(cond_of(st, "p-garbage", "ResolvedRefs", b, sizeof(b)),
                 "False/InvalidCACertificateRef@1");
    CHECK_EQ_STR(cond_of(st, "p-conf-1", "Accepted", b, sizeof(b)),
                 "False/NoValidCACertificate@1"); /* the older one wins, valid or not */
    CHECK_EQ_STR(cond_of(st, "p-conf-2", "Accepted", b, sizeof(b)), "False/Conflicted@1");
    CHECK_EQ_STR(cond_of(st, "p-section", "Accepted", b, sizeof(b)), "True/Accepted@1");
    CHECK(sv_status_policy(st, "app", "p-unused") == NULL); /* no route uses its Service */
    const struct sv_status_policy *sp = sv_status_policy(st, "app", "p-ok");
    REQUIRE(sp && sp->n_ancestors == 1);
    CHECK_EQ_STR(sp->ancestors[0].ref.ns, "app");
    CHECK_EQ_STR(sp->ancestors[0].ref.name, "gw");
    CHECK_EQ_STR(sp->ancestors[0].ref.kind, "Gateway");

    /* traffic: valid policies keep the backend, invalid ones make it a 500 share */
    CHECK_EQ_INT(backend_kind(g, "/ok"), SV_ROUTE_BACKEND_SET);
    CHECK_EQ_INT(backend_kind(g, "/kind"), SV_ROUTE_BACKEND_INVALID);
    CHECK_EQ_INT(backend_kind(g, "/missing"), SV_ROUTE_BACKEND_INVALID);
    CHECK_EQ_INT(backend_kind(g, "/garbage"), SV_ROUTE_BACKEND_INVALID);
    CHECK_EQ_INT(backend_kind(g, "/conf"), SV_ROUTE_BACKEND_SET);     /* p-section (valid) */
    CHECK_EQ_INT(backend_kind(g, "/other"), SV_ROUTE_BACKEND_INVALID); /* p-conf-1 (invalid) */

    /* the route itself resolves (appProtocol HTTPS is fine under a policy) */
    const struct sv_status_route *r = sv_status_route(st, SV_KIND_HTTPROUTE, "app", "r");
    REQUIRE(r && r->n_parents == 1);
    const struct sv_condition *c = sv_condition_find(&r->parents[0].conds, "ResolvedRefs");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "True");

    /* the Gateway: accepted, but its backend client certificate does not resolve */
    const struct sv_status_gateway *gw = sv_status_gateway(st, "app", "gw");
    REQUIRE(gw);
    c = sv_condition_find(&gw->conds, "Accepted");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "True");
    c = sv_condition_find(&gw->conds, "ResolvedRefs");
    REQUIRE(c);
    CHECK_EQ_STR(c->status, "False");
    CHECK_EQ_STR(c->reason, "InvalidClientCertificateRef");

    /* JSON for the status writer: ancestors with ancestorRef and our controllerName */
    cJSON *doc = sv_status_to_json(st);
    REQUIRE(doc);
    const cJSON *pols = cJSON_GetObjectItemCaseSensitive(doc, "backendTLSPolicies");
    CHECK_EQ_INT(cJSON_GetArraySize(pols), 7);
    const cJSON *first = cJSON_GetArrayItem(pols, 0);
    const cJSON *anc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(first, "status"), "ancestors");
    REQUIRE(cJSON_GetArraySize(anc) == 1);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(anc, 0), "ancestorRef");
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(ref, "name")->valuestring, "gw");
    cJSON_Delete(doc);

    sv_status_free(st);
    sv_generation_free_unpublished(g);
    sv_store_free(store);
}

static const void *set_tls(const struct sv_generation *g, const char *path)
{
    const struct sv_route_action *a = find(g, path);
    if (!a || a->n_backends != 1 || a->backends[0].kind != SV_ROUTE_BACKEND_SET)
        return NULL;
    return sv_generation_backend_tls(g, a->backends[0].set_id);
}

/* Valid policies put a TLS client context on their backend sets (cleartext sets have none), and
 * an unchanged policy keeps its context across translations (cached by content). */
TEST(translate_backendtls_contexts)
{
    char err[512];
    char *text = sv_test_read_file("tests/data/translate/backendtls.yaml", NULL);
    REQUIRE(text);
    struct sv_object *objs[32];
    int n = sv_test_decode_yaml(text, objs, 32, err, sizeof(err));
    free(text);
    if (n < 0)
        FAIL("decode: %s", err);
    struct sv_store *store = sv_store_new();
    for (int i = 0; i < n; i++)
        sv_store_upsert(store, objs[i]);
    struct sv_translate_opts o = {.bind_addr = "0.0.0.0"};
    struct sv_generation *g1 = NULL, *g2 = NULL;
    struct sv_status *st1 = NULL, *st2 = NULL;
    if (sv_translate(store, &o, &g1, &st1, err, sizeof(err)) != 0)
        FAIL("translate: %s", err);
    if (sv_translate(store, &o, &g2, &st2, err, sizeof(err)) != 0)
        FAIL("translate again: %s", err);
    const void *ok1 = set_tls(g1, "/ok"), *sec1 = set_tls(g1, "/conf");
    CHECK(ok1 != NULL);
    CHECK(sec1 != NULL);
    CHECK(ok1 == sec1); /* p-ok and p-section say the same: one shared context */
    CHECK(set_tls(g1, "/plain") == NULL);
    CHECK_EQ_INT(backend_kind(g1, "/plain"), SV_ROUTE_BACKEND_SET);
    CHECK(set_tls(g2, "/ok") == ok1); /* unchanged policy: the same WOLFSSL_CTX */
    CHECK(set_tls(g2, "/conf") == sec1);
    sv_status_free(st1);
    sv_generation_free_unpublished(g1);
    /* the generation that still uses it keeps it alive (ASan would see a use after free) */
    CHECK(set_tls(g2, "/ok") == ok1);
    sv_status_free(st2);
    sv_generation_free_unpublished(g2);
    sv_store_free(store);
}

/* The status merge keeps other controllers' ancestors and replaces ours. */
TEST(k8s_status_merge_policy_ancestors)
{
    cJSON *cur = cJSON_Parse(
        "{\"ancestors\":[{\"ancestorRef\":{\"name\":\"x\"},\"controllerName\":\"other\","
        "\"conditions\":[]},{\"ancestorRef\":{\"group\":\"gateway.networking.k8s.io\","
        "\"kind\":\"Gateway\",\"namespace\":\"app\",\"name\":\"gw\"},\"controllerName\":\"me\","
        "\"conditions\":[{\"type\":\"Accepted\",\"status\":\"False\"}]}]}");
    cJSON *want = cJSON_Parse(
        "{\"ancestors\":[{\"ancestorRef\":{\"group\":\"gateway.networking.k8s.io\","
        "\"kind\":\"Gateway\",\"namespace\":\"app\",\"name\":\"gw\"},\"controllerName\":\"me\","
        "\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\"}]}]}");
    REQUIRE(cur && want);
    bool changed = false;
    cJSON *m = sv_k8s_status_merge(SV_KIND_BACKENDTLSPOLICY, cur, want, "me",
                                   "2026-11-27T00:00:00Z", &changed);
    REQUIRE(m);
    CHECK(changed);
    const cJSON *anc = cJSON_GetObjectItemCaseSensitive(m, "ancestors");
    REQUIRE(cJSON_GetArraySize(anc) == 2);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(anc, 0), "controllerName")
                     ->valuestring,
                 "other");
    const cJSON *c0 = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(anc, 1), "conditions"), 0);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(c0, "status")->valuestring, "True");
    cJSON_Delete(m);
    cJSON_Delete(cur);
    cJSON_Delete(want);
}

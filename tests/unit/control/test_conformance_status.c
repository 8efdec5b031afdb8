/* The upstream conformance corpus, status side: for every case whose features we implement,
 * translate base/manifests.yaml + the case's manifests and compare the status the translator
 * computes with the case's status_checks (route parents, route conditions, listener status and
 * conditions, Gateway conditions, "no accepted parents", "zero routes"). Requests are the
 * conformance runner's business, not this test's. SKIPs when the corpus folder is absent. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "support.h"

static const char *const unsupported_features[] = {
    "ListenerSet", "BackendTLSPolicy", "BackendTLSPolicySANValidation",
    "HTTPRouteRetry", "HTTPRouteRetryBackendTimeout",
    "HTTPRouteRetryConnectionError", "GatewayStaticAddresses", "GatewayInfrastructurePropagation",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback", "GatewayBackendClientCertificate",
    "GatewayAddressEmpty", NULL};

static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    return out;
}

static int add_yaml_file(struct sv_store *st, const char *path, char *err, size_t errlen)
{
    char *raw = sv_test_read_file(path, NULL);
    if (!raw) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    char *a = replace_all(raw, "{GATEWAY_CLASS_NAME}", "serval");
    char *text = a ? replace_all(a, "{GATEWAY_CONTROLLER_NAME}", SV_DEFAULT_CONTROLLER_NAME) : NULL;
    free(raw);
    free(a);
    if (!text)
        return -1;
    cJSON *docs = NULL;
    int rc = sv_yaml_parse(text, strlen(text), &docs, err, errlen);
    free(text);
    if (rc != 0)
        return -1;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        struct sv_object *o = NULL;
        if (cJSON_IsNull(d))
            continue;
        if (sv_model_decode(d, path, &o, err, errlen) < 0) {
            cJSON_Delete(docs);
            return -1;
        }
        if (o)
            sv_store_upsert(st, o);
    }
    cJSON_Delete(docs);
    return 0;
}

/* A real test-only certificate/key pair (the translator parses certificates; the conformance
 * suite generates its Secrets the same way), newlines escaped for a YAML double-quoted string.
 * Empty strings when openssl is missing (the Secrets then fail like malformed ones). */
static void generated_pair(char *crt, char *key, size_t cap)
{
    crt[0] = key[0] = '\0';
    FILE *p = popen("tests/tls/gen-fixture-pem.sh conformance.test ec", "r");
    if (!p)
        return;
    char line[256];
    char *dst = crt;
    size_t n = 0;
    while (fgets(line, sizeof(line), p)) {
        if (strncmp(line, "-----BEGIN PRIVATE KEY", 22) == 0) {
            dst = key;
            n = 0;
        }
        for (char *c = line; *c && n + 3 < cap; c++) {
            if (*c == '\n') {
                dst[n++] = '\\';
                dst[n++] = 'n';
            } else {
                dst[n++] = *c;
            }
        }
        dst[n] = '\0';
    }
    pclose(p);
}

static void add_generated_secrets(struct sv_store *st, const char *base)
{
    char path[600], err[256];
    static char crt[4096], key[4096];
    if (!crt[0])
        generated_pair(crt, key, sizeof(crt));
    snprintf(path, sizeof(path), "%s/base/programmatic-resources.json", base);
    char *text = sv_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *r, *res = cJSON_GetObjectItem(j, "resources");
    cJSON_ArrayForEach(r, res)
    {
        const cJSON *kind = cJSON_GetObjectItem(r, "kind");
        if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Secret") != 0)
            continue;
        char yaml[10240];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\n"
                 "type: kubernetes.io/tls\nstringData:\n"
                 "  tls.crt: \"%s\"\n"
                 "  tls.key: \"%s\"\n",
                 cJSON_GetObjectItem(r, "name")->valuestring,
                 cJSON_GetObjectItem(r, "namespace")->valuestring, crt, key);
        struct sv_object *o = sv_test_decode_one(yaml, err, sizeof(err));
        if (o)
            sv_store_upsert(st, o);
    }
    cJSON_Delete(j);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Do the expected conditions (type/status/reason-if-given) hold in <cs>? */
static bool conds_match(const struct sv_condition_set *cs, const cJSON *want, char *why, size_t n)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, want)
    {
        const char *type = jstr(c, "type"), *status = jstr(c, "status"), *reason = jstr(c, "reason");
        const struct sv_condition *got = sv_condition_find(cs, type);
        if (!got) {
            snprintf(why, n, "no %s condition", type);
            return false;
        }
        if (strcmp(got->status, status) != 0 || (reason && strcmp(got->reason, reason) != 0)) {
            snprintf(why, n, "%s = %s/%s (%s), want %s/%s", type, got->status, got->reason,
                     got->message, status, reason ? reason : "*");
            return false;
        }
    }
    return true;
}

static const struct sv_status_route_parent *find_parent(const struct sv_status_route *r,
                                                        const cJSON *ref, const char *route_ns)
{
    const char *ns = jstr(ref, "namespace"), *name = jstr(ref, "name");
    const char *sec = jstr(ref, "sectionName");
    for (size_t i = 0; r && i < r->n_parents; i++) {
        const struct sv_parent_ref *p = &r->parents[i].ref;
        const char *pns = p->ns ? p->ns : route_ns;
        if (strcmp(pns, ns ? ns : route_ns) != 0 || strcmp(p->name, name) != 0)
            continue;
        /* The corpus writes sectionName null when the helper looks the parent up by Gateway only,
         * and names the listener even when the route selected it by port only (our entry then
         * echoes the parentRef as written, without sectionName). */
        if (sec && p->section_name && strcmp(sec, p->section_name) != 0)
            continue;
        return &r->parents[i];
    }
    return NULL;
}

/* The route kind a check names ("kind", HTTPRoute when absent). */
static enum sv_kind route_kind(const cJSON *chk)
{
    const cJSON *k = cJSON_GetObjectItem(chk, "kind");
    return cJSON_IsString(k) && strcmp(k->valuestring, "TLSRoute") == 0 ? SV_KIND_TLSROUTE
                                                                        : SV_KIND_HTTPROUTE;
}

/* Evaluate one status check. Returns 1 pass, 0 fail (why set), -1 not evaluated here. */
static int eval_check(const struct sv_status *st, const cJSON *chk, char *why, size_t n)
{
    const char *check = jstr(chk, "check"), *ns = jstr(chk, "namespace"), *name = jstr(chk, "name");
    if (strcmp(check, "route_parents") == 0) {
        const struct sv_status_route *r = sv_status_route(st, route_kind(chk), ns, name);
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(chk, "parents"))
        {
            const cJSON *ref = cJSON_GetObjectItem(p, "parentRef");
            const struct sv_status_route_parent *sp = find_parent(r, ref, ns);
            if (!sp) {
                snprintf(why, n, "no parent entry for %s", jstr(ref, "name"));
                return 0;
            }
            if (strcmp(sp->ref.group, jstr(ref, "group")) || strcmp(sp->ref.kind, jstr(ref, "kind"))) {
                snprintf(why, n, "parentRef group/kind %s/%s", sp->ref.group, sp->ref.kind);
                return 0;
            }
            if (!conds_match(&sp->conds, cJSON_GetObjectItem(p, "conditions"), why, n))
                return 0;
        }
        return 1;
    }
    if (strcmp(check, "route_condition") == 0) {
        const struct sv_status_route *r = sv_status_route(st, route_kind(chk), ns, name);
        const struct sv_status_route_parent *sp =
            find_parent(r, cJSON_GetObjectItem(chk, "parent"), ns);
        if (!sp) {
            snprintf(why, n, "no parent entry");
            return 0;
        }
        return conds_match(&sp->conds, cJSON_GetObjectItem(chk, "conditions"), why, n);
    }
    if (strcmp(check, "route_no_accepted_parents") == 0) {
        const struct sv_status_route *r = sv_status_route(st, route_kind(chk), ns, name);
        for (size_t i = 0; r && i < r->n_parents; i++) {
            const struct sv_condition *c = sv_condition_find(&r->parents[i].conds, "Accepted");
            if (c && strcmp(c->status, "True") == 0) {
                snprintf(why, n, "parent %zu is Accepted", i);
                return 0;
            }
        }
        return 1;
    }
    const struct sv_status_gateway *g = sv_status_gateway(st, ns ? ns : "", name ? name : "");
    if (strcmp(check, "gateway_condition") == 0) {
        if (!g) {
            snprintf(why, n, "no Gateway status");
            return 0;
        }
        return conds_match(&g->conds, cJSON_GetObjectItem(chk, "conditions"), why, n);
    }
    if (strcmp(check, "gateway_zero_routes") == 0) {
        for (size_t i = 0; g && i < g->n_listeners; i++) {
            if (g->listeners[i].attached_routes) {
                snprintf(why, n, "listener %s has %d routes", g->listeners[i].name,
                         g->listeners[i].attached_routes);
                return 0;
            }
        }
        return g ? 1 : 0;
    }
    if (strcmp(check, "gateway_listeners_conditions") == 0 ||
        strcmp(check, "gateway_listener_conditions") == 0) {
        if (!g) {
            snprintf(why, n, "no Gateway status");
            return 0;
        }
        const char *only = jstr(chk, "listener");
        for (size_t i = 0; i < g->n_listeners; i++) {
            if (only && strcmp(only, g->listeners[i].name) != 0)
                continue;
            if (!conds_match(&g->listeners[i].conds, cJSON_GetObjectItem(chk, "conditions"), why,
                             n))
                return 0;
        }
        return 1;
    }
    if (strcmp(check, "gateway_listeners_status") == 0) {
        if (!g) {
            snprintf(why, n, "no Gateway status");
            return 0;
        }
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItem(chk, "listeners"))
        {
            const struct sv_status_listener *sl = sv_status_listener(g, jstr(l, "name"));
            if (!sl) {
                snprintf(why, n, "no listener %s", jstr(l, "name"));
                return 0;
            }
            const cJSON *ar = cJSON_GetObjectItem(l, "attachedRoutes");
            if (cJSON_IsNumber(ar) && (int)ar->valuedouble != sl->attached_routes) {
                snprintf(why, n, "listener %s attachedRoutes %d, want %d", sl->name,
                         sl->attached_routes, (int)ar->valuedouble);
                return 0;
            }
            const cJSON *sk = cJSON_GetObjectItem(l, "supportedKinds");
            if (cJSON_IsArray(sk) && (size_t)cJSON_GetArraySize(sk) != sl->n_supported_kinds) {
                snprintf(why, n, "listener %s has %zu supportedKinds, want %d", sl->name,
                         sl->n_supported_kinds, cJSON_GetArraySize(sk));
                return 0;
            }
            if (!conds_match(&sl->conds, cJSON_GetObjectItem(l, "conditions"), why, n))
                return 0;
        }
        return 1;
    }
    if (strcmp(check, "route_latest_observed_generation") == 0) {
        const struct sv_status_route *r = sv_status_route(st, route_kind(chk), ns, name);
        for (size_t i = 0; r && i < r->n_parents; i++) {
            for (size_t k = 0; k < r->parents[i].conds.n; k++) {
                if (r->parents[i].conds.c[k].observed_generation != r->obj->meta.generation) {
                    snprintf(why, n, "parent %zu %s observedGeneration %lld != %lld", i,
                             r->parents[i].conds.c[k].type,
                             (long long)r->parents[i].conds.c[k].observed_generation,
                             (long long)r->obj->meta.generation);
                    return 0;
                }
            }
        }
        return r ? 1 : 0;
    }
    if (strcmp(check, "gateway_latest_observed_generation") == 0) {
        if (!g) {
            snprintf(why, n, "no Gateway status");
            return 0;
        }
        int64_t want = g->obj->meta.generation;
        for (size_t k = 0; k < g->conds.n; k++) {
            if (g->conds.c[k].observed_generation != want) {
                snprintf(why, n, "%s observedGeneration %lld != %lld", g->conds.c[k].type,
                         (long long)g->conds.c[k].observed_generation, (long long)want);
                return 0;
            }
        }
        for (size_t i = 0; i < g->n_listeners; i++) {
            for (size_t k = 0; k < g->listeners[i].conds.n; k++) {
                if (g->listeners[i].conds.c[k].observed_generation != want) {
                    snprintf(why, n, "listener %s observedGeneration stale", g->listeners[i].name);
                    return 0;
                }
            }
        }
        return 1;
    }
    if (strcmp(check, "gatewayclass_accepted") == 0) {
        for (size_t i = 0; i < st->n_classes; i++) {
            const struct sv_condition *c = sv_condition_find(&st->classes[i].conds, "Accepted");
            if (c && strcmp(c->status, "True") == 0)
                return 1;
        }
        snprintf(why, n, "GatewayClass not accepted");
        return 0;
    }
    return -1;
}

static bool supported_case(const cJSON *c)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(c, "features"))
    {
        for (size_t i = 0; unsupported_features[i]; i++) {
            if (cJSON_IsString(f) && strcmp(f->valuestring, unsupported_features[i]) == 0)
                return false;
        }
    }
    return true;
}

TEST(translate_conformance_status_checks)
{
    const char *base = sv_test_conformance_dir();
    if (!base)
        SKIP("conformance corpus not present");
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/cases.json", base);
    char *text = sv_test_read_file(path, NULL);
    REQUIRE(text);
    cJSON *cases = cJSON_Parse(text);
    free(text);
    REQUIRE(cJSON_IsArray(cases));
    int evaluated = 0, failed = 0, cases_run = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        if (!supported_case(c))
            continue;
        struct sv_store *st = sv_store_new();
        REQUIRE(st);
        char yaml[700];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n"
                 "metadata: {name: serval}\nspec: {controllerName: %s}\n",
                 SV_DEFAULT_CONTROLLER_NAME);
        struct sv_object *gc = sv_test_decode_one(yaml, err, sizeof(err));
        REQUIRE(gc);
        sv_store_upsert(st, gc);
        snprintf(path, sizeof(path), "%s/base/manifests.yaml", base);
        bool ok = add_yaml_file(st, path, err, sizeof(err)) == 0;
        add_generated_secrets(st, base);
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(c, "manifests"))
        {
            snprintf(path, sizeof(path), "%s/%s", base, m->valuestring);
            ok = ok && add_yaml_file(st, path, err, sizeof(err)) == 0;
        }
        if (!ok) {
            FAIL("%s: %s", jstr(c, "name"), err);
            sv_store_free(st);
            continue;
        }
        struct sv_generation *gen;
        struct sv_status *status;
        if (sv_translate(st, NULL, &gen, &status, err, sizeof(err)) != 0) {
            FAIL("%s: translate: %s", jstr(c, "name"), err);
            sv_store_free(st);
            continue;
        }
        cases_run++;
        const cJSON *chk;
        cJSON_ArrayForEach(chk, cJSON_GetObjectItem(c, "status_checks"))
        {
            char why[512] = "";
            int r = eval_check(status, chk, why, sizeof(why));
            if (r < 0)
                continue;
            evaluated++;
            if (r == 0) {
                failed++;
                FAIL("%s: %s %s/%s: %s", jstr(c, "name"), jstr(chk, "check"),
                     jstr(chk, "namespace") ? jstr(chk, "namespace") : "", jstr(chk, "name"), why);
            }
        }
        sv_generation_free_unpublished(gen);
        sv_status_free(status);
        sv_store_free(st);
    }
    cJSON_Delete(cases);
    printf("    conformance status: %d cases, %d checks, %d failed\n", cases_run, evaluated, failed);
    CHECK(cases_run > 40);
    CHECK(evaluated > 100);
}

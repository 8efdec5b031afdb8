/* Model decoding: every kind, the CRD defaults, unsupported enum markers, error paths. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/control/model.h"
#include "support.h"

#define FIXTURE "tests/data/model/all-kinds.yaml"

static struct sv_object *objs[16];
static int n_objs;

static int load_all_kinds(void)
{
    char err[512];
    char *text = sv_test_read_file(FIXTURE, NULL);
    if (!text) {
        FAIL("cannot read %s (run from the repository root)", FIXTURE);
        return -1;
    }
    n_objs = sv_test_decode_yaml(text, objs, 16, err, sizeof(err));
    free(text);
    if (n_objs < 0) {
        FAIL("decode failed: %s", err);
        return -1;
    }
    return 0;
}

static void free_all(void)
{
    for (int i = 0; i < n_objs; i++)
        sv_object_free(objs[i]);
    n_objs = 0;
}

static struct sv_object *find(enum sv_kind k)
{
    for (int i = 0; i < n_objs; i++) {
        if (objs[i]->kind == k)
            return objs[i];
    }
    return NULL;
}

TEST(model_all_kinds_decode_and_unknown_kinds_are_ignored)
{
    REQUIRE(load_all_kinds() == 0);
    CHECK_EQ_INT(n_objs, 12); /* the Pod is ignored */
    for (int k = 0; k < SV_KIND__COUNT; k++)
        CHECK(find((enum sv_kind)k) != NULL);
    free_all();
}

TEST(model_listenerset_defaults)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *o = find(SV_KIND_LISTENERSET);
    REQUIRE(o);
    const struct sv_listenerset *ls = &o->u.listenerset;
    CHECK_EQ_STR(ls->parent.group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_STR(ls->parent.kind, "Gateway");
    CHECK_EQ_STR(ls->parent.ns, "infra");
    CHECK_EQ_STR(ls->parent.name, "shop-gw");
    REQUIRE(ls->n_listeners == 1);
    CHECK_EQ_INT(ls->listeners[0].protocol, SV_PROTO_HTTPS);
    CHECK_EQ_INT(ls->listeners[0].tls.mode, SV_TLS_TERMINATE);
    REQUIRE(ls->listeners[0].tls.n_cert_refs == 1);
    CHECK_EQ_STR(ls->listeners[0].tls.cert_refs[0].kind, "Secret");
    CHECK_EQ_INT(ls->listeners[0].from, SV_FROM_SAME);
    free_all();
}

TEST(model_tlsroute_decodes_like_a_route)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *o = find(SV_KIND_TLSROUTE);
    REQUIRE(o);
    CHECK_EQ_STR(sv_kind_name(o->kind), "TLSRoute");
    const struct sv_httproute *r = &o->u.httproute;
    REQUIRE(r->n_parents == 1 && r->n_hostnames == 2 && r->n_rules == 1);
    CHECK_EQ_STR(r->parents[0].kind, "Gateway");
    CHECK_EQ_STR(r->parents[0].section_name, "tls");
    CHECK_EQ_STR(r->hostnames[1], "*.wild.test");
    const struct sv_route_rule *rule = &r->rules[0];
    CHECK_EQ_STR(rule->name, "only");
    REQUIRE(rule->n_matches == 1); /* the default PathPrefix "/" */
    CHECK_EQ_INT(rule->matches[0].path_type, SV_PATH_PREFIX);
    CHECK_EQ_STR(rule->matches[0].path, "/");
    CHECK_EQ_INT(rule->n_filters, 0);
    REQUIRE(rule->n_backends == 2);
    CHECK_EQ_INT(rule->backends[0].weight, 3);
    CHECK_EQ_INT(rule->backends[0].port, 443);
    CHECK_EQ_STR(rule->backends[1].ns, "b");
    CHECK_EQ_STR(rule->backends[1].kind, "Service");
    free_all();
}

TEST(model_gatewayclass_and_gateway)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *gc = find(SV_KIND_GATEWAYCLASS);
    REQUIRE(gc);
    CHECK_EQ_STR(gc->meta.name, "serval");
    CHECK_EQ_STR(gc->meta.ns, "");
    CHECK_EQ_STR(gc->u.gatewayclass.controller_name, "serval.dev/gateway-controller");

    struct sv_object *o = find(SV_KIND_GATEWAY);
    REQUIRE(o);
    const struct sv_gateway *gw = &o->u.gateway;
    CHECK_EQ_STR(o->meta.ns, "infra");
    CHECK_EQ_INT(o->meta.generation, 3);
    CHECK_EQ_INT(o->meta.creation_ns, 1795766400ll * 1000000000ll);
    CHECK_EQ_STR(sv_meta_label(&o->meta, "tier"), "edge");
    CHECK_EQ_STR(gw->class_name, "serval");
    REQUIRE(gw->n_addresses == 1);
    CHECK_EQ_STR(gw->addresses[0].type, "IPAddress");
    CHECK_EQ_STR(gw->addresses[0].value, "127.0.0.1");
    REQUIRE(gw->n_listeners == 3);

    const struct sv_listener *l = &gw->listeners[0];
    CHECK_EQ_STR(l->name, "http");
    CHECK_EQ_INT(l->port, 8080);
    CHECK_EQ_INT(l->protocol, SV_PROTO_HTTP);
    CHECK(l->hostname == NULL);
    CHECK(!l->has_tls);
    CHECK_EQ_INT(l->from, SV_FROM_SELECTOR);
    CHECK(l->has_selector);
    CHECK_EQ_INT(l->selector.n_match_labels, 1);
    REQUIRE(l->selector.n_exprs == 2);
    CHECK_EQ_INT(l->selector.exprs[0].op, SV_SEL_IN);
    CHECK_EQ_INT(l->selector.exprs[0].n_values, 2);
    CHECK_EQ_INT(l->selector.exprs[1].op, SV_SEL_DOES_NOT_EXIST);

    l = &gw->listeners[1];
    CHECK_EQ_STR(l->hostname, "*.shop.example");
    CHECK_EQ_INT(l->protocol, SV_PROTO_HTTPS);
    CHECK(l->has_tls);
    CHECK_EQ_INT(l->tls.mode, SV_TLS_TERMINATE); /* default */
    REQUIRE(l->tls.n_cert_refs == 1);
    CHECK_EQ_STR(l->tls.cert_refs[0].group, "");
    CHECK_EQ_STR(l->tls.cert_refs[0].kind, "Secret");
    CHECK(l->tls.cert_refs[0].ns == NULL);
    CHECK_EQ_INT(l->from, SV_FROM_SAME); /* default */
    REQUIRE(l->n_kinds == 1);
    CHECK_EQ_STR(l->kinds[0].group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_STR(l->kinds[0].kind, "HTTPRoute");

    l = &gw->listeners[2];
    CHECK_EQ_INT(l->protocol, SV_PROTO_UNSUPPORTED);
    CHECK_EQ_STR(l->protocol_raw, "SCTP");
    CHECK_EQ_INT(l->from, SV_FROM_UNSUPPORTED);
    CHECK_EQ_STR(l->from_raw, "Elsewhere");
    free_all();
}

TEST(model_httproute_fields_and_defaults)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *o = find(SV_KIND_HTTPROUTE);
    REQUIRE(o);
    const struct sv_httproute *hr = &o->u.httproute;
    CHECK_EQ_INT(o->meta.creation_ns, 1795766401500000000ll);
    REQUIRE(hr->n_parents == 2);
    CHECK_EQ_STR(hr->parents[0].group, SV_GATEWAY_API_GROUP);
    CHECK_EQ_STR(hr->parents[0].kind, "Gateway");
    CHECK_EQ_STR(hr->parents[0].ns, "infra");
    CHECK_EQ_STR(hr->parents[0].section_name, "http");
    CHECK_EQ_INT(hr->parents[0].port, 0);
    CHECK(hr->parents[1].section_name == NULL);
    CHECK_EQ_INT(hr->parents[1].port, 8443);
    REQUIRE(hr->n_hostnames == 2);
    CHECK_EQ_STR(hr->hostnames[1], "*.shop.example");
    REQUIRE(hr->n_rules == 3);

    const struct sv_route_rule *r = &hr->rules[0];
    CHECK_EQ_STR(r->name, "api");
    REQUIRE(r->n_matches == 2);
    const struct sv_route_match *m = &r->matches[0];
    CHECK_EQ_INT(m->path_type, SV_PATH_EXACT);
    CHECK_EQ_STR(m->path, "/api/v1");
    REQUIRE(m->n_headers == 2);
    CHECK_EQ_INT(m->headers[0].type, SV_MATCH_EXACT);
    CHECK_EQ_STR(m->headers[0].value, "yes"); /* quoted: stays a string */
    CHECK_EQ_INT(m->headers[1].type, SV_MATCH_REGEX);
    REQUIRE(m->n_query == 1);
    CHECK_EQ_STR(m->query[0].name, "debug");
    CHECK_EQ_STR(m->method, "GET");
    CHECK_EQ_INT(r->matches[1].path_type, SV_PATH_UNSUPPORTED);
    CHECK_EQ_STR(r->matches[1].path_type_raw, "Tilde");

    REQUIRE(r->n_filters == 4);
    CHECK_EQ_INT(r->filters[0].type, SV_FILTER_REQUEST_HEADER_MODIFIER);
    CHECK_EQ_INT(r->filters[0].u.headers.n_set, 1);
    CHECK_EQ_STR(r->filters[0].u.headers.set[0].key, "X-Env");
    CHECK_EQ_STR(r->filters[0].u.headers.add[0].value, "a");
    CHECK_EQ_STR(r->filters[0].u.headers.remove[0], "X-Drop");
    CHECK_EQ_INT(r->filters[1].type, SV_FILTER_URL_REWRITE);
    CHECK_EQ_STR(r->filters[1].u.rewrite.hostname, "internal.shop");
    CHECK_EQ_INT(r->filters[1].u.rewrite.path.type, SV_PATHMOD_PREFIX);
    CHECK_EQ_STR(r->filters[1].u.rewrite.path.value, "/v2");
    CHECK_EQ_INT(r->filters[2].type, SV_FILTER_REQUEST_MIRROR);
    REQUIRE(r->filters[2].u.mirror.backend);
    CHECK_EQ_STR(r->filters[2].u.mirror.backend->name, "shadow");
    CHECK_EQ_STR(r->filters[2].u.mirror.backend->kind, "Service");
    CHECK_EQ_INT(r->filters[2].u.mirror.percent, -1);
    CHECK_EQ_INT(r->filters[2].u.mirror.fraction_num, 1);
    CHECK_EQ_INT(r->filters[2].u.mirror.fraction_den, 4);
    CHECK_EQ_INT(r->filters[3].type, SV_FILTER_UNSUPPORTED);
    CHECK_EQ_STR(r->filters[3].type_raw, "Teleport");

    REQUIRE(r->n_backends == 2);
    CHECK_EQ_STR(r->backends[0].group, "");
    CHECK_EQ_STR(r->backends[0].kind, "Service");
    CHECK(r->backends[0].ns == NULL);
    CHECK_EQ_INT(r->backends[0].weight, 3);
    REQUIRE(r->backends[0].n_filters == 1);
    CHECK_EQ_INT(r->backends[0].filters[0].type, SV_FILTER_RESPONSE_HEADER_MODIFIER);
    CHECK_EQ_STR(r->backends[1].ns, "canary");
    CHECK_EQ_INT(r->backends[1].weight, 0);
    CHECK_EQ_INT(r->timeout_request_ms, 10000);
    CHECK_EQ_INT(r->timeout_backend_ms, 1500);

    r = &hr->rules[1];
    CHECK(r->name == NULL);
    CHECK_EQ_INT(r->matches[0].path_type, SV_PATH_PREFIX); /* type defaulted */
    CHECK_EQ_STR(r->matches[0].path, "/old");
    CHECK_EQ_INT(r->timeout_request_ms, -1);
    REQUIRE(r->n_filters == 3);
    const struct sv_redirect *rd = &r->filters[0].u.redirect;
    CHECK_EQ_STR(rd->scheme, "https");
    CHECK(rd->hostname == NULL);
    CHECK_EQ_INT(rd->port, 443);
    CHECK_EQ_INT(rd->status_code, 302); /* default */
    CHECK_EQ_INT(rd->path.type, SV_PATHMOD_FULL);
    CHECK_EQ_STR(rd->path.value, "/new");
    const struct sv_cors *c = &r->filters[1].u.cors;
    CHECK(c->allow_credentials);
    CHECK_EQ_INT(c->n_allow_origins, 1);
    CHECK_EQ_INT(c->n_allow_methods, 2);
    CHECK_EQ_INT(c->max_age, 5);
    CHECK_EQ_INT(r->filters[2].type, SV_FILTER_EXTENSION_REF);
    CHECK_EQ_STR(r->filters[2].u.extension.kind, "Magic");

    r = &hr->rules[2];
    REQUIRE(r->n_matches == 1); /* default match */
    CHECK_EQ_INT(r->matches[0].path_type, SV_PATH_PREFIX);
    CHECK_EQ_STR(r->matches[0].path, "/");
    CHECK_EQ_STR(r->backends[0].kind, "Bucket");
    CHECK_EQ_INT(r->backends[0].weight, 1);
    free_all();
}

TEST(model_core_kinds)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *o = find(SV_KIND_REFERENCEGRANT);
    REQUIRE(o);
    const struct sv_referencegrant *rg = &o->u.referencegrant;
    REQUIRE(rg->n_from == 1 && rg->n_to == 2);
    CHECK_EQ_STR(rg->from[0].ns, "shop");
    CHECK_EQ_STR(rg->to[0].group, "");
    CHECK(rg->to[0].name == NULL);
    CHECK_EQ_STR(rg->to[1].name, "api-canary");

    o = find(SV_KIND_NAMESPACE);
    REQUIRE(o);
    CHECK_EQ_STR(o->meta.ns, "");
    CHECK_EQ_STR(sv_meta_label(&o->meta, "kubernetes.io/metadata.name"), "shop");
    CHECK_EQ_STR(sv_meta_label(&o->meta, "team"), "shop");

    o = find(SV_KIND_SERVICE);
    REQUIRE(o);
    const struct sv_service *svc = &o->u.service;
    CHECK_EQ_STR(svc->type, "ClusterIP");
    REQUIRE(svc->n_ports == 2);
    CHECK_EQ_STR(svc->ports[0].name, "http");
    CHECK_EQ_STR(svc->ports[0].target_port_name, "web");
    CHECK_EQ_INT(svc->ports[0].target_port, 0);
    CHECK_EQ_STR(svc->ports[0].app_protocol, "kubernetes.io/h2c");
    CHECK_EQ_STR(svc->ports[1].name, "");
    CHECK_EQ_INT(svc->ports[1].target_port, 9090); /* defaults to port */
    CHECK_EQ_STR(svc->ports[1].protocol, "TCP");

    o = find(SV_KIND_ENDPOINTSLICE);
    REQUIRE(o);
    const struct sv_endpointslice *es = &o->u.endpointslice;
    CHECK_EQ_STR(es->service_name, "api");
    CHECK_EQ_STR(es->address_type, "IPv4");
    REQUIRE(es->n_ports == 1);
    CHECK_EQ_INT(es->ports[0].port, 18080);
    REQUIRE(es->n_endpoints == 3);
    CHECK_EQ_STR(es->endpoints[0].addresses[0], "127.0.0.2");
    CHECK_EQ_INT(es->endpoints[0].ready, 1);
    CHECK_EQ_INT(es->endpoints[1].ready, 0);
    CHECK_EQ_INT(es->endpoints[1].terminating, 1);
    CHECK_EQ_INT(es->endpoints[2].ready, -1);

    o = find(SV_KIND_SECRET);
    REQUIRE(o);
    const struct sv_secret *s = &o->u.secret;
    CHECK_EQ_STR(s->type, "kubernetes.io/tls");
    REQUIRE(s->tls_crt && s->tls_key);
    CHECK_EQ_MEM(s->tls_crt->data, s->tls_crt->len, "-----BEGIN CERTIFICATE-----");
    CHECK_EQ_MEM(s->tls_key->data, s->tls_key->len, "key");
    CHECK_EQ_INT(s->n_data, 3);
    free_all();
}

/* Each case: a manifest and the error text the decoder must produce. */
static const struct {
    const char *yaml;
    const char *err;
} bad_cases[] = {
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  rules:\n  - matches:\n    - path: {value: /}\n    - path: {type: [5]}\n",
     "spec.rules[0].matches[1].path.type: expected string, got array"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  rules:\n  - timeouts: {request: 1d}\n",
     "spec.rules[0].timeouts.request: invalid duration"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  rules:\n  - backendRefs:\n    - {port: 80}\n",
     "spec.rules[0].backendRefs[0].name: required field missing"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  rules:\n  - backendRefs:\n    - {name: a, port: 70000}\n",
     "spec.rules[0].backendRefs[0].port: out of range"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  hostnames: [a, {b: c}]\n",
     "spec.hostnames[1]: expected string, got object"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
     "spec:\n  gatewayClassName: x\n  listeners:\n  - {name: a, protocol: HTTP}\n",
     "spec.listeners[0].port: required field missing"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: []\n",
     "spec: expected object, got array"},
    {"apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {a: [1]}}\n",
     "metadata.labels.a: expected string, got array"},
    {"apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
     "metadata.name: required field missing"},
    {"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: \"***\"}\n",
     "data.tls.crt: invalid base64"},
    {"kind: Service\nmetadata: {name: s}\n", "apiVersion: required field missing"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
     "spec:\n  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror:\n"
     "        backendRef: {name: m}\n        percent: 10\n        fraction: {numerator: 1}\n",
     "spec.rules[0].filters[0].requestMirror: percent and fraction are mutually exclusive"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
     "  creationTimestamp: yesterday\n",
     "metadata.creationTimestamp: invalid RFC 3339 time"},
};

TEST(model_decode_errors_name_the_field)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad_cases); i++) {
        char err[512] = "";
        struct sv_object *o = sv_test_decode_one(bad_cases[i].yaml, err, sizeof(err));
        if (o) {
            FAIL("case %zu decoded but should fail", i);
            sv_object_free(o);
            continue;
        }
        if (!strstr(err, bad_cases[i].err))
            FAIL("case %zu: error \"%s\" lacks \"%s\"", i, err, bad_cases[i].err);
    }
}

TEST(model_minimal_route_gets_defaults_and_namespace)
{
    char err[256];
    struct sv_object *o = sv_test_decode_one(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        "spec:\n  parentRefs: [{name: gw}]\n",
        err, sizeof(err));
    REQUIRE(o);
    CHECK_EQ_STR(o->meta.ns, "default");
    CHECK_EQ_INT(o->meta.creation_ns, 0);
    const struct sv_httproute *hr = &o->u.httproute;
    REQUIRE(hr->n_rules == 1 && hr->rules[0].n_matches == 1);
    CHECK_EQ_INT(hr->rules[0].matches[0].path_type, SV_PATH_PREFIX);
    CHECK_EQ_STR(hr->rules[0].matches[0].path, "/");
    CHECK_EQ_INT(hr->rules[0].n_backends, 0);
    CHECK_EQ_STR(hr->parents[0].kind, "Gateway");
    CHECK(hr->parents[0].ns == NULL);
    sv_object_free(o);

    /* Other API versions of a known kind are not ours. */
    cJSON *j = cJSON_Parse("{\"apiVersion\":\"example.dev/v1\",\"kind\":\"Gateway\","
                           "\"metadata\":{\"name\":\"x\"}}");
    REQUIRE(j);
    CHECK_EQ_INT(sv_model_decode(j, NULL, &o, err, sizeof(err)), SV_DECODE_IGNORED);
    CHECK(o == NULL);
    cJSON_Delete(j);
}

TEST(model_durations_follow_gep2257)
{
    static const struct {
        const char *text;
        int64_t ms; /* -1 = invalid */
    } cases[] = {
        {"1h", 3600000}, {"1h30m", 5400000}, {"500ms", 500}, {"0s", 0}, {"1s500ms", 1500},
        {"30m1h10s5s", 5415000}, {"00060m", 3600000}, {"99999ms", 99999}, {"0", -1}, {"", -1},
        {"1.5s", -1}, {"100000ms", -1}, {"1d", -1}, {"-1s", -1}, {"1h1h1h1h1h", -1},
        {"1us", -1}, {"1 s", -1}, {"s", -1},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        int64_t ms = -7;
        int rc = sv_model_parse_duration(cases[i].text, &ms);
        if (cases[i].ms < 0) {
            if (rc != -EINVAL)
                FAIL("\"%s\" accepted as %lld", cases[i].text, (long long)ms);
        } else if (rc != 0 || ms != cases[i].ms) {
            FAIL("\"%s\": rc %d ms %lld, want %lld", cases[i].text, rc, (long long)ms,
                 (long long)cases[i].ms);
        }
    }
}

TEST(model_timestamps_sort)
{
    int64_t a, b, c;
    CHECK_EQ_INT(sv_model_parse_time("2026-11-27T08:00:00Z", &a), 0);
    CHECK_EQ_INT(sv_model_parse_time("2026-11-27T09:00:00.25+01:00", &b), 0);
    CHECK_EQ_INT(b - a, 250000000ll);
    CHECK_EQ_INT(sv_model_parse_time("1970-01-01T00:00:01Z", &c), 0);
    CHECK_EQ_INT(c, 1000000000ll);
    CHECK_EQ_INT(sv_model_parse_time("2026-13-01T00:00:00Z", &c), -EINVAL);
    CHECK_EQ_INT(sv_model_parse_time("2026-11-27T08:00:00", &c), -EINVAL);
    CHECK_EQ_INT(sv_model_parse_time("2026-11-27", &c), -EINVAL);
}

TEST(model_label_selector_semantics)
{
    char err[256];
    struct sv_object *o = sv_test_decode_one(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
        "  gatewayClassName: c\n  listeners:\n  - name: a\n    port: 80\n    protocol: HTTP\n"
        "    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n"
        "          matchLabels: {team: a}\n          matchExpressions:\n"
        "          - {key: env, operator: NotIn, values: [dev]}\n"
        "          - {key: owner, operator: Exists}\n"
        "  - name: b\n    port: 81\n    protocol: HTTP\n    allowedRoutes:\n      namespaces:\n"
        "        from: Selector\n        selector:\n          matchExpressions:\n"
        "          - {key: x, operator: Near, values: [y]}\n"
        "  - name: c\n    port: 82\n    protocol: HTTP\n    allowedRoutes:\n      namespaces:\n"
        "        from: Selector\n        selector: {}\n",
        err, sizeof(err));
    if (!o)
        FAIL("decode: %s", err);
    REQUIRE(o);
    const struct sv_label_selector *s = &o->u.gateway.listeners[0].selector;
    struct sv_kv ok[] = {{"team", "a"}, {"env", "prod"}, {"owner", "me"}};
    struct sv_kv dev[] = {{"team", "a"}, {"env", "dev"}, {"owner", "me"}};
    struct sv_kv noenv[] = {{"team", "a"}, {"owner", "me"}};
    struct sv_kv noowner[] = {{"team", "a"}};
    struct sv_kv other[] = {{"team", "b"}, {"owner", "me"}};
    CHECK(sv_label_selector_matches(s, ok, 3));
    CHECK(!sv_label_selector_matches(s, dev, 3));
    CHECK(sv_label_selector_matches(s, noenv, 2));
    CHECK(!sv_label_selector_matches(s, noowner, 1));
    CHECK(!sv_label_selector_matches(s, other, 2));
    const struct sv_label_selector *bad = &o->u.gateway.listeners[1].selector;
    CHECK_EQ_INT(bad->exprs[0].op, SV_SEL_UNSUPPORTED);
    CHECK(!sv_label_selector_matches(bad, ok, 3));
    CHECK(o->u.gateway.listeners[2].has_selector);
    CHECK(sv_label_selector_matches(&o->u.gateway.listeners[2].selector, noowner, 1));
    sv_object_free(o);
}

/* Every manifest of the upstream conformance corpus decodes (or is ignored) without error. */
TEST(model_decodes_conformance_corpus)
{
    const char *base = sv_test_conformance_dir();
    if (!base)
        SKIP("conformance corpus not present");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/tests", base);
    DIR *d = opendir(dir);
    REQUIRE(d);
    struct dirent *de;
    int files = 0, objects = 0;
    while ((de = readdir(d)) != NULL && files < 1000) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *text = sv_test_read_file(path, NULL);
        REQUIRE(text);
        struct sv_object *o[64];
        int k = sv_test_decode_yaml(text, o, 64, err, sizeof(err));
        if (k < 0)
            FAIL("%s: %s", de->d_name, err);
        for (int i = 0; i < k; i++)
            sv_object_free(o[i]);
        objects += k > 0 ? k : 0;
        files++;
        free(text);
    }
    closedir(d);
    CHECK(files > 50);
    CHECK(objects > 100);
}

/* As with kubectl: a plain YAML scalar that looks like a bool or number is still accepted, with
 * its text, where the API has a string; JSON stays strict. */
TEST(model_yaml_plain_scalars_where_strings_are_expected)
{
    char err[256];
    struct sv_object *o = sv_test_decode_one(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels: {enabled: on, "
        "build: 0x10, v: 1.50}\nspec:\n  ports:\n  - {name: 8080, port: 80, targetPort: 8080}\n",
        err, sizeof(err));
    if (!o)
        FAIL("decode: %s", err);
    REQUIRE(o);
    CHECK_EQ_STR(sv_meta_label(&o->meta, "enabled"), "on");
    CHECK_EQ_STR(sv_meta_label(&o->meta, "build"), "0x10");
    CHECK_EQ_STR(sv_meta_label(&o->meta, "v"), "1.50");
    CHECK_EQ_STR(o->u.service.ports[0].name, "8080");
    CHECK_EQ_INT(o->u.service.ports[0].target_port, 8080);
    CHECK(o->u.service.ports[0].target_port_name == NULL);
    sv_object_free(o);

    cJSON *j = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
                           "\"s\",\"labels\":{\"a\":true}}}");
    REQUIRE(j);
    CHECK_EQ_INT(sv_model_decode(j, NULL, &o, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "metadata.labels.a: expected string, got boolean") != NULL);
    cJSON_Delete(j);
}

/* Robustness: every truncation and a series of byte mutations of a full manifest either decode
 * or fail with a message; never a crash or a leak (ASan/UBSan watch). */
TEST(model_mutated_manifests_never_crash)
{
    char *text = sv_test_read_file(FIXTURE, NULL);
    REQUIRE(text);
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    REQUIRE(buf);
    int decoded = 0, failed = 0;
    unsigned seed = 7;
    static const char junk[] = "{}[]:,-#&*!|>'\"\\\t\n 0x1.e5~nullyes";
    for (int round = 0; round < 400; round++) {
        memcpy(buf, text, len + 1);
        size_t cut = len;
        if (round % 2 == 0) {
            seed = seed * 1103515245u + 12345u;
            cut = (seed >> 8) % len;
            buf[cut] = '\0';
        } else {
            for (int k = 0; k < 4; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % len;
                buf[pos] = junk[(seed >> 3) % (sizeof(junk) - 1)];
            }
        }
        struct sv_object *got[16];
        char err[512];
        int n = sv_test_decode_yaml(buf, got, 16, err, sizeof(err));
        if (n < 0) {
            failed++;
            CHECK(err[0] != '\0');
        } else {
            decoded++;
            for (int i = 0; i < n; i++)
                sv_object_free(got[i]);
        }
    }
    free(buf);
    free(text);
    CHECK(decoded > 0);
    CHECK(failed > 0);
}

TEST(model_backendtlspolicy_and_configmap)
{
    REQUIRE(load_all_kinds() == 0);
    struct sv_object *o = find(SV_KIND_BACKENDTLSPOLICY);
    REQUIRE(o);
    const struct sv_backendtlspolicy *p = &o->u.backendtlspolicy;
    REQUIRE(p->n_targets == 1 && p->n_ca_refs == 1);
    CHECK_EQ_STR(p->targets[0].group, "");
    CHECK_EQ_STR(p->targets[0].kind, "Service");
    CHECK_EQ_STR(p->targets[0].section_name, "https");
    CHECK_EQ_STR(p->ca_refs[0].kind, "ConfigMap");
    CHECK_EQ_STR(p->ca_refs[0].name, "ca");
    CHECK_EQ_STR(p->hostname, "backend.example");
    CHECK(p->well_known_ca == NULL && p->n_sans == 0);
    o = find(SV_KIND_CONFIGMAP);
    REQUIRE(o && o->u.configmap.n_data == 1);
    CHECK_EQ_STR(o->u.configmap.data[0].key, "ca.crt");
    free_all();
}

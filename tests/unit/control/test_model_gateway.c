/* Gateway-side decoders that share one helper each (src/control/model/gateway.c): the object
 * references (certificateRefs, caCertificateRefs, parametersRef of a GatewayClass and of a
 * Gateway's infrastructure), the namespaces.from/selector of allowedRoutes and allowedListeners,
 * and the enum fields (listener tls.mode, frontend validation.mode). One table a helper. */
#include <string.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/control/model.h"
#include "support.h"

#define GW_HEAD                                                                                  \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"      \
    "  gatewayClassName: c\n"
#define CLASS_HEAD                                                                               \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec:\n" \
    "  controllerName: x/y\n"
#define HTTPS_L "  listeners:\n  - {name: a, port: 443, protocol: HTTPS, tls: "

enum ref_at { AT_CERT, AT_CA, AT_CLASS_PARAMS, AT_INFRA_PARAMS };

/* The reference a case is about, or NULL when the decoded object does not have it. */
static const struct sv_object_ref *ref_at(const struct sv_object *o, enum ref_at at)
{
    const struct sv_gateway *gw = &o->u.gateway;
    switch (at) {
    case AT_CERT:
        return gw->n_listeners == 1 && gw->listeners[0].tls.n_cert_refs == 1
                   ? &gw->listeners[0].tls.cert_refs[0]
                   : NULL;
    case AT_CA:
        return gw->frontend_default.n_ca_refs == 1 ? &gw->frontend_default.ca_refs[0] : NULL;
    case AT_CLASS_PARAMS:
        return o->u.gatewayclass.has_parameters_ref ? &o->u.gatewayclass.parameters_ref : NULL;
    case AT_INFRA_PARAMS:
        return gw->has_parameters_ref ? &gw->parameters_ref : NULL;
    }
    return NULL;
}

static const struct {
    const char *yaml;
    enum ref_at at;
    const char *err; /* non-NULL: decoding fails with this text; the fields below are unused */
    const char *group, *kind, *ns, *name;
} ref_cases[] = {
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n", AT_CERT, NULL, "", "Secret", NULL, "s"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s, namespace: o, group: g, kind: K}]}}\n",
     AT_CERT, NULL, "g", "K", "o", "s"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{kind: Secret}]}}\n", AT_CERT,
     "spec.listeners[0].tls.certificateRefs[0].name: required field missing", NULL, NULL, NULL, NULL},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n"
             "  tls: {frontend: {default: {validation: {caCertificateRefs: [{name: ca}]}}}}\n",
     AT_CA, NULL, "", "ConfigMap", NULL, "ca"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n"
             "  tls: {frontend: {default: {validation: {caCertificateRefs: [{namespace: n}]}}}}\n",
     AT_CA, "spec.tls.frontend.default.validation.caCertificateRefs[0].name: required", NULL, NULL, NULL, NULL},
    {CLASS_HEAD "  parametersRef: {kind: Cfg, name: p, namespace: n}\n", AT_CLASS_PARAMS, NULL,
     "", "Cfg", "n", "p"},
    {CLASS_HEAD "  parametersRef: {name: p}\n", AT_CLASS_PARAMS,
     "spec.parametersRef.kind: required field missing", NULL, NULL, NULL, NULL},
    {GW_HEAD "  infrastructure: {parametersRef: {group: g, kind: Cfg, name: p}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     AT_INFRA_PARAMS, NULL, "g", "Cfg", NULL, "p"},
    {GW_HEAD "  infrastructure: {parametersRef: {kind: Cfg}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     AT_INFRA_PARAMS, "spec.infrastructure.parametersRef.name: required field missing", NULL, NULL, NULL, NULL},
};

TEST(model_gateway_object_refs_table)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(ref_cases); i++) {
        char err[512] = "";
        struct sv_object *o = sv_test_decode_one(ref_cases[i].yaml, err, sizeof(err));
        if (ref_cases[i].err) {
            if (o)
                FAIL("case %zu decoded, wanted error \"%s\"", i, ref_cases[i].err);
            else if (!strstr(err, ref_cases[i].err))
                FAIL("case %zu: error \"%s\" lacks \"%s\"", i, err, ref_cases[i].err);
            sv_object_free(o);
            continue;
        }
        if (!o) {
            FAIL("case %zu: %s", i, err);
            continue;
        }
        const struct sv_object_ref *r = ref_at(o, ref_cases[i].at);
        if (!r) {
            FAIL("case %zu: reference missing", i);
        } else {
            CHECK_EQ_STR(r->group, ref_cases[i].group);
            CHECK_EQ_STR(r->kind, ref_cases[i].kind);
            CHECK_EQ_STR(r->name, ref_cases[i].name);
            if (ref_cases[i].ns)
                CHECK_EQ_STR(r->ns, ref_cases[i].ns);
            else
                CHECK(r->ns == NULL);
        }
        sv_object_free(o);
    }
}

/* allowedRoutes (on listener a) and allowedListeners share namespaces.{from, selector}. */
static const struct {
    const char *yaml;
    bool listeners; /* allowedListeners of the Gateway, else allowedRoutes of listener a */
    int from;
    const char *from_raw;
    bool has_selector;
} from_cases[] = {
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP}]\n", false, SV_FROM_SAME, "Same",
     false},
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP, allowedRoutes: {}}]\n", false,
     SV_FROM_SAME, "Same", false},
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP,"
             " allowedRoutes: {namespaces: {from: All}}}]\n",
     false, SV_FROM_ALL, "All", false},
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP,"
             " allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {a: b}}}}}]\n",
     false, SV_FROM_SELECTOR, "Selector", true},
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP,"
             " allowedRoutes: {namespaces: {from: Nearby}}}]\n",
     false, SV_FROM_UNSUPPORTED, "Nearby", false},
    {GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP}]\n", true, SV_LSFROM_NONE, "None",
     false},
    {GW_HEAD "  allowedListeners: {namespaces: {}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     true, SV_LSFROM_NONE, "None", false},
    {GW_HEAD "  allowedListeners: {namespaces: {from: Same}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     true, SV_LSFROM_SAME, "Same", false},
    {GW_HEAD "  allowedListeners: {namespaces: {from: Selector, selector: {}}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     true, SV_LSFROM_SELECTOR, "Selector", true},
    {GW_HEAD "  allowedListeners: {namespaces: {from: Friends}}\n"
             "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     true, SV_LSFROM_UNSUPPORTED, "Friends", false},
};

TEST(model_gateway_namespaces_from_table)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(from_cases); i++) {
        char err[512] = "";
        struct sv_object *o = sv_test_decode_one(from_cases[i].yaml, err, sizeof(err));
        if (!o) {
            FAIL("case %zu: %s", i, err);
            continue;
        }
        const struct sv_gateway *gw = &o->u.gateway;
        REQUIRE(gw->n_listeners == 1);
        const struct sv_listener *l = &gw->listeners[0];
        int from = from_cases[i].listeners ? (int)gw->ls_from : (int)l->from;
        const char *raw = from_cases[i].listeners ? gw->ls_from_raw : l->from_raw;
        bool sel = from_cases[i].listeners ? gw->has_ls_selector : l->has_selector;
        if (from != from_cases[i].from || !raw || strcmp(raw, from_cases[i].from_raw) != 0 ||
            sel != from_cases[i].has_selector)
            FAIL("case %zu: from %d \"%s\" selector %d, wanted %d \"%s\" %d", i, from,
                 raw ? raw : "(null)", sel, from_cases[i].from, from_cases[i].from_raw,
                 from_cases[i].has_selector);
        sv_object_free(o);
    }
}

/* Enum fields: absent gives the default (and its name), unknown text is kept and marked. */
static const struct {
    const char *yaml;
    bool frontend; /* spec.tls.frontend.default.validation.mode, else listener a's tls.mode */
    int mode;
    const char *raw;
} enum_cases[] = {
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n", false, SV_TLS_TERMINATE, "Terminate"},
    {GW_HEAD HTTPS_L "{mode: Passthrough}}\n", false, SV_TLS_PASSTHROUGH, "Passthrough"},
    {GW_HEAD HTTPS_L "{mode: Inspect}}\n", false, SV_TLS_MODE_UNSUPPORTED, "Inspect"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n"
             "  tls: {frontend: {default: {validation: {caCertificateRefs: [{name: ca}]}}}}\n",
     true, SV_FRONTEND_ALLOW_VALID_ONLY, "AllowValidOnly"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n"
             "  tls: {frontend: {default: {validation: {mode: AllowInsecureFallback,"
             " caCertificateRefs: [{name: ca}]}}}}\n",
     true, SV_FRONTEND_ALLOW_INSECURE_FALLBACK, "AllowInsecureFallback"},
    {GW_HEAD HTTPS_L "{certificateRefs: [{name: s}]}}\n"
             "  tls: {frontend: {default: {validation: {mode: Whatever,"
             " caCertificateRefs: [{name: ca}]}}}}\n",
     true, SV_FRONTEND_MODE_UNSUPPORTED, "Whatever"},
};

TEST(model_gateway_enum_fields_table)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(enum_cases); i++) {
        char err[512] = "";
        struct sv_object *o = sv_test_decode_one(enum_cases[i].yaml, err, sizeof(err));
        if (!o) {
            FAIL("case %zu: %s", i, err);
            continue;
        }
        const struct sv_gateway *gw = &o->u.gateway;
        REQUIRE(gw->n_listeners == 1);
        int mode = enum_cases[i].frontend ? (int)gw->frontend_default.mode
                                          : (int)gw->listeners[0].tls.mode;
        const char *raw = enum_cases[i].frontend ? gw->frontend_default.mode_raw
                                                 : gw->listeners[0].tls.mode_raw;
        if (mode != enum_cases[i].mode || !raw || strcmp(raw, enum_cases[i].raw) != 0)
            FAIL("case %zu: mode %d \"%s\", wanted %d \"%s\"", i, mode, raw ? raw : "(null)",
                 enum_cases[i].mode, enum_cases[i].raw);
        sv_object_free(o);
    }
}

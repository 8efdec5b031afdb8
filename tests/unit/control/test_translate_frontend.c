/* Translation of Gateway spec.tls.frontend (client certificate validation): listener conditions
 * for bad CA references, the CA bundle and mode handed to the TLS layer per listener, the
 * Gateway's InsecureFrontendValidationMode condition. Fixture: tests/data/translate/frontend.yaml. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/control/model.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static int fe_load(struct sv_test_tx *f)
{
    char err[512];
    struct sv_translate_opts o = {.bind_addr = "127.0.0.1"};
    if (sv_test_tx_file(f, "frontend.yaml", &o, err, sizeof(err)) != 0) {
        FAIL("frontend.yaml: %s", err);
        return -1;
    }
    return 0;
}

struct fe_cond {
    const char *gw, *listener; /* listener NULL = the Gateway's own condition */
    const char *type, *status, *reason;
};

static const struct fe_cond fe_conds[] = {
    {"strict", "https", "ResolvedRefs", "True", "ResolvedRefs"},
    {"strict", "https", "Accepted", "True", "Accepted"},
    {"strict", "https", "Programmed", "True", "Programmed"},
    {"strict", "http", "Programmed", "True", "Programmed"}, /* perPort 8080: not TLS */
    {"strict", "http", "ResolvedRefs", "True", "ResolvedRefs"},
    {"strict", "unresolved", "ResolvedRefs", "False", "InvalidCACertificateRef"},
    {"strict", "unresolved", "Accepted", "False", "NoValidCACertificate"},
    {"strict", "unresolved", "Programmed", "False", "Invalid"},
    {"strict", "invalid-kind", "ResolvedRefs", "False", "InvalidCACertificateKind"},
    {"strict", "invalid-kind", "Accepted", "False", "NoValidCACertificate"},
    {"strict", "invalid-kind", "Programmed", "False", "Invalid"},
    {"strict", "grant-missing", "ResolvedRefs", "False", "RefNotPermitted"},
    {"strict", "grant-missing", "Accepted", "False", "NoValidCACertificate"},
    {"strict", "granted", "ResolvedRefs", "True", "ResolvedRefs"},
    {"strict", "granted", "Programmed", "True", "Programmed"},
    /* one bad reference out of two: reported, the good one is used */
    {"strict", "partly", "ResolvedRefs", "False", "InvalidCACertificateRef"},
    {"strict", "partly", "Accepted", "True", "Accepted"},
    {"strict", "partly", "Programmed", "True", "Programmed"},
    {"strict", "junk", "ResolvedRefs", "False", "InvalidCACertificateRef"},
    {"strict", "junk", "Accepted", "False", "NoValidCACertificate"},
    {"strict", "no-validation", "Programmed", "True", "Programmed"},
    {"strict", NULL, "Accepted", "True", "ListenersNotValid"},
    {"strict", NULL, "Programmed", "True", "Programmed"},
    {"fallback", "https", "Programmed", "True", "Programmed"},
    {"fallback", "plain", "Programmed", "True", "Programmed"},
    {"fallback", NULL, "InsecureFrontendValidationMode", "True", "ConfigurationChanged"},
    {"fallback", NULL, "Accepted", "True", "Accepted"},
    {"odd-mode", "https", "Accepted", "False", "UnsupportedValue"},
    {"odd-mode", "https", "Programmed", "False", "Invalid"},
};

static const struct sv_status_tls_cert *cert_of(const struct sv_test_tx *f, const char *name)
{
    for (size_t i = 0; i < f->st->n_certs; i++) {
        if (strcmp(f->st->certs[i].listener_name, name) == 0)
            return &f->st->certs[i];
    }
    return NULL;
}

TEST(translate_frontend_client_validation)
{
    struct sv_test_tx f;
    REQUIRE(fe_load(&f) == 0);
    for (size_t i = 0; i < SV_ARRAY_SIZE(fe_conds); i++) {
        const struct fe_cond *c = &fe_conds[i];
        const struct sv_status_gateway *g = sv_status_gateway(f.st, "fe", c->gw);
        if (!g) {
            FAIL("gateway %s missing", c->gw);
            continue;
        }
        const struct sv_condition_set *set = &g->conds;
        if (c->listener) {
            const struct sv_status_listener *l = sv_status_listener(g, c->listener);
            if (!l) {
                FAIL("listener %s/%s missing", c->gw, c->listener);
                continue;
            }
            set = &l->conds;
        }
        const struct sv_condition *got = sv_condition_find(set, c->type);
        if (!got || strcmp(got->status, c->status) != 0 || strcmp(got->reason, c->reason) != 0)
            FAIL("%s/%s %s: got %s/%s (%s), want %s/%s", c->gw, c->listener ? c->listener : "-",
                 c->type, got ? got->status : "-", got ? got->reason : "-",
                 got ? got->message : "", c->status, c->reason);
    }
    /* no insecure mode on the strict Gateway */
    const struct sv_status_gateway *strict = sv_status_gateway(f.st, "fe", "strict");
    REQUIRE(strict);
    CHECK(sv_condition_find(&strict->conds, "InsecureFrontendValidationMode") == NULL);

    /* what the TLS layer gets per listener */
    const struct sv_status_tls_cert *c = cert_of(&f, "https");
    REQUIRE(c);
    REQUIRE(c->client_ca_pem != NULL);
    CHECK(memmem(c->client_ca_pem, c->client_ca_len, "MIIBmjCC", 8) != NULL);
    CHECK(!c->client_ca_optional);
    c = cert_of(&f, "partly");
    REQUIRE(c && c->client_ca_pem);
    CHECK(memmem(c->client_ca_pem, c->client_ca_len, "BEGIN CERTIFICATE", 17) != NULL);
    c = cert_of(&f, "granted");
    REQUIRE(c && c->client_ca_pem);
    c = cert_of(&f, "no-validation");
    REQUIRE(c);
    CHECK(c->client_ca_pem == NULL);
    c = cert_of(&f, "plain");
    REQUIRE(c);
    CHECK(c->client_ca_pem == NULL); /* fallback Gateway: only port 9443 validates */
    CHECK(cert_of(&f, "unresolved") == NULL);
    CHECK(cert_of(&f, "invalid-kind") == NULL);
    CHECK(cert_of(&f, "junk") == NULL);

    /* the fallback listener: optional. (Several Gateways name a listener "https": find the one
     * of port 9443's bind by its CA and mode.) */
    int optional = 0;
    for (size_t i = 0; i < f.st->n_certs; i++)
        optional += f.st->certs[i].client_ca_pem && f.st->certs[i].client_ca_optional;
    CHECK_EQ_INT(optional, 1);

    /* a rejected listener opens no port: 7443, 8443, 6443, 3443, 10443 are not bound */
    size_t nb = 0;
    const struct sv_route_bind *b = sv_generation_binds(f.gen, &nb);
    for (size_t i = 0; i < nb; i++) {
        int p = b[i].port;
        CHECK(p != 7443 && p != 8443 && p != 6443 && p != 3443 && p != 10443);
    }
    sv_test_tx_free(&f);
}

TEST(model_configmap_and_frontend_tls)
{
    char *text = sv_test_read_file("tests/data/translate/frontend.yaml", NULL);
    REQUIRE(text);
    struct sv_object *objs[32];
    char err[256];
    int n = sv_test_decode_yaml(text, objs, 32, err, sizeof(err));
    free(text);
    REQUIRE(n > 0);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        const struct sv_object *o = objs[i];
        if (o->kind == SV_KIND_CONFIGMAP && strcmp(o->meta.name, "no-key") == 0) {
            CHECK(sv_configmap_get(&o->u.configmap, "ca.crt") == NULL);
            const char *v = sv_configmap_get(&o->u.configmap, "other");
            REQUIRE(v);
            CHECK_EQ_STR(v, "x");
            seen++;
        }
        if (o->kind == SV_KIND_GATEWAY && strcmp(o->meta.name, "strict") == 0) {
            const struct sv_gateway *g = &o->u.gateway;
            CHECK(g->frontend_default.has_validation);
            CHECK_EQ_INT(g->frontend_default.mode, SV_FRONTEND_ALLOW_VALID_ONLY);
            REQUIRE(g->frontend_default.n_ca_refs == 1);
            CHECK_EQ_STR(g->frontend_default.ca_refs[0].kind, "ConfigMap");
            REQUIRE(g->n_frontend_ports == 8);
            CHECK_EQ_INT(g->frontend_ports[0].port, 7443);
            CHECK_EQ_STR(g->frontend_ports[1].tls.ca_refs[0].kind, "Service");
            CHECK_EQ_STR(g->frontend_ports[2].tls.ca_refs[0].ns, "vault");
            CHECK_EQ_STR(g->frontend_ports[4].tls.ca_refs[0].kind, "ConfigMap"); /* default */
            CHECK(!g->frontend_ports[6].tls.has_validation);
            seen++;
        }
        if (o->kind == SV_KIND_GATEWAY && strcmp(o->meta.name, "fallback") == 0) {
            CHECK(!o->u.gateway.frontend_default.has_validation);
            REQUIRE(o->u.gateway.n_frontend_ports == 1);
            CHECK_EQ_INT(o->u.gateway.frontend_ports[0].tls.mode,
                         SV_FRONTEND_ALLOW_INSECURE_FALLBACK);
            seen++;
        }
        if (o->kind == SV_KIND_GATEWAY && strcmp(o->meta.name, "odd-mode") == 0) {
            CHECK_EQ_INT(o->u.gateway.frontend_default.mode, SV_FRONTEND_MODE_UNSUPPORTED);
            CHECK_EQ_STR(o->u.gateway.frontend_default.mode_raw, "AllowEverything");
            seen++;
        }
    }
    CHECK_EQ_INT(seen, 4);
    for (int i = 0; i < n; i++)
        sv_object_free(objs[i]);

    /* a perPort entry needs a port */
    static const char bad[] = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
                              "metadata: {name: g, namespace: x}\n"
                              "spec:\n  gatewayClassName: c\n  listeners: []\n"
                              "  tls: {frontend: {perPort: [{tls: {}}]}}\n";
    CHECK(sv_test_decode_yaml(bad, objs, 32, err, sizeof(err)) < 0);
    CHECK(strstr(err, "spec.tls.frontend.perPort[0].port") != NULL);
}

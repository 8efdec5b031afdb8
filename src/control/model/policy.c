/* BackendTLSPolicy, ConfigMap and the Gateway's spec.tls.backend: decoding (see model.h). */
#include <string.h>

#include "control/model/model_int.h"

int sv_dec_configmap(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_configmap *cm = &obj->u.configmap;
    return sv_dec_map(d, j, "data", &cm->data, &cm->n_data) < 0 ? -1 : 0;
}

static int dec_target(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_policy_target *t = elem;
    if (sv_dec_str(d, it, "group", &t->group) < 0 || sv_dec_req_str(d, it, "kind", &t->kind) < 0 ||
        sv_dec_req_str(d, it, "name", &t->name) < 0 ||
        sv_dec_str(d, it, "sectionName", &t->section_name) < 0)
        return -1;
    if (!t->group)
        t->group = "";
    return 0;
}

static int dec_ca_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_object_ref *r = elem;
    if (sv_dec_str(d, it, "group", &r->group) < 0 || sv_dec_req_str(d, it, "kind", &r->kind) < 0 ||
        sv_dec_req_str(d, it, "name", &r->name) < 0)
        return -1;
    if (!r->group)
        r->group = "";
    return 0;
}

static int dec_san(struct sv_dec *d, const cJSON *it, void *elem)
{
    static const char *const types[] = {"Hostname", "URI", NULL};
    struct sv_san *s = elem;
    const char *host = NULL, *uri = NULL;
    if (sv_dec_req_str(d, it, "type", &s->type_raw) < 0 ||
        sv_dec_str(d, it, "hostname", &host) < 0 || sv_dec_str(d, it, "uri", &uri) < 0)
        return -1;
    s->type = (enum sv_san_type)sv_dec_enum(s->type_raw, types, SV_SAN_UNSUPPORTED);
    s->value = s->type == SV_SAN_HOSTNAME ? host : s->type == SV_SAN_URI ? uri : NULL;
    if (!s->value)
        s->value = "";
    return 0;
}

int sv_dec_backendtlspolicy(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_backendtlspolicy *p = &obj->u.backendtlspolicy;
    const cJSON *spec, *val;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (SV_DEC_EACH_OBJ(d, spec, "targetRefs", &p->targets, &p->n_targets, dec_target) < 0 ||
        sv_dec_obj(d, spec, "validation", &val) < 0)
        return -1;
    if (val) {
        size_t m2 = sv_dec_push(d, "validation");
        if (SV_DEC_EACH_OBJ(d, val, "caCertificateRefs", &p->ca_refs, &p->n_ca_refs,
                            dec_ca_ref) < 0 ||
            sv_dec_str(d, val, "wellKnownCACertificates", &p->well_known_ca) < 0 ||
            sv_dec_str(d, val, "hostname", &p->hostname) < 0 ||
            SV_DEC_EACH_OBJ(d, val, "subjectAltNames", &p->sans, &p->n_sans, dec_san) < 0)
            return -1;
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_gateway_backend_tls(struct sv_dec *d, const cJSON *spec, struct sv_gateway *gw)
{
    const cJSON *tls, *backend, *ref;
    if (sv_dec_obj(d, spec, "tls", &tls) < 0)
        return -1;
    if (!tls)
        return 0;
    size_t mark = sv_dec_push(d, "tls");
    if (sv_dec_obj(d, tls, "backend", &backend) < 0)
        return -1;
    if (backend) {
        size_t m2 = sv_dec_push(d, "backend");
        int rc = sv_dec_obj(d, backend, "clientCertificateRef", &ref);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            size_t m3 = sv_dec_push(d, "clientCertificateRef");
            struct sv_object_ref *r = &gw->backend_client_cert;
            gw->has_backend_client_cert = true;
            if (sv_dec_str(d, ref, "group", &r->group) < 0 ||
                sv_dec_str(d, ref, "kind", &r->kind) < 0 ||
                sv_dec_str(d, ref, "namespace", &r->ns) < 0 ||
                sv_dec_req_str(d, ref, "name", &r->name) < 0)
                return -1;
            if (!r->group)
                r->group = "";
            if (!r->kind)
                r->kind = "Secret";
            sv_dec_pop(d, m3);
        }
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

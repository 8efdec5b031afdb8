/* GatewayClass, Gateway and ReferenceGrant decoding (gateway.networking.k8s.io). */
#include <string.h>

#include "control/model/model_int.h"

int sv_dec_gatewayclass(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_gatewayclass *gc = &obj->u.gatewayclass;
    const cJSON *spec, *pr;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_req_str(d, spec, "controllerName", &gc->controller_name) < 0 ||
        sv_dec_str(d, spec, "description", &gc->description) < 0)
        return -1;
    int rc = sv_dec_obj(d, spec, "parametersRef", &pr);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        size_t m2 = sv_dec_push(d, "parametersRef");
        gc->has_parameters_ref = true;
        if (sv_dec_str(d, pr, "group", &gc->parameters_ref.group) < 0 ||
            sv_dec_req_str(d, pr, "kind", &gc->parameters_ref.kind) < 0 ||
            sv_dec_req_str(d, pr, "name", &gc->parameters_ref.name) < 0 ||
            sv_dec_str(d, pr, "namespace", &gc->parameters_ref.ns) < 0)
            return -1;
        if (!gc->parameters_ref.group)
            gc->parameters_ref.group = "";
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_cert_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_object_ref *r = elem;
    if (sv_dec_str(d, it, "group", &r->group) < 0 || sv_dec_str(d, it, "kind", &r->kind) < 0 ||
        sv_dec_str(d, it, "namespace", &r->ns) < 0 || sv_dec_req_str(d, it, "name", &r->name) < 0)
        return -1;
    if (!r->group)
        r->group = "";
    if (!r->kind)
        r->kind = "Secret";
    return 0;
}

static int dec_route_kind(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_route_group_kind *k = elem;
    if (sv_dec_str(d, it, "group", &k->group) < 0 || sv_dec_req_str(d, it, "kind", &k->kind) < 0)
        return -1;
    if (!k->group)
        k->group = SV_GATEWAY_API_GROUP;
    return 0;
}

static int dec_allowed_routes(struct sv_dec *d, const cJSON *ar, struct sv_listener *l)
{
    static const char *const froms[] = {"Same", "All", "Selector", NULL};
    const cJSON *ns, *sel;
    l->from = SV_FROM_SAME;
    l->from_raw = "Same";
    if (!ar)
        return 0;
    size_t mark = sv_dec_push(d, "allowedRoutes");
    if (sv_dec_obj(d, ar, "namespaces", &ns) < 0)
        return -1;
    if (ns) {
        size_t m2 = sv_dec_push(d, "namespaces");
        const char *from = NULL;
        if (sv_dec_str(d, ns, "from", &from) < 0)
            return -1;
        if (from) {
            l->from_raw = from;
            l->from = (enum sv_from)sv_dec_enum(from, froms, SV_FROM_UNSUPPORTED);
        }
        int rc = sv_dec_obj(d, ns, "selector", &sel);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            size_t m3 = sv_dec_push(d, "selector");
            l->has_selector = true;
            if (sv_dec_label_selector(d, sel, &l->selector) < 0)
                return -1;
            sv_dec_pop(d, m3);
        }
        sv_dec_pop(d, m2);
    }
    if (SV_DEC_EACH_OBJ(d, ar, "kinds", &l->kinds, &l->n_kinds, dec_route_kind) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_listener(struct sv_dec *d, const cJSON *it, void *elem)
{
    static const char *const protos[] = {"HTTP", "HTTPS", "TLS", "TCP", "UDP", NULL};
    static const char *const modes[] = {"Terminate", "Passthrough", NULL};
    struct sv_listener *l = elem;
    const cJSON *tls, *ar;
    if (sv_dec_req_str(d, it, "name", &l->name) < 0 ||
        sv_dec_str(d, it, "hostname", &l->hostname) < 0 ||
        sv_dec_req_str(d, it, "protocol", &l->protocol_raw) < 0)
        return -1;
    int rc = sv_dec_i32(d, it, "port", 1, 65535, &l->port);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "port", "required field missing");
    l->protocol = (enum sv_protocol)sv_dec_enum(l->protocol_raw, protos, SV_PROTO_UNSUPPORTED);
    rc = sv_dec_obj(d, it, "tls", &tls);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        size_t mark = sv_dec_push(d, "tls");
        const char *mode = NULL;
        l->has_tls = true;
        if (sv_dec_str(d, tls, "mode", &mode) < 0)
            return -1;
        l->tls.mode_raw = mode ? mode : "Terminate";
        l->tls.mode = (enum sv_tls_mode)sv_dec_enum(l->tls.mode_raw, modes, SV_TLS_MODE_UNSUPPORTED);
        if (SV_DEC_EACH_OBJ(d, tls, "certificateRefs", &l->tls.cert_refs, &l->tls.n_cert_refs,
                            dec_cert_ref) < 0)
            return -1;
        sv_dec_pop(d, mark);
    }
    if (sv_dec_obj(d, it, "allowedRoutes", &ar) < 0)
        return -1;
    return dec_allowed_routes(d, ar, l);
}

static int dec_address(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_gateway_address *a = elem;
    if (sv_dec_str(d, it, "type", &a->type) < 0 || sv_dec_str(d, it, "value", &a->value) < 0)
        return -1;
    if (!a->type)
        a->type = "IPAddress";
    return 0;
}

/* spec.allowedListeners of a Gateway (default: namespaces.from None). */
static int dec_allowed_listeners(struct sv_dec *d, const cJSON *spec, struct sv_gateway *gw)
{
    static const char *const froms[] = {"None", "Same", "All", "Selector", NULL};
    const cJSON *al, *ns, *sel;
    gw->ls_from = SV_LSFROM_NONE;
    gw->ls_from_raw = "None";
    if (sv_dec_obj(d, spec, "allowedListeners", &al) < 0)
        return -1;
    if (!al)
        return 0;
    size_t mark = sv_dec_push(d, "allowedListeners");
    if (sv_dec_obj(d, al, "namespaces", &ns) < 0)
        return -1;
    if (ns) {
        size_t m2 = sv_dec_push(d, "namespaces");
        const char *from = NULL;
        if (sv_dec_str(d, ns, "from", &from) < 0)
            return -1;
        if (from) {
            gw->ls_from_raw = from;
            gw->ls_from = (enum sv_ls_from)sv_dec_enum(from, froms, SV_LSFROM_UNSUPPORTED);
        }
        int rc = sv_dec_obj(d, ns, "selector", &sel);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            size_t m3 = sv_dec_push(d, "selector");
            gw->has_ls_selector = true;
            if (sv_dec_label_selector(d, sel, &gw->ls_selector) < 0)
                return -1;
            sv_dec_pop(d, m3);
        }
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_ca_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_object_ref *r = elem;
    if (sv_dec_str(d, it, "group", &r->group) < 0 || sv_dec_str(d, it, "kind", &r->kind) < 0 ||
        sv_dec_str(d, it, "namespace", &r->ns) < 0 || sv_dec_req_str(d, it, "name", &r->name) < 0)
        return -1;
    if (!r->group)
        r->group = "";
    if (!r->kind)
        r->kind = "ConfigMap";
    return 0;
}

/* A TLSConfig of spec.tls.frontend (default or perPort[].tls): its validation. */
static int dec_frontend_tls(struct sv_dec *d, const cJSON *o, struct sv_frontend_tls *f)
{
    static const char *const modes[] = {"AllowValidOnly", "AllowInsecureFallback", NULL};
    const cJSON *v;
    f->mode = SV_FRONTEND_ALLOW_VALID_ONLY;
    f->mode_raw = "AllowValidOnly";
    int rc = sv_dec_obj(d, o, "validation", &v);
    if (rc <= 0)
        return rc;
    size_t mark = sv_dec_push(d, "validation");
    const char *mode = NULL;
    f->has_validation = true;
    if (sv_dec_str(d, v, "mode", &mode) < 0 ||
        SV_DEC_EACH_OBJ(d, v, "caCertificateRefs", &f->ca_refs, &f->n_ca_refs, dec_ca_ref) < 0)
        return -1;
    if (mode) {
        f->mode_raw = mode;
        f->mode = (enum sv_frontend_mode)sv_dec_enum(mode, modes, SV_FRONTEND_MODE_UNSUPPORTED);
    }
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_frontend_port(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_frontend_port *p = elem;
    const cJSON *tls;
    int rc = sv_dec_i32(d, it, "port", 1, 65535, &p->port);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "port", "required field missing");
    if (sv_dec_req_obj(d, it, "tls", &tls) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "tls");
    if (dec_frontend_tls(d, tls, &p->tls) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

/* spec.tls.frontend (client certificate validation); other fields of spec.tls are left to
 * their own decoders. */
static int dec_gateway_frontend(struct sv_dec *d, const cJSON *spec, struct sv_gateway *gw)
{
    const cJSON *tls, *fe, *def;
    gw->frontend_default.mode_raw = "AllowValidOnly";
    if (sv_dec_obj(d, spec, "tls", &tls) < 0)
        return -1;
    if (!tls)
        return 0;
    size_t mark = sv_dec_push(d, "tls");
    if (sv_dec_obj(d, tls, "frontend", &fe) < 0)
        return -1;
    if (fe) {
        size_t m2 = sv_dec_push(d, "frontend");
        if (sv_dec_obj(d, fe, "default", &def) < 0)
            return -1;
        if (def) {
            size_t m3 = sv_dec_push(d, "default");
            if (dec_frontend_tls(d, def, &gw->frontend_default) < 0)
                return -1;
            sv_dec_pop(d, m3);
        }
        if (SV_DEC_EACH_OBJ(d, fe, "perPort", &gw->frontend_ports, &gw->n_frontend_ports,
                            dec_frontend_port) < 0)
            return -1;
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_gateway(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_gateway *gw = &obj->u.gateway;
    const cJSON *spec;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_req_str(d, spec, "gatewayClassName", &gw->class_name) < 0)
        return -1;
    const cJSON *infra, *pr;
    if (sv_dec_obj(d, spec, "infrastructure", &infra) < 0)
        return -1;
    if (infra) {
        size_t m2 = sv_dec_push(d, "infrastructure");
        int prc = sv_dec_obj(d, infra, "parametersRef", &pr);
        if (prc < 0)
            return -1;
        if (prc == 1) {
            size_t m3 = sv_dec_push(d, "parametersRef");
            gw->has_parameters_ref = true;
            if (sv_dec_str(d, pr, "group", &gw->parameters_ref.group) < 0 ||
                sv_dec_req_str(d, pr, "kind", &gw->parameters_ref.kind) < 0 ||
                sv_dec_req_str(d, pr, "name", &gw->parameters_ref.name) < 0)
                return -1;
            if (!gw->parameters_ref.group)
                gw->parameters_ref.group = "";
            sv_dec_pop(d, m3);
        }
        sv_dec_pop(d, m2);
    }
    if (sv_dec_gateway_backend_tls(d, spec, gw) < 0)
        return -1;
    if (dec_allowed_listeners(d, spec, gw) < 0 ||
        SV_DEC_EACH_OBJ(d, spec, "listeners", &gw->listeners, &gw->n_listeners, dec_listener) < 0 ||
        SV_DEC_EACH_OBJ(d, spec, "addresses", &gw->addresses, &gw->n_addresses, dec_address) < 0 ||
        dec_gateway_frontend(d, spec, gw) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_listenerset(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_listenerset *ls = &obj->u.listenerset;
    const cJSON *spec, *pr;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_req_obj(d, spec, "parentRef", &pr) < 0)
        return -1;
    size_t m2 = sv_dec_push(d, "parentRef");
    struct sv_parent_ref *p = &ls->parent;
    if (sv_dec_str(d, pr, "group", &p->group) < 0 || sv_dec_str(d, pr, "kind", &p->kind) < 0 ||
        sv_dec_str(d, pr, "namespace", &p->ns) < 0 || sv_dec_req_str(d, pr, "name", &p->name) < 0)
        return -1;
    if (!p->group)
        p->group = SV_GATEWAY_API_GROUP;
    if (!p->kind)
        p->kind = "Gateway";
    sv_dec_pop(d, m2);
    if (SV_DEC_EACH_OBJ(d, spec, "listeners", &ls->listeners, &ls->n_listeners, dec_listener) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_grant_from(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_grant_from *f = elem;
    if (sv_dec_str(d, it, "group", &f->group) < 0 || sv_dec_req_str(d, it, "kind", &f->kind) < 0 ||
        sv_dec_req_str(d, it, "namespace", &f->ns) < 0)
        return -1;
    if (!f->group)
        f->group = "";
    return 0;
}

static int dec_grant_to(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_grant_to *t = elem;
    if (sv_dec_str(d, it, "group", &t->group) < 0 || sv_dec_req_str(d, it, "kind", &t->kind) < 0 ||
        sv_dec_str(d, it, "name", &t->name) < 0)
        return -1;
    if (!t->group)
        t->group = "";
    return 0;
}

int sv_dec_referencegrant(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_referencegrant *rg = &obj->u.referencegrant;
    const cJSON *spec;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (SV_DEC_EACH_OBJ(d, spec, "from", &rg->from, &rg->n_from, dec_grant_from) < 0 ||
        SV_DEC_EACH_OBJ(d, spec, "to", &rg->to, &rg->n_to, dec_grant_to) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

/* GatewayClass, Gateway and ReferenceGrant decoding (gateway.networking.k8s.io). */
#include <string.h>

#include "control/model/model_int.h"

/* An enum field <key> of <o> named by the NULL-terminated table <names>: *raw gets its text
 * (names[dflt] when absent). Returns the index (dflt when absent, <unsupported> when the text is
 * not in the table), or -1 after recording an error. */
static int dec_enum_field(struct sv_dec *d, const cJSON *o, const char *key,
                          const char *const *names, int dflt, int unsupported, const char **raw)
{
    const char *s = NULL;
    if (sv_dec_str(d, o, key, &s) < 0)
        return -1;
    *raw = s ? s : names[dflt];
    return s ? sv_dec_enum(s, names, unsupported) : dflt;
}

/* The shapes of the object references of these kinds: the kind filled in when absent (NULL: the
 * kind is required) and whether the reference has a namespace field. */
struct ref_shape {
    const char *dflt_kind;
    bool has_ns;
};

static const struct ref_shape k_secret_ref = {"Secret", true};       /* certificateRefs */
static const struct ref_shape k_configmap_ref = {"ConfigMap", true}; /* caCertificateRefs */
static const struct ref_shape k_class_params_ref = {NULL, true};     /* GatewayClass params */
static const struct ref_shape k_local_params_ref = {NULL, false};    /* infrastructure params */

/* One object reference of shape <s> from <o> into <r>; group defaults to "" (core). 0 or -1. */
static int dec_ref(struct sv_dec *d, const cJSON *o, const struct ref_shape *s,
                   struct sv_object_ref *r)
{
    if (sv_dec_str(d, o, "group", &r->group) < 0)
        return -1;
    if ((s->dflt_kind ? sv_dec_str(d, o, "kind", &r->kind)
                      : sv_dec_req_str(d, o, "kind", &r->kind)) < 0)
        return -1;
    if ((s->has_ns && sv_dec_str(d, o, "namespace", &r->ns) < 0) ||
        sv_dec_req_str(d, o, "name", &r->name) < 0)
        return -1;
    if (!r->group)
        r->group = "";
    if (!r->kind)
        r->kind = s->dflt_kind;
    return 0;
}

/* The optional reference object <key> of <o> (a parametersRef): *has and *r when present.
 * Returns 0 or -1. */
static int dec_opt_ref(struct sv_dec *d, const cJSON *o, const char *key,
                       const struct ref_shape *s, bool *has, struct sv_object_ref *r)
{
    const cJSON *ref;
    int rc = sv_dec_obj(d, o, key, &ref);
    if (rc <= 0)
        return rc;
    size_t mark = sv_dec_push(d, key);
    *has = true;
    if (dec_ref(d, ref, s, r) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_cert_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    return dec_ref(d, it, &k_secret_ref, elem);
}

static int dec_ca_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    return dec_ref(d, it, &k_configmap_ref, elem);
}

/* The "namespaces" object of <o> (allowedRoutes or allowedListeners): from, an enum of the table
 * <froms> whose default is froms[0], into *from / *from_raw, and the label selector. The caller
 * sets the defaults: nothing is written when "namespaces" is absent. Returns 0 or -1. */
static int dec_namespaces(struct sv_dec *d, const cJSON *o, const char *const *froms,
                          int unsupported, int *from, const char **from_raw, bool *has_selector,
                          struct sv_label_selector *selector)
{
    const cJSON *ns, *sel;
    if (sv_dec_obj(d, o, "namespaces", &ns) < 0)
        return -1;
    if (!ns)
        return 0;
    size_t mark = sv_dec_push(d, "namespaces");
    *from = dec_enum_field(d, ns, "from", froms, 0, unsupported, from_raw);
    if (*from < 0)
        return -1;
    int rc = sv_dec_obj(d, ns, "selector", &sel);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        size_t m2 = sv_dec_push(d, "selector");
        *has_selector = true;
        if (sv_dec_label_selector(d, sel, selector) < 0)
            return -1;
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_gatewayclass(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_gatewayclass *gc = &obj->u.gatewayclass;
    const cJSON *spec;
    if (sv_dec_req_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_req_str(d, spec, "controllerName", &gc->controller_name) < 0 ||
        sv_dec_str(d, spec, "description", &gc->description) < 0 ||
        dec_opt_ref(d, spec, "parametersRef", &k_class_params_ref, &gc->has_parameters_ref,
                    &gc->parameters_ref) < 0)
        return -1;
    sv_dec_pop(d, mark);
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
    int from = SV_FROM_SAME;
    l->from = SV_FROM_SAME;
    l->from_raw = froms[SV_FROM_SAME];
    if (!ar)
        return 0;
    size_t mark = sv_dec_push(d, "allowedRoutes");
    if (dec_namespaces(d, ar, froms, SV_FROM_UNSUPPORTED, &from, &l->from_raw, &l->has_selector,
                       &l->selector) < 0)
        return -1;
    l->from = (enum sv_from)from;
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
        l->has_tls = true;
        int mode = dec_enum_field(d, tls, "mode", modes, SV_TLS_TERMINATE, SV_TLS_MODE_UNSUPPORTED,
                                  &l->tls.mode_raw);
        if (mode < 0)
            return -1;
        l->tls.mode = (enum sv_tls_mode)mode;
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
    const cJSON *al;
    int from = SV_LSFROM_NONE;
    gw->ls_from = SV_LSFROM_NONE;
    gw->ls_from_raw = froms[SV_LSFROM_NONE];
    if (sv_dec_obj(d, spec, "allowedListeners", &al) < 0)
        return -1;
    if (!al)
        return 0;
    size_t mark = sv_dec_push(d, "allowedListeners");
    if (dec_namespaces(d, al, froms, SV_LSFROM_UNSUPPORTED, &from, &gw->ls_from_raw,
                       &gw->has_ls_selector, &gw->ls_selector) < 0)
        return -1;
    gw->ls_from = (enum sv_ls_from)from;
    sv_dec_pop(d, mark);
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
    f->has_validation = true;
    int mode = dec_enum_field(d, v, "mode", modes, SV_FRONTEND_ALLOW_VALID_ONLY,
                              SV_FRONTEND_MODE_UNSUPPORTED, &f->mode_raw);
    if (mode < 0 ||
        SV_DEC_EACH_OBJ(d, v, "caCertificateRefs", &f->ca_refs, &f->n_ca_refs, dec_ca_ref) < 0)
        return -1;
    f->mode = (enum sv_frontend_mode)mode;
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
    const cJSON *infra;
    if (sv_dec_obj(d, spec, "infrastructure", &infra) < 0)
        return -1;
    if (infra) {
        size_t m2 = sv_dec_push(d, "infrastructure");
        if (dec_opt_ref(d, infra, "parametersRef", &k_local_params_ref, &gw->has_parameters_ref,
                        &gw->parameters_ref) < 0)
            return -1;
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

/* GatewayClass, Gateway and ReferenceGrant decoding (gateway.networking.k8s.io). */
#include <string.h>

#include "control/model/model_int.h"

int sv_dec_gatewayclass(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_gatewayclass *gc = &obj->u.gatewayclass;
    const cJSON *spec, *pr;
    int rc = sv_dec_obj(d, j, "spec", &spec);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "spec", "required field missing");
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_req_str(d, spec, "controllerName", &gc->controller_name) < 0 ||
        sv_dec_str(d, spec, "description", &gc->description) < 0)
        return -1;
    rc = sv_dec_obj(d, spec, "parametersRef", &pr);
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

static int dec_cert_refs(struct sv_dec *d, const cJSON *tls, struct sv_listener_tls *t)
{
    const cJSON *arr, *it;
    size_t n;
    if (sv_dec_arr(d, tls, "certificateRefs", &arr, &n) <= 0)
        return d->failed ? -1 : 0;
    t->cert_refs = sv_dec_alloc(d, n * sizeof(*t->cert_refs));
    if (!t->cert_refs)
        return -1;
    size_t mark = sv_dec_push(d, "certificateRefs"), i = 0;
    cJSON_ArrayForEach(it, arr)
    {
        struct sv_object_ref *r = &t->cert_refs[i];
        size_t m2 = sv_dec_push_index(d, i);
        if (!cJSON_IsObject(it))
            return sv_dec_fail(d, NULL, "expected object");
        if (sv_dec_str(d, it, "group", &r->group) < 0 || sv_dec_str(d, it, "kind", &r->kind) < 0 ||
            sv_dec_str(d, it, "namespace", &r->ns) < 0 || sv_dec_req_str(d, it, "name", &r->name) < 0)
            return -1;
        if (!r->group)
            r->group = "";
        if (!r->kind)
            r->kind = "Secret";
        sv_dec_pop(d, m2);
        i++;
    }
    sv_dec_pop(d, mark);
    t->n_cert_refs = n;
    return 0;
}

static int dec_allowed_routes(struct sv_dec *d, const cJSON *ar, struct sv_listener *l)
{
    static const char *const froms[] = {"Same", "All", "Selector", NULL};
    const cJSON *ns, *sel, *arr, *it;
    size_t n;
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
    if (sv_dec_arr(d, ar, "kinds", &arr, &n) < 0)
        return -1;
    if (n) {
        l->kinds = sv_dec_alloc(d, n * sizeof(*l->kinds));
        if (!l->kinds)
            return -1;
        size_t m2 = sv_dec_push(d, "kinds"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            if (!cJSON_IsObject(it))
                return sv_dec_fail(d, NULL, "expected object");
            if (sv_dec_str(d, it, "group", &l->kinds[i].group) < 0 ||
                sv_dec_req_str(d, it, "kind", &l->kinds[i].kind) < 0)
                return -1;
            if (!l->kinds[i].group)
                l->kinds[i].group = SV_GATEWAY_API_GROUP;
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        l->n_kinds = n;
    }
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_listener(struct sv_dec *d, const cJSON *it, struct sv_listener *l)
{
    static const char *const protos[] = {"HTTP", "HTTPS", "TLS", "TCP", "UDP", NULL};
    static const char *const modes[] = {"Terminate", "Passthrough", NULL};
    const cJSON *tls, *ar;
    if (!cJSON_IsObject(it))
        return sv_dec_fail(d, NULL, "expected object");
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
        if (dec_cert_refs(d, tls, &l->tls) < 0)
            return -1;
        sv_dec_pop(d, mark);
    }
    if (sv_dec_obj(d, it, "allowedRoutes", &ar) < 0)
        return -1;
    return dec_allowed_routes(d, ar, l);
}

int sv_dec_gateway(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_gateway *gw = &obj->u.gateway;
    const cJSON *spec, *arr, *it;
    size_t n;
    int rc = sv_dec_obj(d, j, "spec", &spec);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "spec", "required field missing");
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
    if (sv_dec_arr(d, spec, "listeners", &arr, &n) < 0)
        return -1;
    if (n) {
        gw->listeners = sv_dec_alloc(d, n * sizeof(*gw->listeners));
        if (!gw->listeners)
            return -1;
        size_t m2 = sv_dec_push(d, "listeners"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            if (dec_listener(d, it, &gw->listeners[i]) < 0)
                return -1;
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        gw->n_listeners = n;
    }
    if (sv_dec_arr(d, spec, "addresses", &arr, &n) < 0)
        return -1;
    if (n) {
        gw->addresses = sv_dec_alloc(d, n * sizeof(*gw->addresses));
        if (!gw->addresses)
            return -1;
        size_t m2 = sv_dec_push(d, "addresses"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            struct sv_gateway_address *a = &gw->addresses[i];
            if (!cJSON_IsObject(it))
                return sv_dec_fail(d, NULL, "expected object");
            if (sv_dec_str(d, it, "type", &a->type) < 0 || sv_dec_str(d, it, "value", &a->value) < 0)
                return -1;
            if (!a->type)
                a->type = "IPAddress";
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        gw->n_addresses = n;
    }
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_referencegrant(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_referencegrant *rg = &obj->u.referencegrant;
    const cJSON *spec, *arr, *it;
    size_t n;
    int rc = sv_dec_obj(d, j, "spec", &spec);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "spec", "required field missing");
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_arr(d, spec, "from", &arr, &n) < 0)
        return -1;
    if (n) {
        rg->from = sv_dec_alloc(d, n * sizeof(*rg->from));
        if (!rg->from)
            return -1;
        size_t m2 = sv_dec_push(d, "from"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            struct sv_grant_from *f = &rg->from[i];
            if (!cJSON_IsObject(it))
                return sv_dec_fail(d, NULL, "expected object");
            if (sv_dec_str(d, it, "group", &f->group) < 0 ||
                sv_dec_req_str(d, it, "kind", &f->kind) < 0 ||
                sv_dec_req_str(d, it, "namespace", &f->ns) < 0)
                return -1;
            if (!f->group)
                f->group = "";
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        rg->n_from = n;
    }
    if (sv_dec_arr(d, spec, "to", &arr, &n) < 0)
        return -1;
    if (n) {
        rg->to = sv_dec_alloc(d, n * sizeof(*rg->to));
        if (!rg->to)
            return -1;
        size_t m2 = sv_dec_push(d, "to"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            struct sv_grant_to *t = &rg->to[i];
            if (!cJSON_IsObject(it))
                return sv_dec_fail(d, NULL, "expected object");
            if (sv_dec_str(d, it, "group", &t->group) < 0 ||
                sv_dec_req_str(d, it, "kind", &t->kind) < 0 ||
                sv_dec_str(d, it, "name", &t->name) < 0)
                return -1;
            if (!t->group)
                t->group = "";
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        rg->n_to = n;
    }
    sv_dec_pop(d, mark);
    return 0;
}

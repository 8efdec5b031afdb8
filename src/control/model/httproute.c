/* HTTPRoute decoding with the CRD defaults (GATEWAY_API_RULES.md, "Defaults"). */
#include <string.h>

#include "control/model/model_int.h"

static int dec_kv_matches(struct sv_dec *d, const cJSON *o, const char *key, struct sv_kv_match **out,
                          size_t *n_out)
{
    static const char *const types[] = {"Exact", "RegularExpression", NULL};
    const cJSON *arr, *it;
    size_t n;
    if (sv_dec_arr(d, o, key, &arr, &n) < 0)
        return -1;
    if (n == 0)
        return 0;
    struct sv_kv_match *m = sv_dec_alloc(d, n * sizeof(*m));
    if (!m)
        return -1;
    size_t mark = sv_dec_push(d, key), i = 0;
    cJSON_ArrayForEach(it, arr)
    {
        size_t m2 = sv_dec_push_index(d, i);
        if (!cJSON_IsObject(it))
            return sv_dec_fail(d, NULL, "expected object");
        if (sv_dec_str(d, it, "type", &m[i].type_raw) < 0 ||
            sv_dec_req_str(d, it, "name", &m[i].name) < 0 ||
            sv_dec_req_str(d, it, "value", &m[i].value) < 0)
            return -1;
        if (!m[i].type_raw)
            m[i].type_raw = "Exact";
        m[i].type = (enum sv_value_match)sv_dec_enum(m[i].type_raw, types, SV_MATCH_UNSUPPORTED);
        sv_dec_pop(d, m2);
        i++;
    }
    sv_dec_pop(d, mark);
    *out = m;
    *n_out = n;
    return 0;
}

static int dec_match(struct sv_dec *d, const cJSON *it, struct sv_route_match *m)
{
    static const char *const types[] = {"PathPrefix", "Exact", "RegularExpression", NULL};
    const cJSON *path;
    if (!cJSON_IsObject(it))
        return sv_dec_fail(d, NULL, "expected object");
    m->path_type = SV_PATH_PREFIX;
    m->path_type_raw = "PathPrefix";
    m->path = "/";
    if (sv_dec_obj(d, it, "path", &path) < 0)
        return -1;
    if (path) {
        size_t mark = sv_dec_push(d, "path");
        const char *type = NULL, *value = NULL;
        if (sv_dec_str(d, path, "type", &type) < 0 || sv_dec_str(d, path, "value", &value) < 0)
            return -1;
        if (type) {
            m->path_type_raw = type;
            m->path_type = (enum sv_path_type)sv_dec_enum(type, types, SV_PATH_UNSUPPORTED);
        }
        if (value)
            m->path = value;
        sv_dec_pop(d, mark);
    }
    if (dec_kv_matches(d, it, "headers", &m->headers, &m->n_headers) < 0 ||
        dec_kv_matches(d, it, "queryParams", &m->query, &m->n_query) < 0 ||
        sv_dec_str(d, it, "method", &m->method) < 0)
        return -1;
    return 0;
}

static int dec_header_modifier(struct sv_dec *d, const cJSON *o, struct sv_header_modifier *h)
{
    if (sv_dec_name_values(d, o, "set", &h->set, &h->n_set) < 0 ||
        sv_dec_name_values(d, o, "add", &h->add, &h->n_add) < 0 ||
        sv_dec_strs(d, o, "remove", &h->remove, &h->n_remove) < 0)
        return -1;
    return 0;
}

static int dec_path_modifier(struct sv_dec *d, const cJSON *o, struct sv_path_modifier *p)
{
    static const char *const types[] = {"", "ReplaceFullPath", "ReplacePrefixMatch", NULL};
    const cJSON *path;
    p->type = SV_PATHMOD_NONE;
    int rc = sv_dec_obj(d, o, "path", &path);
    if (rc <= 0)
        return rc;
    size_t mark = sv_dec_push(d, "path");
    if (sv_dec_req_str(d, path, "type", &p->type_raw) < 0)
        return -1;
    p->type = (enum sv_path_mod_type)sv_dec_enum(p->type_raw, types, SV_PATHMOD_UNSUPPORTED);
    if (p->type == SV_PATHMOD_NONE)
        p->type = SV_PATHMOD_UNSUPPORTED;
    if (p->type == SV_PATHMOD_FULL && sv_dec_str(d, path, "replaceFullPath", &p->value) < 0)
        return -1;
    if (p->type == SV_PATHMOD_PREFIX && sv_dec_str(d, path, "replacePrefixMatch", &p->value) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 1;
}

static int dec_backend_ref(struct sv_dec *d, const cJSON *it, struct sv_backend_ref *b,
                           bool with_filters);

static int dec_mirror(struct sv_dec *d, const cJSON *o, struct sv_mirror *m)
{
    const cJSON *br, *frac;
    m->percent = -1;
    m->fraction_num = -1;
    m->fraction_den = 100;
    int rc = sv_dec_obj(d, o, "backendRef", &br);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "backendRef", "required field missing");
    m->backend = sv_dec_alloc(d, sizeof(*m->backend));
    if (!m->backend)
        return -1;
    size_t mark = sv_dec_push(d, "backendRef");
    if (dec_backend_ref(d, br, m->backend, false) < 0)
        return -1;
    sv_dec_pop(d, mark);
    if (sv_dec_i32(d, o, "percent", 0, 100, &m->percent) < 0)
        return -1;
    rc = sv_dec_obj(d, o, "fraction", &frac);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        mark = sv_dec_push(d, "fraction");
        rc = sv_dec_i32(d, frac, "numerator", 0, INT32_MAX, &m->fraction_num);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return sv_dec_fail(d, "numerator", "required field missing");
        if (sv_dec_i32(d, frac, "denominator", 1, INT32_MAX, &m->fraction_den) < 0)
            return -1;
        if (m->fraction_num > m->fraction_den)
            return sv_dec_fail(d, NULL, "numerator must not exceed denominator");
        sv_dec_pop(d, mark);
        if (m->percent >= 0)
            return sv_dec_fail(d, NULL, "percent and fraction are mutually exclusive");
    }
    return 0;
}

static int dec_cors(struct sv_dec *d, const cJSON *o, struct sv_cors *c)
{
    c->max_age = 5;
    if (sv_dec_strs(d, o, "allowOrigins", &c->allow_origins, &c->n_allow_origins) < 0 ||
        sv_dec_bool(d, o, "allowCredentials", &c->allow_credentials) < 0 ||
        sv_dec_strs(d, o, "allowMethods", &c->allow_methods, &c->n_allow_methods) < 0 ||
        sv_dec_strs(d, o, "allowHeaders", &c->allow_headers, &c->n_allow_headers) < 0 ||
        sv_dec_strs(d, o, "exposeHeaders", &c->expose_headers, &c->n_expose_headers) < 0 ||
        sv_dec_i32(d, o, "maxAge", 0, INT32_MAX, &c->max_age) < 0)
        return -1;
    return 0;
}

struct filter_kind {
    const char *type;
    const char *field;
};

static const struct filter_kind filter_kinds[] = {
    [SV_FILTER_REQUEST_HEADER_MODIFIER] = {"RequestHeaderModifier", "requestHeaderModifier"},
    [SV_FILTER_RESPONSE_HEADER_MODIFIER] = {"ResponseHeaderModifier", "responseHeaderModifier"},
    [SV_FILTER_REQUEST_REDIRECT] = {"RequestRedirect", "requestRedirect"},
    [SV_FILTER_URL_REWRITE] = {"URLRewrite", "urlRewrite"},
    [SV_FILTER_REQUEST_MIRROR] = {"RequestMirror", "requestMirror"},
    [SV_FILTER_CORS] = {"CORS", "cors"},
    [SV_FILTER_EXTENSION_REF] = {"ExtensionRef", "extensionRef"},
};

static int dec_filter(struct sv_dec *d, const cJSON *it, struct sv_filter *f)
{
    const cJSON *cfg = NULL;
    if (!cJSON_IsObject(it))
        return sv_dec_fail(d, NULL, "expected object");
    if (sv_dec_req_str(d, it, "type", &f->type_raw) < 0)
        return -1;
    f->type = SV_FILTER_UNSUPPORTED;
    for (size_t i = 0; i < SV_ARRAY_SIZE(filter_kinds); i++) {
        if (strcmp(filter_kinds[i].type, f->type_raw) == 0)
            f->type = (enum sv_filter_type)i;
    }
    if (f->type == SV_FILTER_UNSUPPORTED)
        return 0;
    const char *key = filter_kinds[f->type].field;
    int rc = sv_dec_obj(d, it, key, &cfg);
    if (rc < 0)
        return -1;
    f->has_config = rc == 1;
    size_t mark = sv_dec_push(d, key);
    switch (f->type) {
    case SV_FILTER_REQUEST_HEADER_MODIFIER:
    case SV_FILTER_RESPONSE_HEADER_MODIFIER:
        rc = dec_header_modifier(d, cfg, &f->u.headers);
        break;
    case SV_FILTER_REQUEST_REDIRECT: {
        struct sv_redirect *r = &f->u.redirect;
        r->status_code = 302;
        if (sv_dec_str(d, cfg, "scheme", &r->scheme) < 0 ||
            sv_dec_str(d, cfg, "hostname", &r->hostname) < 0 ||
            sv_dec_i32(d, cfg, "port", 1, 65535, &r->port) < 0 ||
            sv_dec_i32(d, cfg, "statusCode", 100, 999, &r->status_code) < 0 ||
            dec_path_modifier(d, cfg, &r->path) < 0)
            rc = -1;
        break;
    }
    case SV_FILTER_URL_REWRITE:
        if (sv_dec_str(d, cfg, "hostname", &f->u.rewrite.hostname) < 0 ||
            dec_path_modifier(d, cfg, &f->u.rewrite.path) < 0)
            rc = -1;
        break;
    case SV_FILTER_REQUEST_MIRROR:
        rc = cfg ? dec_mirror(d, cfg, &f->u.mirror) : 0;
        break;
    case SV_FILTER_CORS:
        rc = dec_cors(d, cfg, &f->u.cors);
        break;
    case SV_FILTER_EXTENSION_REF:
        if (cfg && (sv_dec_str(d, cfg, "group", &f->u.extension.group) < 0 ||
                    sv_dec_req_str(d, cfg, "kind", &f->u.extension.kind) < 0 ||
                    sv_dec_req_str(d, cfg, "name", &f->u.extension.name) < 0))
            rc = -1;
        if (!f->u.extension.group)
            f->u.extension.group = "";
        break;
    default:
        break;
    }
    if (rc < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_filters(struct sv_dec *d, const cJSON *o, struct sv_filter **out, size_t *n_out)
{
    const cJSON *arr, *it;
    size_t n;
    if (sv_dec_arr(d, o, "filters", &arr, &n) < 0)
        return -1;
    if (n == 0)
        return 0;
    struct sv_filter *f = sv_dec_alloc(d, n * sizeof(*f));
    if (!f)
        return -1;
    size_t mark = sv_dec_push(d, "filters"), i = 0;
    cJSON_ArrayForEach(it, arr)
    {
        size_t m2 = sv_dec_push_index(d, i);
        if (dec_filter(d, it, &f[i]) < 0)
            return -1;
        sv_dec_pop(d, m2);
        i++;
    }
    sv_dec_pop(d, mark);
    *out = f;
    *n_out = n;
    return 0;
}

static int dec_backend_ref(struct sv_dec *d, const cJSON *it, struct sv_backend_ref *b,
                           bool with_filters)
{
    if (!cJSON_IsObject(it))
        return sv_dec_fail(d, NULL, "expected object");
    b->weight = 1;
    if (sv_dec_str(d, it, "group", &b->group) < 0 || sv_dec_str(d, it, "kind", &b->kind) < 0 ||
        sv_dec_str(d, it, "namespace", &b->ns) < 0 || sv_dec_req_str(d, it, "name", &b->name) < 0 ||
        sv_dec_i32(d, it, "port", 1, 65535, &b->port) < 0 ||
        sv_dec_i32(d, it, "weight", 0, 1000000, &b->weight) < 0)
        return -1;
    if (!b->group)
        b->group = "";
    if (!b->kind)
        b->kind = "Service";
    if (with_filters && dec_filters(d, it, &b->filters, &b->n_filters) < 0)
        return -1;
    return 0;
}

static int dec_rule(struct sv_dec *d, const cJSON *it, struct sv_route_rule *r)
{
    const cJSON *arr, *el, *timeouts;
    size_t n;
    if (!cJSON_IsObject(it))
        return sv_dec_fail(d, NULL, "expected object");
    r->timeout_request_ms = -1;
    r->timeout_backend_ms = -1;
    if (sv_dec_str(d, it, "name", &r->name) < 0 || sv_dec_arr(d, it, "matches", &arr, &n) < 0)
        return -1;
    if (n == 0) {
        /* Default: one match, PathPrefix "/". */
        r->matches = sv_dec_alloc(d, sizeof(*r->matches));
        if (!r->matches)
            return -1;
        r->matches[0].path_type = SV_PATH_PREFIX;
        r->matches[0].path_type_raw = "PathPrefix";
        r->matches[0].path = "/";
        r->n_matches = 1;
    } else {
        r->matches = sv_dec_alloc(d, n * sizeof(*r->matches));
        if (!r->matches)
            return -1;
        size_t mark = sv_dec_push(d, "matches"), i = 0;
        cJSON_ArrayForEach(el, arr)
        {
            size_t m2 = sv_dec_push_index(d, i);
            if (dec_match(d, el, &r->matches[i]) < 0)
                return -1;
            sv_dec_pop(d, m2);
            i++;
        }
        sv_dec_pop(d, mark);
        r->n_matches = n;
    }
    if (dec_filters(d, it, &r->filters, &r->n_filters) < 0)
        return -1;
    if (sv_dec_arr(d, it, "backendRefs", &arr, &n) < 0)
        return -1;
    if (n) {
        r->backends = sv_dec_alloc(d, n * sizeof(*r->backends));
        if (!r->backends)
            return -1;
        size_t mark = sv_dec_push(d, "backendRefs"), i = 0;
        cJSON_ArrayForEach(el, arr)
        {
            size_t m2 = sv_dec_push_index(d, i);
            if (dec_backend_ref(d, el, &r->backends[i], true) < 0)
                return -1;
            sv_dec_pop(d, m2);
            i++;
        }
        sv_dec_pop(d, mark);
        r->n_backends = n;
    }
    if (sv_dec_obj(d, it, "timeouts", &timeouts) < 0)
        return -1;
    if (timeouts) {
        size_t mark = sv_dec_push(d, "timeouts");
        if (sv_dec_duration(d, timeouts, "request", &r->timeout_request_ms) < 0 ||
            sv_dec_duration(d, timeouts, "backendRequest", &r->timeout_backend_ms) < 0)
            return -1;
        sv_dec_pop(d, mark);
    }
    return 0;
}

int sv_dec_httproute(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_httproute *hr = &obj->u.httproute;
    const cJSON *spec, *arr, *it;
    size_t n;
    if (sv_dec_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_arr(d, spec, "parentRefs", &arr, &n) < 0)
        return -1;
    if (n) {
        hr->parents = sv_dec_alloc(d, n * sizeof(*hr->parents));
        if (!hr->parents)
            return -1;
        size_t m2 = sv_dec_push(d, "parentRefs"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            struct sv_parent_ref *p = &hr->parents[i];
            size_t m3 = sv_dec_push_index(d, i);
            if (!cJSON_IsObject(it))
                return sv_dec_fail(d, NULL, "expected object");
            if (sv_dec_str(d, it, "group", &p->group) < 0 ||
                sv_dec_str(d, it, "kind", &p->kind) < 0 ||
                sv_dec_str(d, it, "namespace", &p->ns) < 0 ||
                sv_dec_req_str(d, it, "name", &p->name) < 0 ||
                sv_dec_str(d, it, "sectionName", &p->section_name) < 0 ||
                sv_dec_i32(d, it, "port", 1, 65535, &p->port) < 0)
                return -1;
            if (!p->group)
                p->group = SV_GATEWAY_API_GROUP;
            if (!p->kind)
                p->kind = "Gateway";
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        hr->n_parents = n;
    }
    if (sv_dec_strs(d, spec, "hostnames", &hr->hostnames, &hr->n_hostnames) < 0)
        return -1;
    if (sv_dec_arr(d, spec, "rules", &arr, &n) < 0)
        return -1;
    if (n == 0) {
        /* Default: one rule matching PathPrefix "/" (and no backends). */
        hr->rules = sv_dec_alloc(d, sizeof(*hr->rules));
        if (!hr->rules)
            return -1;
        struct sv_route_rule *r = &hr->rules[0];
        r->timeout_request_ms = r->timeout_backend_ms = -1;
        r->matches = sv_dec_alloc(d, sizeof(*r->matches));
        if (!r->matches)
            return -1;
        r->matches[0].path_type = SV_PATH_PREFIX;
        r->matches[0].path_type_raw = "PathPrefix";
        r->matches[0].path = "/";
        r->n_matches = 1;
        hr->n_rules = 1;
    } else {
        hr->rules = sv_dec_alloc(d, n * sizeof(*hr->rules));
        if (!hr->rules)
            return -1;
        size_t m2 = sv_dec_push(d, "rules"), i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            size_t m3 = sv_dec_push_index(d, i);
            if (dec_rule(d, it, &hr->rules[i]) < 0)
                return -1;
            sv_dec_pop(d, m3);
            i++;
        }
        sv_dec_pop(d, m2);
        hr->n_rules = n;
    }
    sv_dec_pop(d, mark);
    return 0;
}

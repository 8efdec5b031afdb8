/* HTTPRoute decoding with the CRD defaults (GATEWAY_API_RULES.md, "Defaults"). */
#include <string.h>

#include "control/model/model_int.h"

static int dec_kv_match(struct sv_dec *d, const cJSON *it, void *elem)
{
    static const char *const types[] = {"Exact", "RegularExpression", NULL};
    struct sv_kv_match *m = elem;
    if (sv_dec_str(d, it, "type", &m->type_raw) < 0 || sv_dec_req_str(d, it, "name", &m->name) < 0 ||
        sv_dec_req_str(d, it, "value", &m->value) < 0)
        return -1;
    if (!m->type_raw)
        m->type_raw = "Exact";
    m->type = (enum sv_value_match)sv_dec_enum(m->type_raw, types, SV_MATCH_UNSUPPORTED);
    return 0;
}

static int dec_match(struct sv_dec *d, const cJSON *it, void *elem)
{
    static const char *const types[] = {"PathPrefix", "Exact", "RegularExpression", NULL};
    struct sv_route_match *m = elem;
    const cJSON *path;
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
    if (SV_DEC_EACH_OBJ(d, it, "headers", &m->headers, &m->n_headers, dec_kv_match) < 0 ||
        SV_DEC_EACH_OBJ(d, it, "queryParams", &m->query, &m->n_query, dec_kv_match) < 0 ||
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
    if (sv_dec_req_obj(d, o, "backendRef", &br) < 0)
        return -1;
    m->backend = sv_dec_alloc(d, sizeof(*m->backend));
    if (!m->backend)
        return -1;
    size_t mark = sv_dec_push(d, "backendRef");
    if (dec_backend_ref(d, br, m->backend, false) < 0)
        return -1;
    sv_dec_pop(d, mark);
    if (sv_dec_i32(d, o, "percent", 0, 100, &m->percent) < 0)
        return -1;
    int rc = sv_dec_obj(d, o, "fraction", &frac);
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

static int dec_filter(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_filter *f = elem;
    const cJSON *cfg = NULL;
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
    if (with_filters &&
        SV_DEC_EACH_OBJ(d, it, "filters", &b->filters, &b->n_filters, dec_filter) < 0)
        return -1;
    return 0;
}

static int dec_rule_backend(struct sv_dec *d, const cJSON *it, void *elem)
{
    return dec_backend_ref(d, it, elem, true);
}

/* A rule without matches gets one: PathPrefix "/". */
static int dec_default_match(struct sv_dec *d, struct sv_route_rule *r)
{
    r->matches = sv_dec_alloc(d, sizeof(*r->matches));
    if (!r->matches)
        return -1;
    r->matches[0].path_type = SV_PATH_PREFIX;
    r->matches[0].path_type_raw = "PathPrefix";
    r->matches[0].path = "/";
    r->n_matches = 1;
    return 0;
}

/* spec.rules[].retry: codes (integers), attempts, backoff (a duration). */
static int dec_retry(struct sv_dec *d, const cJSON *o, struct sv_retry **out)
{
    struct sv_retry *rt = sv_dec_alloc(d, sizeof(*rt));
    if (!rt)
        return -1;
    rt->backoff_ms = -1;
    size_t mark = sv_dec_push(d, "retry");
    const cJSON *arr;
    size_t n;
    int rc = sv_dec_arr(d, o, "codes", &arr, &n);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        rt->codes = sv_dec_alloc(d, n * sizeof(*rt->codes));
        if (!rt->codes)
            return -1;
        size_t m2 = sv_dec_push(d, "codes");
        const cJSON *c;
        cJSON_ArrayForEach(c, arr)
        {
            double x = cJSON_IsNumber(c) ? c->valuedouble : 0.5;
            if (!(x >= INT32_MIN && x <= INT32_MAX) || x != (double)(int32_t)x) {
                sv_dec_push_index(d, rt->n_codes);
                return sv_dec_fail(d, NULL, "expected an HTTP status code");
            }
            rt->codes[rt->n_codes++] = (int32_t)x;
        }
        sv_dec_pop(d, m2);
    }
    rc = sv_dec_i32(d, o, "attempts", INT32_MIN, INT32_MAX, &rt->attempts);
    if (rc < 0 || sv_dec_duration(d, o, "backoff", &rt->backoff_ms) < 0)
        return -1;
    rt->has_attempts = rc > 0;
    sv_dec_pop(d, mark);
    *out = rt;
    return 0;
}

static int dec_rule(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_route_rule *r = elem;
    const cJSON *timeouts;
    r->timeout_request_ms = -1;
    r->timeout_backend_ms = -1;
    if (sv_dec_str(d, it, "name", &r->name) < 0)
        return -1;
    int rc = SV_DEC_EACH_OBJ(d, it, "matches", &r->matches, &r->n_matches, dec_match);
    if (rc < 0 || (rc == 0 && dec_default_match(d, r) < 0))
        return -1;
    if (SV_DEC_EACH_OBJ(d, it, "filters", &r->filters, &r->n_filters, dec_filter) < 0 ||
        SV_DEC_EACH_OBJ(d, it, "backendRefs", &r->backends, &r->n_backends, dec_rule_backend) < 0)
        return -1;
    if (sv_dec_obj(d, it, "timeouts", &timeouts) < 0)
        return -1;
    if (timeouts) {
        size_t mark = sv_dec_push(d, "timeouts");
        if (sv_dec_duration(d, timeouts, "request", &r->timeout_request_ms) < 0 ||
            sv_dec_duration(d, timeouts, "backendRequest", &r->timeout_backend_ms) < 0)
            return -1;
        sv_dec_pop(d, mark);
    }
    const cJSON *retry;
    if (sv_dec_obj(d, it, "retry", &retry) < 0 || (retry && dec_retry(d, retry, &r->retry) < 0))
        return -1;
    return 0;
}

static int dec_parent_ref(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_parent_ref *p = elem;
    if (sv_dec_str(d, it, "group", &p->group) < 0 || sv_dec_str(d, it, "kind", &p->kind) < 0 ||
        sv_dec_str(d, it, "namespace", &p->ns) < 0 || sv_dec_req_str(d, it, "name", &p->name) < 0 ||
        sv_dec_str(d, it, "sectionName", &p->section_name) < 0 ||
        sv_dec_i32(d, it, "port", 1, 65535, &p->port) < 0)
        return -1;
    if (!p->group)
        p->group = SV_GATEWAY_API_GROUP;
    if (!p->kind)
        p->kind = "Gateway";
    return 0;
}

int sv_dec_httproute(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_httproute *hr = &obj->u.httproute;
    const cJSON *spec;
    if (sv_dec_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (SV_DEC_EACH_OBJ(d, spec, "parentRefs", &hr->parents, &hr->n_parents, dec_parent_ref) < 0)
        return -1;
    if (sv_dec_strs(d, spec, "hostnames", &hr->hostnames, &hr->n_hostnames) < 0)
        return -1;
    int rc = SV_DEC_EACH_OBJ(d, spec, "rules", &hr->rules, &hr->n_rules, dec_rule);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        /* Default: one rule matching PathPrefix "/" (and no backends). */
        hr->rules = sv_dec_alloc(d, sizeof(*hr->rules));
        if (!hr->rules)
            return -1;
        struct sv_route_rule *r = &hr->rules[0];
        r->timeout_request_ms = r->timeout_backend_ms = -1;
        if (dec_default_match(d, r) < 0)
            return -1;
        hr->n_rules = 1;
    }
    sv_dec_pop(d, mark);
    return 0;
}

/* TLSRoute (v1alpha2/v1alpha3): parentRefs, hostnames, rules[].backendRefs (and name). Each rule
 * gets the default match so the HTTPRoute translation serves it: the SNI is routed as the host
 * with path "/". */
static int dec_tls_backend(struct sv_dec *d, const cJSON *it, void *elem)
{
    return dec_backend_ref(d, it, elem, false);
}

static int dec_tls_rule(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_route_rule *r = elem;
    r->timeout_request_ms = -1;
    r->timeout_backend_ms = -1;
    if (sv_dec_str(d, it, "name", &r->name) < 0 ||
        SV_DEC_EACH_OBJ(d, it, "backendRefs", &r->backends, &r->n_backends, dec_tls_backend) < 0)
        return -1;
    return dec_default_match(d, r);
}

int sv_dec_tlsroute(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_httproute *hr = &obj->u.httproute;
    const cJSON *spec;
    if (sv_dec_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (SV_DEC_EACH_OBJ(d, spec, "parentRefs", &hr->parents, &hr->n_parents, dec_parent_ref) < 0 ||
        sv_dec_strs(d, spec, "hostnames", &hr->hostnames, &hr->n_hostnames) < 0 ||
        SV_DEC_EACH_OBJ(d, spec, "rules", &hr->rules, &hr->n_rules, dec_tls_rule) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

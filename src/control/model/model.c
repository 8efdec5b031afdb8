/* Object decoding entry point, metadata, shared field getters, durations and timestamps. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/model/model_int.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"

#define OBJECT_ARENA_BLOCK 2048

static const char *const kind_names[SV_KIND__COUNT] = {
    [SV_KIND_GATEWAYCLASS] = "GatewayClass",
    [SV_KIND_GATEWAY] = "Gateway",
    [SV_KIND_HTTPROUTE] = "HTTPRoute",
    [SV_KIND_REFERENCEGRANT] = "ReferenceGrant",
    [SV_KIND_NAMESPACE] = "Namespace",
    [SV_KIND_SERVICE] = "Service",
    [SV_KIND_ENDPOINTSLICE] = "EndpointSlice",
    [SV_KIND_SECRET] = "Secret",
    [SV_KIND_LISTENERSET] = "ListenerSet",
    [SV_KIND_TLSROUTE] = "TLSRoute",
    [SV_KIND_CONFIGMAP] = "ConfigMap",
    [SV_KIND_BACKENDTLSPOLICY] = "BackendTLSPolicy",
};

const char *sv_kind_name(enum sv_kind kind)
{
    SV_ASSERT(kind < SV_KIND__COUNT);
    return kind_names[kind];
}

bool sv_kind_cluster_scoped(enum sv_kind kind)
{
    return kind == SV_KIND_GATEWAYCLASS || kind == SV_KIND_NAMESPACE;
}

const char *sv_meta_label(const struct sv_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n_labels; i++) {
        if (strcmp(m->labels[i].key, key) == 0)
            return m->labels[i].value;
    }
    return NULL;
}

/* ---- path and errors ------------------------------------------------------------------- */

size_t sv_dec_push(struct sv_dec *d, const char *key)
{
    size_t mark = d->nsegs;
    if (d->nsegs < SV_DEC_MAX_SEGS)
        d->segs[d->nsegs] = (struct sv_dec_seg){key, 0};
    d->nsegs++;
    return mark;
}

size_t sv_dec_push_index(struct sv_dec *d, size_t i)
{
    size_t mark = d->nsegs;
    if (d->nsegs < SV_DEC_MAX_SEGS)
        d->segs[d->nsegs] = (struct sv_dec_seg){NULL, i};
    d->nsegs++;
    return mark;
}

void sv_dec_pop(struct sv_dec *d, size_t mark)
{
    SV_ASSERT(mark <= d->nsegs);
    d->nsegs = mark;
}

/* "spec.rules[0].matches[1]" for the current path (plus <key>). */
static void format_path(const struct sv_dec *d, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    size_t segs = d->nsegs < SV_DEC_MAX_SEGS ? d->nsegs : SV_DEC_MAX_SEGS;
    for (size_t i = 0; i <= segs && n < cap; i++) {
        const char *k = i < segs ? d->segs[i].key : key;
        int w;
        if (i == segs && !key)
            break;
        if (i < segs && !k)
            w = snprintf(out + n, cap - n, "[%zu]", d->segs[i].index);
        else
            w = snprintf(out + n, cap - n, "%s%s", n ? "." : "", k);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (d->nsegs > SV_DEC_MAX_SEGS && n + 4 < cap)
        snprintf(out + n, cap - n, "...");
}

int sv_dec_fail(struct sv_dec *d, const char *key, const char *fmt, ...)
{
    if (d->failed)
        return -1;
    d->failed = true;
    if (!d->err || d->errlen == 0)
        return -1;
    char msg[256], path[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    format_path(d, key, path, sizeof(path));
    snprintf(d->err, d->errlen, "%s: %s", path, msg);
    return -1;
}

int sv_dec_nomem(struct sv_dec *d)
{
    d->nomem = true;
    return sv_dec_fail(d, NULL, "out of memory");
}

void *sv_dec_alloc(struct sv_dec *d, size_t n)
{
    void *p = sv_arena_zalloc(d->arena, n ? n : 1);
    if (!p)
        sv_dec_nomem(d);
    return p;
}

const char *sv_dec_strdup(struct sv_dec *d, const char *s)
{
    char *p = sv_arena_strndup(d->arena, s, strlen(s));
    if (!p)
        sv_dec_nomem(d);
    return p;
}

/* ---- getters ----------------------------------------------------------------------------- */

static const cJSON *field(const cJSON *o, const char *key)
{
    if (!o)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return NULL;
    return v;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "null";
}

const char *sv_dec_scalar_text(const cJSON *v)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if ((cJSON_IsNumber(v) || cJSON_IsBool(v)) && v->valuestring)
        return v->valuestring;
    return NULL;
}

int sv_dec_obj(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out)
{
    const cJSON *v = field(o, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return sv_dec_fail(d, key, "expected object, got %s", type_name(v));
    *out = v;
    return 1;
}

int sv_dec_req_obj(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out)
{
    int rc = sv_dec_obj(d, o, key, out);
    if (rc == 0)
        return sv_dec_fail(d, key, "required field missing");
    return rc;
}

int sv_dec_arr(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out, size_t *n)
{
    const cJSON *v = field(o, key);
    *out = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!cJSON_IsArray(v))
        return sv_dec_fail(d, key, "expected array, got %s", type_name(v));
    int count = cJSON_GetArraySize(v);
    if (count < 0 || (size_t)count > SV_MODEL_MAX_ITEMS)
        return sv_dec_fail(d, key, "too many items (limit %u)", SV_MODEL_MAX_ITEMS);
    *out = v;
    *n = (size_t)count;
    return count > 0 ? 1 : 0;
}

int sv_dec_str(struct sv_dec *d, const cJSON *o, const char *key, const char **out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return 0;
    const char *text = sv_dec_scalar_text(v);
    if (!text)
        return sv_dec_fail(d, key, "expected string, got %s", type_name(v));
    *out = sv_dec_strdup(d, text);
    return *out ? 1 : -1;
}

int sv_dec_req_str(struct sv_dec *d, const cJSON *o, const char *key, const char **out)
{
    int rc = sv_dec_str(d, o, key, out);
    if (rc == 0)
        return sv_dec_fail(d, key, "required field missing");
    return rc;
}

int sv_dec_int(struct sv_dec *d, const cJSON *o, const char *key, int64_t min, int64_t max,
               int64_t *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return sv_dec_fail(d, key, "expected integer, got %s", type_name(v));
    double x = v->valuedouble;
    if (x != x || x < (double)min || x > (double)max)
        return sv_dec_fail(d, key, "out of range [%lld, %lld]", (long long)min, (long long)max);
    int64_t i = (int64_t)x;
    if ((double)i != x)
        return sv_dec_fail(d, key, "expected integer, got a fraction");
    *out = i;
    return 1;
}

int sv_dec_i32(struct sv_dec *d, const cJSON *o, const char *key, int32_t min, int32_t max,
               int32_t *out)
{
    int64_t v;
    int rc = sv_dec_int(d, o, key, min, max, &v);
    if (rc == 1)
        *out = (int32_t)v;
    return rc;
}

int sv_dec_bool(struct sv_dec *d, const cJSON *o, const char *key, bool *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return sv_dec_fail(d, key, "expected boolean, got %s", type_name(v));
    *out = cJSON_IsTrue(v);
    return 1;
}

int sv_dec_strs(struct sv_dec *d, const cJSON *o, const char *key, const char ***out, size_t *n)
{
    const cJSON *arr;
    size_t count;
    *out = NULL;
    *n = 0;
    int rc = sv_dec_arr(d, o, key, &arr, &count);
    if (rc <= 0)
        return rc;
    const char **v = sv_dec_alloc(d, count * sizeof(*v));
    if (!v)
        return -1;
    size_t mark = sv_dec_push(d, key), i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *text = sv_dec_scalar_text(it);
        if (!text) {
            size_t m2 = sv_dec_push_index(d, i);
            sv_dec_fail(d, NULL, "expected string, got %s", type_name(it));
            sv_dec_pop(d, m2);
            return -1;
        }
        if (!(v[i++] = sv_dec_strdup(d, text)))
            return -1;
    }
    sv_dec_pop(d, mark);
    *out = v;
    *n = count;
    return 1;
}

int sv_dec_map(struct sv_dec *d, const cJSON *o, const char *key, struct sv_kv **out, size_t *n)
{
    const cJSON *m;
    *out = NULL;
    *n = 0;
    int rc = sv_dec_obj(d, o, key, &m);
    if (rc <= 0)
        return rc;
    int count = cJSON_GetArraySize(m);
    if (count <= 0)
        return 0;
    if ((size_t)count > SV_MODEL_MAX_ITEMS)
        return sv_dec_fail(d, key, "too many entries");
    struct sv_kv *kv = sv_dec_alloc(d, (size_t)count * sizeof(*kv));
    if (!kv)
        return -1;
    size_t mark = sv_dec_push(d, key), i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        const char *text = sv_dec_scalar_text(it);
        if (!text)
            return sv_dec_fail(d, it->string, "expected string, got %s", type_name(it));
        kv[i].key = sv_dec_strdup(d, it->string);
        kv[i].value = sv_dec_strdup(d, text);
        if (!kv[i].key || !kv[i].value)
            return -1;
        i++;
    }
    sv_dec_pop(d, mark);
    *out = kv;
    *n = i;
    return 1;
}

int sv_dec_duration(struct sv_dec *d, const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return sv_dec_fail(d, key, "expected duration string, got %s", type_name(v));
    if (sv_model_parse_duration(v->valuestring, out) != 0)
        return sv_dec_fail(d, key, "invalid duration \"%.40s\" (GEP-2257: e.g. 1h30m, 500ms)",
                           v->valuestring);
    return 1;
}

int sv_dec_name_values(struct sv_dec *d, const cJSON *o, const char *key, struct sv_kv **out,
                       size_t *n)
{
    const cJSON *arr;
    size_t count;
    *out = NULL;
    *n = 0;
    int rc = sv_dec_arr(d, o, key, &arr, &count);
    if (rc <= 0)
        return rc;
    struct sv_kv *kv = sv_dec_alloc(d, count * sizeof(*kv));
    if (!kv)
        return -1;
    size_t mark = sv_dec_push(d, key), i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        size_t m2 = sv_dec_push_index(d, i);
        if (!cJSON_IsObject(it))
            return sv_dec_fail(d, NULL, "expected object, got %s", type_name(it));
        if (sv_dec_req_str(d, it, "name", &kv[i].key) < 0 ||
            sv_dec_str(d, it, "value", &kv[i].value) < 0)
            return -1;
        if (!kv[i].value)
            kv[i].value = "";
        sv_dec_pop(d, m2);
        i++;
    }
    sv_dec_pop(d, mark);
    *out = kv;
    *n = count;
    return 1;
}

int sv_dec_each_obj(struct sv_dec *d, const cJSON *o, const char *key, size_t elem_size,
                    void **out, size_t *n, sv_dec_elem_fn fn)
{
    const cJSON *arr, *it;
    size_t count, i = 0;
    int rc = sv_dec_arr(d, o, key, &arr, &count);
    if (rc <= 0)
        return rc;
    char *elems = sv_dec_alloc(d, count * elem_size);
    if (!elems)
        return -1;
    size_t mark = sv_dec_push(d, key);
    for (it = arr->child; it && i < count; it = it->next, i++) {
        size_t m2 = sv_dec_push_index(d, i);
        if (!cJSON_IsObject(it))
            return sv_dec_fail(d, NULL, "expected object");
        if (fn(d, it, elems + i * elem_size) < 0)
            return -1;
        sv_dec_pop(d, m2);
    }
    sv_dec_pop(d, mark);
    *out = elems;
    *n = count;
    return 1;
}

int sv_dec_enum(const char *s, const char *const *names, int unsupported)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return unsupported;
}

/* ---- label selectors --------------------------------------------------------------------- */

static int dec_selector_expr(struct sv_dec *d, const cJSON *it, void *elem)
{
    static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};
    struct sv_selector_expr *e = elem;
    if (sv_dec_req_str(d, it, "key", &e->key) < 0 ||
        sv_dec_req_str(d, it, "operator", &e->op_raw) < 0 ||
        sv_dec_strs(d, it, "values", &e->values, &e->n_values) < 0)
        return -1;
    e->op = (enum sv_selector_op)sv_dec_enum(e->op_raw, ops, SV_SEL_UNSUPPORTED);
    return 0;
}

int sv_dec_label_selector(struct sv_dec *d, const cJSON *o, struct sv_label_selector *out)
{
    memset(out, 0, sizeof(*out));
    if (sv_dec_map(d, o, "matchLabels", &out->match_labels, &out->n_match_labels) < 0)
        return -1;
    if (SV_DEC_EACH_OBJ(d, o, "matchExpressions", &out->exprs, &out->n_exprs, dec_selector_expr) < 0)
        return -1;
    return 0;
}

static const char *kv_get(const struct sv_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    }
    return NULL;
}

bool sv_label_selector_matches(const struct sv_label_selector *sel, const struct sv_kv *labels,
                               size_t n_labels)
{
    for (size_t i = 0; i < sel->n_match_labels; i++) {
        const char *v = kv_get(labels, n_labels, sel->match_labels[i].key);
        if (!v || strcmp(v, sel->match_labels[i].value) != 0)
            return false;
    }
    for (size_t i = 0; i < sel->n_exprs; i++) {
        const struct sv_selector_expr *e = &sel->exprs[i];
        const char *v = kv_get(labels, n_labels, e->key);
        bool in = false;
        for (size_t k = 0; v && k < e->n_values; k++)
            in = in || strcmp(v, e->values[k]) == 0;
        switch (e->op) {
        case SV_SEL_IN:
            if (!in)
                return false;
            break;
        case SV_SEL_NOT_IN:
            if (in)
                return false;
            break;
        case SV_SEL_EXISTS:
            if (!v)
                return false;
            break;
        case SV_SEL_DOES_NOT_EXIST:
            if (v)
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* ---- durations and timestamps ------------------------------------------------------------ */

int sv_model_parse_duration(const char *text, int64_t *ms)
{
    const char *p = text;
    int64_t total = 0;
    int components = 0;
    if (!p || !*p)
        return -EINVAL;
    while (*p) {
        if (components == 4)
            return -EINVAL;
        int64_t v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 5)
                return -EINVAL;
            v = v * 10 + (*p++ - '0');
        }
        if (digits == 0)
            return -EINVAL;
        int64_t mult;
        if (p[0] == 'm' && p[1] == 's') {
            mult = 1;
            p += 2;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else {
            return -EINVAL;
        }
        total += v * mult;
        components++;
    }
    *ms = total;
    return 0;
}

static int parse_digits(const char **pp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*pp)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *pp += n;
    *out = v;
    return 0;
}

int sv_model_parse_time(const char *text, int64_t *ns_out)
{
    const char *p = text;
    int Y, M, D, h, m, s;
    if (parse_digits(&p, 4, &Y) || *p++ != '-' || parse_digits(&p, 2, &M) || *p++ != '-' ||
        parse_digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &m) || *p++ != ':' ||
        parse_digits(&p, 2, &s))
        return -EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60)
        return -EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -EINVAL;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om))
            return -EINVAL;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = s};
    int64_t secs = (int64_t)timegm(&tm) - offset;
    *ns_out = secs * 1000000000ll + frac;
    return 0;
}

/* ---- content hash -------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* FNV-1a over the tree: types, keys, values, in order. <depth> 0 = the object itself. */
static uint64_t hash_json(const cJSON *j, uint64_t h, int depth, bool in_meta)
{
    h = fnv(h, &j->type, sizeof(j->type));
    if (cJSON_IsString(j) || ((cJSON_IsNumber(j) || cJSON_IsBool(j)) && j->valuestring))
        return fnv(h, j->valuestring, strlen(j->valuestring) + 1);
    if (cJSON_IsNumber(j))
        return fnv(h, &j->valuedouble, sizeof(j->valuedouble));
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        if (c->string) {
            if (depth == 0 && strcmp(c->string, "status") == 0)
                continue;
            if (in_meta && (strcmp(c->string, "resourceVersion") == 0 ||
                            strcmp(c->string, "managedFields") == 0))
                continue;
            h = fnv(h, c->string, strlen(c->string) + 1);
        }
        h = hash_json(c, h, depth + 1, depth == 0 && c->string && strcmp(c->string, "metadata") == 0);
    }
    return fnv(h, "}", 1);
}

/* ---- metadata and the entry point --------------------------------------------------------- */

static int dec_meta(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    const cJSON *md;
    struct sv_meta *m = &obj->meta;
    if (sv_dec_req_obj(d, j, "metadata", &md) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "metadata");
    if (sv_dec_req_str(d, md, "name", &m->name) < 0 || sv_dec_str(d, md, "namespace", &m->ns) < 0 ||
        sv_dec_str(d, md, "uid", &m->uid) < 0 ||
        sv_dec_int(d, md, "generation", 0, INT64_MAX / 2, &m->generation) < 0 ||
        sv_dec_str(d, md, "resourceVersion", &m->resource_version) < 0 ||
        sv_dec_map(d, md, "labels", &m->labels, &m->n_labels) < 0 ||
        sv_dec_map(d, md, "annotations", &m->annotations, &m->n_annotations) < 0)
        return -1;
    if (!m->name[0])
        return sv_dec_fail(d, "name", "must not be empty");
    const char *ts = NULL;
    if (sv_dec_str(d, md, "creationTimestamp", &ts) < 0)
        return -1;
    if (ts && sv_model_parse_time(ts, &m->creation_ns) != 0)
        return sv_dec_fail(d, "creationTimestamp", "invalid RFC 3339 time \"%.40s\"", ts);
    sv_dec_pop(d, mark);
    if (sv_kind_cluster_scoped(obj->kind))
        m->ns = "";
    else if (!m->ns || !m->ns[0])
        m->ns = "default";
    return 0;
}

/* Namespaces carry kubernetes.io/metadata.name (the API server adds it). */
static int namespace_label(struct sv_dec *d, struct sv_object *obj)
{
    struct sv_meta *m = &obj->meta;
    static const char key[] = "kubernetes.io/metadata.name";
    if (sv_meta_label(m, key))
        return 0;
    struct sv_kv *kv = sv_dec_alloc(d, (m->n_labels + 1) * sizeof(*kv));
    if (!kv)
        return -1;
    if (m->n_labels)
        memcpy(kv, m->labels, m->n_labels * sizeof(*kv));
    kv[m->n_labels].key = key;
    kv[m->n_labels].value = m->name;
    m->labels = kv;
    m->n_labels++;
    return 0;
}

struct kind_entry {
    const char *kind;
    const char *api_versions[3];
    enum sv_kind k;
};

static const struct kind_entry kinds[] = {
    {"GatewayClass",
     {SV_GATEWAY_API_GROUP "/v1", SV_GATEWAY_API_GROUP "/v1beta1", NULL},
     SV_KIND_GATEWAYCLASS},
    {"Gateway", {SV_GATEWAY_API_GROUP "/v1", SV_GATEWAY_API_GROUP "/v1beta1", NULL}, SV_KIND_GATEWAY},
    {"HTTPRoute",
     {SV_GATEWAY_API_GROUP "/v1", SV_GATEWAY_API_GROUP "/v1beta1", NULL},
     SV_KIND_HTTPROUTE},
    {"ReferenceGrant",
     {SV_GATEWAY_API_GROUP "/v1beta1", SV_GATEWAY_API_GROUP "/v1", NULL},
     SV_KIND_REFERENCEGRANT},
    {"Namespace", {"v1", NULL, NULL}, SV_KIND_NAMESPACE},
    {"Service", {"v1", NULL, NULL}, SV_KIND_SERVICE},
    {"EndpointSlice", {"discovery.k8s.io/v1", NULL, NULL}, SV_KIND_ENDPOINTSLICE},
    {"Secret", {"v1", NULL, NULL}, SV_KIND_SECRET},
    {"ListenerSet", {SV_GATEWAY_API_GROUP "/v1", NULL, NULL}, SV_KIND_LISTENERSET},
    {"TLSRoute",
     {SV_GATEWAY_API_GROUP "/v1alpha2", SV_GATEWAY_API_GROUP "/v1alpha3", SV_GATEWAY_API_GROUP "/v1"},
     SV_KIND_TLSROUTE},
    {"ConfigMap", {"v1", NULL, NULL}, SV_KIND_CONFIGMAP},
    {"BackendTLSPolicy",
     {SV_GATEWAY_API_GROUP "/v1", SV_GATEWAY_API_GROUP "/v1alpha3", NULL},
     SV_KIND_BACKENDTLSPOLICY},
};

int sv_model_decode(const cJSON *json, const char *source, struct sv_object **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    struct sv_dec d = {.err = err, .errlen = errlen};
    if (!cJSON_IsObject(json)) {
        sv_dec_fail(&d, NULL, "expected an object, got %s", type_name(json));
        return -EINVAL;
    }
    const cJSON *kind = field(json, "kind"), *api = field(json, "apiVersion");
    if (!kind || !cJSON_IsString(kind)) {
        sv_dec_fail(&d, "kind", kind ? "expected string" : "required field missing");
        return -EINVAL;
    }
    if (!api || !cJSON_IsString(api)) {
        sv_dec_fail(&d, "apiVersion", api ? "expected string" : "required field missing");
        return -EINVAL;
    }
    const struct kind_entry *ke = NULL;
    for (size_t i = 0; i < SV_ARRAY_SIZE(kinds) && !ke; i++) {
        if (strcmp(kinds[i].kind, kind->valuestring) != 0)
            continue;
        for (size_t v = 0; v < 3 && kinds[i].api_versions[v]; v++) {
            if (strcmp(kinds[i].api_versions[v], api->valuestring) == 0)
                ke = &kinds[i];
        }
    }
    if (!ke) {
        sv_debug("model", "%s: ignoring %s %s", source ? source : "?", api->valuestring,
                 kind->valuestring);
        return SV_DECODE_IGNORED;
    }

    struct sv_arena arena;
    if (sv_arena_init(&arena, OBJECT_ARENA_BLOCK, false) != 0)
        return -ENOMEM;
    struct sv_object *obj = sv_arena_zalloc(&arena, sizeof(*obj));
    if (!obj) {
        sv_arena_destroy(&arena);
        return -ENOMEM;
    }
    obj->_arena = arena;
    obj->_refs = 1;
    d.arena = &obj->_arena;
    obj->kind = ke->k;
    if (source)
        obj->source = sv_dec_strdup(&d, source);

    int rc = dec_meta(&d, json, obj);
    if (rc == 0) {
        switch (obj->kind) {
        case SV_KIND_GATEWAYCLASS:
            rc = sv_dec_gatewayclass(&d, json, obj);
            break;
        case SV_KIND_GATEWAY:
            rc = sv_dec_gateway(&d, json, obj);
            break;
        case SV_KIND_HTTPROUTE:
            rc = sv_dec_httproute(&d, json, obj);
            break;
        case SV_KIND_TLSROUTE:
            rc = sv_dec_tlsroute(&d, json, obj);
            break;
        case SV_KIND_REFERENCEGRANT:
            rc = sv_dec_referencegrant(&d, json, obj);
            break;
        case SV_KIND_NAMESPACE:
            rc = namespace_label(&d, obj);
            break;
        case SV_KIND_SERVICE:
            rc = sv_dec_service(&d, json, obj);
            break;
        case SV_KIND_ENDPOINTSLICE:
            rc = sv_dec_endpointslice(&d, json, obj);
            break;
        case SV_KIND_SECRET:
            rc = sv_dec_secret(&d, json, obj);
            break;
        case SV_KIND_LISTENERSET:
            rc = sv_dec_listenerset(&d, json, obj);
            break;
        case SV_KIND_CONFIGMAP:
            rc = sv_dec_configmap(&d, json, obj);
            break;
        case SV_KIND_BACKENDTLSPOLICY:
            rc = sv_dec_backendtlspolicy(&d, json, obj);
            break;
        default:
            SV_ASSERT(!"unreachable kind");
        }
    }
    obj->content_hash = hash_json(json, 1469598103934665603ull, 0, false);
    if (rc != 0 || d.failed) {
        bool nomem = d.nomem;
        sv_object_free(obj);
        return nomem ? -ENOMEM : -EINVAL;
    }
    *out = obj;
    return SV_DECODE_OK;
}

struct sv_object *sv_object_ref(struct sv_object *obj)
{
    SV_ASSERT(obj->_refs > 0);
    obj->_refs++;
    return obj;
}

void sv_object_free(struct sv_object *obj)
{
    if (!obj)
        return;
    SV_ASSERT(obj->_refs > 0);
    if (--obj->_refs > 0)
        return;
    /* The object lives inside its own arena: copy the arena out before destroying it. */
    struct sv_arena a = obj->_arena;
    sv_arena_destroy(&a);
}

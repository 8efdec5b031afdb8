/* Kubernetes core objects: Service (v1), EndpointSlice (discovery.k8s.io/v1), Secret (v1);
 * ConfigMap lookup (its decoder is in policy.c). */
#include <string.h>

#include "control/model/model_int.h"

static int dec_service_port(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_service_port *p = elem;
    int rc = sv_dec_i32(d, it, "port", 1, 65535, &p->port);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return sv_dec_fail(d, "port", "required field missing");
    if (sv_dec_str(d, it, "name", &p->name) < 0 || sv_dec_str(d, it, "protocol", &p->protocol) < 0 ||
        sv_dec_str(d, it, "appProtocol", &p->app_protocol) < 0)
        return -1;
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(it, "targetPort");
    if (tp && cJSON_IsString(tp)) { /* a named port (a YAML number stays a number) */
        if (sv_dec_str(d, it, "targetPort", &p->target_port_name) < 0)
            return -1;
    } else if (sv_dec_i32(d, it, "targetPort", 1, 65535, &p->target_port) < 0) {
        return -1;
    }
    if (!p->name)
        p->name = "";
    if (!p->protocol)
        p->protocol = "TCP";
    /* Kubernetes defaults targetPort to port. */
    if (!p->target_port && !p->target_port_name)
        p->target_port = p->port;
    return 0;
}

int sv_dec_service(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_service *s = &obj->u.service;
    const cJSON *spec;
    if (sv_dec_obj(d, j, "spec", &spec) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "spec");
    if (sv_dec_str(d, spec, "type", &s->type) < 0 ||
        sv_dec_str(d, spec, "clusterIP", &s->cluster_ip) < 0 ||
        sv_dec_str(d, spec, "externalName", &s->external_name) < 0 ||
        sv_dec_map(d, spec, "selector", &s->selector, &s->n_selector) < 0)
        return -1;
    if (!s->type)
        s->type = "ClusterIP";
    if (SV_DEC_EACH_OBJ(d, spec, "ports", &s->ports, &s->n_ports, dec_service_port) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

static int dec_condition(struct sv_dec *d, const cJSON *c, const char *key, int8_t *out)
{
    bool b;
    *out = -1;
    int rc = sv_dec_bool(d, c, key, &b);
    if (rc == 1)
        *out = b ? 1 : 0;
    return rc;
}

static int dec_slice_port(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_slice_port *p = elem;
    p->port = -1;
    if (sv_dec_str(d, it, "name", &p->name) < 0 || sv_dec_i32(d, it, "port", 0, 65535, &p->port) < 0 ||
        sv_dec_str(d, it, "protocol", &p->protocol) < 0 ||
        sv_dec_str(d, it, "appProtocol", &p->app_protocol) < 0)
        return -1;
    if (!p->name)
        p->name = "";
    if (!p->protocol)
        p->protocol = "TCP";
    return 0;
}

static int dec_endpoint(struct sv_dec *d, const cJSON *it, void *elem)
{
    struct sv_endpoint *e = elem;
    const cJSON *cond;
    if (sv_dec_strs(d, it, "addresses", &e->addresses, &e->n_addresses) < 0 ||
        sv_dec_obj(d, it, "conditions", &cond) < 0)
        return -1;
    size_t mark = sv_dec_push(d, "conditions");
    if (dec_condition(d, cond, "ready", &e->ready) < 0 ||
        dec_condition(d, cond, "serving", &e->serving) < 0 ||
        dec_condition(d, cond, "terminating", &e->terminating) < 0)
        return -1;
    sv_dec_pop(d, mark);
    return 0;
}

int sv_dec_endpointslice(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_endpointslice *es = &obj->u.endpointslice;
    es->service_name = sv_meta_label(&obj->meta, "kubernetes.io/service-name");
    if (sv_dec_req_str(d, j, "addressType", &es->address_type) < 0)
        return -1;
    if (SV_DEC_EACH_OBJ(d, j, "ports", &es->ports, &es->n_ports, dec_slice_port) < 0 ||
        SV_DEC_EACH_OBJ(d, j, "endpoints", &es->endpoints, &es->n_endpoints, dec_endpoint) < 0)
        return -1;
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decode standard base64 (padding optional, whitespace ignored) into <out> (>= 3/4 of the input +
 * 3 bytes). Returns the length or -1. */
static long b64_decode(const char *in, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    long n = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6)
        return -1;
    return n;
}

int sv_dec_secret(struct sv_dec *d, const cJSON *j, struct sv_object *obj)
{
    struct sv_secret *s = &obj->u.secret;
    const cJSON *data, *sdata, *it;
    if (sv_dec_str(d, j, "type", &s->type) < 0 || sv_dec_obj(d, j, "data", &data) < 0 ||
        sv_dec_obj(d, j, "stringData", &sdata) < 0)
        return -1;
    if (!s->type)
        s->type = "Opaque";
    size_t cap = (size_t)(data ? cJSON_GetArraySize(data) : 0) +
                 (size_t)(sdata ? cJSON_GetArraySize(sdata) : 0);
    if (cap > SV_MODEL_MAX_ITEMS)
        return sv_dec_fail(d, "data", "too many entries");
    if (cap) {
        s->data = sv_dec_alloc(d, cap * sizeof(*s->data));
        if (!s->data)
            return -1;
    }
    size_t mark = sv_dec_push(d, "data");
    cJSON_ArrayForEach(it, data)
    {
        if (!cJSON_IsString(it))
            return sv_dec_fail(d, it->string, "expected base64 string");
        uint8_t *buf = sv_dec_alloc(d, strlen(it->valuestring) / 4 * 3 + 4);
        if (!buf)
            return -1;
        long len = b64_decode(it->valuestring, buf);
        if (len < 0)
            return sv_dec_fail(d, it->string, "invalid base64");
        buf[len] = 0;
        struct sv_bytes_kv *kv = &s->data[s->n_data++];
        kv->key = sv_dec_strdup(d, it->string);
        kv->data = buf;
        kv->len = (size_t)len;
        if (!kv->key)
            return -1;
    }
    sv_dec_pop(d, mark);
    mark = sv_dec_push(d, "stringData");
    cJSON_ArrayForEach(it, sdata)
    {
        const char *text = sv_dec_scalar_text(it);
        if (!text)
            return sv_dec_fail(d, it->string, "expected string");
        struct sv_bytes_kv *kv = NULL;
        for (size_t i = 0; i < s->n_data && !kv; i++) {
            if (strcmp(s->data[i].key, it->string) == 0)
                kv = &s->data[i]; /* stringData wins over data, as in the API server */
        }
        if (!kv)
            kv = &s->data[s->n_data++];
        kv->key = sv_dec_strdup(d, it->string);
        kv->data = (const uint8_t *)sv_dec_strdup(d, text);
        kv->len = strlen(text);
        if (!kv->key || !kv->data)
            return -1;
    }
    sv_dec_pop(d, mark);
    for (size_t i = 0; i < s->n_data; i++) {
        if (strcmp(s->data[i].key, "tls.crt") == 0)
            s->tls_crt = &s->data[i];
        else if (strcmp(s->data[i].key, "tls.key") == 0)
            s->tls_key = &s->data[i];
    }
    return 0;
}

const char *sv_configmap_get(const struct sv_configmap *cm, const char *key)
{
    for (size_t i = 0; i < cm->n_data; i++) {
        if (strcmp(cm->data[i].key, key) == 0)
            return cm->data[i].value;
    }
    return NULL;
}

/* JSON description of a generation (GET /config). Plain snprintf-style writer: no allocation,
 * reports the full length so the caller can retry with a larger buffer. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>

#include "routing/table_int.h"
#include "serval/http/serialize.h"

struct jw {
    char *out;
    size_t cap, len;
};

SV_PRINTF(2, 3) static void jf(struct jw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = w->len < w->cap ? w->cap - w->len : 0;
    int n = vsnprintf(room ? w->out + w->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n;
}

/* A JSON string (quotes included) of <prefix> + <s>; control bytes and non-ASCII escaped as
 * \\u00XX. <prefix> is a literal without characters that need escaping. */
static void js_prefixed(struct jw *w, const char *prefix, struct sv_str s)
{
    jf(w, "\"%s", prefix);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            jf(w, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            jf(w, "\\u%04x", c);
        else
            jf(w, "%c", c);
    }
    jf(w, "\"");
}

static void js(struct jw *w, struct sv_str s)
{
    js_prefixed(w, "", s);
}

static void jaddr(struct jw *w, const union sv_route_sockaddr *a)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
        jf(w, "\"%s:%u\"", ip, (unsigned)ntohs(a->in.sin_port));
    } else if (a->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
        jf(w, "\"[%s]:%u\"", ip, (unsigned)ntohs(a->in6.sin6_port));
    } else {
        jf(w, "null");
    }
}

static void jmods(struct jw *w, const char *key, const struct sv_http_header_mods *m)
{
    if (!m)
        return;
    jf(w, ",\"%s\":{\"set\":[", key);
    for (uint32_t i = 0; i < m->n_set; i++) {
        jf(w, "%s[", i ? "," : "");
        js(w, m->set[i].name);
        jf(w, ",");
        js(w, m->set[i].value);
        jf(w, "]");
    }
    jf(w, "],\"add\":[");
    for (uint32_t i = 0; i < m->n_add; i++) {
        jf(w, "%s[", i ? "," : "");
        js(w, m->add[i].name);
        jf(w, ",");
        js(w, m->add[i].value);
        jf(w, "]");
    }
    jf(w, "],\"remove\":[");
    for (uint32_t i = 0; i < m->n_remove; i++) {
        if (i)
            jf(w, ",");
        js(w, m->remove[i]);
    }
    jf(w, "]}");
}

static const char *path_mod_name(enum sv_route_path_mod_type t)
{
    return t == SV_ROUTE_PATH_MOD_FULL ? "ReplaceFullPath"
           : t == SV_ROUTE_PATH_MOD_PREFIX ? "ReplacePrefixMatch"
                                            : NULL;
}

static void jpathmod(struct jw *w, const struct sv_route_path_mod *p)
{
    const char *n = path_mod_name(p->type);
    if (!n)
        return;
    jf(w, ",\"path\":{\"type\":\"%s\",\"value\":", n);
    js(w, p->value);
    jf(w, "}");
}

static void jredirect(struct jw *w, const struct sv_route_redirect *r)
{
    if (!r)
        return;
    jf(w, ",\"redirect\":{\"status\":%u", (unsigned)r->status);
    if (r->scheme.len) {
        jf(w, ",\"scheme\":");
        js(w, r->scheme);
    }
    if (r->hostname.len) {
        jf(w, ",\"hostname\":");
        js(w, r->hostname);
    }
    if (r->port)
        jf(w, ",\"port\":%u", (unsigned)r->port);
    jpathmod(w, &r->path);
    jf(w, "}");
}

static void jrewrite(struct jw *w, const struct sv_route_rewrite *rw)
{
    if (!rw)
        return;
    jf(w, ",\"rewrite\":{");
    jf(w, "\"hostname\":");
    js(w, rw->hostname);
    jpathmod(w, &rw->path);
    jf(w, "}");
}

static void jaction(struct jw *w, const struct sv_route_table *t, const struct sv_route_action *a)
{
    const struct sv_route_action_ext *x = a->ext;
    jf(w, "{\"id\":%u,\"route\":", a->id);
    js(w, a->route_name);
    jf(w, ",\"rule\":%u", a->rule_index);
    if (x->fixed_status)
        jf(w, ",\"status\":%u", (unsigned)x->fixed_status);
    /* "0s" (disabled) shows as 0 */
    if (x->request_timeout_ms)
        jf(w, ",\"requestTimeoutMs\":%llu", x->request_timeout_ms == SV_ROUTE_TIMEOUT_OFF ? 0ull
                                            : (unsigned long long)x->request_timeout_ms);
    if (x->backend_timeout_ms)
        jf(w, ",\"backendRequestTimeoutMs\":%llu", x->backend_timeout_ms == SV_ROUTE_TIMEOUT_OFF
                                                      ? 0ull : (unsigned long long)x->backend_timeout_ms);
    if (x->retry) {
        jf(w, ",\"retry\":{\"attempts\":%u,\"backoffMs\":%u,\"codes\":[", x->retry->attempts,
           x->retry->backoff_ms);
        for (int st = 400, n = 0; st <= 599; st++)
            if (sv_route_retry_on_status(x->retry, st))
                jf(w, "%s%d", n++ ? "," : "", st);
        jf(w, "]}");
    }
    jmods(w, "requestHeaders", x->request_mods);
    jmods(w, "responseHeaders", x->response_mods);
    jredirect(w, x->redirect);
    jrewrite(w, x->rewrite);
    if (x->cors) {
        const struct sv_route_cors *c = x->cors;
        jf(w, ",\"cors\":{\"allowOrigins\":[");
        for (uint32_t i = 0; i < c->n_origins; i++) {
            if (i)
                jf(w, ",");
            js(w, c->origins[i]);
        }
        jf(w, "],\"allowMethods\":");
        js(w, c->any_method ? SV_STR_LIT("*") : c->allow_methods);
        jf(w, ",\"allowHeaders\":");
        js(w, c->any_header ? SV_STR_LIT("*") : c->allow_headers);
        jf(w, ",\"exposeHeaders\":");
        js(w, c->expose_headers);
        jf(w, ",\"maxAge\":");
        js(w, c->max_age);
        jf(w, ",\"allowCredentials\":%s}", c->allow_credentials ? "true" : "false");
    }
    jf(w, ",\"mirrors\":[");
    for (uint32_t i = 0; i < x->n_mirrors; i++) {
        const struct sv_route_mirror *m = &x->mirrors[i];
        jf(w, "%s{\"set\":", i ? "," : "");
        js(w, m->set_id < t->n_sets ? t->set_names[m->set_id] : SV_STR_LIT("?"));
        jf(w, ",\"fraction\":[%u,%u]}", m->numerator, m->denominator);
    }
    jf(w, "],\"backends\":[");
    static const char *const protos[] = {"http", "h2c", "ws"};
    for (uint32_t i = 0; i < a->n_backends; i++) {
        const struct sv_route_backend *b = &a->backends[i];
        jf(w, "%s{\"weight\":%u,", i ? "," : "", b->weight);
        if (b->kind == SV_ROUTE_BACKEND_INVALID) {
            jf(w, "\"invalid\":true}");
            continue;
        }
        jf(w, "\"set\":");
        js(w, b->set_id < t->n_sets ? t->set_names[b->set_id] : SV_STR_LIT("?"));
        jf(w, ",\"appProtocol\":\"%s\"",
           (unsigned)b->app_proto < SV_ARRAY_SIZE(protos) ? protos[b->app_proto] : "?");
        jmods(w, "requestHeaders", b->request_mods);
        jmods(w, "responseHeaders", b->response_mods);
        jredirect(w, b->redirect);
        jrewrite(w, b->rewrite);
        jf(w, "}");
    }
    jf(w, "]}");
}

size_t sv_generation_write_json(const struct sv_generation *gen, char *out, size_t cap)
{
    sv_generation_check(gen);
    const struct sv_route_table *t = gen->table;
    struct jw w = {out, cap, 0};
    if (cap)
        out[0] = '\0';
    jf(&w, "{\"generation\":%llu,\"binds\":[", (unsigned long long)gen->id);
    for (uint32_t i = 0; i < t->n_binds; i++) {
        jf(&w, "%s{\"address\":", i ? "," : "");
        jaddr(&w, &t->binds[i].addr);
        jf(&w, ",\"protocol\":\"%s\"}",
           t->binds[i].proto == SV_ROUTE_PROTO_HTTPS             ? "HTTPS"
           : t->binds[i].proto == SV_ROUTE_PROTO_TLS_PASSTHROUGH ? "TLSPassthrough"
                                                                 : "HTTP");
    }
    jf(&w, "],\"listeners\":[");
    for (uint32_t l = 0; l < t->n_listeners; l++) {
        const struct sv_route_listener *li = &t->listeners[l];
        jf(&w, "%s{\"name\":", l ? "," : "");
        js(&w, li->name);
        jf(&w, ",\"hostname\":");
        js(&w, li->hostname);
        jf(&w, ",\"port\":%u", (unsigned)li->port);
        jf(&w, ",\"bind\":%u,\"hosts\":[", li->bind);
        bool first = true;
        for (uint32_t s = 0; t->hash.slots && s <= t->hash.mask; s++) {
            const struct sv_route_hslot *h = &t->hash.slots[s];
            if (!h->used || h->scope != l ||
                (h->kind != SV_HK_BUCKET_EXACT && h->kind != SV_HK_BUCKET_WILD))
                continue;
            jf(&w, "%s{\"hostname\":", first ? "" : ",");
            js_prefixed(&w, h->kind == SV_HK_BUCKET_WILD ? "*." : "",
                        sv_str_make(h->name, h->name_len));
            jf(&w, ",\"bucket\":%u}", h->value);
            first = false;
        }
        if (t->listener_any[l] >= 0)
            jf(&w, "%s{\"hostname\":\"\",\"bucket\":%d}", first ? "" : ",", t->listener_any[l]);
        jf(&w, "]}");
    }
    jf(&w, "],\"actions\":[");
    for (uint32_t i = 0; i < t->n_actions; i++) {
        if (i)
            jf(&w, ",");
        jaction(&w, t, &t->actions[i]);
    }
    jf(&w, "],\"backendSets\":[");
    for (uint32_t s = 0; s < t->n_sets; s++) {
        jf(&w, "%s{\"id\":%u,\"name\":", s ? "," : "", s);
        js(&w, t->set_names[s]);
        if (s < t->n_set_tls && t->set_tls[s].ctx)
            jf(&w, ",\"tls\":true"); /* BackendTLSPolicy: TLS to its endpoints */
        jf(&w, ",\"endpoints\":[");
        for (uint32_t e = 0; e < gen->sets[s].n; e++) {
            if (e)
                jf(&w, ",");
            jaddr(&w, &gen->sets[s].eps[e].addr);
        }
        jf(&w, "]}");
    }
    jf(&w, "]}");
    return w.len;
}

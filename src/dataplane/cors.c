/* CORS filter on the worker threads: answer preflights, decorate responses (see cors.h). */
#include <errno.h>
#include <string.h>

#include "dataplane/cors.h"
#include "serval/base/log.h"
#include "serval/http/message.h"

/* Append <s> to out[cap] at *n; false when it does not fit. */
static bool put(char *out, size_t cap, size_t *n, struct sv_str s)
{
    if (s.len > cap - *n)
        return false;
    memcpy(out + *n, s.ptr, s.len);
    *n += s.len;
    return true;
}

static int preflight_answer(const struct sv_conn *c, const struct sv_route_cors *cors,
                            struct sv_str origin, bool allowed, bool keep, char *out, size_t cap,
                            struct sv_str *answer)
{
    const struct sv_http_head *h = &c->req;
    struct sv_http_header hd[SV_ROUTE_CORS_MAX_HEADERS];
    uint32_t n = 0;
    if (allowed) {
        struct sv_str rm = sv_http_head_get(h, SV_STR_LIT("Access-Control-Request-Method"));
        struct sv_str rh = sv_http_head_get(h, SV_STR_LIT("Access-Control-Request-Headers"));
        n = sv_route_cors_headers(cors, origin, true, rm, rh, hd, SV_ARRAY_SIZE(hd));
    }
    size_t len = 0;
    bool ok = put(out, cap, &len,
                  allowed ? SV_STR_LIT("HTTP/1.1 200 OK\r\n") : SV_STR_LIT("HTTP/1.1 403 Forbidden\r\n"));
    for (uint32_t i = 0; i < n && ok; i++)
        ok = put(out, cap, &len, hd[i].name) && put(out, cap, &len, SV_STR_LIT(": ")) &&
             put(out, cap, &len, hd[i].value) && put(out, cap, &len, SV_STR_LIT("\r\n"));
    ok = ok && put(out, cap, &len, SV_STR_LIT("Vary: Origin\r\nContent-Length: 0\r\n"));
    if (ok && !keep)
        ok = put(out, cap, &len, SV_STR_LIT("Connection: close\r\n"));
    else if (ok && c->req_http10)
        ok = put(out, cap, &len, SV_STR_LIT("Connection: keep-alive\r\n"));
    ok = ok && put(out, cap, &len, SV_STR_LIT("\r\n"));
    if (!ok)
        return -ENOSPC;
    *answer = sv_str_make(out, len);
    return allowed ? 200 : 403;
}

int sv_dp_cors_request(struct sv_conn *c, const struct sv_route_action *a, bool keep, char *out,
                       size_t cap, struct sv_str *answer)
{
    const struct sv_http_head *h = &c->req;
    c->cors_origin_len = 0;
    if (!a->ext->cors)
        return 0;
    struct sv_str origin = sv_http_head_get(h, SV_STR_LIT("Origin"));
    if (!origin.ptr)
        return 0; /* not a CORS request */
    bool allowed = origin.len <= SV_CORS_ORIGIN_MAX && sv_route_cors_origin_allowed(a->ext->cors, origin);
    if (h->method == SV_HTTP_OPTIONS &&
        sv_http_head_get(h, SV_STR_LIT("Access-Control-Request-Method")).ptr)
        return preflight_answer(c, a->ext->cors, origin, allowed, keep, out, cap, answer);
    if (allowed) {
        memcpy(c->cors_origin, origin.ptr, origin.len);
        c->cors_origin_len = (uint16_t)origin.len;
    }
    return 0;
}

static bool named(const struct sv_http_header *h, uint32_t n, struct sv_str name)
{
    for (uint32_t i = 0; i < n; i++)
        if (sv_str_eq_nocase(h[i].name, name))
            return true;
    return false;
}

const struct sv_http_header_mods *sv_dp_cors_response_mods(struct sv_worker *w,
                                                           const struct sv_conn *c,
                                                           const struct sv_http_header_mods *rm)
{
    if (!c->cors_origin_len || !c->action || !c->action->ext->cors)
        return rm;
    struct sv_http_header *set = w->cors_set;
    uint32_t n = sv_route_cors_headers(c->action->ext->cors,
                                       sv_str_make(c->cors_origin, c->cors_origin_len), false,
                                       SV_STR_NULL, SV_STR_NULL, set, SV_ROUTE_CORS_MAX_HEADERS);
    uint32_t ours = n;
    uint32_t n_add = 0;
    if (rm) {
        if (rm->n_set > SV_MODS_MAX || rm->n_add > SV_MODS_MAX) {
            sv_log_rl(1, SV_LOG_WARN, "dataplane", "too many header modifiers; no CORS headers");
            return rm;
        }
        for (uint32_t i = 0; i < rm->n_set; i++) /* the filter's values win over a modifier's */
            if (!named(set, ours, rm->set[i].name))
                set[n++] = rm->set[i];
        for (uint32_t i = 0; i < rm->n_add; i++)
            if (!named(set, ours, rm->add[i].name))
                w->cors_add[n_add++] = rm->add[i];
    }
    w->cors_add[n_add++] = (struct sv_http_header){SV_STR_LIT("Vary"), SV_STR_LIT("Origin")};
    struct sv_http_header_mods *m = &w->cors_mods;
    m->set = set;
    m->n_set = n;
    m->add = w->cors_add;
    m->n_add = n_add;
    m->remove = rm ? rm->remove : NULL;
    m->n_remove = rm ? rm->n_remove : 0;
    return m;
}

/* Reflector: a consistent paginated LIST of one kind, then a WATCH from the list's
 * resourceVersion with bookmarks; events update the shared store. 410 (HTTP or an ERROR event)
 * relists and reconciles (objects missed while away are deleted); errors reconnect with
 * exponential backoff and jitter, honouring Retry-After. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_int.h"
#include "serval/base/log.h"
#include "serval/control/store.h"

#define LIST_LIMIT 500
#define MAX_PAGES 100000

enum rstate { R_WAIT, R_LIST, R_WATCH };

struct k8s_reflector {
    struct k8s_client *cl;
    struct sv_store *store;
    enum sv_kind kind;
    const char *path, *selector, *api_version;
    const struct k8s_tuning *t;
    enum rstate st;
    struct k8s_conn *conn;
    bool need_list, synced, retried_401, relist_pending;
    char *rv;   /* last resourceVersion seen (list or event) */
    char *cont; /* continue token of the list in progress */
    uint32_t pages;
    char **seen; /* "ns/name" of every listed object (reconcile) */
    size_t n_seen, cap_seen;
    uint64_t next_ms;
    struct sv_k8s_backoff bo;
    uint64_t rng;
    char stream_err[160];
    struct k8s_reflector_stats stats;
};

static const char *api_version_of(enum sv_kind k)
{
    switch (k) {
    case SV_KIND_REFERENCEGRANT:
        return SV_GATEWAY_API_GROUP "/v1beta1";
    case SV_KIND_TLSROUTE:
        return SV_GATEWAY_API_GROUP "/v1alpha2";
    case SV_KIND_GATEWAYCLASS:
    case SV_KIND_GATEWAY:
    case SV_KIND_HTTPROUTE:
    case SV_KIND_LISTENERSET:
    case SV_KIND_BACKENDTLSPOLICY:
        return SV_GATEWAY_API_GROUP "/v1";
    case SV_KIND_ENDPOINTSLICE:
        return "discovery.k8s.io/v1";
    default:
        return "v1";
    }
}

struct k8s_reflector *k8s_reflector_new(struct k8s_client *cl, struct sv_store *store,
                                        enum sv_kind kind, const char *path, const char *selector,
                                        const struct k8s_tuning *t, uint64_t seed)
{
    struct k8s_reflector *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cl = cl;
    r->store = store;
    r->kind = kind;
    r->path = path;
    r->selector = selector;
    r->api_version = api_version_of(kind);
    r->t = t;
    r->need_list = true;
    r->st = R_WAIT;
    r->rng = seed | 1;
    r->bo.base_ms = t->backoff_base_ms;
    r->bo.cap_ms = t->backoff_cap_ms;
    r->bo._rng = seed * 31 + 7;
    return r;
}

static void clear_seen(struct k8s_reflector *r)
{
    for (size_t i = 0; i < r->n_seen; i++)
        free(r->seen[i]);
    r->n_seen = 0;
}

void k8s_reflector_free(struct k8s_reflector *r)
{
    if (!r)
        return;
    k8s_conn_free(r->conn);
    clear_seen(r);
    free(r->seen);
    free(r->rv);
    free(r->cont);
    free(r);
}

static void set_str(char **dst, const char *v)
{
    char *n = v ? strdup(v) : NULL;
    if (v && !n)
        return; /* keep the old value when out of memory */
    free(*dst);
    *dst = n;
}

static const char *meta_str(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Decode an API object and put it in the store. Returns 0, or -EINVAL (skipped) / -ENOMEM. */
static int apply_object(struct k8s_reflector *r, cJSON *obj)
{
    /* Items of built-in lists carry no apiVersion/kind; watch events may not either. */
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    cJSON_AddStringToObject(obj, "apiVersion", r->api_version);
    cJSON_AddStringToObject(obj, "kind", sv_kind_name(r->kind));
    struct sv_object *o = NULL;
    char err[256];
    int rc = sv_model_decode(obj, NULL, &o, err, sizeof(err));
    if (rc == -ENOMEM)
        return rc;
    if (rc != SV_DECODE_OK) {
        r->stats.decode_errors++;
        const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
        sv_warn("k8s", "%s %s/%s: cannot decode, keeping the previous version: %s",
                sv_kind_name(r->kind), ns ? ns : "", name ? name : "?",
                rc == SV_DECODE_IGNORED ? "not a kind we model" : err);
        return -EINVAL;
    }
    rc = sv_store_upsert(r->store, o);
    return rc < 0 ? rc : 0;
}

static int seen_add(struct k8s_reflector *r, const cJSON *obj)
{
    const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
    if (!name)
        return 0;
    if (r->n_seen == r->cap_seen) {
        size_t cap = r->cap_seen ? r->cap_seen * 2 : 64;
        char **s = realloc(r->seen, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        r->seen = s;
        r->cap_seen = cap;
    }
    size_t n = (ns ? strlen(ns) : 0) + strlen(name) + 2;
    char *k = malloc(n);
    if (!k)
        return -ENOMEM;
    snprintf(k, n, "%s/%s", ns && !sv_kind_cluster_scoped(r->kind) ? ns : "", name);
    r->seen[r->n_seen++] = k;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* After a complete LIST: delete every stored object of our kind the list did not contain. */
static void reconcile(struct k8s_reflector *r)
{
    if (r->n_seen)
        qsort(r->seen, r->n_seen, sizeof(*r->seen), cmp_str);
    size_t n = 0;
    const struct sv_object *const *all = sv_store_list(r->store, r->kind, &n);
    if (!all && sv_store_list_failed(r->store))
        return; /* out of memory: the next relist will try again */
    /* Collect keys first: deleting invalidates the list. */
    char **gone = NULL;
    size_t n_gone = 0;
    for (size_t i = 0; i < n; i++) {
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", all[i]->meta.ns ? all[i]->meta.ns : "",
                 all[i]->meta.name);
        const char *kp = key;
        if (r->n_seen && bsearch(&kp, r->seen, r->n_seen, sizeof(*r->seen), cmp_str))
            continue;
        char **g = realloc(gone, (n_gone + 1) * sizeof(*g));
        if (!g)
            break;
        gone = g;
        if (!(gone[n_gone] = strdup(key)))
            break;
        n_gone++;
    }
    for (size_t i = 0; i < n_gone; i++) {
        char *slash = strchr(gone[i], '/');
        *slash = 0;
        sv_store_delete(r->store, r->kind, gone[i], slash + 1);
        sv_info("k8s", "%s %s/%s: gone after relist", sv_kind_name(r->kind), gone[i], slash + 1);
        free(gone[i]);
    }
    free(gone);
    clear_seen(r);
}

static void schedule(struct k8s_reflector *r, uint64_t now, uint32_t delay_ms)
{
    k8s_conn_free(r->conn);
    r->conn = NULL;
    r->st = R_WAIT;
    r->next_ms = now + delay_ms;
}

static void backoff(struct k8s_reflector *r, uint64_t now, int retry_after, const char *why)
{
    r->stats.errors++;
    uint32_t d = sv_k8s_backoff_retry_after(&r->bo, retry_after);
    sv_warn("k8s", "%s: %s; retrying in %u ms", r->path, why, d);
    schedule(r, now, d);
}

static int on_line(void *ctx, const char *p, size_t n)
{
    struct k8s_reflector *r = ctx;
    cJSON *ev = cJSON_ParseWithLength(p, n);
    if (!ev) {
        snprintf(r->stream_err, sizeof(r->stream_err), "malformed watch event (%zu bytes)", n);
        return -EBADMSG;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    int rc = 0;
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
        snprintf(r->stream_err, sizeof(r->stream_err), "watch event without type/object");
        rc = -EBADMSG;
        goto out;
    }
    const char *t = type->valuestring;
    r->stats.events++;
    if (strcmp(t, "ERROR") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
        snprintf(r->stream_err, sizeof(r->stream_err), "watch ERROR %d: %s",
                 cJSON_IsNumber(code) ? code->valueint : 0,
                 cJSON_IsString(msg) ? msg->valuestring : "");
        if (cJSON_IsNumber(code) && code->valueint == 410)
            r->need_list = true;
        rc = -ESTALE;
        goto out;
    }
    const char *rv = meta_str(obj, "resourceVersion");
    if (strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0) {
        rc = apply_object(r, obj);
        if (rc == -EINVAL)
            rc = 0;
    } else if (strcmp(t, "DELETED") == 0) {
        const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
        if (name)
            sv_store_delete(r->store, r->kind,
                            ns && !sv_kind_cluster_scoped(r->kind) ? ns : "", name);
    } else if (strcmp(t, "BOOKMARK") != 0) {
        snprintf(r->stream_err, sizeof(r->stream_err), "unknown watch event type %.40s", t);
        rc = -EBADMSG;
        goto out;
    }
    if (rv && rc == 0)
        set_str(&r->rv, rv);
out:
    cJSON_Delete(ev);
    return rc;
}

static void start_list(struct k8s_reflector *r, uint64_t now)
{
    char q[2048];
    int n = snprintf(q, sizeof(q), "%s?limit=%d", r->path, LIST_LIMIT);
    if (r->selector)
        n += snprintf(q + n, sizeof(q) - (size_t)n, "&%s", r->selector);
    if (r->cont) {
        /* continue tokens are base64: escape the few characters that need it */
        n += snprintf(q + n, sizeof(q) - (size_t)n, "&continue=");
        for (const char *c = r->cont; *c && (size_t)n + 4 < sizeof(q); c++)
            n += (*c == '+' || *c == '/' || *c == '=' || *c == '&' || *c == '%')
                     ? snprintf(q + n, sizeof(q) - (size_t)n, "%%%02X", (unsigned char)*c)
                     : snprintf(q + n, sizeof(q) - (size_t)n, "%c", *c);
    } else {
        clear_seen(r);
        r->pages = 0;
        r->stats.lists++;
    }
    r->st = R_LIST;
    int rc = k8s_conn_start(r->cl, "GET", q, NULL, NULL, 0, false, 0, NULL, NULL, &r->conn);
    if (rc < 0)
        backoff(r, now, -1, "cannot start a LIST");
}

static void start_watch(struct k8s_reflector *r, uint64_t now)
{
    uint32_t lo = r->t->watch_timeout_min_s, hi = r->t->watch_timeout_max_s;
    uint32_t timeout = lo + (hi > lo ? (uint32_t)(sv_k8s_rand(&r->rng) % (hi - lo)) : 0);
    char q[1024];
    int n = snprintf(q, sizeof(q),
                     "%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
                     r->path, r->rv ? r->rv : "", timeout);
    if (r->selector)
        snprintf(q + n, sizeof(q) - (size_t)n, "&%s", r->selector);
    r->st = R_WATCH;
    r->stream_err[0] = 0;
    r->stats.watches++;
    uint32_t idle = r->t->watch_idle_ms ? r->t->watch_idle_ms : (timeout + 30) * 1000;
    int rc = k8s_conn_start(r->cl, "GET", q, NULL, NULL, 0, true, idle, on_line, r, &r->conn);
    if (rc < 0)
        backoff(r, now, -1, "cannot start a WATCH");
}

static void start(struct k8s_reflector *r, uint64_t now)
{
    if (r->need_list)
        start_list(r, now);
    else
        start_watch(r, now);
}

/* A finished LIST page. */
static void list_done(struct k8s_reflector *r, uint64_t now)
{
    int status = k8s_conn_status(r->conn);
    size_t len;
    const char *body = k8s_conn_body(r->conn, &len);
    if (status == 401 && !r->retried_401) {
        r->retried_401 = true;
        sv_k8s_token_invalidate(&r->cl->tok);
        schedule(r, now, 0);
        return;
    }
    if (status == 410) { /* expired continue token: start the list again */
        set_str(&r->cont, NULL);
        backoff(r, now, -1, "LIST continue token expired (410)");
        return;
    }
    if (status == 404 &&
        (r->kind == SV_KIND_LISTENERSET || r->kind == SV_KIND_BACKENDTLSPOLICY ||
         r->kind == SV_KIND_TLSROUTE) &&
        !r->cont) {
        /* ListenerSet, BackendTLSPolicy and TLSRoute (experimental channel) are newer than the
         * rest of the Gateway API: a cluster without their CRD has none, which must not keep the gateway from becoming ready.
         * Empty, asked again later. */
        uint32_t again = r->bo.cap_ms ? r->bo.cap_ms : 30000;
        if (!r->synced)
            sv_info("k8s", "%s: not installed (404); no %s objects, asking again every %u ms",
                    r->path, sv_kind_name(r->kind), again);
        clear_seen(r);
        reconcile(r);
        r->synced = true;
        schedule(r, now, again);
        return;
    }
    if (status != 200) {
        char why[160];
        snprintf(why, sizeof(why), "LIST answered HTTP %d%s", status,
                 status == 404 ? " (is this API installed? the Gateway API CRDs?)"
                 : status == 403 ? " (RBAC: see deploy/rbac.yaml)"
                                 : "");
        if (status == 401)
            sv_k8s_token_invalidate(&r->cl->tok);
        set_str(&r->cont, NULL);
        backoff(r, now, k8s_conn_retry_after(r->conn), why);
        return;
    }
    r->retried_401 = false;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!doc || (!cJSON_IsArray(items) && !cJSON_IsNull(items) && items)) {
        cJSON_Delete(doc);
        set_str(&r->cont, NULL);
        backoff(r, now, -1, "LIST body is not a list");
        return;
    }
    r->stats.list_pages++;
    cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        if (!cJSON_IsObject(it))
            continue;
        if (seen_add(r, it) < 0 || apply_object(r, it) == -ENOMEM) {
            cJSON_Delete(doc);
            set_str(&r->cont, NULL);
            backoff(r, now, -1, "out of memory during LIST");
            return;
        }
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    const cJSON *cont = cJSON_GetObjectItemCaseSensitive(meta, "continue");
    bool more = cJSON_IsString(cont) && cont->valuestring[0] && ++r->pages < MAX_PAGES;
    if (cJSON_IsString(rv))
        set_str(&r->rv, rv->valuestring);
    set_str(&r->cont, more ? cont->valuestring : NULL);
    cJSON_Delete(doc);
    k8s_conn_free(r->conn);
    r->conn = NULL;
    if (more) {
        start_list(r, now);
        return;
    }
    reconcile(r);
    if (!r->synced)
        sv_info("k8s", "%s: synced (%zu objects, resourceVersion %s)", r->path,
                sv_store_count(r->store, r->kind), r->rv ? r->rv : "");
    r->synced = true;
    r->need_list = false;
    sv_k8s_backoff_reset(&r->bo);
    start_watch(r, now);
}

/* A watch ended (rc 1: cleanly, rc < 0: error or stream problem). */
static void watch_done(struct k8s_reflector *r, uint64_t now, int rc)
{
    int status = k8s_conn_status(r->conn);
    if (r->need_list) {
        r->stats.relists++;
        sv_info("k8s", "%s: %s: relisting", r->path, r->stream_err[0] ? r->stream_err : "410 Gone");
        schedule(r, now, 0);
        return;
    }
    if (status == 410) {
        r->need_list = true;
        r->stats.relists++;
        sv_info("k8s", "%s: watch answered 410 Gone: relisting", r->path);
        schedule(r, now, 0);
        return;
    }
    if (status == 401) {
        sv_k8s_token_invalidate(&r->cl->tok);
        if (!r->retried_401) {
            r->retried_401 = true;
            schedule(r, now, 0);
            return;
        }
    }
    if (status == 200 && rc == 1) { /* timeoutSeconds or a clean close: resume at once */
        r->retried_401 = false;
        sv_k8s_backoff_reset(&r->bo);
        sv_debug("k8s", "%s: watch ended, resuming at %s", r->path, r->rv ? r->rv : "");
        schedule(r, now, 0);
        return;
    }
    if (status == 200 && k8s_conn_got_bytes(r->conn))
        sv_k8s_backoff_reset(&r->bo); /* the stream worked: start the backoff over */
    char why[256];
    if (status && status != 200)
        snprintf(why, sizeof(why), "WATCH answered HTTP %d", status);
    else
        snprintf(why, sizeof(why), "watch stream: %s",
                 r->stream_err[0] ? r->stream_err : k8s_conn_error(r->conn));
    backoff(r, now, k8s_conn_retry_after(r->conn), why);
}

void k8s_reflector_step(struct k8s_reflector *r, uint64_t now)
{
    for (int guard = 0; guard < 4; guard++) {
        if (r->st == R_WAIT) {
            if (now < r->next_ms)
                return;
            start(r, now);
            continue;
        }
        if (!r->conn)
            return;
        int rc = k8s_conn_step(r->conn, now);
        if (rc == 0)
            return;
        if (r->st == R_LIST) {
            if (rc < 0) {
                char why[256];
                snprintf(why, sizeof(why), "LIST: %s", k8s_conn_error(r->conn));
                set_str(&r->cont, NULL);
                backoff(r, now, -1, why);
                return;
            }
            list_done(r, now);
        } else {
            watch_done(r, now, rc);
        }
        if (r->st == R_WAIT && r->next_ms > now)
            return;
    }
}

int k8s_reflector_poll(const struct k8s_reflector *r, short *events, uint64_t *due_ms)
{
    *due_ms = UINT64_MAX;
    *events = 0;
    if (r->st == R_WAIT) {
        *due_ms = r->next_ms;
        return -1;
    }
    if (!r->conn)
        return -1;
    if (k8s_conn_pending(r->conn))
        *due_ms = 0;
    *events = k8s_conn_events(r->conn);
    return k8s_conn_fd(r->conn);
}

bool k8s_reflector_synced(const struct k8s_reflector *r)
{
    return r->synced;
}

bool k8s_reflector_watching(const struct k8s_reflector *r)
{
    return r->st == R_WATCH;
}

const char *k8s_reflector_rv(const struct k8s_reflector *r)
{
    return r->rv ? r->rv : "";
}

void k8s_reflector_stats(const struct k8s_reflector *r, struct k8s_reflector_stats *out)
{
    *out = r->stats;
}

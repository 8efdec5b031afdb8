/* Status writer: when we lead, bring each object's status on the API server in line with the
 * translator's result. Per object: GET (fresh resourceVersion), merge (k8s_status.h), skip when
 * equal, else PUT .../status carrying metadata.resourceVersion; 409 -> GET again (5 tries).
 * One request at a time, behind a token bucket. Objects we stop reporting: routes and policies get
 * our parents/ancestors entries removed; a ListenerSet (its Gateway changed class or went away)
 * gets the CRD's Pending status back, unless another controller has written it since. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_int.h"
#include "serval/base/compiler.h"
#include "serval/base/log.h"
#include "serval/control/k8s_status.h"

#define MAX_CONFLICT_RETRIES 5
#define EMPTY_PARENTS "{\"parents\":[]}"
#define EMPTY_ANCESTORS "{\"ancestors\":[]}"
/* A ListenerSet whose parent Gateway is no longer ours gets back the CRD's initial status (no
 * controller has it), with our listeners removed. */
#define PENDING_COND(type)                                                                        \
    "{\"type\":\"" type "\",\"status\":\"Unknown\",\"reason\":\"Pending\","                      \
    "\"message\":\"Waiting for controller\"}"
#define PENDING_LISTENERSET                                                                       \
    "{\"conditions\":[" PENDING_COND("Accepted") "," PENDING_COND("Programmed")                 \
    "],\"listeners\":[]}"

struct wentry {
    char *key;     /* "<kind>/<ns>/<name>" (sort key) */
    enum sv_kind kind;
    char *ns, *name;
    char *desired; /* JSON text */
    char *written; /* desired text last confirmed on the server, NULL if none */
    char *uid;     /* metadata.uid of the object reported, NULL if unknown */
    char *ours;    /* a ListenerSet no longer ours: the status text we last wrote there; the
                    * Pending status replaces it only while the server still holds it */
};

enum wop { W_IDLE, W_GET, W_PUT };

struct k8s_writer {
    struct k8s_client *cl;
    char *controller;
    const struct k8s_tuning *t;
    struct wentry *e;
    size_t n;
    size_t cursor;
    enum wop op;
    struct k8s_conn *conn;
    char *cur_key;
    char *put_desired;
    int conflicts;
    double tokens;
    uint64_t refill_ms, next_ms;
    struct k8s_writer_stats stats;
};

struct k8s_writer *k8s_writer_new(struct k8s_client *cl, const char *controller,
                                  const struct k8s_tuning *t)
{
    struct k8s_writer *w = calloc(1, sizeof(*w));
    if (!w || !(w->controller = strdup(controller))) {
        free(w);
        return NULL;
    }
    w->cl = cl;
    w->t = t;
    w->tokens = t->write_burst;
    return w;
}

static void free_entries(struct wentry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].ns);
        free(e[i].name);
        free(e[i].desired);
        free(e[i].written);
        free(e[i].uid);
        free(e[i].ours);
    }
    free(e);
}

void k8s_writer_free(struct k8s_writer *w)
{
    if (!w)
        return;
    k8s_conn_free(w->conn);
    free_entries(w->e, w->n);
    free(w->controller);
    free(w->cur_key);
    free(w->put_desired);
    free(w);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct wentry *)a)->key, ((const struct wentry *)b)->key);
}

static struct wentry *find(struct wentry *e, size_t n, const char *key)
{
    struct wentry k = {.key = (char *)key};
    if (!e || n == 0 || !key)
        return NULL;
    return bsearch(&k, e, n, sizeof(*e), cmp_entry);
}

static int add_entry(struct wentry *arr, size_t *n, enum sv_kind kind, const char *ns,
                     const char *name, char *desired)
{
    struct wentry *x = &arr[*n];
    memset(x, 0, sizeof(*x));
    size_t kl = strlen(ns) + strlen(name) + 32;
    x->key = malloc(kl);
    x->ns = strdup(ns);
    x->name = strdup(name);
    x->kind = kind;
    x->desired = desired;
    (*n)++;
    if (!x->key || !x->ns || !x->name || !desired)
        return -ENOMEM;
    snprintf(x->key, kl, "%s/%s/%s", sv_kind_name(kind), ns, name);
    return 0;
}

/* the status that removes our entries from a route's parents or a policy's ancestors */
static const char *empty_of(enum sv_kind kind)
{
    return kind == SV_KIND_BACKENDTLSPOLICY ? EMPTY_ANCESTORS : EMPTY_PARENTS;
}

int k8s_writer_set_desired(struct k8s_writer *w, const cJSON *doc)
{
    static const struct {
        const char *field;
        enum sv_kind kind;
    } groups[] = {{"gatewayClasses", SV_KIND_GATEWAYCLASS},
                  {"gateways", SV_KIND_GATEWAY},
                  {"httpRoutes", SV_KIND_HTTPROUTE},
                  {"tlsRoutes", SV_KIND_TLSROUTE},
                  {"listenerSets", SV_KIND_LISTENERSET},
                  {"backendTLSPolicies", SV_KIND_BACKENDTLSPOLICY}};
    size_t total = w->n;
    for (size_t g = 0; g < SV_ARRAY_SIZE(groups); g++)
        total += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, groups[g].field));
    struct wentry *ne = calloc(total + 1, sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (size_t g = 0; g < SV_ARRAY_SIZE(groups) && rc == 0; g++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, groups[g].field))
        {
            const cJSON *nsj = cJSON_GetObjectItemCaseSensitive(it, "namespace");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "status");
            if (!cJSON_IsString(nm) || !cJSON_IsObject(st))
                continue;
            rc = add_entry(ne, &n, groups[g].kind, cJSON_IsString(nsj) ? nsj->valuestring : "",
                           nm->valuestring, cJSON_PrintUnformatted(st));
            if (rc < 0)
                break;
            const cJSON *uid = cJSON_GetObjectItemCaseSensitive(it, "uid");
            if (cJSON_IsString(uid) && !(ne[n - 1].uid = strdup(uid->valuestring))) {
                rc = -ENOMEM;
                break;
            }
        }
    }
    if (rc == 0)
        qsort(ne, n, sizeof(*ne), cmp_entry);
    /* carry over what was written; routes we no longer report get our entries removed */
    size_t base = n;
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        struct wentry *old = &w->e[i];
        struct wentry *now = find(ne, base, old->key);
        if (now) {
            /* the same object only: a route deleted and created again under the same name
             * (new uid) has no status yet, even if we would write the same text */
            bool same = (!now->uid && !old->uid) ||
                        (now->uid && old->uid && strcmp(now->uid, old->uid) == 0);
            if (same) {
                now->written = old->written;
                old->written = NULL;
            }
        } else if ((old->kind == SV_KIND_HTTPROUTE || old->kind == SV_KIND_TLSROUTE ||
                    old->kind == SV_KIND_BACKENDTLSPOLICY) &&
                   !(old->written && strcmp(old->written, empty_of(old->kind)) == 0)) {
            rc = add_entry(ne, &n, old->kind, old->ns, old->name, strdup(empty_of(old->kind)));
            if (rc == 0) {
                ne[n - 1].written = old->written;
                old->written = NULL;
            }
        } else if (old->kind == SV_KIND_LISTENERSET && old->written &&
                   strcmp(old->written, PENDING_LISTENERSET) != 0) {
            /* its Gateway changed class or went away: hand the status back (see got_object) */
            rc = add_entry(ne, &n, old->kind, old->ns, old->name, strdup(PENDING_LISTENERSET));
            if (rc == 0) {
                struct wentry *x = &ne[n - 1];
                x->ours = old->ours ? old->ours : strdup(old->written);
                x->written = old->written;
                old->ours = NULL;
                old->written = NULL;
                if (!x->ours)
                    rc = -ENOMEM;
            }
        }
    }
    if (rc < 0) {
        free_entries(ne, n);
        return rc;
    }
    qsort(ne, n, sizeof(*ne), cmp_entry);
    free_entries(w->e, w->n);
    w->e = ne;
    w->n = n;
    w->cursor = 0;
    return 0;
}

void k8s_writer_reset(struct k8s_writer *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].written);
        w->e[i].written = NULL;
    }
}

static bool is_pending(const struct wentry *e)
{
    return !e->written || strcmp(e->written, e->desired) != 0;
}

size_t k8s_writer_pending(const struct k8s_writer *w)
{
    size_t c = 0;
    for (size_t i = 0; i < w->n; i++)
        c += is_pending(&w->e[i]);
    return c;
}

static void object_path(const struct wentry *e, bool status, char *out, size_t outlen)
{
    const char *res = e->kind == SV_KIND_GATEWAYCLASS       ? "gatewayclasses"
                      : e->kind == SV_KIND_GATEWAY          ? "gateways"
                      : e->kind == SV_KIND_LISTENERSET      ? "listenersets"
                      : e->kind == SV_KIND_BACKENDTLSPOLICY ? "backendtlspolicies"
                      : e->kind == SV_KIND_TLSROUTE         ? "tlsroutes"
                                                            : "httproutes";
    /* TLSRoute is served only as v1alpha2 (experimental channel) */
    const char *ver = e->kind == SV_KIND_TLSROUTE ? "v1alpha2" : "v1";
    if (e->kind == SV_KIND_GATEWAYCLASS)
        snprintf(out, outlen, "/apis/" SV_GATEWAY_API_GROUP "/%s/%s/%s%s", ver, res, e->name,
                 status ? "/status" : "");
    else
        snprintf(out, outlen, "/apis/" SV_GATEWAY_API_GROUP "/%s/namespaces/%s/%s/%s%s", ver,
                 e->ns, res, e->name, status ? "/status" : "");
}

static void finish(struct k8s_writer *w)
{
    k8s_conn_free(w->conn);
    w->conn = NULL;
    w->op = W_IDLE;
}

static void fail_later(struct k8s_writer *w, uint64_t now, const char *why)
{
    w->stats.errors++;
    sv_warn("k8s", "status write %s: %s", w->cur_key ? w->cur_key : "", why);
    finish(w);
    w->next_ms = now + 1000;
    w->cursor++;
}

static void confirm(struct k8s_writer *w, const char *desired)
{
    struct wentry *e = find(w->e, w->n, w->cur_key);
    if (e && strcmp(e->desired, desired) == 0) {
        free(e->written);
        e->written = strdup(desired);
    }
}

static void start_get(struct k8s_writer *w, struct wentry *e, uint64_t now)
{
    char path[1024];
    object_path(e, false, path, sizeof(path));
    free(w->cur_key);
    w->cur_key = strdup(e->key);
    w->op = W_GET;
    w->stats.gets++;
    if (!w->cur_key || k8s_conn_start(w->cl, "GET", path, NULL, NULL, 0, false, 0, NULL, NULL,
                                      &w->conn) < 0)
        fail_later(w, now, "cannot start a GET");
}

/* Does the object <obj> still carry the status we last wrote (e->ours)? Merging that text into
 * the server's status changes nothing exactly then. An unparsable text counts as not ours. */
static bool holds_ours(const struct k8s_writer *w, const struct wentry *e, const cJSON *obj,
                       const char *ts)
{
    cJSON *ours = cJSON_Parse(e->ours);
    bool changed = true;
    cJSON *merged = ours ? sv_k8s_status_merge(e->kind,
                                               cJSON_GetObjectItemCaseSensitive(obj, "status"),
                                               ours, w->controller, ts, &changed)
                         : NULL;
    bool same = merged && !changed;
    cJSON_Delete(ours);
    cJSON_Delete(merged);
    return same;
}

static void got_object(struct k8s_writer *w, uint64_t now)
{
    int status = k8s_conn_status(w->conn);
    struct wentry *e = find(w->e, w->n, w->cur_key);
    if (!e) { /* no longer wanted */
        finish(w);
        return;
    }
    if (status == 404) { /* gone: nothing to write */
        confirm(w, e->desired);
        finish(w);
        return;
    }
    if (status == 401)
        sv_k8s_token_invalidate(&w->cl->tok);
    if (status != 200) {
        char why[64];
        snprintf(why, sizeof(why), "GET answered HTTP %d", status);
        fail_later(w, now, why);
        return;
    }
    size_t len;
    const char *body = k8s_conn_body(w->conn, &len);
    cJSON *obj = cJSON_ParseWithLength(body, len);
    cJSON *desired = cJSON_Parse(e->desired);
    char ts[40];
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    sv_k8s_format_time((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec, false, ts, sizeof(ts));
    if (obj && e->ours && !holds_ours(w, e, obj, ts)) {
        /* another controller has written it since: not ours to reset */
        w->stats.skipped++;
        cJSON_Delete(desired);
        cJSON_Delete(obj);
        confirm(w, e->desired);
        finish(w);
        return;
    }
    bool changed = false;
    cJSON *merged = obj && desired
                        ? sv_k8s_status_merge(e->kind, cJSON_GetObjectItemCaseSensitive(obj, "status"),
                                              desired, w->controller, ts, &changed)
                        : NULL;
    cJSON_Delete(desired);
    if (!merged) {
        cJSON_Delete(obj);
        fail_later(w, now, "bad object or out of memory");
        return;
    }
    if (!changed) {
        w->stats.skipped++;
        cJSON_Delete(merged);
        cJSON_Delete(obj);
        confirm(w, e->desired);
        finish(w);
        return;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, "status"))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, "status", merged);
    else
        cJSON_AddItemToObject(obj, "status", merged);
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    free(w->put_desired);
    w->put_desired = strdup(e->desired);
    char path[1024];
    object_path(e, true, path, sizeof(path));
    finish(w);
    w->op = W_PUT;
    if (!text || !w->put_desired ||
        k8s_conn_start(w->cl, "PUT", path, "application/json", text, strlen(text), false, 0, NULL,
                       NULL, &w->conn) < 0)
        fail_later(w, now, "cannot start a PUT");
    free(text);
}

static void put_done(struct k8s_writer *w, uint64_t now)
{
    int status = k8s_conn_status(w->conn);
    if (status == 200 || status == 201) {
        w->stats.writes++;
        w->conflicts = 0;
        sv_info("k8s", "status written: %s", w->cur_key);
        confirm(w, w->put_desired);
        finish(w);
        return;
    }
    if (status == 409 && w->conflicts < MAX_CONFLICT_RETRIES) {
        w->stats.conflicts++;
        w->conflicts++;
        struct wentry *e = find(w->e, w->n, w->cur_key);
        finish(w);
        if (e)
            start_get(w, e, now);
        return;
    }
    w->conflicts = 0;
    char why[64];
    snprintf(why, sizeof(why), "PUT answered HTTP %d", status);
    fail_later(w, now, why);
}

void k8s_writer_step(struct k8s_writer *w, uint64_t now, bool leader)
{
    if (!leader && w->conn)
        finish(w); /* only the leader writes: drop a request in flight */
    if (w->conn) {
        int rc = k8s_conn_step(w->conn, now);
        if (rc == 0)
            return;
        if (rc < 0) {
            fail_later(w, now, k8s_conn_error(w->conn));
            return;
        }
        if (w->op == W_GET)
            got_object(w, now);
        else
            put_done(w, now);
        if (w->conn)
            return;
    }
    if (!leader || now < w->next_ms || w->n == 0)
        return;
    /* token bucket */
    double rate = w->t->write_qps ? w->t->write_qps : 10;
    w->tokens += (double)(now - w->refill_ms) * rate / 1000.0;
    w->refill_ms = now;
    if (w->tokens > w->t->write_burst)
        w->tokens = w->t->write_burst;
    if (w->tokens < 1) {
        w->next_ms = now + (uint64_t)((1 - w->tokens) * 1000 / rate) + 1;
        return;
    }
    for (size_t k = 0; k < w->n; k++) {
        size_t i = (w->cursor + k) % w->n;
        if (is_pending(&w->e[i])) {
            w->cursor = i;
            w->tokens -= 1;
            w->conflicts = 0;
            start_get(w, &w->e[i], now);
            return;
        }
    }
}

int k8s_writer_poll(const struct k8s_writer *w, short *events, uint64_t *due_ms)
{
    *events = 0;
    *due_ms = UINT64_MAX;
    if (w->conn) {
        if (k8s_conn_pending(w->conn))
            *due_ms = 0;
        *events = k8s_conn_events(w->conn);
        return k8s_conn_fd(w->conn);
    }
    if (k8s_writer_pending(w))
        *due_ms = w->next_ms;
    return -1;
}

void k8s_writer_stats(const struct k8s_writer *w, struct k8s_writer_stats *out)
{
    *out = w->stats;
}

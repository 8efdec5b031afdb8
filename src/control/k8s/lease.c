/* Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm, K8S_CLIENT.md §6):
 * followers GET the Lease every retry period (+ jitter) and take it over once the record has not
 * changed for leaseDurationSeconds by our monotonic clock (or the holder is empty); the leader
 * renews every retry period and stops leading when no renew succeeded within the renew deadline. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_int.h"
#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/control/k8s_status.h"

#define LEASE_NAME "serval-gateway"

enum lop { L_IDLE, L_GET, L_CREATE, L_UPDATE };

struct k8s_lease {
    struct k8s_client *cl;
    char *ns, *id;
    const struct k8s_tuning *t;
    enum lop op;
    struct k8s_conn *conn;
    bool leader;
    bool renewing; /* the update in flight is a renew of ours */
    cJSON *cached; /* last Lease object we wrote or read */
    char *observed; /* spec as text, and when we saw it change */
    uint64_t observed_ms;
    uint64_t last_renew_ms;
    uint64_t next_ms;
    uint64_t rng;
    uint64_t terms;
};

static void now_micro(char *out, size_t n)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    sv_k8s_format_time((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec, true, out, n);
}

struct k8s_lease *k8s_lease_new(struct k8s_client *cl, const char *ns, const char *identity,
                                const struct k8s_tuning *t, uint64_t seed)
{
    struct k8s_lease *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cl = cl;
    l->t = t;
    l->rng = seed | 1;
    l->ns = strdup(ns);
    l->id = strdup(identity);
    if (!l->ns || !l->id) {
        k8s_lease_free(l);
        return NULL;
    }
    return l;
}

void k8s_lease_free(struct k8s_lease *l)
{
    if (!l)
        return;
    k8s_conn_free(l->conn);
    cJSON_Delete(l->cached);
    free(l->observed);
    free(l->ns);
    free(l->id);
    free(l);
}

static uint32_t lease_seconds(const struct k8s_lease *l)
{
    uint32_t s = l->t->lease_duration_ms / 1000;
    return s ? s : 1;
}

static void path_of(const struct k8s_lease *l, bool item, char *out, size_t n)
{
    snprintf(out, n, "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s", l->ns,
             item ? "/" LEASE_NAME : "");
}

static void set_spec_str(cJSON *spec, const char *k, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(spec, k);
    cJSON_AddStringToObject(spec, k, v);
}

static void set_spec_num(cJSON *spec, const char *k, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(spec, k);
    cJSON_AddNumberToObject(spec, k, v);
}

static void start(struct k8s_lease *l, enum lop op, const char *method, bool item, cJSON *body)
{
    char path[512];
    path_of(l, item, path, sizeof(path));
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    l->op = op;
    if ((body && !text) || k8s_conn_start(l->cl, method, path, "application/json", text,
                                          text ? strlen(text) : 0, false, 0, NULL, NULL,
                                          &l->conn) < 0) {
        l->op = L_IDLE;
        l->conn = NULL;
    }
    free(text);
}

static uint64_t retry_delay(struct k8s_lease *l)
{
    uint64_t rp = l->t->retry_period_ms;
    return rp + sv_k8s_rand(&l->rng) % (rp * 12 / 10 + 1); /* RetryPeriod * (1 + rand*1.2) */
}

/* PUT the cached lease with us as holder (a renew keeps acquireTime and transitions). */
static void write_ours(struct k8s_lease *l, bool renew)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(l->cached, "spec");
    if (!spec)
        spec = cJSON_AddObjectToObject(l->cached, "spec");
    if (!spec)
        return;
    char ts[40];
    now_micro(ts, sizeof(ts));
    if (!renew) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
        bool other = !cJSON_IsString(h) || strcmp(h->valuestring, l->id) != 0;
        double n = cJSON_IsNumber(tr) ? tr->valuedouble : 0;
        set_spec_num(spec, "leaseTransitions", other ? n + 1 : n);
        set_spec_str(spec, "acquireTime", ts);
    }
    set_spec_str(spec, "holderIdentity", l->id);
    set_spec_num(spec, "leaseDurationSeconds", lease_seconds(l));
    set_spec_str(spec, "renewTime", ts);
    l->renewing = renew;
    start(l, L_UPDATE, "PUT", true, l->cached);
}

static void lose(struct k8s_lease *l, const char *why)
{
    if (l->leader)
        sv_warn("k8s", "lease %s/%s: leadership lost (%s); status writes stop", l->ns, LEASE_NAME,
                why);
    l->leader = false;
}

static void observe(struct k8s_lease *l, uint64_t now)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(l->cached, "spec");
    char *text = spec ? cJSON_PrintUnformatted(spec) : NULL;
    if (!text)
        return;
    if (!l->observed || strcmp(l->observed, text) != 0) {
        free(l->observed);
        l->observed = text;
        l->observed_ms = now;
    } else {
        free(text);
    }
}

static void on_get(struct k8s_lease *l, uint64_t now, int status, const char *body, size_t len)
{
    if (status == 404) {
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "apiVersion", "coordination.k8s.io/v1");
        cJSON_AddStringToObject(obj, "kind", "Lease");
        cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");
        cJSON_AddStringToObject(meta, "name", LEASE_NAME);
        cJSON_AddStringToObject(meta, "namespace", l->ns);
        cJSON *spec = cJSON_AddObjectToObject(obj, "spec");
        char ts[40];
        now_micro(ts, sizeof(ts));
        cJSON_AddStringToObject(spec, "holderIdentity", l->id);
        cJSON_AddNumberToObject(spec, "leaseDurationSeconds", lease_seconds(l));
        cJSON_AddStringToObject(spec, "acquireTime", ts);
        cJSON_AddStringToObject(spec, "renewTime", ts);
        cJSON_AddNumberToObject(spec, "leaseTransitions", 0);
        start(l, L_CREATE, "POST", false, obj);
        cJSON_Delete(obj);
        return;
    }
    if (status != 200) {
        if (status == 401)
            sv_k8s_token_invalidate(&l->cl->tok);
        sv_warn("k8s", "lease GET answered HTTP %d", status);
        l->next_ms = now + retry_delay(l);
        return;
    }
    cJSON *obj = cJSON_ParseWithLength(body, len);
    if (!obj) {
        l->next_ms = now + retry_delay(l);
        return;
    }
    cJSON_Delete(l->cached);
    l->cached = obj;
    observe(l, now);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
    const char *holder = cJSON_IsString(h) ? h->valuestring : "";
    uint64_t dur_ms = cJSON_IsNumber(d) ? (uint64_t)d->valuedouble * 1000 : l->t->lease_duration_ms;
    bool mine = strcmp(holder, l->id) == 0;
    if (holder[0] && !mine && now < l->observed_ms + dur_ms) {
        l->next_ms = now + retry_delay(l); /* someone else leads */
        return;
    }
    if (!mine)
        sv_info("k8s", "lease %s/%s: %s, taking over", l->ns, LEASE_NAME,
                holder[0] ? "the holder stopped renewing" : "free");
    write_ours(l, mine && l->leader);
}

static void on_write(struct k8s_lease *l, uint64_t now, int status, const char *body, size_t len)
{
    if (status == 200 || status == 201) {
        cJSON *obj = cJSON_ParseWithLength(body, len);
        if (obj) {
            cJSON_Delete(l->cached);
            l->cached = obj;
            observe(l, now);
        }
        if (!l->leader) {
            l->terms++;
            sv_info("k8s", "lease %s/%s: now the leader (%s)", l->ns, LEASE_NAME, l->id);
        }
        l->leader = true;
        l->last_renew_ms = now;
        l->next_ms = now + l->t->retry_period_ms;
        return;
    }
    /* 409: someone else wrote it; re-read. Others: retry. */
    if (status == 401)
        sv_k8s_token_invalidate(&l->cl->tok);
    cJSON_Delete(l->cached);
    l->cached = NULL;
    l->next_ms = now + (l->leader ? l->t->retry_period_ms / 2 : retry_delay(l));
}

void k8s_lease_step(struct k8s_lease *l, uint64_t now)
{
    if (l->leader && now - l->last_renew_ms > l->t->renew_deadline_ms) {
        lose(l, "no renew within the renew deadline");
        k8s_conn_free(l->conn);
        l->conn = NULL;
        l->op = L_IDLE;
        cJSON_Delete(l->cached);
        l->cached = NULL;
        l->next_ms = now;
    }
    if (l->conn) {
        int rc = k8s_conn_step(l->conn, now);
        if (rc == 0)
            return;
        int status = rc < 0 ? 0 : k8s_conn_status(l->conn);
        size_t len = 0;
        const char *body = k8s_conn_body(l->conn, &len);
        enum lop op = l->op;
        if (rc < 0)
            sv_warn("k8s", "lease request: %s", k8s_conn_error(l->conn));
        struct k8s_conn *c = l->conn;
        l->conn = NULL;
        l->op = L_IDLE;
        if (op == L_GET)
            on_get(l, now, status, body, len);
        else
            on_write(l, now, status, body, len);
        k8s_conn_free(c);
        return;
    }
    if (now < l->next_ms)
        return;
    if (l->leader && l->cached)
        write_ours(l, true); /* fast path: renew from our cached object */
    else
        start(l, L_GET, "GET", true, NULL);
    if (!l->conn)
        l->next_ms = now + l->t->retry_period_ms;
}

int k8s_lease_poll(const struct k8s_lease *l, short *events, uint64_t *due_ms)
{
    *events = 0;
    *due_ms = l->leader ? l->last_renew_ms + l->t->renew_deadline_ms + 1 : UINT64_MAX;
    if (l->conn) {
        if (k8s_conn_pending(l->conn))
            *due_ms = 0;
        *events = k8s_conn_events(l->conn);
        return k8s_conn_fd(l->conn);
    }
    if (l->next_ms < *due_ms)
        *due_ms = l->next_ms;
    return -1;
}

bool k8s_lease_leader(const struct k8s_lease *l)
{
    return l->leader;
}

const char *k8s_lease_identity(const struct k8s_lease *l)
{
    return l->id;
}

const char *k8s_lease_namespace(const struct k8s_lease *l)
{
    return l->ns;
}

uint64_t k8s_lease_transitions(const struct k8s_lease *l)
{
    return l->terms;
}

int k8s_request_sync(struct k8s_client *cl, const char *method, const char *path,
                     const char *body, uint32_t timeout_ms, struct k8s_conn **out)
{
    *out = NULL;
    struct k8s_conn *c;
    int rc = k8s_conn_start(cl, method, path, "application/json", body, body ? strlen(body) : 0,
                            false, 0, NULL, NULL, &c);
    if (rc < 0)
        return rc;
    uint64_t deadline = sv_now_ms() + timeout_ms;
    for (;;) {
        uint64_t now = sv_now_ms();
        rc = k8s_conn_step(c, now);
        if (rc != 0 || now >= deadline)
            break;
        struct pollfd pfd = {.fd = k8s_conn_fd(c), .events = k8s_conn_events(c)};
        if (!k8s_conn_pending(c))
            poll(&pfd, 1, (int)(deadline - now < 50 ? deadline - now : 50));
    }
    if (rc <= 0) {
        k8s_conn_free(c);
        return rc < 0 ? rc : -ETIMEDOUT;
    }
    *out = c;
    return k8s_conn_status(c);
}

void k8s_lease_release(struct k8s_lease *l, uint32_t timeout_ms)
{
    k8s_conn_free(l->conn);
    l->conn = NULL;
    l->op = L_IDLE;
    if (!l->leader)
        return;
    l->leader = false;
    uint64_t deadline = sv_now_ms() + timeout_ms;
    for (int attempt = 0; attempt < 5 && sv_now_ms() < deadline; attempt++) {
        if (!l->cached) {
            char path[512];
            path_of(l, true, path, sizeof(path));
            struct k8s_conn *c;
            int st = k8s_request_sync(l->cl, "GET", path, NULL,
                                      (uint32_t)(deadline - sv_now_ms()), &c);
            if (st != 200) {
                k8s_conn_free(c);
                return;
            }
            size_t len;
            const char *b = k8s_conn_body(c, &len);
            l->cached = cJSON_ParseWithLength(b, len);
            k8s_conn_free(c);
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(l->cached, "spec"), "holderIdentity");
            if (!cJSON_IsString(h) || strcmp(h->valuestring, l->id) != 0)
                return; /* not ours any more */
        }
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(l->cached, "spec");
        if (!spec)
            return;
        char ts[40];
        now_micro(ts, sizeof(ts));
        set_spec_str(spec, "holderIdentity", "");
        set_spec_num(spec, "leaseDurationSeconds", 1);
        set_spec_str(spec, "acquireTime", ts);
        set_spec_str(spec, "renewTime", ts);
        char *text = cJSON_PrintUnformatted(l->cached);
        char path[512];
        path_of(l, true, path, sizeof(path));
        struct k8s_conn *c = NULL;
        int st = text ? k8s_request_sync(l->cl, "PUT", path, text,
                                         (uint32_t)(deadline - sv_now_ms()), &c)
                      : -ENOMEM;
        free(text);
        k8s_conn_free(c);
        if (st == 200) {
            sv_info("k8s", "lease %s/%s released", l->ns, LEASE_NAME);
            return;
        }
        cJSON_Delete(l->cached);
        l->cached = NULL;
        if (st != 409)
            return;
    }
}

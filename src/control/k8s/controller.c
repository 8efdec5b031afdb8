/* Kubernetes controller: reflectors -> store -> (debounce) -> translate -> publish; Lease
 * election; status writeback by the leader; readiness and the /config document. */
#include "serval/control/k8s.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "control/publish.h"
#include "k8s_int.h"
#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/control/store.h"
#include "serval/routing/generation.h"

#define G "/apis/" SV_GATEWAY_API_GROUP

static const struct {
    enum sv_kind kind;
    const char *path, *selector;
} kinds[] = {
    {SV_KIND_GATEWAYCLASS, G "/v1/gatewayclasses", NULL},
    {SV_KIND_GATEWAY, G "/v1/gateways", NULL},
    {SV_KIND_HTTPROUTE, G "/v1/httproutes", NULL},
    {SV_KIND_REFERENCEGRANT, G "/v1beta1/referencegrants", NULL},
    {SV_KIND_NAMESPACE, "/api/v1/namespaces", NULL},
    {SV_KIND_SERVICE, "/api/v1/services", NULL},
    {SV_KIND_ENDPOINTSLICE, "/apis/discovery.k8s.io/v1/endpointslices",
     "labelSelector=kubernetes.io%2Fservice-name"},
    {SV_KIND_SECRET, "/api/v1/secrets", "fieldSelector=type%3Dkubernetes.io%2Ftls"},
    {SV_KIND_LISTENERSET, G "/v1/listenersets", NULL},
    {SV_KIND_CONFIGMAP, "/api/v1/configmaps", NULL},
    {SV_KIND_BACKENDTLSPOLICY, G "/v1/backendtlspolicies", NULL},
    {SV_KIND_TLSROUTE, G "/v1alpha2/tlsroutes", NULL},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

struct sv_k8s {
    struct k8s_client cl;
    struct k8s_tuning t;
    struct sv_translate_opts topts;
    char *controller, *bind, *pool;
    struct sv_publisher pub; /* domain, generation id and count, /config document */
    struct sv_store *store;
    struct k8s_reflector *refl[N_KINDS];
    struct k8s_lease *lease;
    struct k8s_writer *writer;
    bool all_synced, was_leader, stopping;
    uint64_t seen_changes;
    bool dirty;
    uint64_t first_dirty_ms, last_change_ms;
    uint64_t translate_errors;
    uint64_t endpoint_updates; /* generations published by the endpoint-only path */
    /* store digests (sv_store_digest) at the last full translation: everything but the
     * EndpointSlices, and the EndpointSlices (updated by endpoint-only publishes too) */
    bool built;
    uint64_t built_config, built_slices;
    uint64_t last_render_ms;
    cJSON *status_doc;
    char last_error[320];
    atomic_bool ready;
};

static uint32_t env_ms(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end || x == 0 || x > 3600000 ? dflt : (uint32_t)x;
}

static uint64_t random_u64(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
        x = sv_now_ns() ^ ((uint64_t)getpid() << 32);
    return x | 1;
}

static void render(struct sv_k8s *k)
{
    cJSON *root = cJSON_CreateObject();
    if (root) {
        cJSON_AddStringToObject(root, "provider", "kubernetes");
        cJSON_AddStringToObject(root, "server", k->cl.host_header);
        cJSON_AddStringToObject(root, "controllerName", k->controller);
        cJSON_AddStringToObject(root, "error", k->last_error);
        cJSON_AddBoolToObject(root, "ready", atomic_load(&k->ready));
        cJSON_AddNumberToObject(root, "generation", (double)k->pub.generation_id);
        cJSON_AddNumberToObject(root, "published", (double)k->pub.published);
        cJSON_AddNumberToObject(root, "endpointOnlyUpdates", (double)k->endpoint_updates);
        cJSON_AddNumberToObject(root, "incrementalUpdates", (double)k->pub.overlays);
        cJSON_AddNumberToObject(root, "requests", (double)k->cl.requests);
        cJSON_AddNumberToObject(root, "tokenReads", (double)k->cl.tok.reads);
        cJSON_AddNumberToObject(root, "caReloads", (double)k->cl.ca_reloads);
        cJSON_AddNumberToObject(root, "connects", (double)k->cl.connects);
        cJSON_AddNumberToObject(root, "connectionsReused", (double)k->cl.reused);
        cJSON *refl = cJSON_AddArrayToObject(root, "reflectors");
        for (size_t i = 0; refl && i < N_KINDS; i++) {
            struct k8s_reflector_stats s;
            k8s_reflector_stats(k->refl[i], &s);
            cJSON *r = cJSON_CreateObject();
            if (!r)
                break;
            cJSON_AddStringToObject(r, "kind", sv_kind_name(kinds[i].kind));
            cJSON_AddBoolToObject(r, "synced", k8s_reflector_synced(k->refl[i]));
            cJSON_AddBoolToObject(r, "watching", k8s_reflector_watching(k->refl[i]));
            cJSON_AddStringToObject(r, "resourceVersion", k8s_reflector_rv(k->refl[i]));
            cJSON_AddNumberToObject(r, "objects", (double)sv_store_count(k->store, kinds[i].kind));
            cJSON_AddNumberToObject(r, "lists", (double)s.lists);
            cJSON_AddNumberToObject(r, "relists", (double)s.relists);
            cJSON_AddNumberToObject(r, "watches", (double)s.watches);
            cJSON_AddNumberToObject(r, "events", (double)s.events);
            cJSON_AddNumberToObject(r, "errors", (double)s.errors);
            cJSON_AddNumberToObject(r, "decodeErrors", (double)s.decode_errors);
            cJSON_AddItemToArray(refl, r);
        }
        cJSON *le = cJSON_AddObjectToObject(root, "leaderElection");
        if (le && k->lease) {
            cJSON_AddStringToObject(le, "identity", k8s_lease_identity(k->lease));
            cJSON_AddStringToObject(le, "namespace", k8s_lease_namespace(k->lease));
            cJSON_AddBoolToObject(le, "leader", k8s_lease_leader(k->lease));
            cJSON_AddNumberToObject(le, "terms", (double)k8s_lease_transitions(k->lease));
        }
        struct k8s_writer_stats ws;
        k8s_writer_stats(k->writer, &ws);
        cJSON *w = cJSON_AddObjectToObject(root, "statusWriter");
        if (w) {
            cJSON_AddNumberToObject(w, "writes", (double)ws.writes);
            cJSON_AddNumberToObject(w, "skipped", (double)ws.skipped);
            cJSON_AddNumberToObject(w, "conflicts", (double)ws.conflicts);
            cJSON_AddNumberToObject(w, "errors", (double)ws.errors);
            cJSON_AddNumberToObject(w, "pending", (double)k8s_writer_pending(k->writer));
        }
        if (k->status_doc) {
            cJSON *s = cJSON_Duplicate(k->status_doc, 1);
            if (s)
                cJSON_AddItemToObject(root, "status", s);
        }
    }
    sv_publisher_set_doc(&k->pub, root); /* NULL keeps the previous document */
}

/* Digest of every kind the translation reads except EndpointSlices. */
static uint64_t config_digest(const struct sv_store *s)
{
    uint64_t d = 0;
    for (int kind = 0; kind < SV_KIND__COUNT; kind++)
        if (kind != SV_KIND_ENDPOINTSLICE)
            d = d * 0x100000001b3ull + sv_store_digest(s, (enum sv_kind)kind);
    return d;
}

/* When nothing but EndpointSlices changed (content, not resourceVersions) since the last full
 * translation, publish a generation sharing the current route table with the endpoints
 * recomputed (pods scaling: no rebuild, and the statuses stay what they are). Returns 1 when
 * published, 0 when a full translation is needed. */
static int publish_endpoints(struct sv_k8s *k)
{
    uint64_t slices = sv_store_digest(k->store, SV_KIND_ENDPOINTSLICE);
    const struct sv_generation *base = sv_generation_current(k->pub.dom);
    if (!k->built || !base || slices == k->built_slices ||
        config_digest(k->store) != k->built_config)
        return 0;
    struct sv_generation *gen = NULL;
    size_t changed = 0;
    char err[256];
    if (sv_translate_endpoints(k->store, base, &gen, &changed, err, sizeof(err)) != 0) {
        sv_warn("k8s", "endpoint-only update failed (%s); rebuilding", err);
        return 0;
    }
    sv_publisher_publish_endpoints(&k->pub, gen, k->store);
    k->endpoint_updates++;
    k->built_slices = slices;
    sv_info("k8s", "endpoint-only update: generation %llu (%zu backend sets changed, route table "
            "shared)", (unsigned long long)k->pub.generation_id, changed);
    return 1;
}

/* Translate the store and publish. Returns 0 or -errno (the last good generation stays). */
static int publish(struct sv_k8s *k)
{
    if (publish_endpoints(k))
        return 0;
    uint64_t cfg = config_digest(k->store), slices = sv_store_digest(k->store,
                                                                      SV_KIND_ENDPOINTSLICE);
    struct sv_status *status = NULL;
    char err[256];
    /* HTTPRoute edits only: serve them from an overlay at once (only the touched host names
     * rebuilt; the workers adopt it while the full translation below runs for the statuses) */
    struct sv_translate_routes_info info;
    if (sv_publisher_translate_routes(&k->pub, k->store, &k->topts, &info, err, sizeof(err)) == 0)
        sv_info("k8s", "published generation %llu: %zu HTTPRoutes changed, %zu rebuilt on %zu "
                "host names (overlay)", (unsigned long long)k->pub.generation_id, info.changed,
                info.routes, info.hosts);
    int rc = sv_publisher_translate(&k->pub, k->store, &k->topts, &status, err, sizeof(err));
    if (rc != 0) {
        k->translate_errors++;
        snprintf(k->last_error, sizeof(k->last_error), "translation failed: %s", err);
        sv_error("k8s", "translation failed, keeping the last good generation: %s", err);
        return rc;
    }
    k->built = true;
    k->built_config = cfg;
    k->built_slices = slices;
    k->last_error[0] = 0;
    /* The status borrows from the store, which the reflectors keep changing: render it now. */
    cJSON *doc = sv_status_to_json(status);
    sv_status_free(status);
    if (doc) {
        cJSON_Delete(k->status_doc);
        k->status_doc = doc;
        if (k8s_writer_set_desired(k->writer, doc) < 0)
            sv_warn("k8s", "status writer: out of memory, statuses not updated this time");
    }
    sv_info("k8s", "published generation %llu", (unsigned long long)k->pub.generation_id);
    return 0;
}

int sv_k8s_open(const struct sv_k8s_opts *o, struct sv_generation_domain *dom,
                struct sv_k8s **out, char *err, size_t errlen)
{
    *out = NULL;
    struct sv_k8s_config cfg;
    int rc = o->kubeconfig ? sv_k8s_config_load_kubeconfig(o->kubeconfig, &cfg, err, errlen)
                           : sv_k8s_config_in_cluster(o->sa_dir ? o->sa_dir
                                                                 : getenv("SERVAL_K8S_SA_DIR"),
                                                      &cfg, err, errlen);
    if (rc < 0)
        return rc;
    struct sv_k8s *k = calloc(1, sizeof(*k));
    if (!k) {
        sv_k8s_config_clear(&cfg);
        return -ENOMEM;
    }
    sv_publisher_init(&k->pub, dom);
    atomic_init(&k->ready, false);
    rc = k8s_client_init(&k->cl, &cfg, o->insecure_skip_tls_verify, err, errlen);
    if (rc < 0)
        goto fail;
    k->t = (struct k8s_tuning){
        .watch_idle_ms = env_ms("SERVAL_K8S_WATCH_IDLE_MS", 0),
        .watch_timeout_min_s = 300,
        .watch_timeout_max_s = 600,
        .backoff_base_ms = 100,
        .backoff_cap_ms = env_ms("SERVAL_K8S_BACKOFF_CAP_MS", 30000),
        .lease_duration_ms = env_ms("SERVAL_K8S_LEASE_DURATION_MS", 15000),
        .renew_deadline_ms = env_ms("SERVAL_K8S_RENEW_DEADLINE_MS", 10000),
        .retry_period_ms = env_ms("SERVAL_K8S_RETRY_PERIOD_MS", 2000),
        .debounce_quiet_ms = 50,
        .debounce_max_ms = 500,
        .write_qps = 10,
        .write_burst = 20,
    };
    rc = -ENOMEM;
    k->controller = strdup(o->translate.controller_name ? o->translate.controller_name
                                                        : SV_DEFAULT_CONTROLLER_NAME);
    k->bind = strdup(o->translate.bind_addr ? o->translate.bind_addr : "0.0.0.0");
    k->pool = o->translate.address_pool ? strdup(o->translate.address_pool) : NULL;
    if (!k->controller || !k->bind || (o->translate.address_pool && !k->pool) ||
        !(k->store = sv_store_new()))
        goto fail;
    k->topts.controller_name = k->controller;
    k->topts.bind_addr = k->bind;
    k->topts.address_pool = k->pool;
    uint64_t seed = random_u64();
    for (size_t i = 0; i < N_KINDS; i++)
        if (!(k->refl[i] = k8s_reflector_new(&k->cl, k->store, kinds[i].kind, kinds[i].path,
                                             kinds[i].selector, &k->t, seed + i * 7919)))
            goto fail;
    const char *pod = getenv("POD_NAME");
    char host[256] = "serval-gateway";
    if (!pod || !*pod) {
        if (gethostname(host, sizeof(host) - 1) == 0)
            host[sizeof(host) - 1] = 0;
        pod = host;
    }
    char id[320];
    snprintf(id, sizeof(id), "%s_%08llx", pod, (unsigned long long)(random_u64() & 0xffffffffull));
    const char *ns = getenv("POD_NAMESPACE");
    if (!ns || !*ns)
        ns = k->cl.cfg.ns ? k->cl.cfg.ns : "default";
    if (!(k->lease = k8s_lease_new(&k->cl, ns, id, &k->t, seed ^ 0x5bd1e995)))
        goto fail;
    if (!(k->writer = k8s_writer_new(&k->cl, k->controller, &k->t)))
        goto fail;
    rc = publish(k); /* empty: no listeners until the reflectors synced */
    if (rc < 0) {
        snprintf(err, errlen, "%s", rc == -EINVAL ? "--bind is not an IP address" : k->last_error);
        goto fail;
    }
    sv_info("k8s", "API server %s, identity %s, lease namespace %s", k->cl.host_header, id, ns);
    render(k);
    *out = k;
    return 0;
fail:
    if (rc == -ENOMEM && err[0] == 0)
        snprintf(err, errlen, "out of memory");
    sv_k8s_close(k);
    return rc;
}

void sv_k8s_close(struct sv_k8s *k)
{
    if (!k)
        return;
    if (k->lease) {
        k8s_lease_release(k->lease, k->t.renew_deadline_ms);
        k8s_lease_free(k->lease);
    }
    k8s_writer_free(k->writer);
    for (size_t i = 0; i < N_KINDS; i++)
        k8s_reflector_free(k->refl[i]);
    cJSON_Delete(k->status_doc);
    sv_store_free(k->store);
    if (k->cl.ctx || k->cl.cfg.host)
        k8s_client_free(&k->cl);
    free(k->controller);
    free(k->bind);
    free(k->pool);
    sv_publisher_fini(&k->pub);
    free(k);
}

static bool leading(const struct sv_k8s *k)
{
    return k->lease && !k->stopping && k8s_lease_leader(k->lease);
}

void sv_k8s_shutdown(struct sv_k8s *k)
{
    if (!k || k->stopping)
        return;
    k->stopping = true;
    k8s_writer_step(k->writer, sv_now_ms(), false); /* drops a write in flight */
    k8s_lease_release(k->lease, 2000);
    render(k);
}

int sv_k8s_pollfds(struct sv_k8s *k, struct pollfd *pfd, int max)
{
    int n = 0;
    short ev;
    uint64_t due;
    for (size_t i = 0; i < N_KINDS && n < max; i++) {
        int fd = k8s_reflector_poll(k->refl[i], &ev, &due);
        if (fd >= 0)
            pfd[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    if (n < max && k->all_synced && !k->stopping) {
        int fd = k8s_lease_poll(k->lease, &ev, &due);
        if (fd >= 0)
            pfd[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    if (n < max) {
        int fd = k8s_writer_poll(k->writer, &ev, &due);
        if (fd >= 0)
            pfd[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    return n;
}

int sv_k8s_timeout_ms(struct sv_k8s *k)
{
    uint64_t now = sv_now_ms(), best = now + 1000; /* timeouts are checked at least every second */
    short ev;
    uint64_t due;
    for (size_t i = 0; i < N_KINDS; i++) {
        k8s_reflector_poll(k->refl[i], &ev, &due);
        if (due < best)
            best = due;
    }
    if (k->all_synced && !k->stopping) {
        k8s_lease_poll(k->lease, &ev, &due);
        if (due < best)
            best = due;
    }
    if (leading(k) && atomic_load(&k->ready)) {
        k8s_writer_poll(k->writer, &ev, &due);
        if (due < best)
            best = due;
    }
    if (k->dirty && k->all_synced) {
        uint64_t d1 = k->last_change_ms + k->t.debounce_quiet_ms;
        uint64_t d2 = k->first_dirty_ms + k->t.debounce_max_ms;
        due = d1 < d2 ? d1 : d2;
        if (due < best)
            best = due;
    }
    return best <= now ? 0 : (int)(best - now);
}

int sv_k8s_process(struct sv_k8s *k)
{
    uint64_t now = sv_now_ms();
    bool synced = true;
    for (size_t i = 0; i < N_KINDS; i++) {
        k8s_reflector_step(k->refl[i], now);
        synced = synced && k8s_reflector_synced(k->refl[i]);
    }
    uint64_t ch = sv_store_changes(k->store);
    if (ch != k->seen_changes) {
        k->seen_changes = ch;
        if (!k->dirty)
            k->first_dirty_ms = now;
        k->dirty = true;
        k->last_change_ms = now;
    }
    int ret = 0;
    if (synced && !k->all_synced) {
        k->all_synced = true;
        k->dirty = true; /* the first real generation, even for an empty cluster */
        k->first_dirty_ms = k->last_change_ms = 0;
        sv_info("k8s", "every reflector synced");
    }
    if (k->all_synced && k->dirty &&
        (now - k->last_change_ms >= k->t.debounce_quiet_ms ||
         now - k->first_dirty_ms >= k->t.debounce_max_ms)) {
        k->dirty = false;
        ret = publish(k);
        if (ret == 0) {
            ret = 1;
            if (!atomic_load(&k->ready))
                sv_info("k8s", "ready: generation %llu built from the synced cache",
                        (unsigned long long)k->pub.generation_id);
            atomic_store(&k->ready, true);
        }
        render(k);
        k->last_render_ms = now;
    }
    if (k->all_synced && !k->stopping) {
        k8s_lease_step(k->lease, now);
        bool lead = leading(k);
        if (lead != k->was_leader) {
            k->was_leader = lead;
            if (lead)
                k8s_writer_reset(k->writer); /* a new term re-checks every object */
            render(k);
        }
    }
    k8s_writer_step(k->writer, now, leading(k) && atomic_load(&k->ready));
    if (now - k->last_render_ms >= 1000) {
        render(k);
        k->last_render_ms = now;
    }
    return ret;
}

bool sv_k8s_ready(struct sv_k8s *k)
{
    return atomic_load(&k->ready);
}

bool sv_k8s_leader(const struct sv_k8s *k)
{
    return leading(k);
}

char *sv_k8s_config_json(struct sv_k8s *k)
{
    return sv_publisher_doc(&k->pub);
}

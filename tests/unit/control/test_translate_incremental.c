/* Incremental translation (sv_translate_routes + overlay generations): for random sequences of
 * HTTPRoute edits, the overlay over the last full translation must route every request of a
 * fixed request set exactly like a full translation of the same store; changes of other kinds
 * must fall back (-EAGAIN). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "serval/base/compiler.h"
#include "serval/base/time.h"
#include "serval/control/folder.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/overlay.h"
#include "serval/routing/table.h"
#include "support.h"

#define N_ROUTES 40

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static int put(struct sv_store *s, const char *json)
{
    char err[256];
    struct sv_object *o = sv_test_decode_one(json, err, sizeof(err));
    if (!o) {
        FAIL("decode: %s\n%s", err, json);
        return -1;
    }
    sv_store_upsert(s, o);
    return 0;
}

static const char *const HOSTS[] = {"a.ex.test", "b.ex.test", "*.ex.test", "c.other.test",
                                    "A.Ex.Test", "*.b.ex.test", "d.ex.test"};
static const char *const SECTIONS[] = {"plain", "wild", "exact"};
static const char *const PATHS[] = {"/", "/a", "/a/b", "/b", "/a/b/c"};

/* A random HTTPRoute r<i> (one of few creation times, so precedence ties happen). */
static int put_route(struct sv_store *s, int i)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf),
                     "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
                     "\"metadata\":{\"name\":\"r%d\",\"namespace\":\"%s\","
                     "\"creationTimestamp\":\"2024-01-0%uT00:00:00Z\"},\"spec\":{\"parentRefs\":[",
                     i, rnd(4) ? "inc" : "other", 1 + rnd(3));
    unsigned np = 1 + rnd(2);
    for (unsigned p = 0; p < np; p++) {
        unsigned sec = rnd(4);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s{\"name\":\"gw\",\"namespace\":\"inc\"%s%s%s}",
                      p ? "," : "", sec < 3 ? ",\"sectionName\":\"" : "",
                      sec < 3 ? SECTIONS[sec] : "", sec < 3 ? "\"" : "");
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "],\"hostnames\":[");
    unsigned nh = rnd(3);
    for (unsigned h = 0; h < nh; h++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s\"%s\"", h ? "," : "",
                      HOSTS[rnd(SV_ARRAY_SIZE(HOSTS))]);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "],\"rules\":[");
    unsigned nr = 1 + rnd(3);
    for (unsigned r = 0; r < nr; r++) {
        unsigned kind = rnd(4);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "%s{\"matches\":[{\"path\":{\"type\":\"%s\",\"value\":\"%s\"}%s}],"
                      "\"backendRefs\":[{\"name\":\"svc%u\",\"port\":80}]}",
                      r ? "," : "", kind == 0 ? "Exact" : "PathPrefix",
                      PATHS[rnd(SV_ARRAY_SIZE(PATHS))],
                      kind == 3 ? ",\"headers\":[{\"name\":\"x-v\",\"value\":\"1\"}]" : "",
                      rnd(6)); /* svc5 does not exist: 500 */
    }
    snprintf(buf + n, sizeof(buf) - (size_t)n, "]}}");
    return put(s, buf);
}

static struct sv_store *make_store(void)
{
    struct sv_store *s = sv_store_new();
    put(s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
           "\"metadata\":{\"name\":\"serval\"},\"spec\":{\"controllerName\":"
           "\"serval.dev/gateway-controller\"}}");
    put(s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":"
           "{\"name\":\"gw\",\"namespace\":\"inc\"},\"spec\":{\"gatewayClassName\":\"serval\","
           "\"listeners\":[{\"name\":\"plain\",\"port\":8080,\"protocol\":\"HTTP\","
           "\"allowedRoutes\":{\"namespaces\":{\"from\":\"All\"}}},"
           "{\"name\":\"wild\",\"port\":8081,\"protocol\":\"HTTP\",\"hostname\":\"*.ex.test\","
           "\"allowedRoutes\":{\"namespaces\":{\"from\":\"All\"}}},"
           "{\"name\":\"exact\",\"port\":8081,\"protocol\":\"HTTP\",\"hostname\":\"a.ex.test\"}]}}");
    for (int v = 0; v < 5; v++) {
        char buf[1024];
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc%d\","
                 "\"namespace\":\"%s\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}",
                 v, "inc");
        put(s, buf);
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc%d\","
                 "\"namespace\":\"%s\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}",
                 v, "other");
        put(s, buf);
        for (int k = 0; k < 2; k++) {
            snprintf(buf, sizeof(buf),
                     "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                     "\"metadata\":{\"name\":\"svc%d-a\",\"namespace\":\"%s\",\"labels\":"
                     "{\"kubernetes.io/service-name\":\"svc%d\"}},\"addressType\":\"IPv4\","
                     "\"ports\":[{\"name\":\"http\",\"port\":9000}],\"endpoints\":["
                     "{\"addresses\":[\"10.0.%d.%d\"]}]}",
                     v, k ? "other" : "inc", v, k, v + 1);
            put(s, buf);
        }
    }
    /* TLS to svc2 in inc (the system trust store: no CA ConfigMap needed) */
    put(s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"BackendTLSPolicy\","
           "\"metadata\":{\"name\":\"tls2\",\"namespace\":\"inc\"},\"spec\":{\"targetRefs\":"
           "[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"svc2\"}],\"validation\":"
           "{\"wellKnownCACertificates\":\"System\",\"hostname\":\"svc2.example.com\"}}}");
    for (int i = 0; i < N_ROUTES; i++)
        put_route(s, i);
    return s;
}

static const char *const REQ_HOSTS[] = {"a.ex.test", "b.ex.test", "x.ex.test", "c.other.test",
                                        "q.b.ex.test", "d.ex.test", "zz.test", ""};
static const char *const REQ_PATHS[] = {"/", "/a", "/a/", "/a/b", "/a/bc", "/b", "/a/b/c/d", "/c"};

static ssize_t hdr_v(const void *ctx, struct sv_str name, char *out, size_t cap)
{
    (void)ctx;
    if (!sv_str_eq_nocase(name, SV_STR_LIT("x-v")) || cap < 1)
        return -ENOENT;
    out[0] = '1';
    return 1;
}

/* One request's outcome, as text: route, rule, listener, backend set names and weights. */
static int tls_outcomes; /* outcomes with a backend TLS context (the check is not vacuous) */

static void outcome(const struct sv_generation *g, const struct sv_route_request *req, char *out,
                    size_t cap)
{
    struct sv_route_result res;
    int rc = sv_route_lookup(g, req, &res);
    if (rc != 0 || !res.action) {
        snprintf(out, cap, "miss %d", rc);
        return;
    }
    const struct sv_route_action *a = res.action;
    int n = snprintf(out, cap, "%.*s#%u fixed %u listener %.*s type %d prefix %zu:",
                     (int)a->route_name.len, a->route_name.ptr, a->rule_index, a->ext->fixed_status,
                     res.listener ? (int)res.listener->name.len : 0,
                     res.listener ? res.listener->name.ptr : "", (int)res.path_type,
                     res.prefix_len);
    for (uint32_t b = 0; b < a->n_backends && n > 0 && (size_t)n < cap; b++) {
        struct sv_str name = a->backends[b].kind == SV_ROUTE_BACKEND_SET
                                 ? sv_generation_backend_set_name(g, a->backends[b].set_id)
                                 : SV_STR_LIT("-");
        size_t eps = 0;
        bool tls = false;
        if (a->backends[b].kind == SV_ROUTE_BACKEND_SET) {
            sv_generation_endpoints(g, a->backends[b].set_id, &eps);
            tls = sv_generation_backend_tls(g, a->backends[b].set_id) != NULL;
            tls_outcomes += tls;
        }
        n += snprintf(out + n, cap - (size_t)n, " %.*s/%u/%zu eps%s", (int)name.len, name.ptr,
                      a->backends[b].weight, eps, tls ? "/tls" : "");
    }
}

/* Every request of the fixed set routes the same in <a> and <b>. Returns the mismatches. */
static int compare(const struct sv_generation *a, const struct sv_generation *b, int step)
{
    int bad = 0;
    for (int port = 8080; port <= 8081; port++) {
        struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
        for (size_t h = 0; h < SV_ARRAY_SIZE(REQ_HOSTS); h++)
            for (size_t p = 0; p < SV_ARRAY_SIZE(REQ_PATHS); p++)
                for (int hv = 0; hv < 2; hv++) {
                    struct sv_route_request req = {.local = (struct sockaddr *)&local,
                                                   .host = sv_str_cstr(REQ_HOSTS[h]),
                                                   .path = sv_str_cstr(REQ_PATHS[p]),
                                                   .query = SV_STR_LIT(""),
                                                   .method = SV_STR_LIT("GET"),
                                                   .header = hv ? hdr_v : NULL};
                    char x[1024], y[1024];
                    outcome(a, &req, x, sizeof(x));
                    outcome(b, &req, y, sizeof(y));
                    if (strcmp(x, y) != 0 && bad++ < 3)
                        FAIL("step %d: %d %s%s: overlay \"%s\", full \"%s\"", step, port,
                             REQ_HOSTS[h], REQ_PATHS[p], x, y);
                }
    }
    return bad;
}

TEST(translate_incremental_matches_full_rebuild)
{
    struct sv_translate_opts o = {.bind_addr = "127.0.0.1"};
    char err[256];
    int overlays = 0, fallbacks = 0;
    for (unsigned seed = 1; seed <= 3; seed++) {
        rnd_state = seed;
        struct sv_store *s = make_store();
        struct sv_generation *base = NULL;
        struct sv_status *st = NULL;
        struct sv_tx_index *idx = NULL;
        REQUIRE(sv_translate_indexed(s, &o, &base, &st, &idx, err, sizeof(err)) == 0);
        REQUIRE(idx != NULL);
        sv_status_free(st);
        for (int step = 0; step < 60; step++) {
            /* one to three edits: change, add (a new name), or delete routes */
            unsigned edits = 1 + rnd(3);
            for (unsigned e = 0; e < edits; e++) {
                unsigned what = rnd(6), i = rnd(N_ROUTES + 8);
                char name[16];
                snprintf(name, sizeof(name), "r%u", i);
                if (what == 0) {
                    sv_store_delete(s, SV_KIND_HTTPROUTE, "inc", name);
                    sv_store_delete(s, SV_KIND_HTTPROUTE, "other", name);
                } else {
                    put_route(s, (int)i);
                }
            }
            struct sv_generation *full = NULL, *ov = NULL;
            struct sv_translate_routes_info info;
            REQUIRE(sv_translate(s, &o, &full, &st, err, sizeof(err)) == 0);
            sv_status_free(st);
            int rc = sv_translate_routes(s, &o, idx, base, &ov, &info, err, sizeof(err));
            if (rc == 0) {
                overlays++;
                CHECK(sv_generation_is_overlay(ov));
                CHECK(info.routes >= 1 && info.hosts >= 1);
                if (compare(ov, full, step) != 0) {
                    sv_generation_free_unpublished(ov);
                    sv_generation_free_unpublished(full);
                    break;
                }
                sv_generation_free_unpublished(ov);
            } else {
                CHECK_EQ_INT(rc, -EAGAIN); /* no error, only "not applicable" */
                fallbacks++;
            }
            sv_generation_free_unpublished(full);
            /* every few steps a new full translation becomes the base */
            if (rnd(3) == 0) {
                sv_generation_free_unpublished(base);
                sv_tx_index_free(idx);
                REQUIRE(sv_translate_indexed(s, &o, &base, &st, &idx, err, sizeof(err)) == 0);
                sv_status_free(st);
            }
        }
        sv_generation_free_unpublished(base);
        sv_tx_index_free(idx);
        sv_store_free(s);
    }
    CHECK(overlays > 100); /* the incremental path really ran */
    CHECK(tls_outcomes > 0);  /* and backend TLS contexts were compared */
    printf("# %d overlays, %d full fallbacks\n", overlays, fallbacks);
    CHECK_EQ_INT(sv_generation_live_count(), 0);
}

TEST(translate_incremental_falls_back_for_other_kinds)
{
    struct sv_translate_opts o = {.bind_addr = "127.0.0.1"};
    char err[256];
    rnd_state = 7;
    struct sv_store *s = make_store();
    struct sv_generation *base = NULL, *ov = NULL;
    struct sv_status *st = NULL;
    struct sv_tx_index *idx = NULL;
    struct sv_translate_routes_info info;
    REQUIRE(sv_translate_indexed(s, &o, &base, &st, &idx, err, sizeof(err)) == 0);
    sv_status_free(st);
    /* nothing changed */
    CHECK_EQ_INT(sv_translate_routes(s, &o, idx, base, &ov, &info, err, sizeof(err)), -EAGAIN);
    /* a route change alone: an overlay */
    put_route(s, 3);
    put_route(s, 3); /* random content: at least one of the two differs from before */
    int rc = sv_translate_routes(s, &o, idx, base, &ov, &info, err, sizeof(err));
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK(info.changed >= 1);
        /* an overlay is never the base of another one, nor of an endpoint-only update */
        struct sv_generation *ov2 = NULL, *ep = NULL;
        CHECK_EQ_INT(sv_translate_routes(s, &o, idx, ov, &ov2, &info, err, sizeof(err)), -EAGAIN);
        size_t changed;
        CHECK(sv_translate_endpoints(s, ov, &ep, &changed, err, sizeof(err)) != 0);
        sv_generation_free_unpublished(ov);
    }
    /* other options: full */
    struct sv_translate_opts o2 = {.bind_addr = "127.0.0.2"};
    CHECK_EQ_INT(sv_translate_routes(s, &o2, idx, base, &ov, &info, err, sizeof(err)), -EAGAIN);
    /* a Service change: full */
    put(s, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc1\","
           "\"namespace\":\"inc\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":81}]}}");
    CHECK_EQ_INT(sv_translate_routes(s, &o, idx, base, &ov, &info, err, sizeof(err)), -EAGAIN);
    CHECK(ov == NULL);
    sv_generation_free_unpublished(base);
    sv_tx_index_free(idx);
    sv_store_free(s);
    CHECK_EQ_INT(sv_generation_live_count(), 0);
}

/* ---- the folder controller: overlay first, the full translation right after ---------------- */

static void write_text(const char *dir, const char *rel, const char *text)
{
    char path[512], tmp[540];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, rel);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        FAIL("cannot write %s", tmp);
        return;
    }
    fputs(text, f);
    fclose(f);
    if (rename(tmp, path) != 0)
        FAIL("rename %s", path);
}

static const char *route_text(const char *name, const char *host, const char *path)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"inc\"},\"spec\":{\"parentRefs\":"
             "[{\"name\":\"gw\"}],\"hostnames\":[\"%s\"],\"rules\":[{\"matches\":[{\"path\":"
             "{\"type\":\"PathPrefix\",\"value\":\"%s\"}}],\"backendRefs\":[{\"name\":\"svc1\","
             "\"port\":80}]}]}}",
             name, host, path);
    return buf;
}

/* The route serving http://<host><path> on port 8080, "" when none. */
static const char *served_by(struct sv_generation_domain *dom, const char *host, const char *path)
{
    static char out[128];
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    struct sv_route_request req = {.local = (struct sockaddr *)&local,
                                   .host = sv_str_cstr(host),
                                   .path = sv_str_cstr(path),
                                   .query = SV_STR_LIT(""),
                                   .method = SV_STR_LIT("GET")};
    struct sv_route_result res;
    out[0] = '\0';
    if (sv_route_lookup(sv_generation_current(dom), &req, &res) == 0 && res.action)
        snprintf(out, sizeof(out), "%.*s", (int)res.action->route_name.len,
                 res.action->route_name.ptr);
    return out;
}

/* sv_folder_process until it publishes (1) or 3 s pass. */
static int wait_publish(struct sv_folder *fo)
{
    uint64_t end = sv_now_ms() + 3000;
    while (sv_now_ms() < end) {
        struct pollfd p = {.fd = sv_folder_fd(fo), .events = POLLIN};
        poll(&p, 1, 20);
        int rc = sv_folder_process(fo);
        if (rc != 0)
            return rc;
    }
    return 0;
}

TEST(folder_route_edit_overlay_then_full_translation)
{
    char dir[] = "/tmp/sv-incr-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    write_text(dir, "base.json",
               "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
               "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
               "\"metadata\":{\"name\":\"serval\"},\"spec\":{\"controllerName\":"
               "\"serval.dev/gateway-controller\"}},"
               "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":"
               "{\"name\":\"gw\",\"namespace\":\"inc\"},\"spec\":{\"gatewayClassName\":\"serval\","
               "\"listeners\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\"}]}},"
               "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc1\","
               "\"namespace\":\"inc\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}]}");
    write_text(dir, "a.json", route_text("a", "a.test", "/a"));
    write_text(dir, "b.json", route_text("b", "b.test", "/b"));
    struct sv_generation_domain *dom = sv_generation_domain_new(1);
    REQUIRE(dom != NULL);
    struct sv_folder_opts o = {.dir = dir};
    o.translate.bind_addr = "127.0.0.1";
    o.provider.quiet_ms = 20;
    struct sv_folder *fo = NULL;
    char err[256];
    REQUIRE(sv_folder_open(&o, dom, &fo, err, sizeof(err)) == 0);
    CHECK(!sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK_EQ_STR(served_by(dom, "b.test", "/b"), "inc/b");
    uint64_t published = sv_folder_published(fo);

    /* A route edit: an overlay serves it at once ... */
    write_text(dir, "b.json", route_text("b", "b.test", "/bee"));
    CHECK_EQ_INT(wait_publish(fo), 1);
    struct sv_folder_timings ft;
    sv_folder_last_timings(fo, &ft);
    CHECK(ft.incremental);
    CHECK(sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK_EQ_STR(served_by(dom, "b.test", "/bee"), "inc/b");
    CHECK_EQ_STR(served_by(dom, "b.test", "/b"), "");
    CHECK_EQ_STR(served_by(dom, "a.test", "/a"), "inc/a"); /* from the base table */
    CHECK_EQ_INT(sv_folder_timeout_ms(fo), 0);
    /* ... and the next call translates in full (and renders /config with the status) */
    CHECK_EQ_INT(sv_folder_process(fo), 1);
    CHECK(!sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK(sv_folder_timeout_ms(fo) != 0);
    CHECK_EQ_INT(sv_folder_published(fo), published + 2);
    CHECK_EQ_STR(served_by(dom, "b.test", "/bee"), "inc/b");
    CHECK_EQ_STR(served_by(dom, "a.test", "/a"), "inc/a");
    /* /config describes the full generation (an overlay's describe would be partial) */
    char *doc = sv_folder_config_json(fo);
    cJSON *j = doc ? cJSON_Parse(doc) : NULL;
    const cJSON *rg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "routing"), "generation");
    CHECK(cJSON_IsNumber(rg) &&
          (uint64_t)rg->valuedouble == sv_generation_id(sv_generation_current(dom)));
    cJSON_Delete(j);
    free(doc);
    sv_generation_reclaim(dom);

    /* A new route, then a removed one: overlays again */
    write_text(dir, "c.json", route_text("c", "a.test", "/c"));
    CHECK_EQ_INT(wait_publish(fo), 1);
    CHECK(sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK_EQ_STR(served_by(dom, "a.test", "/c"), "inc/c");
    CHECK_EQ_STR(served_by(dom, "a.test", "/a"), "inc/a");
    CHECK_EQ_INT(sv_folder_process(fo), 1);
    char path[600];
    snprintf(path, sizeof(path), "%s/c.json", dir);
    REQUIRE(unlink(path) == 0);
    CHECK_EQ_INT(wait_publish(fo), 1);
    CHECK(sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK_EQ_STR(served_by(dom, "a.test", "/c"), "");
    CHECK_EQ_INT(sv_folder_process(fo), 1);

    /* Anything else (a Service here) translates in full at once */
    write_text(dir, "svc.json",
               "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc2\","
               "\"namespace\":\"inc\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}");
    CHECK_EQ_INT(wait_publish(fo), 1);
    sv_folder_last_timings(fo, &ft);
    CHECK(!ft.incremental);
    CHECK(!sv_generation_is_overlay(sv_generation_current(dom)));
    CHECK(sv_folder_timeout_ms(fo) != 0);

    sv_folder_close(fo);
    sv_generation_domain_free(dom);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(path), 0);
    CHECK_EQ_INT(sv_generation_live_count(), 0);
}

/* The store keeps its sorted list up to date across upserts and deletes (store.c): after edits
 * the list holds exactly the store's objects, sorted, and what sv_store_get returns. */
TEST(store_sorted_list_follows_edits)
{
    rnd_state = 99;
    struct sv_store *s = sv_store_new();
    bool present[64] = {false};
    for (int step = 0; step < 450; step++) {
        unsigned i = rnd(64);
        char name[16], ns[8];
        snprintf(name, sizeof(name), "s%u", i);
        snprintf(ns, sizeof(ns), "n%u", i % 3);
        if (rnd(3) == 0) {
            CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, ns, name), present[i] ? 1 : 0);
            present[i] = false;
        } else {
            char buf[256];
            snprintf(buf, sizeof(buf),
                     "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
                     "\"namespace\":\"%s\"},\"spec\":{\"ports\":[{\"port\":%u}]}}",
                     name, ns, 1 + rnd(1000));
            if (put(s, buf) != 0)
                break;
            present[i] = true;
        }
        if (rnd(4) == 0 || (step >= 150 && step < 350))
            continue; /* edits without a list in between (200 in a row: the cache is dropped) */
        size_t n = 0, want = 0;
        const struct sv_object *const *v = sv_store_list(s, SV_KIND_SERVICE, &n);
        for (int k = 0; k < 64; k++)
            want += present[k];
        CHECK_EQ_INT(n, want);
        for (size_t k = 0; k < n; k++) {
            CHECK(sv_store_get(s, SV_KIND_SERVICE, v[k]->meta.ns, v[k]->meta.name) == v[k]);
            if (k > 0) {
                int c = strcmp(v[k - 1]->meta.ns, v[k]->meta.ns);
                CHECK(c < 0 || (c == 0 && strcmp(v[k - 1]->meta.name, v[k]->meta.name) < 0));
            }
        }
    }
    sv_store_free(s);
}

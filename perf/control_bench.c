/* Control-plane benchmark (not a test): generations of 10, 1,000 and 10,000 HTTPRoutes (10 rules
 * each) over a store holding 100,000 endpoints; reports translate+build time, generation memory
 * per route, single-core lookups per second, and the time from a file write in a --config-dir
 * folder to the new rule being published (in process: inotify + debounce + load + translate +
 * publish). Built and run by perf/control-bench.sh (`make bench` runs it too).
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/control/folder.h"
#include "serval/control/model.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "routing/table_int.h"

#define SERVICES 1000
#define ENDPOINTS_PER_SERVICE 100 /* 100,000 endpoints in the store */
#define RULES 10

static void add(struct sv_store *s, const char *json)
{
    char err[256];
    cJSON *j = cJSON_Parse(json);
    struct sv_object *o = NULL;
    if (!j || sv_model_decode(j, NULL, &o, err, sizeof(err)) != 0 || !o) {
        fprintf(stderr, "bad object: %s\n%s\n", err, json);
        exit(1);
    }
    cJSON_Delete(j);
    sv_store_upsert(s, o);
}

static int path_variant; /* 1: other rule paths (an edited route) */

static char *route_json(int i)
{
    static char buf[8192];
    int n = snprintf(buf, sizeof(buf),
                     "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
                     "\"metadata\":{\"name\":\"r%d\",\"namespace\":\"bench\"},\"spec\":{"
                     "\"parentRefs\":[{\"name\":\"gw\"}],\"hostnames\":[\"r%d.bench.test\"],"
                     "\"rules\":[",
                     i, i);
    for (int r = 0; r < RULES; r++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "%s{\"matches\":[{\"path\":{\"type\":\"%s\",\"value\":\"/api/v%d/%s\"}}"
                      "],\"backendRefs\":[{\"name\":\"svc%d\",\"port\":80}]}",
                      r ? "," : "", r % 3 == 0 ? "Exact" : "PathPrefix", r,
                      path_variant ? "things" : "items",
                      (i * RULES + r) % SERVICES);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "]}}");
    return buf;
}

static struct sv_store *make_store(int routes)
{
    struct sv_store *s = sv_store_new();
    add(s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
           "\"metadata\":{\"name\":\"serval\"},\"spec\":{\"controllerName\":"
           "\"serval.dev/gateway-controller\"}}");
    add(s, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":"
           "{\"name\":\"gw\",\"namespace\":\"bench\"},\"spec\":{\"gatewayClassName\":\"serval\","
           "\"listeners\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\","
           "\"hostname\":\"*.bench.test\"}]}}");
    char *buf = malloc(1 << 16);
    for (int v = 0; v < SERVICES; v++) {
        snprintf(buf, 1 << 16,
                 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc%d\","
                 "\"namespace\":\"bench\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}",
                 v);
        add(s, buf);
        int n = snprintf(buf, 1 << 16,
                         "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                         "\"metadata\":{\"name\":\"svc%d-a\",\"namespace\":\"bench\",\"labels\":"
                         "{\"kubernetes.io/service-name\":\"svc%d\"}},\"addressType\":\"IPv4\","
                         "\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":[",
                         v, v);
        for (int e = 0; e < ENDPOINTS_PER_SERVICE; e++)
            n += snprintf(buf + n, (size_t)(1 << 16) - (size_t)n,
                          "%s{\"addresses\":[\"10.%d.%d.%d\"]}", e ? "," : "", v / 250,
                          v % 250, e + 1);
        snprintf(buf + n, (size_t)(1 << 16) - (size_t)n, "]}");
        add(s, buf);
    }
    free(buf);
    for (int i = 0; i < routes; i++)
        add(s, route_json(i));
    return s;
}

enum { NREQ = 4096, HOT = 16 };
static char hosts[NREQ][40], paths[NREQ][40];

/* The request mix: NREQ (host, path) pairs, hosts drawn from <nhosts> routes (all routes, or a
 * fixed hot set of HOT routes spread over the table), every rule's path. */
static void make_requests(int routes, int nhosts)
{
    unsigned seed = 12345;
    for (int i = 0; i < NREQ; i++) {
        seed = seed * 1103515245u + 12345u;
        int pick = (int)((seed >> 8) % (unsigned)nhosts), rule = (int)((seed >> 4) % RULES);
        int r = nhosts == routes ? pick : (int)((long)pick * routes / nhosts);
        snprintf(hosts[i], sizeof(hosts[i]), "r%d.bench.test", r);
        snprintf(paths[i], sizeof(paths[i]), "/api/v%d/items%s", rule, rule % 3 ? "/42" : "");
    }
}

/* <rounds> passes over the request mix; returns the number of hits. Not inlined, so that
 * callgrind --toggle-collect=lookup_rounds counts the lookups alone. */
__attribute__((noinline)) static uint64_t lookup_rounds(const struct sv_generation *gen,
                                                        uint64_t rounds)
{
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    uint64_t hits = 0;
    for (uint64_t k = 0; k < rounds; k++) {
        for (int i = 0; i < NREQ; i++) {
            struct sv_route_request req = {.local = (struct sockaddr *)&local,
                                           .host = sv_str_cstr(hosts[i]),
                                           .path = sv_str_cstr(paths[i]),
                                           .query = SV_STR_LIT(""),
                                           .method = SV_STR_LIT("GET")};
            struct sv_route_result res;
            hits += sv_route_lookup(gen, &req, &res) == 0;
        }
    }
    return hits;
}

static double lookups_per_sec(const struct sv_generation *gen, int routes, int nhosts)
{
    make_requests(routes, nhosts);
    uint64_t t0 = sv_now_ns(), n = 0, hits = 0;
    while (sv_now_ns() - t0 < 1000000000ull) {
        hits += lookup_rounds(gen, 1);
        n += NREQ;
    }
    double secs = (double)(sv_now_ns() - t0) / 1e9;
    if (hits != n)
        fprintf(stderr, "warning: %llu of %llu lookups missed\n", (unsigned long long)(n - hits),
                (unsigned long long)n);
    return (double)n / secs;
}

/* CPU time of this thread: unlike the wall clock it does not count time the shared machine's
 * other processes had the core. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Heap bytes in use, mmapped chunks included (large arena blocks are mmapped by malloc). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile <p> of v[n] in milliseconds (sorts v). */
static double pct(uint64_t *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return (double)v[n * p / 100] / 1e6;
}

/* File write -> generation published, in process, with 1,000 routes in the folder. */
static void write_to_publish(uint32_t quiet_ms, int samples, unsigned idle_ms, const char *what)
{
    char dir[] = "/tmp/sv-bench-XXXXXX";
    if (!mkdtemp(dir))
        return;
    char path[256], tmp[256];
    snprintf(path, sizeof(path), "%s/base.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[");
    fprintf(f, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
               "\"metadata\":{\"name\":\"serval\"},\"spec\":{\"controllerName\":"
               "\"serval.dev/gateway-controller\"}},"
               "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":"
               "{\"name\":\"gw\",\"namespace\":\"bench\"},\"spec\":{\"gatewayClassName\":"
               "\"serval\",\"listeners\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\","
               "\"hostname\":\"*.bench.test\"}]}}");
    for (int i = 0; i < 999; i++)
        fprintf(f, ",%s", route_json(i));
    fprintf(f, "]}");
    fclose(f);
    struct sv_generation_domain *dom = sv_generation_domain_new(1);
    struct sv_folder_opts o = {.dir = dir};
    o.translate.bind_addr = "127.0.0.1";
    o.provider.quiet_ms = quiet_ms;
    struct sv_folder *fo;
    char err[256];
    if (sv_folder_open(&o, dom, &fo, err, sizeof(err)) != 0) {
        fprintf(stderr, "folder: %s\n", err);
        return;
    }
    uint64_t *lat = calloc((size_t)samples, sizeof(*lat));
    /* the parts: rename -> fd readable (inotify, plus the debounce timer in a burst), load,
     * classify, translate+publish */
    uint64_t *wake = calloc((size_t)samples, sizeof(*wake)), *load = calloc((size_t)samples, 8);
    uint64_t *cls = calloc((size_t)samples, 8), *tr = calloc((size_t)samples, 8);
    /* without the inotify wake; the full translation that follows an overlay (not on the
     * serving path), and how many samples took the incremental path */
    uint64_t *nowake = calloc((size_t)samples, 8), *full = calloc((size_t)samples, 8);
    uint64_t *cpu = calloc((size_t)samples, 8);
    int incremental = 0, n_full = 0;
    snprintf(path, sizeof(path), "%s/changing.json", dir);
    snprintf(tmp, sizeof(tmp), "%s/.changing.tmp", dir);
    for (int s = 0; s < samples; s++) {
        if (idle_ms)
            usleep(idle_ms * 1000);
        f = fopen(tmp, "w");
        fputs(route_json(5000 + s), f);
        fclose(f);
        uint64_t t0 = sv_now_ns(), t_wake = 0, c0 = 0;
        rename(tmp, path);
        for (;;) {
            struct pollfd p = {.fd = sv_folder_fd(fo), .events = POLLIN};
            if (poll(&p, 1, 100) == 1 && !t_wake) {
                t_wake = sv_now_ns();
                c0 = cpu_ns();
            }
            if (sv_folder_process(fo) == 1)
                break;
        }
        lat[s] = sv_now_ns() - t0;
        cpu[s] = c0 ? cpu_ns() - c0 : 0;
        struct sv_folder_timings ft;
        sv_folder_last_timings(fo, &ft);
        wake[s] = t_wake ? t_wake - t0 : 0;
        nowake[s] = lat[s] - wake[s];
        load[s] = ft.load_ns;
        cls[s] = ft.classify_ns;
        tr[s] = ft.translate_ns;
        incremental += ft.incremental;
        /* the full translation that follows an overlay (the control loop runs it at once) */
        while (sv_folder_timeout_ms(fo) == 0)
            sv_folder_process(fo);
        if (ft.incremental) {
            sv_folder_last_timings(fo, &ft);
            full[n_full++] = ft.compact_ns;
        }
        sv_generation_reclaim(dom);
    }
    printf("| file write -> published, 1,000 routes, %s | p50 %.2f ms | p99 %.2f ms |\n", what,
           pct(lat, samples, 50), pct(lat, samples, 99));
    printf("|   rename -> inotify fd readable (first wake) | p50 %.2f ms | p99 %.2f ms |\n",
           pct(wake, samples, 50), pct(wake, samples, 99));
    printf("|   load (stat all, read+decode changed files) | p50 %.2f ms | p99 %.2f ms |\n",
           pct(load, samples, 50), pct(load, samples, 99));
    printf("|   compare with the previous load | p50 %.2f ms | p99 %.2f ms |\n",
           pct(cls, samples, 50), pct(cls, samples, 99));
    printf("|   translate+build+publish (%d of %d incremental) | p50 %.2f ms | p99 %.2f ms |\n",
           incremental, samples, pct(tr, samples, 50), pct(tr, samples, 99));
    printf("|   write -> published without the inotify wake | p50 %.2f ms | p99 %.2f ms |\n",
           pct(nowake, samples, 50), pct(nowake, samples, 99));
    printf("|   thread CPU from the wake to published | p50 %.2f ms | p99 %.2f ms |\n",
           pct(cpu, samples, 50), pct(cpu, samples, 99));
    if (n_full)
        printf("|   then the full translation (status, /config; off the serving path) | "
               "p50 %.2f ms | p99 %.2f ms |\n",
               pct(full, n_full, 50), pct(full, n_full, 99));
    free(nowake);
    free(full);
    free(cpu);
    free(wake);
    free(load);
    free(cls);
    free(tr);
    /* Where the time goes: a full folder load, and a translation of it. */
    struct sv_file_provider *fp;
    struct sv_store *st = NULL;
    if (sv_file_provider_open(dir, NULL, &fp) == 0) {
        uint64_t t0 = sv_now_ns();
        sv_file_provider_load(fp, &st);
        uint64_t t1 = sv_now_ns();
        struct sv_generation *gen = NULL;
        struct sv_status *status = NULL;
        if (st && sv_translate(st, &o.translate, &gen, &status, err, sizeof(err)) == 0) {
            uint64_t t2 = sv_now_ns();
            printf("|   for reference: a cold load (read+parse+decode every file) | %.2f ms | "
                   "translate+build %.2f ms |\n",
                   (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
            sv_generation_free_unpublished(gen);
            sv_status_free(status);
        }
        sv_store_free(st);
        sv_file_provider_close(fp);
    }
    free(lat);
    sv_folder_close(fo);
    sv_generation_domain_free(dom);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* One HTTPRoute added or removed over a fully translated store of N routes and 100,000
 * endpoints: the incremental translation (sv_translate_routes: an overlay generation) against a
 * full one. */
static void incremental_table(const int *sizes, size_t n_sizes)
{
    printf("\n| HTTPRoutes, one edited or removed | incremental translate+build (ms, median of 10) |"
           " same, thread CPU ms | routes rebuilt | full translate+build, thread CPU ms |\n"
           "|---|---|---|---|---|\n");
    for (size_t k = 0; k < n_sizes; k++) {
        int routes = sizes[k];
        struct sv_store *s = make_store(routes);
        struct sv_translate_opts o = {0};
        struct sv_generation *base;
        struct sv_status *st;
        struct sv_tx_index *idx;
        char err[256];
        uint64_t c0 = cpu_ns();
        if (sv_translate_indexed(s, &o, &base, &st, &idx, err, sizeof(err)) != 0) {
            fprintf(stderr, "translate: %s\n", err);
            return;
        }
        uint64_t full_cpu = cpu_ns() - c0;
        sv_status_free(st);
        enum { REPS = 10 };
        uint64_t t[REPS], c[REPS];
        size_t rebuilt = 0;
        for (int rep = 0; rep < REPS; rep++) {
            char name[32];
            int victim = (rep * 7919) % routes;
            snprintf(name, sizeof(name), "r%d", victim);
            if (rep % 2 == 0) { /* its rules' paths edited */
                path_variant = 1;
                add(s, route_json(victim));
                path_variant = 0;
            } else {
                sv_store_delete(s, SV_KIND_HTTPROUTE, "bench", name);
            }
            struct sv_generation *ov = NULL;
            struct sv_translate_routes_info info;
            uint64_t t0 = sv_now_ns();
            c0 = cpu_ns();
            int rc = sv_translate_routes(s, &o, idx, base, &ov, &info, err, sizeof(err));
            c[rep] = cpu_ns() - c0;
            t[rep] = sv_now_ns() - t0;
            if (rc != 0) {
                fprintf(stderr, "incremental translation: %d %s\n", rc, err);
                break;
            }
            rebuilt = info.routes;
            sv_generation_free_unpublished(ov);
            add(s, route_json(victim)); /* back to the indexed store */
        }
        qsort(t, REPS, sizeof(t[0]), cmp_u64);
        qsort(c, REPS, sizeof(c[0]), cmp_u64);
        printf("| %d | %.2f | %.2f | %zu | %.1f |\n", routes, (double)t[REPS / 2] / 1e6,
               (double)c[REPS / 2] / 1e6, rebuilt, (double)full_cpu / 1e6);
        fflush(stdout);
        sv_generation_free_unpublished(base);
        sv_tx_index_free(idx);
        sv_store_free(s);
    }
}

__attribute__((noinline)) static uint64_t rounds_all(const struct sv_generation *gen)
{
    return lookup_rounds(gen, 64);
}

__attribute__((noinline)) static uint64_t rounds_hot(const struct sv_generation *gen)
{
    return lookup_rounds(gen, 32) + lookup_rounds(gen, 32); /* not folded with rounds_all */
}

/* `control-bench incremental N`: the incremental rows for N routes alone.
 * `control-bench callgrind N`: one translation of N routes, then 64 passes over the request
 * mix over all hosts and 64 over a hot set; run under valgrind --tool=callgrind with
 * --toggle-collect=<function> (sv_translate, rounds_all, rounds_hot) to count instructions of
 * the translation or of the lookups alone. */
static int callgrind_mode(int routes)
{
    struct sv_store *s = make_store(routes);
    struct sv_generation *gen;
    struct sv_status *st;
    char err[256];
    if (sv_translate(s, NULL, &gen, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "translate: %s\n", err);
        return 1;
    }
    sv_status_free(st);
    make_requests(routes, routes);
    uint64_t h1 = rounds_all(gen);
    make_requests(routes, routes < HOT ? routes : HOT);
    uint64_t h2 = rounds_hot(gen);
    printf("%d routes: %llu + %llu hits of %d\n", routes, (unsigned long long)h1,
           (unsigned long long)h2, 2 * 64 * NREQ);
    sv_generation_free_unpublished(gen);
    sv_store_free(s);
    return 0;
}


/* `control-bench build N K`: K translations of N routes (for perf record / perf stat of the
 * build alone); prints the median thread CPU time. */
static int build_mode(int routes, int reps)
{
    struct sv_store *s = make_store(routes);
    uint64_t c[64];
    int n = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    for (int i = 0; i < n; i++) {
        struct sv_generation *gen;
        struct sv_status *st;
        char err[256];
        uint64_t c0 = cpu_ns();
        if (sv_translate(s, NULL, &gen, &st, err, sizeof(err)) != 0) {
            fprintf(stderr, "translate: %s\n", err);
            return 1;
        }
        c[i] = cpu_ns() - c0;
        sv_status_free(st);
        sv_generation_free_unpublished(gen);
    }
    qsort(c, (size_t)n, sizeof(c[0]), cmp_u64);
    printf("%d routes: translate+build thread CPU median %.1f ms, min %.1f ms (%d runs)\n", routes,
           (double)c[n / 2] / 1e6, (double)c[0] / 1e6, n);
    sv_store_free(s);
    return 0;
}

/* `control-bench layout N`: where the bytes of a generation of N routes go, per array of the
 * route table (routing/table_int.h) and per arena, next to the heap growth the table reports. */
static int layout_mode(int routes)
{
    struct sv_store *s = make_store(routes);
    struct sv_generation *gen;
    struct sv_status *st;
    char err[256];
    malloc_trim(0);
    size_t before = heap_in_use();
    if (sv_translate(s, NULL, &gen, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "translate: %s\n", err);
        return 1;
    }
    sv_status_free(st);
    size_t heap = heap_in_use() - before;
    const struct sv_route_table *t = gen->table;
    size_t eps = 0;
    for (uint32_t i = 0; i < t->n_sets; i++)
        eps += gen->sets[i].n;
    size_t n_hash = t->hash.slots ? (size_t)t->hash.mask + 1 : 0;
    size_t seg_bytes = 0;
    for (uint32_t i = 0; i < t->n_nodes; i++)
        seg_bytes += t->nodes[i].seg_len;
    struct {
        const char *what;
        size_t n, size;
    } rows[] = {
        {"actions", t->n_actions, sizeof(struct sv_route_action)},
        {"entries (in per-node lists)", t->n_lists, sizeof(struct sv_route_entry)},
        {"condition records (method/header/query/regex)", t->n_conds,
         sizeof(struct sv_route_entry_cond)},
        {"trie nodes", t->n_nodes, sizeof(struct sv_route_node)},
        {"trie segment bytes (without bucket names)", seg_bytes, 1},
        {"buckets", t->n_buckets, sizeof(struct sv_route_bucket)},
        {"hash slots (buckets+sets)", n_hash, sizeof(struct sv_route_hslot)},
        {"set names", t->n_sets, sizeof(struct sv_str)},
        {"endpoints", eps, sizeof(struct sv_route_endpoint)},
        {"endpoint sets", t->n_sets, sizeof(struct sv_route_epset)},
    };
    printf("| %d routes | count | bytes | bytes/route |\n|---|---|---|---|\n", routes);
    size_t sum = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t b = rows[i].n * rows[i].size;
        sum += b;
        printf("| %s (%zu B each) | %zu | %zu | %.0f |\n", rows[i].what, rows[i].size, rows[i].n,
               b, (double)b / routes);
    }
    printf("| sum of the arrays above | | %zu | %.0f |\n", sum, (double)sum / routes);
    printf("| table arena (malloc'd blocks; the actions array is separate) | | %zu | %.0f |\n",
           t->arena.total, (double)t->arena.total / routes);
    printf("| generation arena (endpoints) | | %zu | %.0f |\n", gen->arena.total,
           (double)gen->arena.total / routes);
    printf("| heap growth (as the main table reports) | | %zu | %.0f |\n", heap,
           (double)heap / routes);
    sv_generation_free_unpublished(gen);
    sv_store_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    sv_log_set_level(SV_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "callgrind") == 0)
        return callgrind_mode(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "build") == 0)
        return build_mode(atoi(argv[2]), atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "layout") == 0)
        return layout_mode(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "incremental") == 0) {
        /* the incremental rows alone, for N routes (callgrind: --toggle-collect=sv_translate_routes) */
        int n = atoi(argv[2]);
        incremental_table(&n, 1);
        return 0;
    }
    static const int sizes[] = {10, 1000, 10000};
    /* CONTROL_BENCH_LATENCY_ONLY=1: the file write -> published part alone */
    size_t n_sizes = getenv("CONTROL_BENCH_LATENCY_ONLY") ? 0 : sizeof(sizes) / sizeof(sizes[0]);
    printf("| HTTPRoutes (x%d rules) | endpoints in generation | translate+build (ms, median of 3) |"
           " same, thread CPU ms |"
           " generation bytes/route | lookups/s (1 core), hosts random over all routes |"
           " lookups/s, %d hot hosts |\n|---|---|---|---|---|---|---|\n",
           RULES, HOT);
    for (size_t k = 0; k < n_sizes; k++) {
        int routes = sizes[k];
        struct sv_store *s = make_store(routes);
        uint64_t t[3], c[3];
        size_t mem = 0, endpoints = 0;
        double lps = 0, lps_hot = 0;
        for (int rep = 0; rep < 3; rep++) {
            struct sv_generation *gen;
            struct sv_status *st;
            char err[256];
            malloc_trim(0);
            size_t before = heap_in_use();
            uint64_t t0 = sv_now_ns(), c0 = cpu_ns();
            if (sv_translate(s, NULL, &gen, &st, err, sizeof(err)) != 0) {
                fprintf(stderr, "translate: %s\n", err);
                return 1;
            }
            t[rep] = sv_now_ns() - t0;
            c[rep] = cpu_ns() - c0;
            sv_status_free(st);
            mem = heap_in_use() - before;
            if (rep == 2) {
                for (uint32_t b = 0; b < sv_generation_n_backend_sets(gen); b++) {
                    size_t n = 0;
                    sv_generation_endpoints(gen, b, &n);
                    endpoints += n;
                }
                lps = lookups_per_sec(gen, routes, routes);
                lps_hot = lookups_per_sec(gen, routes, routes < HOT ? routes : HOT);
            }
            sv_generation_free_unpublished(gen);
        }
        qsort(t, 3, sizeof(t[0]), cmp_u64);
        qsort(c, 3, sizeof(c[0]), cmp_u64);
        printf("| %d | %zu | %.1f | %.1f | %.0f | %.2f M | %.2f M |\n", routes, endpoints,
               (double)t[1] / 1e6, (double)c[1] / 1e6, (double)mem / routes, lps / 1e6, lps_hot / 1e6);
        fflush(stdout);
        sv_store_free(s);
    }
    if (n_sizes)
        incremental_table(sizes + 1, 2);
    if (getenv("CONTROL_BENCH_NO_LATENCY"))
        return 0;
    printf("\n| latency | | |\n|---|---|---|\n");
    /* A single save after a quiet spell (the leading edge loads at once), then saves in a burst
     * (each waits for the 50 ms quiet period). */
    write_to_publish(50, 30, 600, "single save after 600 ms idle");
    write_to_publish(50, 20, 0, "saves in a burst (quiet 50 ms)");
    return 0;
}

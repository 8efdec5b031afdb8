/* serval-gateway entry point: flags, wiring, signals, and the control-thread loop.
 *
 * Durations (--header-timeout, --idle-timeout, --upstream-timeout) take a number with an
 * optional unit: "500ms", "2s", "1m"; a bare number means seconds. --drain-delay and
 * --shutdown-timeout take the same forms.
 *
 * Signals: SIGTERM/SIGINT start a graceful shutdown (not ready → wait --drain-delay → listeners
 * closed, idle connections closed → in-flight requests finish until --shutdown-timeout → exit 0).
 * SIGHUP in quick mode rebuilds the routes from the flags and publishes them as a new
 * generation (same routing, new generation id). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serval/admin/admin.h"
#include "serval/admin/prom.h"
#include "serval/base/assert.h"
#include "serval/base/limits.h"
#include "serval/base/log.h"
#include "serval/base/str.h"
#include "serval/base/time.h"
#include "serval/control/folder.h"
#include "serval/control/k8s.h"
#include "serval/dataplane/dataplane.h"
#include "serval/dataplane/stats.h"
#include "serval/routing/generation.h"
#include "serval/routing/quick.h"
#include "serval/routing/table.h"
#include "serval/tls/tls.h"

#define MAX_FLAG_VALUES 64

struct opts {
    const char *listens[MAX_FLAG_VALUES];
    size_t n_listens;
    const char *routes[MAX_FLAG_VALUES];
    size_t n_routes;
    char *listen_bufs[MAX_FLAG_VALUES];
    const char *bind_addr;
    const char *address_pool;
    const char *admin;
    const char *config_dir;
    const char *kubeconfig;
    const char *controller_name;
    bool in_cluster;
    bool insecure_tls;
    uint64_t drain_delay_ms;
    uint64_t shutdown_timeout_ms;
    uint64_t republish_hz; /* hidden test flag: republish the quick-mode generation this often */
    struct sv_dp_config dp;
};

static const char usage_text[] =
    "usage: serval-gateway --config-dir DIR | --kubeconfig FILE | --in-cluster\n"
    "                      [--listen ADDR:PORT --route [HOST]/PREFIX=IP:PORT[,IP:PORT...]]\n"
    "                      [--bind ADDR] [--workers N] [--admin ADDR:PORT] [--controller-name NAME]\n"
    "                      [--gateway-address-pool CIDR]\n"
    "                      [--drain-delay DURATION] [--shutdown-timeout DURATION]\n"
    "                      [--log-level debug|info|warn|error] [--max-conns N]\n"
    "                      [--max-header-size BYTES] [--recv-buffers N]\n"
    "                      [--header-timeout DURATION]\n"
    "                      [--idle-timeout DURATION] [--upstream-timeout DURATION]\n"
    "                      [--insecure-skip-tls-verify]\n"
    "  --listen/--route are quick mode (repeatable; longest prefix wins; round robin).\n"
    "  --listen tls-passthrough:ADDR:PORT relays TLS untouched, routed by SNI as HOST.\n"
    "  DURATION is a number with an optional unit ms, s or m (bare number = seconds).\n"
    "  --max-conns is per worker. SIGHUP in quick mode republishes the routes.\n"
    "  --recv-buffers: provided receive buffers per worker (power of two, 16..32768, default\n"
    "  1024 of 16 KiB); fewer buffers cap memory, and ENOBUFS then pauses receives.\n"
    "  --gateway-address-pool gives every Gateway its own IPv4 address from CIDR (spec.addresses\n"
    "  inside it are honoured) instead of --bind for all; status.addresses reports it.\n";

static void usage_exit(const char *flag, const char *why)
{
    if (flag)
        fprintf(stderr, "serval-gateway: %s: %s\n", flag, why);
    fputs(usage_text, stderr);
    exit(2);
}

/* Parse DURATION into milliseconds. Returns 0 or -1. */
static int parse_duration(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -1;
    uint64_t mul;
    if (*end == 0 || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else
        return -1;
    if (v > UINT32_MAX / mul)
        return -1;
    *ms = v * mul;
    return 0;
}

static uint64_t parse_uint(const char *flag, const char *s, uint64_t min, uint64_t max)
{
    uint64_t v;
    if (sv_str_to_u64(sv_str_cstr(s), max, &v) != 0 || v < min) {
        char why[128];
        snprintf(why, sizeof(why), "\"%s\" is not a number in %llu..%llu", s,
                 (unsigned long long)min, (unsigned long long)max);
        usage_exit(flag, why);
    }
    return v;
}

static uint64_t parse_dur_flag(const char *flag, const char *s)
{
    uint64_t ms;
    if (parse_duration(s, &ms) != 0) {
        char why[128];
        snprintf(why, sizeof(why), "\"%s\" is not a duration (e.g. 500ms, 5s, 1m)", s);
        usage_exit(flag, why);
    }
    return ms;
}

enum {
    O_LISTEN = 256, O_ROUTE, O_WORKERS, O_BIND, O_ADDRESS_POOL, O_ADMIN, O_LOG_LEVEL, O_DRAIN_DELAY,
    O_SHUTDOWN_TIMEOUT, O_MAX_CONNS, O_MAX_HEADER, O_HEADER_TIMEOUT, O_IDLE_TIMEOUT,
    O_UPSTREAM_TIMEOUT, O_CONFIG_DIR, O_KUBECONFIG, O_IN_CLUSTER, O_CONTROLLER, O_HELP,
    O_TEST_REPUBLISH, O_INSECURE_TLS, O_RECV_BUFFERS,
};

/* "A.B.C.D/P" with 8 <= P <= 32 (what the translator accepts for --gateway-address-pool). */
static bool valid_cidr4(const char *s)
{
    const char *slash = strchr(s, '/');
    char ip[INET_ADDRSTRLEN];
    if (!slash || (size_t)(slash - s) >= sizeof(ip))
        return false;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    struct in_addr a;
    char *end;
    long p = strtol(slash + 1, &end, 10);
    return inet_pton(AF_INET, ip, &a) == 1 && end != slash + 1 && *end == '\0' && p >= 8 &&
           p <= 32;
}

static void parse_flags(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"route", required_argument, 0, O_ROUTE},
        {"workers", required_argument, 0, O_WORKERS},
        {"bind", required_argument, 0, O_BIND},
        {"gateway-address-pool", required_argument, 0, O_ADDRESS_POOL},
        {"admin", required_argument, 0, O_ADMIN},
        {"log-level", required_argument, 0, O_LOG_LEVEL},
        {"drain-delay", required_argument, 0, O_DRAIN_DELAY},
        {"shutdown-timeout", required_argument, 0, O_SHUTDOWN_TIMEOUT},
        {"max-conns", required_argument, 0, O_MAX_CONNS},
        {"max-header-size", required_argument, 0, O_MAX_HEADER},
        {"header-timeout", required_argument, 0, O_HEADER_TIMEOUT},
        {"idle-timeout", required_argument, 0, O_IDLE_TIMEOUT},
        {"upstream-timeout", required_argument, 0, O_UPSTREAM_TIMEOUT},
        {"config-dir", required_argument, 0, O_CONFIG_DIR},
        {"kubeconfig", required_argument, 0, O_KUBECONFIG},
        {"in-cluster", no_argument, 0, O_IN_CLUSTER},
        {"controller-name", required_argument, 0, O_CONTROLLER},
        {"help", no_argument, 0, O_HELP},
        {"test-republish-hz", required_argument, 0, O_TEST_REPUBLISH},
        {"insecure-skip-tls-verify", no_argument, 0, O_INSECURE_TLS},
        {"recv-buffers", required_argument, 0, O_RECV_BUFFERS},
        {0, 0, 0, 0},
    };
    for (size_t i = 0; longopts[i].name; i++)
        SV_ASSERT(longopts[i].val == O_LISTEN + (int)i); /* flag names are found by index */
    opterr = 0;
    for (;;) {
        int idx = 0;
        int ch = getopt_long(argc, argv, ":", longopts, &idx);
        if (ch == -1)
            break;
        const char *flag = NULL;
        char fname[64];
        if (ch >= O_LISTEN && ch <= O_RECV_BUFFERS) { /* longopts[] is in enum order */
            snprintf(fname, sizeof(fname), "--%s", longopts[ch - O_LISTEN].name);
            flag = fname;
        }
        switch (ch) {
        case O_LISTEN:
            if (o->n_listens == MAX_FLAG_VALUES)
                usage_exit(flag, "given too many times");
            o->listens[o->n_listens++] = optarg;
            break;
        case O_ROUTE:
            if (o->n_routes == MAX_FLAG_VALUES)
                usage_exit(flag, "given too many times");
            o->routes[o->n_routes++] = optarg;
            break;
        case O_WORKERS:
            o->dp.workers = (unsigned)parse_uint(flag, optarg, 1, SV_MAX_WORKERS);
            break;
        case O_BIND:
            o->bind_addr = optarg;
            break;
        case O_ADDRESS_POOL:
            if (!valid_cidr4(optarg))
                usage_exit(flag, "expected an IPv4 CIDR A.B.C.D/P with 8 <= P <= 32");
            o->address_pool = optarg;
            break;
        case O_ADMIN:
            o->admin = optarg;
            break;
        case O_LOG_LEVEL: {
            enum sv_log_level lv;
            if (sv_log_parse_level(optarg, &lv) != 0)
                usage_exit(flag, "expected debug, info, warn, error or off");
            sv_log_set_level(lv);
            break;
        }
        case O_DRAIN_DELAY:
            o->drain_delay_ms = parse_dur_flag(flag, optarg);
            break;
        case O_SHUTDOWN_TIMEOUT:
            o->shutdown_timeout_ms = parse_dur_flag(flag, optarg);
            break;
        case O_MAX_CONNS:
            o->dp.max_conns = (uint32_t)parse_uint(flag, optarg, 1, 1u << 20);
            break;
        case O_MAX_HEADER:
            o->dp.max_header_size = (uint32_t)parse_uint(flag, optarg, 1024, 1u << 20);
            break;
        case O_RECV_BUFFERS:
            o->dp.buf_count = (uint32_t)parse_uint(flag, optarg, 16, 32768);
            if (o->dp.buf_count & (o->dp.buf_count - 1))
                usage_exit(flag, "must be a power of two");
            break;
        case O_HEADER_TIMEOUT:
            o->dp.header_timeout_ms = (uint32_t)parse_dur_flag(flag, optarg);
            break;
        case O_IDLE_TIMEOUT:
            o->dp.idle_timeout_ms = (uint32_t)parse_dur_flag(flag, optarg);
            break;
        case O_UPSTREAM_TIMEOUT:
            o->dp.upstream_timeout_ms = (uint32_t)parse_dur_flag(flag, optarg);
            break;
        case O_CONFIG_DIR:
            o->config_dir = optarg;
            break;
        case O_KUBECONFIG:
            o->kubeconfig = optarg;
            break;
        case O_IN_CLUSTER:
            o->in_cluster = true;
            break;
        case O_CONTROLLER:
            o->controller_name = optarg;
            break;
        case O_TEST_REPUBLISH:
            o->republish_hz = parse_uint(flag, optarg, 1, 100000);
            break;
        case O_INSECURE_TLS:
            o->insecure_tls = true;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(0);
        case ':':
            usage_exit(argv[optind - 1], "needs a value");
            break;
        default:
            usage_exit(argv[optind - 1], "unknown flag");
        }
    }
    if (optind < argc)
        usage_exit(argv[optind], "unexpected argument");
    if (o->dp.header_timeout_ms == 0 || o->dp.idle_timeout_ms == 0 || o->dp.upstream_timeout_ms == 0)
        usage_exit("--header-timeout/--idle-timeout/--upstream-timeout", "must be > 0");
    if (o->n_routes && !o->n_listens)
        usage_exit("--route", "needs at least one --listen");
    if (o->n_listens && !o->n_routes)
        usage_exit("--listen", "needs at least one --route");
    if (!o->n_listens && !o->config_dir && !o->kubeconfig && !o->in_cluster)
        usage_exit(NULL, "give --config-dir, --kubeconfig, --in-cluster or --listen/--route");
    /* "--listen :8080" or "--listen 8080" listens on --bind (default 0.0.0.0). */
    for (size_t i = 0; i < o->n_listens; i++) {
        const char *l = o->listens[i];
        const char *port = NULL;
        if (l[0] == ':')
            port = l + 1;
        else if (strspn(l, "0123456789") == strlen(l))
            port = l;
        if (port) {
            const char *addr = o->bind_addr ? o->bind_addr : "0.0.0.0";
            size_t n = strlen(addr) + strlen(port) + 4;
            o->listen_bufs[i] = malloc(n);
            if (!o->listen_bufs[i])
                exit(1);
            snprintf(o->listen_bufs[i], n, strchr(addr, ':') ? "[%s]:%s" : "%s:%s", addr, port);
            o->listens[i] = o->listen_bufs[i];
        }
    }
}

static struct sv_generation *build_quick(const struct opts *o, bool fatal)
{
    char err[512];
    struct sv_generation *g =
        sv_quick_build(o->listens, o->n_listens, o->routes, o->n_routes, err, sizeof(err));
    if (!g) {
        if (fatal) {
            fprintf(stderr, "serval-gateway: %s\n", err);
            fputs(usage_text, stderr);
            exit(2);
        }
        sv_error("main", "quick mode rebuild failed: %s", err);
    }
    return g;
}

/* ---- admin endpoints (admin thread) ------------------------------------------------------- */

struct admin_state {
    struct sv_dp *dp;
    struct sv_k8s *k8s; /* NULL unless --kubeconfig/--in-cluster */
    atomic_bool shutting_down;
    _Atomic uint64_t published;
    /* TLS certificates of the current generation (control thread writes, admin thread reads) */
    _Atomic uint64_t tls_certs, tls_certs_expired;
    _Atomic int64_t tls_expiry_min; /* earliest notAfter, unix seconds; 0 = no certificate */
};

/* Certificate facts of <gen>'s HTTPS binds for /metrics (control thread, once per loop). */
static void tls_snapshot(struct admin_state *st, const struct sv_generation *gen)
{
    uint64_t n = 0, expired = 0;
    int64_t min = 0, now = (int64_t)time(NULL);
    size_t nb = 0;
    if (gen)
        (void)sv_generation_binds(gen, &nb);
    for (size_t b = 0; b < nb; b++) {
        const struct sv_tls_server *srv = sv_generation_bind_tls(gen, (uint32_t)b);
        size_t nl = srv ? sv_tls_server_n_listeners(srv) : 0;
        for (size_t l = 0; l < nl; l++) {
            for (size_t c = 0; c < sv_tls_server_n_certs(srv, l); c++) {
                const struct sv_tls_cert_info *ci = sv_tls_server_cert(srv, l, c);
                n++;
                expired += ci->not_after <= now;
                if (min == 0 || ci->not_after < min)
                    min = ci->not_after;
            }
        }
    }
    atomic_store(&st->tls_certs, n);
    atomic_store(&st->tls_certs_expired, expired);
    atomic_store(&st->tls_expiry_min, min);
}

static int readyz_fn(void *ctx, const struct sv_admin_request *req, struct sv_admin_response *resp)
{
    (void)req;
    struct admin_state *st = ctx;
    bool ready = !atomic_load(&st->shutting_down) && sv_dp_ready(st->dp) &&
                 (!st->k8s || sv_k8s_ready(st->k8s));
    resp->status = ready ? 200 : 503;
    return sv_admin_buf_puts(&resp->body, ready ? "ready\n" : "not ready\n");
}

static int metrics_fn(void *ctx, const struct sv_admin_request *req, struct sv_admin_response *resp)
{
    (void)req;
    struct admin_state *st = ctx;
    struct sv_admin_buf *b = &resp->body;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    unsigned n = sv_dp_workers(st->dp);
    uint64_t v[SV_MAX_WORKERS][SV_DP_STAT_COUNT];
    for (unsigned w = 0; w < n; w++)
        sv_dp_stats_snapshot(st->dp, w, v[w]);
    int rc = 0;
    for (unsigned s = 0; s < SV_DP_STAT_COUNT && rc == 0; s++) {
        char name[96];
        snprintf(name, sizeof(name), "serval_%s", sv_dp_stat_names[s]);
        rc = sv_prom_family(b, name, NULL,
                            sv_dp_stat_is_gauge((enum sv_dp_stat)s) ? SV_PROM_GAUGE : SV_PROM_COUNTER);
        for (unsigned w = 0; w < n && rc == 0; w++) {
            char wid[16];
            snprintf(wid, sizeof(wid), "%u", w);
            struct sv_prom_label l = {"worker", wid};
            rc = sv_prom_u64(b, name, &l, 1, v[w][s]);
        }
    }
    if (rc == 0)
        rc = sv_prom_single(b, "serval_generations_published_total", NULL, SV_PROM_COUNTER,
                            (double)atomic_load(&st->published));
    if (rc == 0)
        rc = sv_prom_single(b, "serval_draining", NULL, SV_PROM_GAUGE,
                            atomic_load(&st->shutting_down) ? 1 : 0);
    if (rc == 0)
        rc = sv_prom_single(b, "serval_tls_certificates", "certificates served on HTTPS binds",
                            SV_PROM_GAUGE, (double)atomic_load(&st->tls_certs));
    if (rc == 0)
        rc = sv_prom_single(b, "serval_tls_certificates_expired",
                            "served certificates past their notAfter", SV_PROM_GAUGE,
                            (double)atomic_load(&st->tls_certs_expired));
    if (rc == 0)
        rc = sv_prom_single(b, "serval_tls_certificate_expiry_min_timestamp_seconds",
                            "earliest notAfter of the served certificates (0 = none)",
                            SV_PROM_GAUGE, (double)atomic_load(&st->tls_expiry_min));
    if (rc == 0) {
        const struct sv_tls_ticket_keys *k = sv_tls_default_ticket_keys();
        rc = sv_prom_single(b, "serval_tls_ticket_key_rotations_total", NULL, SV_PROM_COUNTER,
                            k ? (double)sv_tls_ticket_keys_rotations(k) : 0);
    }
    return rc;
}

/* Answer with a malloc'd JSON document (taken over and freed here); NULL is out of memory. */
static int json_answer(struct sv_admin_response *resp, char *json)
{
    if (!json)
        return -ENOMEM;
    resp->content_type = "application/json";
    int rc = sv_admin_buf_puts(&resp->body, json);
    if (rc == 0)
        rc = sv_admin_buf_puts(&resp->body, "\n");
    free(json);
    return rc;
}

/* GET /config (folder mode): provider state, last error and the status the translator computed. */
static int config_fn(void *ctx, const struct sv_admin_request *req, struct sv_admin_response *resp)
{
    (void)req;
    return json_answer(resp, sv_folder_config_json(ctx));
}

/* GET /config with the Kubernetes provider. */
static int k8s_config_fn(void *ctx, const struct sv_admin_request *req,
                         struct sv_admin_response *resp)
{
    (void)req;
    return json_answer(resp, sv_k8s_config_json(ctx));
}

static uint64_t ms_since(uint64_t t0)
{
    return sv_now_ms() - t0;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    sv_dp_config_defaults(&o.dp);
    o.admin = "127.0.0.1:9901";
    o.drain_delay_ms = 0;
    o.shutdown_timeout_ms = 30000;
    parse_flags(argc, argv, &o);
    if (o.dp.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.dp.workers = n < 1 ? 1 : (n > SV_MAX_WORKERS ? SV_MAX_WORKERS : (unsigned)n);
    }
    if (o.config_dir && o.n_listens) {
        fprintf(stderr, "serval-gateway: --config-dir and --listen/--route are exclusive\n");
        return 2;
    }
    if ((o.kubeconfig || o.in_cluster) && (o.config_dir || o.n_listens)) {
        fprintf(stderr, "serval-gateway: --kubeconfig/--in-cluster, --config-dir and "
                        "--listen/--route are exclusive\n");
        return 2;
    }
    if (o.kubeconfig && o.in_cluster) {
        fprintf(stderr, "serval-gateway: give either --kubeconfig or --in-cluster\n");
        return 2;
    }

    char msg[1024];
    int rc = sv_dp_check_io(msg, sizeof(msg));
    if (rc < 0) {
        fprintf(stderr, "serval-gateway: %s\n", msg);
        return 1;
    }

    struct sv_generation_domain *dom = sv_generation_domain_new(o.dp.workers);
    if (!dom) {
        fprintf(stderr, "serval-gateway: out of memory\n");
        return 1;
    }
    /* --config-dir: the folder controller publishes the first generation (an empty one if the
     * folder is broken; /config shows why). Otherwise quick mode. */
    struct sv_folder *folder = NULL;
    struct sv_k8s *k8s = NULL;
    if (o.kubeconfig || o.in_cluster) {
        struct sv_k8s_opts ko = {.kubeconfig = o.kubeconfig, .in_cluster = o.in_cluster,
                                 .insecure_skip_tls_verify = o.insecure_tls};
        ko.translate.controller_name = o.controller_name;
        ko.translate.bind_addr = o.bind_addr;
        ko.translate.address_pool = o.address_pool;
        rc = sv_k8s_open(&ko, dom, &k8s, msg, sizeof(msg));
        if (rc < 0) {
            fprintf(stderr, "serval-gateway: %s\n", msg);
            sv_generation_domain_free(dom);
            return rc == -ENOMEM ? 1 : 2;
        }
    } else if (o.config_dir) {
        struct sv_folder_opts fo = {.dir = o.config_dir};
        fo.translate.controller_name = o.controller_name;
        fo.translate.bind_addr = o.bind_addr;
        fo.translate.address_pool = o.address_pool;
        rc = sv_folder_open(&fo, dom, &folder, msg, sizeof(msg));
        if (rc < 0) {
            fprintf(stderr, "serval-gateway: %s\n", msg);
            sv_generation_domain_free(dom);
            return rc == -ENOMEM ? 1 : 2;
        }
    } else {
        struct sv_generation *g = build_quick(&o, true);
        sv_generation_publish(dom, g);
    }

    /* Signals are handled by this (control) thread only: block them before workers start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    o.dp.domain = dom;
    struct sv_dp *dp = NULL;
    rc = sv_dp_start(&o.dp, &dp);
    if (rc < 0) {
        fprintf(stderr, "serval-gateway: cannot start workers: %s\n", strerror(-rc));
        sv_generation_domain_free(dom);
        return 1;
    }
    static struct admin_state ast;
    ast.dp = dp;
    ast.k8s = k8s;
    atomic_store(&ast.published, 1);
    struct sv_admin *admin = NULL;
    struct sv_admin_config acfg = SV_ADMIN_CONFIG_DEFAULT;
    acfg.addr = o.admin;
    rc = sv_admin_create(&admin, &acfg);
    if (rc == 0) {
        sv_admin_register(admin, "/readyz", readyz_fn, &ast);
        sv_admin_register(admin, "/metrics", metrics_fn, &ast);
        if (folder) {
            sv_admin_register(admin, "/config", config_fn, folder);
            sv_admin_register(admin, "/status", config_fn, folder);
        }
        if (k8s) {
            sv_admin_register(admin, "/config", k8s_config_fn, k8s);
            sv_admin_register(admin, "/status", k8s_config_fn, k8s);
        }
        rc = sv_admin_start(admin);
    }
    if (rc < 0) {
        fprintf(stderr, "serval-gateway: --admin %s: %s\n", o.admin, strerror(-rc));
        sv_admin_destroy(admin);
        sv_dp_stop(dp);
        sv_dp_free(dp);
        sv_generation_domain_free(dom);
        return 2;
    }
    sv_info("main", "serving with %u workers (max %u connections each); admin %s", o.dp.workers,
            o.dp.max_conns, o.admin);
    /* Hook: the --config-dir / Kubernetes providers plug in here; they publish generations
     * through <dom> from this control thread (the loop below reclaims retired ones). */

    uint64_t published = 1;
    uint64_t period_ms = o.republish_hz ? 0 : 50;
    struct timespec tick = {0, (long)(period_ms ? period_ms * 1000000ull : 1000000000ull / o.republish_hz)};
    int phase = 0; /* 0 run, 1 waiting drain delay, 2 draining */
    uint64_t t_signal = 0, t_drain = 0;
    for (;;) {
        if (folder && phase == 0) {
            /* Folder events: wait on the provider's fd for at most one tick (or until its
             * debounce deadline), then look for signals without blocking. */
            struct pollfd pfd = {.fd = sv_folder_fd(folder), .events = POLLIN};
            int wait_ms = (int)(tick.tv_sec * 1000 + tick.tv_nsec / 1000000);
            int due = sv_folder_timeout_ms(folder);
            if (due >= 0 && due < wait_ms)
                wait_ms = due;
            poll(&pfd, 1, wait_ms);
            if (sv_folder_process(folder) == 1)
                atomic_store(&ast.published, ++published);
        }
        if (k8s && phase == 0) {
            /* Kubernetes provider: its connections (watches, requests) and timers. */
            struct pollfd pfd[32];
            int n = sv_k8s_pollfds(k8s, pfd, 32);
            int wait_ms = (int)(tick.tv_sec * 1000 + tick.tv_nsec / 1000000);
            int due = sv_k8s_timeout_ms(k8s);
            if (due >= 0 && due < wait_ms)
                wait_ms = due;
            poll(pfd, (nfds_t)n, wait_ms);
            if (sv_k8s_process(k8s) == 1)
                atomic_store(&ast.published, ++published);
        }
        static const struct timespec no_wait = {0, 0};
        int sig = sigtimedwait(&sigs, NULL, (folder || k8s) && phase == 0 ? &no_wait : &tick);
        if (sig == SIGHUP && phase == 0 && !folder && !k8s) {
            struct sv_generation *ng = build_quick(&o, false);
            if (ng) {
                sv_generation_publish(dom, ng);
                atomic_store(&ast.published, ++published);
            }
        } else if ((sig == SIGTERM || sig == SIGINT) && phase == 0) {
            sv_info("main", "signal %d: shutting down (drain delay %llu ms, timeout %llu ms)", sig,
                    (unsigned long long)o.drain_delay_ms,
                    (unsigned long long)o.shutdown_timeout_ms);
            phase = 1;
            atomic_store(&ast.shutting_down, true);
            sv_k8s_shutdown(k8s); /* release the Lease now: another replica takes over */
            t_signal = sv_now_ms();
        } else if ((sig == SIGTERM || sig == SIGINT) && phase > 0) {
            sv_warn("main", "second signal: stopping now");
            break;
        }
        if (o.republish_hz && phase == 0 && !folder && !k8s) {
            struct sv_generation *ng = build_quick(&o, false);
            if (ng) {
                sv_generation_publish(dom, ng);
                atomic_store(&ast.published, ++published);
            }
        }
        sv_generation_reclaim(dom);
        tls_snapshot(&ast, sv_generation_current(dom));
        (void)sv_tls_default_ticket_keys_tick(); /* rotates the session-ticket keys hourly */
        if (phase == 1 && ms_since(t_signal) >= o.drain_delay_ms) {
            sv_dp_drain(dp);
            phase = 2;
            t_drain = sv_now_ms();
        }
        if (phase == 2 &&
            (sv_dp_active_conns(dp) == 0 || ms_since(t_drain) >= o.shutdown_timeout_ms))
            break;
    }
    uint64_t left = sv_dp_active_conns(dp);
    sv_admin_stop(admin);
    sv_admin_destroy(admin);
    sv_dp_stop(dp);
    sv_dp_free(dp);
    sv_generation_reclaim(dom);
    sv_generation_domain_free(dom);
    sv_folder_close(folder);
    sv_k8s_close(k8s); /* releases the Lease if we lead */
    sv_info("main", "stopped (%llu generations published, %llu connections cut at the timeout)",
            (unsigned long long)published, (unsigned long long)left);
    for (size_t i = 0; i < o.n_listens; i++)
        free(o.listen_bufs[i]);
    return 0;
}

/* Worker threads: ring set-up, the event loop, listening sockets per bind of the current
 * generation, the eventfd wake-up, drain/stop control and the per-worker counters. */

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/dp_int.h"
#include "dataplane/h2.h"
#include "dataplane/ud.h"
#include "serval/base/assert.h"
#include "serval/base/limits.h"
#include "serval/base/log.h"
#include "serval/base/time.h"
#include "serval/routing/generation.h"

#define REAP_BATCH 256u
#define TICK_MS 10u

enum { PHASE_RUN = 0, PHASE_DRAIN = 1, PHASE_STOP = 2 };

const char *const sv_dp_stat_names[SV_DP_STAT_COUNT] = {
    [SV_DP_STAT_REQUESTS] = "requests_total",
    [SV_DP_STAT_RESP_1XX] = "responses_1xx_total",
    [SV_DP_STAT_RESP_2XX] = "responses_2xx_total",
    [SV_DP_STAT_RESP_3XX] = "responses_3xx_total",
    [SV_DP_STAT_RESP_4XX] = "responses_4xx_total",
    [SV_DP_STAT_RESP_5XX] = "responses_5xx_total",
    [SV_DP_STAT_CONNS_ACCEPTED] = "connections_accepted_total",
    [SV_DP_STAT_CONNS_REFUSED] = "connections_refused_total",
    [SV_DP_STAT_CONNS_ACTIVE] = "connections_active",
    [SV_DP_STAT_UP_CONNECTS] = "upstream_connects_total",
    [SV_DP_STAT_UP_REUSES] = "upstream_reuses_total",
    [SV_DP_STAT_UP_CONNECT_ERRORS] = "upstream_connect_errors_total",
    [SV_DP_STAT_UP_RESETS] = "upstream_resets_total",
    [SV_DP_STAT_RETRIES] = "retries_total",
    [SV_DP_STAT_ERR_BAD_REQUEST] = "errors_bad_request_total",
    [SV_DP_STAT_ERR_TOO_LARGE] = "errors_header_too_large_total",
    [SV_DP_STAT_ERR_NO_ROUTE] = "errors_no_route_total",
    [SV_DP_STAT_ERR_BAD_GATEWAY] = "errors_bad_gateway_total",
    [SV_DP_STAT_ERR_UNAVAILABLE] = "errors_unavailable_total",
    [SV_DP_STAT_ERR_TIMEOUT] = "errors_upstream_timeout_total",
    [SV_DP_STAT_HEADER_TIMEOUTS] = "header_timeouts_total",
    [SV_DP_STAT_IDLE_TIMEOUTS] = "idle_timeouts_total",
    [SV_DP_STAT_ENOBUFS] = "recv_buffer_waits_total",
    [SV_DP_STAT_MIRRORS] = "mirrors_total",
    [SV_DP_STAT_MIRRORS_DROPPED] = "mirrors_dropped_total",
    [SV_DP_STAT_GENERATION] = "generation",
    [SV_DP_STAT_ROUTE_RETRIES] = "route_retries_total",
    [SV_DP_STAT_ROUTE_RETRIES_EXHAUSTED] = "route_retries_exhausted_total",
    [SV_DP_STAT_REQUEST_TIMEOUTS] = "request_timeouts_total",
    [SV_DP_STAT_TLS_HANDSHAKES] = "tls_handshakes_total",
    [SV_DP_STAT_TLS_RESUMED] = "tls_resumptions_total",
    [SV_DP_STAT_TLS_FAIL_TIMEOUT] = "tls_handshake_failures_timeout_total",
    [SV_DP_STAT_TLS_FAIL_SNI] = "tls_handshake_failures_unknown_sni_total",
    [SV_DP_STAT_TLS_FAIL_ALERT] = "tls_handshake_failures_alert_total",
    [SV_DP_STAT_TLS_FAIL_PROTOCOL] = "tls_handshake_failures_protocol_total",
    [SV_DP_STAT_TLS_RECORD_ERRORS] = "tls_record_errors_total",
    [SV_DP_STAT_TLS_CLOSE_NOTIFY] = "tls_close_notify_sent_total",
    [SV_DP_STAT_H2_CONNS] = "h2_connections_total",
    [SV_DP_STAT_H2_STREAMS] = "h2_streams_total",
    [SV_DP_STAT_H2_STREAMS_REFUSED] = "h2_streams_refused_total",
    [SV_DP_STAT_H2_CONN_ERRORS] = "h2_connection_errors_total",
    [SV_DP_STAT_UP_TLS_HANDSHAKES] = "upstream_tls_handshakes_total",
    [SV_DP_STAT_UP_TLS_FAILURES] = "upstream_tls_failures_total",
};

int sv_dp_stat_is_gauge(enum sv_dp_stat s)
{
    return s == SV_DP_STAT_CONNS_ACTIVE || s == SV_DP_STAT_GENERATION;
}

void sv_dp_config_defaults(struct sv_dp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conns = 1024;
    cfg->max_header_size = SV_DEFAULT_MAX_HEADER_BYTES;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->upstream_timeout_ms = 30000;
    cfg->upstream_idle_timeout_ms = 30000;
    cfg->buf_count = 1024;
    cfg->buf_size = 16384;
    cfg->max_bufs_per_dir = 8;
}

int sv_dp_check_io(char *msg, size_t len)
{
    return sv_io_probe(msg, len);
}

/* ---- listeners ---------------------------------------------------------------------------- */

static int open_listener(struct sv_listener *l, const struct sv_route_bind *b)
{
    int fd = socket(b->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, &b->addr.sa, b->addrlen) < 0 || listen(fd, 4096) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->addr = b->addr;
    l->addrlen = b->addrlen;
    l->port = b->port;
    l->proto = b->proto;
    l->active = true;
    return 0;
}

static uint64_t lud(unsigned i, enum sv_op op)
{
    return sv_ud_make((uint8_t)op, i, 0);
}

static void arm_listener(struct sv_worker *w, unsigned i)
{
    struct sv_listener *l = &w->lst[i];
    if (l->active && !l->closing && !l->armed && !w->draining &&
        sv_io_accept_multishot(w->io, l->fd, lud(i, SV_OP_ACCEPT)) == 0)
        l->armed = true;
}

/* Close listener i: cancel its accept; the fd is closed when the accept is gone. */
static void close_listener(struct sv_worker *w, unsigned i)
{
    struct sv_listener *l = &w->lst[i];
    if (!l->active || l->closing)
        return;
    l->closing = true;
    if (l->armed)
        (void)sv_io_cancel_fd(w->io, l->fd, lud(i, SV_OP_LCLOSE));
    else {
        close(l->fd);
        l->active = false;
    }
}

static bool bind_eq(const struct sv_listener *l, const struct sv_route_bind *b)
{
    return l->addrlen == b->addrlen && memcmp(&l->addr, &b->addr, b->addrlen) == 0;
}

/* Open the binds of <gen> that are not open yet and close those it no longer has. */
static void sync_listeners(struct sv_worker *w, const struct sv_generation *gen)
{
    uint64_t id = sv_generation_id(gen);
    if (id == w->binds_gen_id)
        return;
    w->binds_gen_id = id;
    size_t nb = 0;
    const struct sv_route_bind *binds = sv_generation_binds(gen, &nb);
    for (unsigned i = 0; i < w->n_lst; i++) {
        struct sv_listener *l = &w->lst[i];
        if (!l->active || l->closing)
            continue;
        bool keep = false;
        for (size_t j = 0; j < nb && !keep; j++) {
            keep = bind_eq(l, &binds[j]);
            if (keep)
                l->proto = binds[j].proto;
        }
        if (!keep)
            close_listener(w, i);
    }
    for (size_t j = 0; j < nb; j++) {
        bool have = false;
        for (unsigned i = 0; i < w->n_lst && !have; i++)
            have = w->lst[i].active && !w->lst[i].closing && bind_eq(&w->lst[i], &binds[j]);
        if (have || w->draining)
            continue;
        unsigned slot = w->n_lst;
        for (unsigned i = 0; i < w->n_lst; i++)
            if (!w->lst[i].active) {
                slot = i;
                break;
            }
        if (slot == SV_MAX_LISTENERS) {
            sv_log_rl(1, SV_LOG_ERROR, "dataplane", "too many binds (max %u)", SV_MAX_LISTENERS);
            break;
        }
        int rc = open_listener(&w->lst[slot], &binds[j]);
        if (rc < 0) {
            sv_log_rl(1, SV_LOG_ERROR, "dataplane", "worker %u: cannot listen on port %u: %s",
                      w->idx, binds[j].port, strerror(-rc));
            continue;
        }
        if (slot == w->n_lst)
            w->n_lst++;
        arm_listener(w, slot);
    }
    atomic_store(&w->ready, true);
}

static void on_listener_cqe(struct sv_worker *w, const struct sv_io_cqe *e)
{
    unsigned i = sv_ud_slot(e->ud);
    if (i >= w->n_lst)
        return;
    struct sv_listener *l = &w->lst[i];
    if (sv_ud_op(e->ud) == SV_OP_LCLOSE)
        return; /* the accept's own final completion closes the fd */
    if (e->res >= 0) {
        if (l->closing || !l->active)
            close(e->res);
        else
            sv_conn_accepted(w, e->res, i);
    } else if (e->res != -ECANCELED) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "accept: %s", strerror(-e->res));
    }
    if (!e->more) {
        l->armed = false;
        if (l->closing) {
            close(l->fd);
            l->active = false;
            l->closing = false;
        } else {
            arm_listener(w, i);
        }
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void arm_eventfd(struct sv_worker *w)
{
    (void)sv_io_read(w->io, w->efd, &w->efd_buf, sizeof(w->efd_buf), sv_ud_make(SV_OP_EVENTFD, 0, 0));
}

static void pin(struct sv_worker *w)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        sv_warn("dataplane", "worker %u: cannot pin to CPU %d", w->idx, w->cpu);
}

static void *worker_main(void *arg)
{
    struct sv_worker *w = arg;
    struct sv_dp *dp = w->dp;
    pin(w);
    struct sv_io_config ioc = {
        .sq_entries = 1024,
        .cq_entries = 8192,
        .buf_count = dp->cfg.buf_count,
        .buf_size = dp->cfg.buf_size,
    };
    int rc = sv_io_create(&ioc, &w->io);
    if (rc == 0)
        rc = sv_conn_init_worker(w);
    if (rc == 0)
        rc = sv_generation_reader_register(dp->cfg.domain, w->idx);
    atomic_store(&w->setup_rc, rc < 0 ? rc : 1);
    if (rc < 0)
        return NULL;
    w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->idx << 32) ^ sv_now_ns();
    w->now_ms = sv_now_ms();
    sv_wheel_init(&w->wheel, w->now_ms, TICK_MS);
    arm_eventfd(w);
    struct sv_io_cqe *cqes = calloc(REAP_BATCH, sizeof(*cqes));
    SV_ASSERT(cqes);
    bool stopping = false;
    uint64_t stop_deadline = 0;
    for (uint64_t iter = 0;; iter++) {
        const struct sv_generation *gen = sv_generation_acquire(dp->cfg.domain, w->idx);
        w->gen = gen;
        if (gen) {
            sync_listeners(w, gen);
            sv_stat_set(w, SV_DP_STAT_GENERATION, sv_generation_id(gen));
        }
        unsigned n = sv_io_reap(w->io, cqes, REAP_BATCH);
        w->now_ms = sv_now_ms();
        for (unsigned i = 0; i < n; i++) {
            const struct sv_io_cqe *e = &cqes[i];
            switch (sv_ud_op(e->ud)) {
            case SV_OP_ACCEPT:
            case SV_OP_LCLOSE:
                on_listener_cqe(w, e);
                break;
            case SV_OP_EVENTFD:
                if (!stopping)
                    arm_eventfd(w);
                break;
            default:
                sv_conn_dispatch(w, e);
                break;
            }
        }
        sv_conn_retry_starved(w);
        sv_wheel_advance(&w->wheel, w->now_ms, sv_conn_timer_fired, w);
        int phase = atomic_load_explicit(&dp->phase, memory_order_relaxed);
        if (phase >= PHASE_DRAIN && !w->draining) {
            w->draining = true;
            for (unsigned i = 0; i < w->n_lst; i++)
                close_listener(w, i);
            sv_conn_drain(w);
        }
        if (phase >= PHASE_STOP && !stopping) {
            stopping = true;
            stop_deadline = w->now_ms + 2000;
            sv_conn_close_all(w);
        }
        sv_h2_run(w); /* HTTP/2 work queued by this iteration, while w->gen is held */
        w->gen = NULL;
        sv_generation_quiescent(dp->cfg.domain, w->idx);
        if (stopping && (sv_conn_pending(w) == 0 || w->now_ms > stop_deadline))
            break;
        /* One io_uring_enter per iteration: submit what was queued and wait for at least one
         * completion (returns at once when some are ready), offline for the generation domain
         * while it may block. */
        sv_generation_offline(dp->cfg.domain, w->idx);
        uint64_t wait_ms = stopping ? TICK_MS : sv_wheel_next_ms(&w->wheel, sv_now_ms(), 1000);
        uint64_t wait_ns = (wait_ms ? wait_ms : 1) * 1000000ull;
        rc = sv_io_submit(w->io, !sv_h2_pending(w), wait_ns); /* h2 work left: no wait */
        sv_generation_online(dp->cfg.domain, w->idx);
        if (rc < 0)
            sv_log_rl(1, SV_LOG_ERROR, "dataplane", "io_uring_enter: %s", strerror(-rc));
    }
    free(cqes);
    for (unsigned i = 0; i < w->n_lst; i++)
        if (w->lst[i].active)
            close(w->lst[i].fd);
    sv_generation_reader_unregister(dp->cfg.domain, w->idx);
    sv_io_destroy(w->io);
    w->io = NULL;
    sv_conn_fini_worker(w);
    return NULL;
}

/* ---- control ------------------------------------------------------------------------------ */

int sv_dp_start(const struct sv_dp_config *cfg, struct sv_dp **out)
{
    SV_ASSERT(cfg->domain);
    if (cfg->workers == 0 || cfg->workers > SV_MAX_WORKERS || cfg->max_conns == 0 ||
        cfg->max_bufs_per_dir < 2 || cfg->max_bufs_per_dir > SV_SEGQ_CAP / 2)
        return -EINVAL;
    struct sv_dp *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return -ENOMEM;
    dp->cfg = *cfg;
    dp->n = cfg->workers;
    dp->w = aligned_alloc(SV_CACHELINE, sizeof(struct sv_worker) * dp->n);
    if (!dp->w) {
        free(dp);
        return -ENOMEM;
    }
    memset(dp->w, 0, sizeof(struct sv_worker) * dp->n);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    sv_generation_domain_set_wake(cfg->domain, sv_dp_wake, dp);
    int rc = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < dp->n; i++) {
        struct sv_worker *w = &dp->w[i];
        w->idx = i;
        w->cpu = (int)(i % (unsigned)ncpu);
        w->dp = dp;
        w->efd = eventfd(0, EFD_CLOEXEC);
        if (w->efd < 0) {
            rc = -errno;
            break;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            rc = -EAGAIN;
            close(w->efd);
            w->efd = -1;
            break;
        }
        started++;
        int s;
        while ((s = atomic_load(&w->setup_rc)) == 0)
            usleep(1000);
        if (s < 0) {
            sv_error("dataplane", "worker %u set-up failed: %s", i, strerror(-s));
            rc = s;
            started--;
            pthread_join(w->thread, NULL);
            close(w->efd);
            w->efd = -1;
            break;
        }
    }
    if (rc < 0) {
        dp->n = started;
        sv_dp_stop(dp);
        sv_dp_free(dp);
        return rc;
    }
    *out = dp;
    return 0;
}

void sv_dp_wake(void *arg)
{
    struct sv_dp *dp = arg;
    uint64_t one = 1;
    for (unsigned i = 0; i < dp->n; i++)
        if (dp->w[i].efd >= 0 && write(dp->w[i].efd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is saturated, the worker is awake anyway */
        }
}

void sv_dp_drain(struct sv_dp *dp)
{
    int expected = PHASE_RUN;
    atomic_compare_exchange_strong(&dp->phase, &expected, PHASE_DRAIN);
    sv_dp_wake(dp);
}

void sv_dp_stop(struct sv_dp *dp)
{
    atomic_store(&dp->phase, PHASE_STOP);
    sv_dp_wake(dp);
    for (unsigned i = 0; i < dp->n; i++)
        pthread_join(dp->w[i].thread, NULL);
    sv_generation_domain_set_wake(dp->cfg.domain, NULL, NULL);
}

void sv_dp_free(struct sv_dp *dp)
{
    if (!dp)
        return;
    for (unsigned i = 0; i < dp->n; i++)
        if (dp->w[i].efd >= 0)
            close(dp->w[i].efd);
    free(dp->w);
    free(dp);
}

uint64_t sv_dp_active_conns(const struct sv_dp *dp)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < dp->n; i++)
        sum += atomic_load_explicit(&dp->w[i].stats[SV_DP_STAT_CONNS_ACTIVE], memory_order_relaxed);
    return sum;
}

bool sv_dp_ready(const struct sv_dp *dp)
{
    if (atomic_load(&dp->phase) != PHASE_RUN)
        return false;
    for (unsigned i = 0; i < dp->n; i++)
        if (!atomic_load(&dp->w[i].ready))
            return false;
    return true;
}

unsigned sv_dp_workers(const struct sv_dp *dp)
{
    return dp->n;
}

int sv_dp_stats_snapshot(const struct sv_dp *dp, unsigned w, uint64_t *out)
{
    if (w >= dp->n)
        return -EINVAL;
    for (unsigned i = 0; i < SV_DP_STAT_COUNT; i++)
        out[i] = atomic_load_explicit(&dp->w[w].stats[i], memory_order_relaxed);
    return 0;
}

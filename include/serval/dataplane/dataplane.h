/* The data plane: N pinned worker threads, each with its own io_uring, listening sockets
 * (SO_REUSEPORT, one per bind of the current routing generation), connection slab, upstream
 * connection pool, buffer ring and timer wheel. Proxies HTTP/1.1 through the routing generation
 * published in a domain (serval/routing/generation.h).
 *
 * Lifecycle (main thread): sv_dp_check_io → sv_dp_start → (publish generations at will; the
 * domain's wake callback is set to sv_dp_wake by sv_dp_start) → on SIGTERM: sv_dp_drain,
 * wait until sv_dp_active_conns() == 0 or the shutdown timeout → sv_dp_stop → sv_dp_free. */
#ifndef SERVAL_DATAPLANE_DATAPLANE_H
#define SERVAL_DATAPLANE_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sv_generation_domain;
struct sv_dp;

struct sv_dp_config {
    unsigned workers;            /* 1..SV_MAX_WORKERS; pinned to CPU (i % online CPUs) */
    uint32_t max_conns;          /* client connections per worker (new ones refused beyond) */
    uint32_t max_upstream_conns; /* upstream connections per worker (0 = max_conns) */
    uint32_t max_header_size;    /* request/response head limit (431 beyond) */
    uint32_t header_timeout_ms;  /* whole request head must arrive within this (408 + close) */
    uint32_t idle_timeout_ms;    /* keep-alive idle client connection closed after this */
    uint32_t upstream_timeout_ms;      /* response head must start within this (504) */
    uint32_t upstream_idle_timeout_ms; /* idle pooled upstream connection closed after this */
    uint32_t buf_count;          /* provided buffers per worker (power of two, <= 32768) */
    uint32_t buf_size;           /* bytes per provided buffer */
    uint32_t max_bufs_per_dir;   /* B: buffers one direction of one connection may hold */
    struct sv_generation_domain *domain; /* generations to route through (not owned) */
};

/* Defaults for every field except <domain> and <workers> (0 = one per online CPU). Any thread. */
void sv_dp_config_defaults(struct sv_dp_config *cfg);

/* Check that io_uring is usable here (ring flags, opcodes, buffer ring). Returns 0, or -errno
 * with a message in msg[len] naming the errno, kernel.io_uring_disabled and the fix. Main thread,
 * before sv_dp_start. */
int sv_dp_check_io(char *msg, size_t len);

/* Start the workers. Sets the domain's wake callback. Returns 0 and *out (owned by the caller,
 * sv_dp_free), or -errno (a worker failed to set up: message logged). Main thread. */
int sv_dp_start(const struct sv_dp_config *cfg, struct sv_dp **out);

/* Wake every worker (they re-read the current generation). Any thread; never blocks. Matches
 * sv_generation_wake_fn (arg = the struct sv_dp). */
void sv_dp_wake(void *dp);

/* Stop accepting: close listening sockets, close idle keep-alive connections, and close every
 * other connection after its current response. Any thread; asynchronous. */
void sv_dp_drain(struct sv_dp *dp);

/* Close everything and join the workers. Main thread; blocks until they exited. */
void sv_dp_stop(struct sv_dp *dp);

/* Free after sv_dp_stop. NULL is a no-op. Main thread. */
void sv_dp_free(struct sv_dp *dp);

/* Open client connections over all workers (a sum of racy snapshots). Any thread. */
uint64_t sv_dp_active_conns(const struct sv_dp *dp);

/* True once every worker has its listening sockets open for the current generation. Any thread. */
bool sv_dp_ready(const struct sv_dp *dp);

unsigned sv_dp_workers(const struct sv_dp *dp);

#endif

/* Data-plane internals shared by worker.c (loop, listeners, control) and conn.c (client
 * connections, upstream connections, proxying). Worker thread only unless noted. */
#ifndef SERVAL_DATAPLANE_DP_INT_H
#define SERVAL_DATAPLANE_DP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dataplane/slab.h"
#include "dataplane/timer.h"
#include "dataplane/uring.h"
#include "serval/base/compiler.h"
#include "serval/dataplane/dataplane.h"
#include "serval/dataplane/stats.h"
#include "serval/http/parser.h"
#include "serval/http/serialize.h"
#include "serval/routing/table.h"
#include "serval/tls/tls.h"

/* Operation codes carried in user_data (ud.h). */
enum sv_op {
    SV_OP_NONE = 0,
    SV_OP_ACCEPT,    /* slot = listener index */
    SV_OP_LCLOSE,    /* listener cancel done; slot = listener index */
    SV_OP_EVENTFD,
    SV_OP_C_RECV,    /* slot = client conn */
    SV_OP_C_SEND,
    SV_OP_C_CANCEL,
    SV_OP_U_RECV,    /* slot = upstream conn */
    SV_OP_U_SEND,
    SV_OP_U_CONNECT,
    SV_OP_U_CANCEL,
    SV_OP_U_H2SEND,  /* slot = upstream conn: HTTP/2 frames of an h2c upstream (h2_upstream.c) */
};

#define SV_SEGQ_CAP 64u  /* bound of loops over one queue per call; B must be below half */
#define SV_MAX_LISTENERS 32u
#define SV_IOV_MAX 8 /* provided buffers gathered into one send */
#define SV_MODS_MAX 64u           /* merged header modifier entries per kind */
#define SV_CORS_ORIGIN_MAX 256u   /* longest Origin a CORS filter echoes (cors.c) */
#define SV_MIRROR_BUFS 64u        /* mirrored requests in flight per worker (more are dropped) */
#define SV_MIRRORS_PER_REQ 4u     /* mirrors of one request that carry its body (more are dropped) */
#define SV_POOL_BUCKETS 256u
#define SV_RR_CURSORS 256u
#define SV_NO_SLOT UINT32_MAX

/* Received bytes not yet consumed: [off, off+len) of provided buffer bid. One per provided
 * buffer (indexed by bid; a buffer is in at most one queue), so queues never overflow: the
 * buffer ring bounds them all. */
struct sv_seg {
    uint16_t bid;
    uint16_t next;
    uint32_t off;
    uint32_t len;
};

/* FIFO of segments, linked through sv_seg.next. */
struct sv_segq {
    uint16_t head;
    uint16_t tail;
    uint32_t count;
};

/* Receive side of one socket. */
struct sv_rx {
    struct sv_segq q;
    bool armed;       /* a multishot recv is in flight */
    bool cancelling;  /* a cancel for it is in flight (backpressure pause) */
    bool paused;      /* hit B; resume at B/2 */
    bool starved;     /* stopped by ENOBUFS; on the worker's starved list */
    bool eof;         /* peer closed (or recv error) */
};

#define SV_TLS_SPARES 4u /* fully decrypted receive buffers kept per connection for plaintext */

enum sv_up_state { SV_UP_CONNECTING = 1, SV_UP_ACTIVE, SV_UP_IDLE, SV_UP_CLOSING };

struct sv_upconn {
    int fd;
    uint32_t slot;
    uint8_t state;
    bool send_busy;
    bool reused;        /* taken from the pool for the current request */
    uint16_t inflight;
    struct sv_rx rx;
    uint32_t owner;     /* client conn slot or SV_NO_SLOT */
    struct sv_route_endpoint ep;
    uint32_t hash;
    uint32_t pool_next, pool_prev; /* idle list links within the bucket (SV_NO_SLOT ends) */
    struct sv_timer timer;          /* idle timeout while pooled */
    uint16_t hold[SV_IOV_MAX];      /* buffers of a closed client the upstream send still reads */
    uint8_t hold_n;
    bool mirror;                    /* RequestMirror copy: no client, response discarded */
    bool mirror_end;                /* mirror.c: the whole request is in its ring */
    uint16_t mirror_buf;            /* its ring of request bytes (worker mirror pool) */
    uint32_t mirror_off;            /* ring: first byte not yet sent */
    uint32_t mirror_len;            /* ring: bytes queued, the send in flight included */
    uint32_t mirror_sending;        /* bytes of the send in flight */
    /* h2c upstream (h2_upstream.h): session <h2_sess>; received frames wait in h2_rawq, and
     * the buffers they came in (spares) carry the converted HTTP/1.1 bytes into rx.q */
    bool h2;
    uint32_t h2_sess;
    struct sv_segq h2_rawq;
    uint16_t h2_spare[2];
    uint8_t h2_nspare;

    /* TLS to the backend (BackendTLSPolicy; upstream_tls.c; never together with h2c): rx.q
     * holds plaintext; ciphertext waits in tls_rawq, is copied into the slot's ciphertext input
     * area (w->utls_mem), and the receive buffers it came in become spares for plaintext. Sends
     * are encrypted into the slot's output area; a send "in flight" completes once all of its
     * ciphertext is out. */
    bool tls;
    bool tls_noroom;                /* decryption stopped: no room for plaintext */
    struct sv_tls_client *tls_cli;  /* the context it was opened with (pool key; tls_c holds
                                       the reference) */
    struct sv_tls_conn tls_c;
    struct sv_segq tls_rawq;
    uint32_t tls_cin_len;
    uint32_t tls_plain;             /* plaintext bytes the ciphertext in flight carries */
    uint32_t tls_sending;           /* ciphertext bytes of the send in flight */
    uint16_t tls_spare[SV_TLS_SPARES];
    uint8_t tls_nspare;
};

enum sv_conn_state {
    SV_C_HEAD = 1,  /* reading a request head */
    SV_C_PROXY_PRE, /* request head parsed, not routed yet (or answered locally) */
    SV_C_PROXY,     /* request routed: exchanging with an upstream */
    SV_C_TUNNEL,    /* after 101: opaque bytes both ways */
    SV_C_LOCAL,     /* sending a response made here (error, redirect) */
    SV_C_LINGER,    /* final bytes sent, write side shut: discard input until EOF or timer */
    SV_C_CLOSING,   /* cancelling; freed when inflight reaches 0 */
    SV_C_H2,        /* HTTP/2 connection (h2.c), or a stream connection before its request */
};

/* What a send in flight carries (one send in flight per direction). */
/* SV_SEND_TLS: ciphertext from the connection's TLS output buffer; the plaintext it carries was
 * accounted (and its buffers recycled) when it was encrypted. */
/* SV_SEND_H2: request body of an HTTP/2 stream from its body area (h2.c). */
/* SV_SEND_H2C: HTTP/2 frames of a cleartext h2 connection from its frame output area (the
 * connection's TLS output area, unused without TLS). */
enum sv_send_kind {
    SV_SEND_NONE = 0,
    SV_SEND_BYTES,
    SV_SEND_SEG,
    SV_SEND_TLS,
    SV_SEND_H2,
    SV_SEND_H2C,
};

struct sv_sendst {
    uint8_t kind;
    uint8_t nseg;   /* SV_SEND_SEG: segments of the peer's queue the send reads */
    uint32_t len;
    struct msghdr msg;
    struct iovec iov[SV_IOV_MAX];
};

struct sv_conn {
    int fd;
    uint32_t slot;
    uint8_t state;
    uint16_t inflight;
    struct sv_rx rx;
    struct sv_timer timer;
    uint8_t timer_kind;
    union sv_route_sockaddr local; /* bind address the connection arrived on */
    uint16_t local_port;
    char xff[64];
    uint8_t xff_len;

    /* request */
    struct sv_http_parser req_p;
    struct sv_http_head req;
    uint32_t ibuf_len;          /* bytes of the head being collected in ibuf */
    enum sv_http_method method;
    uint8_t req_body;           /* enum sv_http_body_kind of the request */
    bool req_keepalive;
    bool req_http10;
    bool req_parsed_done;       /* the parser saw the end of the request body */
    bool req_done;              /* ... and all of it was sent upstream */
    bool req_body_sent_any;
    bool upgrade;
    bool retried_other;         /* the retry on another endpoint was used */
    bool retried_fresh;         /* the retry on a fresh connection was used */
    bool head_timer;            /* header timeout armed for this head */
    uint32_t req_out_len, req_out_sent;
    struct sv_sendst up_send;   /* send to upstream in flight */

    /* route (valid while a generation reference is held) */
    const struct sv_generation *gen;
    const struct sv_route_action *action;
    const struct sv_route_backend *backend;
    uint32_t set_id;
    uint64_t upstream_timeout_ms;
    struct sv_route_endpoint ep;
    uint32_t up;                /* upstream slot or SV_NO_SLOT */
    uint16_t cors_origin_len;   /* allowed Origin to echo in the response (cors.c); 0 = none */
    char cors_origin[SV_CORS_ORIGIN_MAX];

    /* HTTPRoute timeouts and retry (conn.c, "request deadline and retries") */
    struct sv_timer dl_timer;   /* earliest of the two deadlines below */
    uint64_t req_deadline_ms;   /* timeouts.request: whole exchange; 0 = none */
    uint64_t try_deadline_ms;   /* timeouts.backendRequest: the current try; 0 = none */
    uint8_t retries;            /* retries of the route's policy used for this request */
    bool backoff;               /* waiting (timer T_BACKOFF) before the next try */

    /* response */
    struct sv_http_parser resp_p;
    struct sv_http_head resp;
    uint8_t resp_body;
    bool resp_started;          /* a response byte arrived */
    bool resp_head_done;        /* final head parsed and queued to the client */
    bool resp_parsed_done;
    bool resp_complete;         /* response fully sent; waiting for the request body to finish */
    bool client_keep;           /* keep the client connection after this response */
    bool close_after;           /* close (linger) once the client send queue is empty */
    struct sv_str canned;       /* static bytes to send then close */
    uint32_t canned_sent;
    uint32_t resp_out_len, resp_out_sent;
    struct sv_sendst cl_send;   /* send to client in flight */
    uint16_t cl_hold[SV_IOV_MAX]; /* buffers of a closed upstream the client send still reads */
    uint8_t cl_hold_n;
    int status;                 /* status of the final response (stats) */

    /* TLS (HTTPS binds): rx.q holds plaintext; raw ciphertext waits in tls_rawq, is copied into
     * the connection's ciphertext input area (worker TLS pool), and the receive buffers it came
     * in are reused for plaintext (plaintext never exceeds ciphertext). */
    bool tls;
    bool passthrough;           /* TLS passthrough bind: route by SNI, relay untouched */
    bool tls_fatal;             /* handshake/record failure: send the alert, then close */
    bool tls_shut_wr;           /* lingering: shut the write side once close_notify is sent */
    bool tls_noroom;            /* tls_in stopped: no room for plaintext (conn_pump retries) */
    struct sv_tls_conn tls_c;
    struct sv_segq tls_rawq;
    uint32_t tls_cin_len;
    uint16_t tls_spare[SV_TLS_SPARES];
    uint8_t tls_nspare;

    /* RequestMirror copies of this request still waiting for its body (mirror.c): handles
     * {slot, gen} of upstream connections */
    uint64_t mirror_h[SV_MIRRORS_PER_REQ];
    uint8_t n_mirror;

    /* HTTP/2 (h2.h): <h2> = this TLS connection holds HTTP/2 session <h2_sess> (reserved at
     * accept, live once ALPN chose h2); <h2s> = this is a stream connection of the h2
     * connection in slot <h2_parent> (no socket: fd -1). */
    bool h2;
    bool h2s;
    uint32_t h2_sess;
    uint32_t h2_parent;
    /* h2c (HTTP/2 with prior knowledge on a cleartext listener): the first bytes were compared
     * with the preface; frames waiting in the output area (the send in flight included) */
    bool h2c_checked;
    uint32_t h2c_out_len;
};

struct sv_worker;

struct sv_listener {
    int fd;
    bool armed;
    bool closing;
    bool active;
    union sv_route_sockaddr addr;
    socklen_t addrlen;
    uint16_t port;
    enum sv_route_proto proto; /* HTTPS: TLS terminated on the bind's server object (conn.c) */
};

struct sv_h2w;
struct sv_h2uw;

struct sv_worker {
    unsigned idx;
    int cpu;
    pthread_t thread;
    struct sv_dp *dp;
    struct sv_io *io;
    int efd;
    uint64_t efd_buf;
    struct sv_slab conns;
    struct sv_slab ups;
    char *heads;             /* per conn: ibuf | req_out | resp_out */
    size_t heads_bytes;
    size_t head_stride;
    struct sv_http_header *hdrs; /* per conn: 2 * SV_MAX_HEADERS */
    struct sv_wheel wheel;
    uint64_t now_ms;
    struct sv_listener lst[SV_MAX_LISTENERS];
    unsigned n_lst;
    const struct sv_generation *gen; /* acquired for this iteration only */
    uint64_t binds_gen_id;           /* generation whose binds are open */
    bool draining;
    uint32_t pool_head[SV_POOL_BUCKETS];
    uint32_t rr[SV_RR_CURSORS];
    uint64_t rng;
    struct sv_seg *segs;      /* one per provided buffer */
    /* scratch for merging a rule's and a backendRef's header modifiers (used synchronously) */
    struct sv_http_header_mods mods_tmp;
    struct sv_http_header mods_set[SV_MODS_MAX];
    struct sv_http_header mods_add[SV_MODS_MAX];
    struct sv_str mods_remove[SV_MODS_MAX];
    /* scratch for adding CORS headers to a response's modifiers (cors.c; used synchronously) */
    struct sv_http_header_mods cors_mods;
    struct sv_http_header cors_set[SV_MODS_MAX + SV_ROUTE_CORS_MAX_HEADERS];
    struct sv_http_header cors_add[SV_MODS_MAX + 1];
    char *tls_mem;            /* per conn slot: TLS ciphertext output | ciphertext input */
    size_t tls_mem_bytes;
    size_t tls_stride;
    char *utls_mem;           /* per upstream slot: the same two areas (upstream_tls.c) */
    size_t utls_mem_bytes;
    char *mirror_mem;         /* SV_MIRROR_BUFS rings of mirror_cap bytes (mirror.c) */
    size_t mirror_cap;
    uint16_t mirror_free[SV_MIRROR_BUFS];
    uint32_t mirror_nfree;
    struct sv_h2w *h2;        /* HTTP/2 sessions and stream table (h2.c) */
    struct sv_h2uw *h2u;      /* h2c upstream sessions (h2_upstream.c) */
    uint64_t *starved;        /* handles of conns/upstreams waiting for buffers */
    uint32_t starved_n;
    _Atomic bool ready;
    _Atomic uint64_t stats[SV_DP_STAT_COUNT] SV_ALIGNED_CACHELINE;
    atomic_int setup_rc;
};

struct sv_dp {
    struct sv_dp_config cfg;
    unsigned n;
    atomic_int phase; /* 0 run, 1 drain, 2 stop */
    struct sv_worker *w;
};

static inline void sv_stat_add(struct sv_worker *w, enum sv_dp_stat s, uint64_t v)
{
    atomic_store_explicit(&w->stats[s], atomic_load_explicit(&w->stats[s], memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void sv_stat_set(struct sv_worker *w, enum sv_dp_stat s, uint64_t v)
{
    atomic_store_explicit(&w->stats[s], v, memory_order_relaxed);
}

/* conn.c — every function runs on worker <w>'s own thread. */

/* Take ownership of accepted socket <fd> from listener <listener>: a new client connection, or
 * closed at once at the connection limit / while draining. */
void sv_conn_accepted(struct sv_worker *w, int fd, unsigned listener);

/* Handle one completion of a client or upstream operation (SV_OP_C_* / SV_OP_U_*); stale
 * completions (slot generation moved on) only give their buffer back. */
void sv_conn_dispatch(struct sv_worker *w, const struct sv_io_cqe *cqe);

/* Timer wheel callback (ctx = the worker): header/idle/upstream/linger deadlines. */
void sv_conn_timer_fired(struct sv_timer *t, void *ctx);

/* Re-arm receives stopped by ENOBUFS once enough provided buffers are free again. */
void sv_conn_retry_starved(struct sv_worker *w);

/* Draining started: close idle keep-alive connections (the others close after their response). */
void sv_conn_drain(struct sv_worker *w);

/* Stopping: close every connection (cancel, then free as completions arrive). */
void sv_conn_close_all(struct sv_worker *w);

/* Client plus upstream connections not yet freed. */
uint32_t sv_conn_pending(struct sv_worker *w);

/* Allocate the worker's slabs, head buffers and segment table (start-up; the only allocation).
 * Needs w->io. Returns 0 or -ENOMEM/-EINVAL. */
int sv_conn_init_worker(struct sv_worker *w);

/* Close what is left and free what sv_conn_init_worker allocated (after the ring is gone). */
void sv_conn_fini_worker(struct sv_worker *w);

/* Close upstream connection <u> (detached from its client first): its operations are cancelled
 * and the slot is freed when the last one completes. No-op when already closing. */
void sv_conn_up_close(struct sv_worker *w, struct sv_upconn *u);

/* upstream_tls.c — TLS to backends (BackendTLSPolicy). An upstream connection opened with a
 * client context runs a wolfSSL client session over the same buffers the downstream TLS uses:
 * received ciphertext (u->tls_rawq) is decrypted into plaintext segments on u->rx.q, so the
 * proxying code reads responses unchanged; request bytes are encrypted into the slot's output
 * area and sent from there. Every function runs on worker <w>'s own thread. */

/* Sizes of the per-slot areas (shared with the downstream TLS of conn.c). */
size_t sv_utls_out_cap(const struct sv_worker *w);
size_t sv_utls_cin_cap(const struct sv_worker *w);

/* Start TLS with <cl> on upstream <u> (just dialled; the handshake begins once connected).
 * Returns 0, -ENOMEM (wolfSSL could not allocate) or -EINVAL. */
int sv_utls_open(struct sv_worker *w, struct sv_upconn *u, struct sv_tls_client *cl);

/* Recycle the buffers <u> holds for TLS (closing). */
void sv_utls_drop(struct sv_worker *w, struct sv_upconn *u);

/* True when <u> holds no ciphertext it did not decrypt yet (always without TLS): bytes behind a
 * complete response make a connection unfit for the pool, as they do in cleartext. */
bool sv_utls_quiet(const struct sv_upconn *u);

/* <u> goes idle into the keep-alive pool: its spare buffers go back to the receive ring (an idle
 * connection holds none; the next response's ciphertext brings new ones). */
void sv_utls_idle(struct sv_worker *w, struct sv_upconn *u);

/* Free the TLS session of <u> (slot being freed; nothing in flight). No-op without TLS. */
void sv_utls_close(struct sv_worker *w, struct sv_upconn *u);

/* True when <u> can carry request bytes: no TLS, or the handshake completed. */
bool sv_utls_ready(const struct sv_upconn *u);

/* Drive the session: decrypt what arrived (plaintext onto u->rx.q, a close_notify sets
 * u->rx.eof), advance the handshake, and send handshake output when no send is in flight.
 * Returns 0, or -EPROTO (handshake or verification failure, or a bad record; counted in
 * /metrics) and -EIO (the output could not be sent): the connection is unusable. */
int sv_utls_in(struct sv_worker *w, struct sv_upconn *u);

/* Encrypt iov[0..n) (<len> bytes in all) and send the ciphertext; the send completes (see
 * sv_utls_sent) once all of it is out. Only when sv_utls_ready and no send is in flight.
 * Returns 0, -ENOBUFS (does not fit the output area), -EPROTO, -EBUSY (submission failed). */
int sv_utls_send(struct sv_worker *w, struct sv_upconn *u, const struct iovec *iov, unsigned n,
                 uint32_t len);

/* A send of <u> completed with <res> (bytes or -errno). When more ciphertext waits (a partial
 * send, or output queued meanwhile) it is submitted and *more is set: not done yet. Otherwise
 * returns the plaintext bytes the finished send carried (0 for handshake output) or -errno. */
int sv_utls_sent(struct sv_worker *w, struct sv_upconn *u, int res, bool *more);

/* A plaintext buffer of <u> was emptied: keep it as a spare when there is none (so decryption
 * always finds room once the plaintext queue drained), else recycle it. */
void sv_utls_buf_done(struct sv_worker *w, struct sv_upconn *u, uint16_t bid);

/* mirror.c — RequestMirror copies, request bodies included. A copy is an upstream connection
 * with u->mirror set and no owner: it sends "request head + Connection: close" and then every
 * body byte the primary forwards, copied into its own ring (one of the worker's SV_MIRROR_BUFS,
 * w->mirror_cap bytes each), and ignores whatever comes back. A copy that cannot keep up (ring
 * full), fails or times out is closed and counted in SV_DP_STAT_MIRRORS_DROPPED; the primary
 * request never waits for a mirror. Every function runs on worker <w>'s own thread. */

/* Start a copy of the request of <c> to <ep>: <head>[<head_len>] is the serialized request head
 * (ending in an empty line), <body>[<body_len>] the body bytes already forwarded with it; <end>:
 * that is the whole request (else the copy stays linked to <c> for sv_mirror_feed); <tls>: the
 * mirror backend set's TLS context (BackendTLSPolicy; NULL = cleartext): the copy goes out
 * after the handshake, encrypted. Best effort: when no ring, upstream slot or link is free, or
 * the head does not fit, the copy is dropped (counted). */
void sv_mirror_start(struct sv_worker *w, struct sv_conn *c, const struct sv_route_endpoint *ep,
                     const char *head, uint32_t head_len, const char *body, uint32_t body_len,
                     bool end, struct sv_tls_client *tls);

/* The primary forwards the body bytes <iov>[<n>] of <c>'s request (<end>: the body ends there):
 * copy them to each linked mirror; a mirror without room for them is dropped. */
void sv_mirror_feed(struct sv_worker *w, struct sv_conn *c, const struct iovec *iov, unsigned n,
                    bool end);

/* <c>'s request is over (answered, failed or closed): linked mirrors that did not get the whole
 * body are dropped. */
void sv_mirror_detach(struct sv_worker *w, struct sv_conn *c);

/* Mirror <u> connected: start sending its ring. */
void sv_mirror_connected(struct sv_worker *w, struct sv_upconn *u);

/* TLS mirror <u> made handshake progress (a flight went out, or its handshake completed): send
 * the ring once it can. */
void sv_mirror_tls_progress(struct sv_worker *w, struct sv_upconn *u);

/* A send of mirror <u> completed with <res> (bytes or -errno). */
void sv_mirror_sent(struct sv_worker *w, struct sv_upconn *u, int res);

/* Whether mirror <u> sent its whole request (answers may end it now). */
bool sv_mirror_complete(const struct sv_upconn *u);

/* Mirror <u> is being freed (no operation in flight): its ring goes back to the pool; counted
 * as dropped unless complete. */
void sv_mirror_release(struct sv_worker *w, struct sv_upconn *u);

#endif

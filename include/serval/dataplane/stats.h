/* Per-worker data-plane counters. Each worker is the single writer of its own block (relaxed
 * atomic stores on its own cache lines); any thread reads snapshots. */
#ifndef SERVAL_DATAPLANE_STATS_H
#define SERVAL_DATAPLANE_STATS_H

#include <stdint.h>

struct sv_dp;

/* Counter ids; names for /metrics in sv_dp_stat_names. */
enum sv_dp_stat {
    SV_DP_STAT_REQUESTS = 0,      /* request heads parsed */
    SV_DP_STAT_RESP_1XX,          /* final responses by status class sent to clients */
    SV_DP_STAT_RESP_2XX,
    SV_DP_STAT_RESP_3XX,
    SV_DP_STAT_RESP_4XX,
    SV_DP_STAT_RESP_5XX,
    SV_DP_STAT_CONNS_ACCEPTED,
    SV_DP_STAT_CONNS_REFUSED,     /* accepted then closed at the connection limit / draining */
    SV_DP_STAT_CONNS_ACTIVE,      /* gauge */
    SV_DP_STAT_UP_CONNECTS,       /* new upstream connections dialled */
    SV_DP_STAT_UP_REUSES,         /* requests sent on a pooled upstream connection */
    SV_DP_STAT_UP_CONNECT_ERRORS, /* upstream connect failures */
    SV_DP_STAT_UP_RESETS,         /* upstream closed/reset before a complete response */
    SV_DP_STAT_RETRIES,           /* requests retried on another endpoint / fresh connection */
    SV_DP_STAT_ERR_BAD_REQUEST,   /* 400/501/505 answered for a bad request */
    SV_DP_STAT_ERR_TOO_LARGE,     /* 431 */
    SV_DP_STAT_ERR_NO_ROUTE,      /* 404 */
    SV_DP_STAT_ERR_BAD_GATEWAY,   /* 502 */
    SV_DP_STAT_ERR_UNAVAILABLE,   /* 503 */
    SV_DP_STAT_ERR_TIMEOUT,       /* 504 */
    SV_DP_STAT_HEADER_TIMEOUTS,
    SV_DP_STAT_IDLE_TIMEOUTS,
    SV_DP_STAT_ENOBUFS,           /* multishot recv stopped for lack of buffers (backpressure) */
    SV_DP_STAT_MIRRORS,           /* RequestMirror copies started */
    SV_DP_STAT_MIRRORS_DROPPED,   /* copies not started (no room) or not sent whole: slow,
                                   * dead or failing mirror backend, request ended early */
    SV_DP_STAT_GENERATION,        /* gauge: id of the generation the worker last adopted */
    SV_DP_STAT_ROUTE_RETRIES,     /* tries repeated by an HTTPRoute retry policy */
    SV_DP_STAT_ROUTE_RETRIES_EXHAUSTED, /* requests whose policy retries were all used */
    SV_DP_STAT_REQUEST_TIMEOUTS,  /* timeouts.request expired (504, or abort after the head) */
    SV_DP_STAT_TLS_HANDSHAKES,    /* TLS handshakes completed (full or resumed) */
    SV_DP_STAT_TLS_RESUMED,       /* ... of which resumed with a session ticket */
    SV_DP_STAT_TLS_FAIL_TIMEOUT,  /* TLS handshakes cut off by the header timeout */
    SV_DP_STAT_TLS_FAIL_SNI,      /* ... failed: no listener/certificate for the SNI */
    SV_DP_STAT_TLS_FAIL_ALERT,    /* ... failed: the client sent a fatal alert */
    SV_DP_STAT_TLS_FAIL_PROTOCOL, /* ... failed otherwise (garbage, no common version/suite) */
    SV_DP_STAT_TLS_RECORD_ERRORS, /* fatal TLS errors after the handshake */
    SV_DP_STAT_TLS_CLOSE_NOTIFY,  /* close_notify alerts sent when we closed */
    SV_DP_STAT_H2_CONNS,          /* connections that negotiated HTTP/2 (ALPN h2) */
    SV_DP_STAT_H2_STREAMS,        /* HTTP/2 request streams opened */
    SV_DP_STAT_H2_STREAMS_REFUSED, /* streams refused (no connection slot, draining) */
    SV_DP_STAT_H2_CONN_ERRORS,    /* HTTP/2 connections ended by a protocol error or an abuse
                                   * limit (GOAWAY with an error, flood, bad preface) */
    SV_DP_STAT_UP_TLS_HANDSHAKES, /* TLS handshakes completed with backends (BackendTLSPolicy) */
    SV_DP_STAT_UP_TLS_FAILURES,   /* TLS to backends failed: handshake, verification, records */
    SV_DP_STAT_COUNT
};

/* Prometheus-style names ("requests_total"), indexed by enum sv_dp_stat. */
extern const char *const sv_dp_stat_names[SV_DP_STAT_COUNT];

/* True for gauges (value, not a counter). */
int sv_dp_stat_is_gauge(enum sv_dp_stat s);

/* Copy worker <w>'s counters into out[SV_DP_STAT_COUNT]. Returns 0 or -EINVAL (no such worker).
 * Any thread; a racy but per-counter consistent snapshot. */
int sv_dp_stats_snapshot(const struct sv_dp *dp, unsigned w, uint64_t *out);

#endif

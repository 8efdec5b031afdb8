/* serval-echo internals: a test and benchmark backend speaking the Gateway API conformance
 * "echo-basic" contract plus extra endpoints for proxy tests (see echo.c for the list).
 *
 * Threading: one accept thread per listening socket (more with --threads), one detached thread
 * per accepted connection doing blocking I/O. A connection owns its buffers (allocated when it is
 * accepted, freed when it closes); the only shared state is the counters and the retry table,
 * both guarded (atomics / a mutex). Memory is bounded by --max-conns × the per-connection
 * buffers below. */
#ifndef SERVAL_ECHO_INT_H
#define SERVAL_ECHO_INT_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_ECHO_READ_BUF (64 * 1024)  /* one recv() */
#define SV_ECHO_URL_MAX (16 * 1024)   /* request-URI limit (414 beyond) */
#define SV_ECHO_HDR_BYTES (64 * 1024) /* header names+values of one request (431 beyond) */
#define SV_ECHO_MAX_HDRS 256          /* header fields of one request (431 beyond) */
#define SV_ECHO_OUT_MAX (4u << 20)    /* largest response head+JSON we build in memory */
#define SV_ECHO_WS_MAX_FRAME (64ull << 20) /* largest WebSocket frame payload echoed */

/* Identity reported in the echo JSON (one per listening socket). */
struct sv_echo_ident {
    const char *pod;
    const char *ns;
    const char *service;
    const char *ingress;
    char port[8]; /* the listening port, reported as "httpPort" */
};

/* Growable byte buffer (bounded by SV_ECHO_OUT_MAX). */
struct sv_echo_buf {
    char *p;
    size_t len;
    size_t cap;
    bool overflow; /* an append hit the bound; contents are truncated */
};

/* Append <n> bytes (sets overflow instead of growing past the bound). */
void sv_echo_buf_put(struct sv_echo_buf *b, const void *s, size_t n);
/* Append a NUL-terminated string. */
void sv_echo_buf_puts(struct sv_echo_buf *b, const char *s);
/* Append printf-formatted text. */
void sv_echo_buf_printf(struct sv_echo_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append <n> bytes as the inside of a JSON string (quotes not included). */
void sv_echo_buf_json(struct sv_echo_buf *b, const char *s, size_t n);
void sv_echo_buf_free(struct sv_echo_buf *b);

/* Send all <n> bytes (MSG_NOSIGNAL); returns 0 or -1 (peer gone, timeout). */
int sv_echo_send_all(int fd, const void *p, size_t n);

/* Run the WebSocket echo loop on <fd> after a completed handshake. <pending>/<npending> are bytes
 * already received after the handshake request (the start of the first frame). Returns when the
 * peer closes, on a protocol error or on I/O error; the caller closes <fd>. */
void sv_echo_ws_run(int fd, const char *pending, size_t npending, char *scratch, size_t cap);

/* Sec-WebSocket-Accept for <key>: base64(SHA-1(key + GUID)) into <out> (>= 29 bytes, NUL-
 * terminated). Returns 0 or -1. */
int sv_echo_ws_accept_key(const char *key, size_t klen, char *out, size_t outcap);

/* Process-wide counters and options (set by main before threads start). */
extern _Atomic uint64_t sv_echo_connections; /* connections accepted */
extern _Atomic uint64_t sv_echo_requests;    /* requests answered (GET /stats excluded) */
extern _Atomic uint32_t sv_echo_live;        /* connections open now */
extern bool sv_echo_quiet;                   /* --quiet: no per-request log line */
extern int sv_echo_idle_ms;                  /* --idle-timeout: close idle keep-alive conns */

/* Serve one accepted connection to the end, then close <fd>. Runs on its own thread. <peer> is
 * "addr:port" for the log line. Never fails: errors close the connection. */
void sv_echo_serve(int fd, const struct sv_echo_ident *id, const char *peer);

#endif

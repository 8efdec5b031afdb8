/* serval-echo internals: a test and benchmark backend speaking the Gateway API conformance
 * "echo-basic" contract plus extra endpoints for proxy tests (see echo.c for the list).
 *
 * Threading: --threads N event-loop threads (default: online CPUs, at most 4). Each has its own
 * epoll instance and its own SO_REUSEPORT listening socket per --listen address, and owns the
 * connections it accepted (no locks on the I/O path). Shared state: the counters (atomics) and the /retry table (a
 * mutex). Nothing blocks a loop: delays and slow responses are timers, large responses are
 * generated as the socket drains, and input is parsed only while the output queue is below a
 * high-water mark (backpressure), so memory per connection is bounded.
 *
 * Files: echo.c (command line), loop.c (epoll loop, accept, buffers, timers), http.c (llhttp
 * callbacks and the endpoints), ws.c (WebSocket handshake key and incremental frame echo),
 * util.c (byte buffer, query/duration parsing, retry table), h2.c (HTTP/2 with prior knowledge on
 * --h2c-listen ports, nghttp2 server session). */
#ifndef SERVAL_ECHO_INT_H
#define SERVAL_ECHO_INT_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SV_ECHO_READ_BUF (64 * 1024)        /* input buffer per connection */
#define SV_ECHO_URL_MAX (16 * 1024)         /* request-URI limit (414 beyond) */
#define SV_ECHO_HDR_BYTES (64 * 1024)       /* header names+values of one request (431 beyond) */
#define SV_ECHO_MAX_HDRS 256                /* header fields of one request (431 beyond) */
#define SV_ECHO_OUT_MAX (4u << 20)          /* bound of one output queue */
#define SV_ECHO_HIGH_WATER (256u << 10)     /* stop producing output above this many queued bytes */
#define SV_ECHO_WS_MAX_FRAME (64ull << 20)  /* largest WebSocket frame payload echoed */

/* Identity reported in the echo JSON (one per --listen address). */
struct sv_echo_ident {
    const char *pod;
    const char *ns;
    const char *service;
    const char *ingress;
    char port[8]; /* the listening port, reported as "httpPort" */
};

/* ---- util.c ---------------------------------------------------------------------------------- */

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
/* Append printf-formatted text (at most 511 bytes per call). */
void sv_echo_buf_printf(struct sv_echo_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append <n> bytes as the inside of a JSON string (quotes not included). */
void sv_echo_buf_json(struct sv_echo_buf *b, const char *s, size_t n);
void sv_echo_buf_free(struct sv_echo_buf *b);

/* Go time.ParseDuration subset ("300ms", "1.5s", "1m30s", "0"). Returns nanoseconds, or -1 if
 * malformed or above 10 minutes. */
int64_t sv_echo_parse_duration_ns(const char *s);

/* Query parameter <key> of request-URI <url> (percent-decoded, '+' = space) into <out>.
 * Returns true if present (truncated to <cap>-1 bytes). */
bool sv_echo_query_get(const char *url, size_t len, const char *key, char *out, size_t cap);

/* Decimal that must fill <s> and be <= max. */
bool sv_echo_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* /retry bookkeeping: count one request for <uuid>; returns how many were seen, this one
 * included. Bounded table (least recently used uuid forgotten). Any thread. */
uint32_t sv_echo_retry_hit(const char *uuid);

/* ---- ws.c ------------------------------------------------------------------------------------ */

/* Incremental WebSocket frame echo state. */
struct sv_echo_ws {
    unsigned char hdr[14];
    size_t hlen;       /* header bytes collected */
    bool in_payload;
    bool echo;         /* payload goes back (not for pongs) */
    unsigned op;
    unsigned char mask[4];
    uint64_t len, off; /* payload length, bytes done */
};

/* Sec-WebSocket-Accept for <key>: base64(SHA-1(key + GUID)) into <out> (>= 29 bytes, NUL-
 * terminated). Returns 0 or -1. */
int sv_echo_ws_accept_key(const char *key, size_t klen, char *out, size_t outcap);

/* Consume up to <n> bytes of client frames, appending the echoed (unmasked) frames to <out>,
 * at most <room> payload bytes per call. Returns the bytes consumed; sets *done to 1 once a
 * close frame was echoed, or -1 on a protocol error (a close frame 1002/1009 is appended). */
size_t sv_echo_ws_consume(struct sv_echo_ws *ws, const char *in, size_t n, struct sv_echo_buf *out,
                          size_t room, int *done);

/* ---- connections (loop.c owns them, http.c fills their responses) ---------------------------- */

enum sv_echo_kind {
    SV_ECHO_K_ECHO,
    SV_ECHO_K_HEALTH,
    SV_ECHO_K_STATUS,
    SV_ECHO_K_RETRY,
    SV_ECHO_K_WS,
    SV_ECHO_K_ECHO_BODY,
    SV_ECHO_K_BYTES,
    SV_ECHO_K_SLOW,
    SV_ECHO_K_RESET,
    SV_ECHO_K_CLOSE,
    SV_ECHO_K_STATS,
};

/* What the connection does once the current response is produced. */
enum sv_echo_after { SV_ECHO_KEEP, SV_ECHO_CLOSE, SV_ECHO_RESET, SV_ECHO_UPGRADE_WS };

/* A response still being produced (delayed, generated, slow). */
enum sv_echo_pending {
    SV_ECHO_P_NONE,
    SV_ECHO_P_DELAY_ECHO,  /* timer, then the echo JSON */
    SV_ECHO_P_DELAY_RETRY, /* timer, then the retry failure */
    SV_ECHO_P_BYTES,       /* generate as the socket drains */
    SV_ECHO_P_SLOW,        /* one piece per timer tick */
};

struct echo_hdr {
    uint32_t name_off, name_len, val_off, val_len;
};

struct sv_echo_worker;

/* First field of connections and listeners: epoll data points at either. */
#define SV_ECHO_TAG_LISTEN 1
#define SV_ECHO_TAG_CONN 2

struct sv_echo_conn {
    int tag; /* first: tells connections from listeners in epoll data */
    int fd;
    void *ssl;         /* WOLFSSL * on a --tls-listen connection, else NULL (tls.c) */
    bool h2c_port;     /* accepted on an --h2c-listen port: HTTP/2 only (h2.c) */
    bool h2_checked;   /* the first bytes were compared with the HTTP/2 preface */
    void *h2;          /* nghttp2_session * once the preface arrived (h2.c) */
    const char *h2_method; /* set while an HTTP/2 request is loaded for the echo JSON */
    char tls_sni[256]; /* the SNI the TLS client sent, "" if none */
    struct sv_echo_worker *w;
    const struct sv_echo_ident *id;
    char peer[72];
    struct sv_echo_conn *next, *prev; /* the worker's list */
    uint64_t last_active_ms;
    uint32_t events; /* epoll events registered */
    llhttp_t parser;
    bool ws_mode;     /* after a 101: frames, not HTTP */
    bool closing;     /* final answer queued: close once flushed */
    bool shut_wr;     /* write side shut; waiting for the peer's EOF (bounded) */
    bool reset_now;   /* close with RST as soon as the output is flushed */
    bool peer_eof;
    bool dead;        /* I/O error: free at the end of the current event */
    /* input */
    size_t in_start, in_end;
    /* output queue */
    struct sv_echo_buf out;
    size_t out_off;
    /* the request being parsed */
    size_t url_len;
    size_t hb_used;
    unsigned nhdrs;
    bool in_value;
    int error_status; /* 414/431 once a limit is hit */
    enum sv_echo_kind kind;
    bool chunked_out; /* /echo-body answers chunked */
    bool message_done;
    /* the response in progress */
    enum sv_echo_pending pending;
    enum sv_echo_after after;
    bool keep;
    uint64_t timer_at_ns; /* 0 = no timer */
    bool timer_counted;   /* included in the worker's ntimers */
    bool again;           /* stopped with work left that no event will announce */
    uint64_t gen_total, gen_sent, gen_piece, gen_tick_ns;
    bool gen_chunked;
    int retry_code; /* 0 = reset */
    struct sv_echo_ws ws;
    struct sv_echo_buf json;
    struct echo_hdr hdrs[SV_ECHO_MAX_HDRS];
    char url[SV_ECHO_URL_MAX];
    char hb[SV_ECHO_HDR_BYTES];
    char in[SV_ECHO_READ_BUF];
};

/* Process-wide counters and options (set by main before threads start). */
extern _Atomic uint64_t sv_echo_connections; /* connections accepted */
extern _Atomic uint64_t sv_echo_requests;    /* requests answered (GET /stats excluded) */
extern _Atomic uint32_t sv_echo_live;        /* connections open now */
extern bool sv_echo_quiet;                   /* --quiet: no per-request log line */
extern int sv_echo_idle_ms;                  /* --idle-timeout: close idle keep-alive conns */
extern unsigned sv_echo_max_conns;           /* --max-conns */

/* http.c: the llhttp settings every connection parser uses. */
extern const llhttp_settings_t sv_echo_http_settings;

/* http.c: produce more of a pending response (timer fired or output drained). Returns 0, or -1
 * if the connection must be dropped. */
int sv_echo_http_continue(struct sv_echo_conn *c, uint64_t now_ns);

/* http.c: answer a request the parser rejected (400, or error_status) and close. */
void sv_echo_http_reject(struct sv_echo_conn *c);

/* http.c, for h2.c: the echo JSON of the request loaded in c (url, hdrs/hb, h2_method) into
 * c->json; the endpoint of a request-URI; Go's canonical header name in place; the digits after
 * <prefix_len> bytes of c->url as a number <= max; <n> (<= 16384) bytes of the /bytes pattern
 * from stream offset <off>. */
void sv_echo_http_json(struct sv_echo_conn *c);
enum sv_echo_kind sv_echo_http_classify(const char *url, size_t len);
void sv_echo_http_canonicalize(char *name, size_t n);
bool sv_echo_http_path_number(struct sv_echo_conn *c, size_t prefix_len, uint64_t max,
                              uint64_t *out);
void sv_echo_pattern_put(struct sv_echo_buf *out, uint64_t off, size_t n);

/* ---- h2.c: HTTP/2 with prior knowledge (--h2c-listen) ---------------------------------------- */

/* Compare the first input bytes of an --h2c-listen connection with the HTTP/2 preface: 1 = it
 * is HTTP/2 (session started), 0 = too few bytes yet, -1 = not HTTP/2 (or the session could not
 * start): HTTP/1.1 is parsed and answered 400. Owning thread. */
int sv_echo_h2_detect(struct sv_echo_conn *c);
/* Feed buffered input to the session and queue its frames (while the output queue is below the
 * high-water mark). Returns true if anything moved; sets c->closing when the session is over
 * and c->dead on a fatal error. */
bool sv_echo_h2_step(struct sv_echo_conn *c);
/* Free the session and its streams (no-op without one). */
void sv_echo_h2_end(struct sv_echo_conn *c);

/* ---- tls.c: HTTPS listeners ----------------------------------------------------------------- */

/* Load the server certificate chain and key (PEM files) and, when <client_ca> is set, the CA
 * bundle client certificates are verified against (asked for, verified if given). Main thread,
 * before the loops start. Returns 0 or -1 (message printed). */
int sv_echo_tls_init(const char *cert, const char *key, const char *client_ca);
/* Attach a TLS session to a freshly accepted connection (the handshake runs inside the first
 * reads). Owning thread. Returns 0 or -1. */
int sv_echo_tls_start(struct sv_echo_conn *c);
/* recv/send through TLS: > 0 bytes, 0 = close_notify (recv), -1 with errno EAGAIN (waiting for
 * the socket) or ECONNRESET. */
ssize_t sv_echo_tls_recv(struct sv_echo_conn *c, void *buf, size_t n);
ssize_t sv_echo_tls_send(struct sv_echo_conn *c, const void *buf, size_t n);
/* Decrypted bytes wait inside the session (no socket event will announce them). */
bool sv_echo_tls_pending(const struct sv_echo_conn *c);
/* Free the session (after one close_notify try when <notify>); no-op on plain connections. */
void sv_echo_tls_end(struct sv_echo_conn *c, bool notify);
/* Append ,"tls":{...} (version, serverName, negotiatedProtocol, cipherSuite, peerCertificates)
 * to an echo JSON object; nothing on plain connections. */
void sv_echo_tls_json(const struct sv_echo_conn *c, struct sv_echo_buf *j);

/* loop.c: monotonic clock in ns. */
uint64_t sv_echo_now_ns(void);

/* One event-loop thread: its epoll set and listening sockets. */
struct sv_echo_listen {
    int tag;
    int fd;
    bool tls; /* --tls-listen: connections speak TLS (tls.c) */
    bool h2c; /* --h2c-listen: connections speak HTTP/2 with prior knowledge (h2.c) */
    const struct sv_echo_ident *id;
};

#define SV_ECHO_MAX_LISTEN 32

struct sv_echo_worker {
    int epfd;
    unsigned nlisten;
    struct sv_echo_listen listen[SV_ECHO_MAX_LISTEN];
    struct sv_echo_conn *conns; /* every open connection (for timers and idle sweeps) */
    unsigned ntimers;           /* connections with timer_at_ns set */
    unsigned nagain;            /* connections with again set */
    uint64_t next_sweep_ms;
};

/* loop.c: run a worker forever (thread entry). */
void *sv_echo_worker_main(void *arg);

#endif

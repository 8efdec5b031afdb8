/* HTTP/2 cleartext to upstreams (h2c with prior knowledge) for backends whose Service port has
 * appProtocol kubernetes.io/h2c. Worker thread only.
 *
 * Design: the rest of the data plane keeps speaking HTTP/1.1 to an upstream connection; an h2c
 * upstream (struct sv_upconn with .h2) has an nghttp2 client session that translates both ways.
 *  - Request: what conn.c would send (the serialized HTTP/1.1 request head, then body bytes with
 *    their HTTP/1.1 framing) is taken whole by sv_h2u_send, parsed again (a request parser per
 *    session) and turned into HEADERS (h2_conv.h) and DATA frames (de-chunked) from a per-session
 *    body buffer. The send conn.c asked for completes at once: the completion is delivered from
 *    sv_h2u_run (through sv_conn_up_sent), as an io_uring completion would be, so conn.c's
 *    request path is unchanged. conn.c asks sv_h2u_can_take before each send, so a whole send
 *    always fits; while the upstream's flow-control window is closed the buffer stays full and
 *    the client is not read further (backpressure, no growth).
 *  - Response: frames received from the socket (the upstream's raw queue) are fed to the session;
 *    HEADERS become an HTTP/1.1 response head (":status" as the status line, Content-Length kept,
 *    else "Transfer-Encoding: chunked" with one chunk per DATA frame; 1xx heads pass through),
 *    collected in a per-session conversion area, which conn.c moves into receive buffers on the
 *    upstream's ordinary queue (the raw buffers become free as their frames are fed, and carry
 *    the converted bytes). conn.c then parses the response exactly like one from an HTTP/1.1
 *    upstream (status retries, filters, timeouts, HTTP/2 or HTTP/1.1 clients).
 *  - One request (stream) at a time per connection (a first version: no multiplexing). A session
 *    that finished its stream cleanly goes back to the pool with its connection (keyed on
 *    endpoint and protocol) and carries the next request on a new stream. A stream reset or a
 *    GOAWAY ends the connection for reuse; a reset before the response head is an upstream
 *    failure (502, retried like a reset HTTP/1.1 connection).
 * Frames are written by nghttp2 into a per-session output area and sent with SV_OP_U_H2SEND.
 *
 * Memory (no malloc after start): SV_H2U_SESSIONS per worker (capped by the upstream slots), each
 * with an SV_H2U_SESSION_MEM region for nghttp2 (h2_pool.h) and its areas, all mapped at start;
 * a request whose h2c upstream finds no free session is answered 503.
 * Known limit: a response whose HTTP/1.1 form outgrows the receive buffers its frames arrived in
 * (a head that HPACK compressed a lot, larger than a receive buffer) cannot be handed on; the
 * exchange ends as if the upstream had closed (502 before the head; logged). */
#ifndef SERVAL_DATAPLANE_H2_UPSTREAM_H
#define SERVAL_DATAPLANE_H2_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct sv_worker;
struct sv_upconn;

#define SV_H2U_SESSIONS 256u               /* h2c upstream connections per worker */
#define SV_H2U_SESSION_MEM (256u * 1024u)  /* nghttp2 bytes per session */

/* Worker start: sessions and their areas (the only allocation). Returns 0 or -ENOMEM.
 * sv_h2u_fini_worker frees it all. Called by sv_h2_init_worker / sv_h2_fini_worker. */
int sv_h2u_init_worker(struct sv_worker *w);
void sv_h2u_fini_worker(struct sv_worker *w);

/* New upstream connection <u> (not connected yet) speaks h2c: take a session for it (u->h2,
 * u->h2_sess). Returns 0, or -ENOSPC when none is free. */
int sv_h2u_open(struct sv_worker *w, struct sv_upconn *u);

/* <u> is being freed (no operation in flight): give its session back. No-op without one. */
void sv_h2u_release(struct sv_worker *w, struct sv_upconn *u);

/* May the pooled h2c connection <u> carry another request (no GOAWAY, stream ids left, the
 * last stream ended cleanly)? */
bool sv_h2u_reusable(struct sv_worker *w, const struct sv_upconn *u);

/* Is there room for a whole send of conn.c (a request head, or a gather of SV_IOV_MAX receive
 * buffers)? When false, the owner is pumped again once there is. */
bool sv_h2u_can_take(struct sv_worker *w, struct sv_upconn *u);

/* Take the HTTP/1.1 request bytes iov[0..n) (<len> in all) conn.c sends on <u>: all of them.
 * The completion (sv_conn_up_sent with <len>) follows from sv_h2u_run. Returns 0, or -EPROTO
 * (bytes that are not a request this session can carry: fail the upstream). */
int sv_h2u_send(struct sv_worker *w, struct sv_upconn *u, const struct iovec *iov, unsigned n,
                uint32_t len);

/* Raw frames p[n] from the socket: feed them to the session. Returns 0 or -1 (connection
 * error: the upstream is dead). Call only when sv_h2u_can_recv. */
int sv_h2u_recv(struct sv_worker *w, struct sv_upconn *u, const void *p, size_t n);
bool sv_h2u_can_recv(struct sv_worker *w, const struct sv_upconn *u);

/* Converted response bytes waiting to be moved to the upstream's queue: *p and the count;
 * sv_h2u_out_consume drops the first <n> of them. */
size_t sv_h2u_out(struct sv_worker *w, const struct sv_upconn *u, const char **p);
void sv_h2u_out_consume(struct sv_worker *w, struct sv_upconn *u, size_t n);

/* No more frames will come for the current stream (it ended or was closed). */
bool sv_h2u_stream_over(struct sv_worker *w, const struct sv_upconn *u);

/* The current stream cannot complete (reset, GOAWAY before its end, a conversion error): the
 * owner must see the upstream as closed. */
bool sv_h2u_broken(struct sv_worker *w, const struct sv_upconn *u);

/* <u> connected, or something else may have made frames ready: write and send them. */
void sv_h2u_flush(struct sv_worker *w, struct sv_upconn *u);

/* A frame send (SV_OP_U_H2SEND) of <u> completed with <res> (bytes or -errno); the caller
 * already took it off u->inflight. Returns false when the upstream must be failed. */
bool sv_h2u_sent(struct sv_worker *w, struct sv_upconn *u, int res);

/* Deliver deferred completions and kicks. Worker loop (through sv_h2_run). */
void sv_h2u_run(struct sv_worker *w);
bool sv_h2u_pending(const struct sv_worker *w);

/* ---- conn.c services for h2_upstream.c (conn.c) ---- */

/* The logical send of <u>'s owner completed with <res> bytes (on_up_send). */
void sv_conn_up_sent(struct sv_worker *w, struct sv_upconn *u, int res);
/* Submit a send of frame bytes p[len] on <u>'s socket (SV_OP_U_H2SEND; counted in
 * u->inflight). Returns 0 or -errno. */
int sv_conn_up_frames(struct sv_worker *w, struct sv_upconn *u, const void *p, uint32_t len);
/* Move converted bytes into <u>'s queue and pump its owner (room freed, a stream ended). */
void sv_conn_up_kick(struct sv_worker *w, struct sv_upconn *u);

#endif

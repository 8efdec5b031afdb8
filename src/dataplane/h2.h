/* HTTP/2 on the frontend (TLS with ALPN "h2", or h2c: cleartext with prior knowledge, a
 * connection on an HTTP listener that begins with the preface), over nghttp2's server session.
 * Worker thread only.
 *
 * Design: an h2 client connection (struct sv_conn with .h2) owns one nghttp2 session. Every
 * request stream gets a stream connection: a struct sv_conn from the same slab with .h2s set and
 * no socket of its own (fd -1). Its request head is rebuilt as HTTP/1.1 text (h2_conv.h) and goes
 * through the same parse → route → filters → upstream path as an HTTP/1.1 request (404, 421 against
 * the SNI listener, redirects, header modifiers, X-Forwarded-*, retries, timeouts). What the
 * stream connection would send to an HTTP/1.1 client (a response head and body, canned answers)
 * is taken by sv_h2_stream_out, parsed back and turned into HEADERS + DATA (de-chunked, hop-by-hop
 * fields dropped; a 1xx becomes a HEADERS frame of its own before the final one). Request bodies arrive as DATA into a per-stream buffer (SV_H2_BODY_BUF, one per connection
 * slot, mapped at start, touched only by h2 streams) and leave upstream with
 * Content-Length or chunked framing; the stream's flow-control window is only given back when the
 * bytes were sent upstream, so a slow upstream slows the client down instead of growing memory.
 *
 * Nothing in conn.c runs inside an nghttp2 callback: callbacks only record what happened and queue
 * the stream; sv_h2_run (once per worker loop iteration, while the worker holds its generation)
 * dispatches requests, pumps stream connections and writes the session's frames to TLS.
 *
 * Memory (no malloc after start): each worker has SV_H2_SESSIONS sessions (capped by
 * --max-conns), each with its own SV_H2_SESSION_MEM byte region that nghttp2 allocates from
 * through an nghttp2_mem (h2_pool.h); a session whose region is full fails with NOMEM and its
 * connection closes. A TLS connection is offered ALPN h2 only when a session is free (it is
 * reserved at accept and given back when http/1.1 was chosen), so a full pool means http/1.1,
 * never a refused connection. Streams: at most SV_H2_MAX_STREAMS concurrent per connection
 * (SETTINGS_MAX_CONCURRENT_STREAMS), each taking one connection slot (--max-conns); with no slot
 * free the stream is refused (RST_STREAM REFUSED_STREAM). Header list size is bounded by
 * --max-header-size (431 beyond, as over HTTP/1.1). Abuse limits set on every session: rapid reset (stream reset rate limit),
 * CONTINUATION flood (max continuations), SETTINGS flood (max settings entries), PING/SETTINGS
 * ack flood (max outbound acks). */
#ifndef SERVAL_DATAPLANE_H2_H
#define SERVAL_DATAPLANE_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sv_worker;
struct sv_conn;
struct sv_sendst;

#define SV_H2_SESSIONS 128u               /* h2 connections per worker (<= max_conns) */
#define SV_H2_SESSION_MEM (1024u * 1024u) /* nghttp2 bytes per session */
#define SV_H2_MAX_STREAMS 100u            /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define SV_H2_BODY_BUF 65536u             /* request body buffer per stream (>= the default
                                             stream window 65535, which we keep) */

/* Worker start: sessions, stream table, nghttp2 callbacks/options (the only allocation). Returns
 * 0 or -ENOMEM. sv_h2_fini_worker frees it all (after every connection is gone or the ring is
 * down). */
int sv_h2_init_worker(struct sv_worker *w);
void sv_h2_fini_worker(struct sv_worker *w);

/* At accept of a TLS connection: reserve a session for it. True when one was free (offer h2). */
bool sv_h2_reserve(struct sv_worker *w, struct sv_conn *c);

/* The handshake of <c> (holding a reservation) finished: when ALPN chose h2 start the session
 * (c->state becomes SV_C_H2, returns true); otherwise give the reservation back (false). On a
 * session that cannot start the connection is closed (returns true). */
bool sv_h2_start(struct sv_worker *w, struct sv_conn *c);

/* Cleartext connection <c> (holding a reservation from sv_h2_reserve) began with the HTTP/2
 * preface (h2c with prior knowledge): start its session (c->state becomes SV_C_H2; the preface
 * itself is fed with the rest through sv_h2_recv). Returns false when the session could not
 * start (the reservation is given back, the connection was closed). */
bool sv_h2_start_clear(struct sv_worker *w, struct sv_conn *c);

/* Feed plaintext p[n] of h2 connection <c> to its session. Returns the bytes taken (all of them
 * normally), or -1 on a connection error (close the connection). */
ssize_t sv_h2_recv(struct sv_worker *w, struct sv_conn *c, const void *p, size_t n);

/* Something happened on h2 connection <c> (input, a send completed): flush its session in the
 * next sv_h2_run. */
void sv_h2_kick(struct sv_worker *w, struct sv_conn *c);

/* True when h2 connection <c> has no stream in progress (its idle timer may run). */
bool sv_h2_idle(struct sv_worker *w, const struct sv_conn *c);

/* <c> (an h2 connection, or one holding a reservation) is being closed: close its stream
 * connections and free the session. */
void sv_h2_conn_closed(struct sv_worker *w, struct sv_conn *c);

/* Draining: tell the client (GOAWAY) and close once its streams are done. */
void sv_h2_drain(struct sv_worker *w, struct sv_conn *c);

/* Run deferred work: dispatch requests, pump stream connections, write frames. Worker loop, once
 * per iteration while w->gen is held. */
void sv_h2_run(struct sv_worker *w);

/* True when sv_h2_run left work for the next iteration (the loop must not block). */
bool sv_h2_pending(const struct sv_worker *w);

/* ---- stream connections (c->h2s) ---- */

/* Take HTTP/1.1 response bytes p[len] written for the stream. Returns bytes taken (0: buffer
 * full, the stream connection is pumped again when it drains), or -1 (bad response bytes, or
 * the stream is gone: close the stream connection). */
ssize_t sv_h2_stream_out(struct sv_worker *w, struct sv_conn *sc, const void *p, size_t len);

/* Room for response bytes: true when a gather of SV_IOV_MAX receive buffers surely fits. */
bool sv_h2_stream_can_take(struct sv_worker *w, struct sv_conn *sc);

/* The stream connection's exchange is over (response complete or given up): end the stream once
 * the buffered response is out; the stream connection is closed by h2.c afterwards. */
void sv_h2_stream_end(struct sv_worker *w, struct sv_conn *sc);

/* The stream connection is being closed (by conn.c or h2.c): reset the stream when its response
 * is not complete, give back flow-control credit, forget the association. */
void sv_h2_stream_closed(struct sv_worker *w, struct sv_conn *sc);

/* Describe the next request body bytes (with chunk framing when chunked) in st->iov/nseg.
 * Returns the byte count (0: nothing now); *done when this includes the end of the body. */
int64_t sv_h2_body_gather(struct sv_worker *w, struct sv_conn *sc, struct sv_sendst *st,
                          bool *done);

/* The body send described by the last gather completed. */
void sv_h2_body_sent(struct sv_worker *w, struct sv_conn *sc);

/* ---- conn.c services for h2.c (conn.c) ---- */

/* A new stream connection for h2 connection <parent> (same local address, client address, TLS
 * listener); state SV_C_H2 until its request is handed over; header timer armed. NULL when no
 * connection slot is free. */
struct sv_conn *sv_conn_h2_stream_open(struct sv_worker *w, struct sv_conn *parent);

/* The stream's request head (HTTP/1.1 text, head_len bytes) is in its ibuf: parse and route it
 * like a request read from a socket. head_len 0: the head did not fit (431). */
void sv_conn_h2_request(struct sv_worker *w, struct sv_conn *sc, uint32_t head_len);

/* Pump / close a connection; send what the TLS output holds (true when a send was submitted or
 * the connection closed); idle timer on (no stream in progress) or off. */
void sv_conn_h2_pump(struct sv_worker *w, struct sv_conn *c);
void sv_conn_h2_close(struct sv_worker *w, struct sv_conn *c);
/* The h2 connection <c> is over (its session ended cleanly): free the session, then end the
 * connection like an HTTP/1.1 one (close_notify, FIN, linger). */
void sv_conn_h2_end(struct sv_worker *w, struct sv_conn *c);
bool sv_conn_h2_flush(struct sv_worker *w, struct sv_conn *c);
/* Frame bytes for the client of h2 connection <c>: encrypted into its TLS output, or (h2c)
 * copied into its frame output area. Returns the bytes taken (0: full until a send completes)
 * or -1. True from sv_conn_h2_out_empty when nothing waits to be sent and no send is in flight. */
ssize_t sv_conn_h2_write(struct sv_worker *w, struct sv_conn *c, const void *p, size_t n);
bool sv_conn_h2_out_empty(struct sv_worker *w, struct sv_conn *c);
void sv_conn_h2_timer(struct sv_worker *w, struct sv_conn *c, bool idle);

/* Per-slot buffers of a stream connection: the request head it is parsed from (ibuf), the
 * staging area for the received header fields (its request output buffer, free until the
 * request is routed) and the response area (its TLS output area: unused, the stream has no TLS
 * of its own). Request bodies wait in h2.c's own per-slot buffers. */
void sv_conn_h2_ibuf(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap);
void sv_conn_h2_stage(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap);
void sv_conn_h2_resp(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap);

#endif

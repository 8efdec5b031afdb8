/* Client connections, upstream connections and the HTTP/1.1 proxying between them.
 *
 * Bytes arrive through multishot recv into the worker's provided buffers and sit in a per-socket
 * segment queue (struct sv_rx) until consumed. Request and response heads are copied into the
 * connection's head buffer and parsed there; bodies are sent on straight from the provided
 * buffers (one send in flight per direction, the buffer recycled when its send completes).
 * Backpressure: a socket whose queue holds B buffers has its recv cancelled until the queue
 * drains to B/2, so a slow reader stops the other side instead of growing memory.
 *
 * Lifetime: every submitted operation counts in the owner's <inflight>; closing cancels all
 * operations on the fd and frees the slot when <inflight> reaches 0. A send from a buffer that
 * belongs to the peer's queue keeps that buffer (<hold>) until the send completes, whichever side
 * closes first. Worker thread only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/cors.h"
#include "dataplane/dp_int.h"
#include "dataplane/h2.h"
#include "dataplane/h2_upstream.h"
#include "dataplane/ud.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/http/response.h"
#include "serval/http/serialize.h"
#include "serval/routing/generation.h"
#include "serval/tls/clienthello.h"

enum { T_NONE = 0, T_IDLE, T_HEADER, T_PROGRESS, T_UPSTREAM, T_LINGER, T_BACKOFF };

#define LINGER_MS 1000u

static void conn_pump(struct sv_worker *w, struct sv_conn *c);
static void close_conn(struct sv_worker *w, struct sv_conn *c);
static void close_up(struct sv_worker *w, struct sv_upconn *u);
static void head_step(struct sv_worker *w, struct sv_conn *c);
static void exchange_end(struct sv_worker *w, struct sv_conn *c);
static void upstream_failed(struct sv_worker *w, struct sv_upconn *u, int err);
static void deadline_clear(struct sv_worker *w, struct sv_conn *c);
static void deadline_arm(struct sv_worker *w, struct sv_conn *c);
static void deadline_fired(struct sv_worker *w, struct sv_conn *c);
static void try_timed_out(struct sv_worker *w, struct sv_conn *c);
static void retry_next_try(struct sv_worker *w, struct sv_conn *c);
static bool retry_keep_body(struct sv_worker *w, struct sv_conn *c);
static void up_send(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u, const void *p,
                    uint32_t len);
static bool retry_policy_start(struct sv_worker *w, struct sv_conn *c);
static void cl_consume(struct sv_worker *w, struct sv_conn *c, uint32_t n);

/* ---- small helpers ------------------------------------------------------------------------ */

static inline uint32_t bufs_b(const struct sv_worker *w)
{
    return w->dp->cfg.max_bufs_per_dir;
}

static inline char *ibuf(struct sv_worker *w, const struct sv_conn *c)
{
    return w->heads + (size_t)c->slot * w->head_stride;
}

static inline size_t ibuf_cap(const struct sv_worker *w)
{
    return (size_t)w->dp->cfg.max_header_size + 1024;
}

static inline size_t out_cap(const struct sv_worker *w)
{
    return (size_t)w->dp->cfg.max_header_size + 4096;
}

static inline char *req_out(struct sv_worker *w, const struct sv_conn *c)
{
    return ibuf(w, c) + ibuf_cap(w);
}

static inline char *resp_out(struct sv_worker *w, const struct sv_conn *c)
{
    return req_out(w, c) + out_cap(w);
}

/* TLS ciphertext output: the largest plaintext one client send carries (SV_IOV_MAX receive
 * buffers, or a head buffer) plus record overhead and room for a handshake flight. */
static inline size_t tls_out_cap(const struct sv_worker *w)
{
    size_t pt = SV_MAX((size_t)SV_IOV_MAX * w->dp->cfg.buf_size, out_cap(w));
    return pt + (pt / 16384 + 2) * 64 + 16384;
}

static inline size_t tls_cin_cap(const struct sv_worker *w)
{
    return w->dp->cfg.buf_size;
}

static inline char *tls_out(struct sv_worker *w, const struct sv_conn *c)
{
    return w->tls_mem + (size_t)c->slot * w->tls_stride;
}

static inline char *tls_cin(struct sv_worker *w, const struct sv_conn *c)
{
    return tls_out(w, c) + tls_out_cap(w);
}

static inline struct sv_conn *conn_at(struct sv_worker *w, uint32_t slot)
{
    return sv_slab_get(&w->conns, slot);
}

static inline struct sv_upconn *up_at(struct sv_worker *w, uint32_t slot)
{
    return sv_slab_get(&w->ups, slot);
}

static inline struct sv_upconn *up_of(struct sv_worker *w, const struct sv_conn *c)
{
    return c->up == SV_NO_SLOT ? NULL : up_at(w, c->up);
}

static inline uint64_t cud(struct sv_worker *w, const struct sv_conn *c, enum sv_op op)
{
    return sv_ud_make((uint8_t)op, c->slot, sv_slab_gen(&w->conns, c->slot));
}

static inline uint64_t uud(struct sv_worker *w, const struct sv_upconn *u, enum sv_op op)
{
    return sv_ud_make((uint8_t)op, u->slot, sv_slab_gen(&w->ups, u->slot));
}

static uint64_t rng_next(struct sv_worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

/* ---- segment queues ----------------------------------------------------------------------- */

/* The worker's segment table (set when the worker starts; worker thread only). */
static __thread struct sv_seg *t_segs;

static inline struct sv_seg *segq_front(struct sv_segq *q)
{
    SV_DASSERT(q->count > 0);
    return &t_segs[q->head];
}

static bool segq_push(struct sv_segq *q, uint16_t bid, uint32_t len)
{
    struct sv_seg *s = &t_segs[bid];
    s->bid = bid;
    s->off = 0;
    s->len = len;
    s->next = 0;
    if (q->count == 0)
        q->head = bid;
    else
        t_segs[q->tail].next = bid;
    q->tail = bid;
    q->count++;
    return true;
}

/* Remove the front segment without recycling its buffer; returns its bid. */
static uint16_t segq_pop_keep(struct sv_segq *q)
{
    struct sv_seg *s = segq_front(q);
    uint16_t bid = s->bid;
    q->head = s->next;
    q->count--;
    return bid;
}

static void seg_buf_done(struct sv_worker *w, struct sv_segq *q, uint16_t bid);

static void seg_consume(struct sv_worker *w, struct sv_segq *q, uint32_t n)
{
    struct sv_seg *s = segq_front(q);
    SV_ASSERT(n <= s->len);
    s->off += n;
    s->len -= n;
    if (s->len == 0)
        seg_buf_done(w, q, segq_pop_keep(q));
}

static void segq_clear(struct sv_worker *w, struct sv_segq *q)
{
    for (uint32_t i = 0; i < sv_io_buf_count(w->io) && q->count; i++)
        sv_io_buf_recycle(w->io, segq_pop_keep(q));
}

static inline char *seg_data(struct sv_worker *w, const struct sv_seg *s)
{
    return (char *)sv_io_buf(w->io, s->bid) + s->off;
}

/* Move body bytes that already arrived behind a serialized head in <out>, so the head and a
 * small body leave in one send (one TCP segment instead of two). Bytes moved are consumed from
 * <q>; *<parsed_done> is set when the body ended. A parser error stops the copy (errors are
 * sticky: the regular body path reports it). */
static void coalesce_body(struct sv_worker *w, struct sv_http_parser *p, struct sv_segq *q,
                          char *out, uint32_t *out_len, size_t cap, bool *parsed_done,
                          struct sv_conn *owner)
{
    for (unsigned i = 0; i < SV_SEGQ_CAP && !*parsed_done && q->count; i++) {
        struct sv_seg *sg = segq_front(q);
        if ((size_t)*out_len + sg->len > cap)
            return;
        size_t used = 0;
        bool done = false;
        if (sv_http_parse_body(p, seg_data(w, sg), sg->len, &used, &done) < 0)
            return;
        uint32_t n = (uint32_t)used;
        bool rest = n < sg->len;
        memcpy(out + *out_len, seg_data(w, sg), n);
        *out_len += n;
        if (n && owner)
            cl_consume(w, owner, n); /* <q> is owner->rx.q */
        else if (n)
            seg_consume(w, q, n);
        if (done)
            *parsed_done = true;
        if (rest || (!done && n == 0))
            return;
    }
}

/* Consume <n> bytes from the front of <q>, across segments. */
static void q_consume(struct sv_worker *w, struct sv_segq *q, uint32_t n)
{
    for (unsigned i = 0; n > 0 && i < SV_IOV_MAX + 1; i++) {
        struct sv_seg *sg = segq_front(q);
        uint32_t m = SV_MIN(n, sg->len);
        seg_consume(w, q, m);
        n -= m;
    }
    SV_ASSERT(n == 0);
}

/* Describe the next bytes of <q> to send in st->iov (up to SV_IOV_MAX buffers, zero-copy). With
 * a parser <p> only the bytes of the current message body are taken and *<done> is set at its
 * end; without one (tunnel) every byte is. Returns the byte count (0: nothing to send yet), or a
 * negative parser error when the very first segment is bad (later errors are sticky and show up
 * on the next call). */
static int64_t gather(struct sv_worker *w, struct sv_http_parser *p, struct sv_segq *q,
                      struct sv_sendst *st, bool *done)
{
    uint16_t bid = q->head;
    uint32_t k = 0;
    int64_t total = 0;
    for (uint32_t i = 0; i < q->count && k < SV_IOV_MAX; i++) {
        struct sv_seg *sg = &t_segs[bid];
        size_t used = sg->len;
        bool d = false;
        if (p) {
            int rc = sv_http_parse_body(p, seg_data(w, sg), sg->len, &used, &d);
            if (rc < 0) {
                if (total == 0)
                    return rc;
                break;
            }
        }
        if (used) {
            st->iov[k].iov_base = seg_data(w, sg);
            st->iov[k].iov_len = used;
            k++;
            total += (int64_t)used;
        }
        if (d) {
            *done = true;
            break;
        }
        if (used < sg->len)
            break;
        bid = sg->next;
    }
    st->nseg = (uint8_t)k;
    return total;
}

/* A consumed buffer of queue <q>: recycled, unless <q> is the plaintext queue of a TLS upstream,
 * which keeps it as its spare when it has none (upstream_tls.c). */
static void seg_buf_done(struct sv_worker *w, struct sv_segq *q, uint16_t bid)
{
    char *p = (char *)q;
    char *lo = (char *)sv_slab_get(&w->ups, 0);
    char *hi = (char *)sv_slab_get(&w->ups, sv_slab_cap(&w->ups));
    if (p >= lo && p < hi) {
        size_t stride = (size_t)((char *)sv_slab_get(&w->ups, 1) - lo);
        struct sv_upconn *u = up_at(w, (uint32_t)((size_t)(p - lo) / stride));
        if (q == &u->rx.q && u->tls) {
            sv_utls_buf_done(w, u, bid);
            return;
        }
    }
    sv_io_buf_recycle(w->io, bid);
}

/* ---- receive arming and backpressure ------------------------------------------------------- */

static void starve(struct sv_worker *w, struct sv_rx *rx, uint64_t handle);

/* Arm, keep or cancel the multishot recv of one socket according to its queue. */
static void sync_rx(struct sv_worker *w, struct sv_rx *rx, uint32_t extra, int fd,
                    uint64_t ud_recv, uint64_t ud_cancel, uint16_t *inflight)
{
    uint32_t b = bufs_b(w);
    uint32_t held = rx->q.count + extra;
    if (rx->paused && held <= b / 2)
        rx->paused = false;
    else if (!rx->paused && held >= b)
        rx->paused = true;
    bool want = !rx->eof && !rx->starved && !rx->paused;
    if (want && !rx->armed) {
        if (sv_io_recv_multishot(w->io, fd, ud_recv) == 0) {
            rx->armed = true;
            (*inflight)++;
        }
    } else if (!want && rx->armed && !rx->cancelling && !rx->eof) {
        if (sv_io_cancel_ud(w->io, ud_recv, ud_cancel) == 0) {
            rx->cancelling = true;
            (*inflight)++;
        }
    }
}

static void sync_conn_rx(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state == SV_C_CLOSING || c->h2s)
        return;
    /* TLS: unprocessed ciphertext counts; the few spares (SV_TLS_SPARES) do not, or a small B
     * could pause a connection whose only way forward is more ciphertext */
    sync_rx(w, &c->rx, c->tls_rawq.count, c->fd, cud(w, c, SV_OP_C_RECV),
            cud(w, c, SV_OP_C_CANCEL), &c->inflight);
}

static void sync_up_rx(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->state == SV_UP_CLOSING || u->state == SV_UP_CONNECTING)
        return;
    sync_rx(w, &u->rx, u->h2_rawq.count + u->tls_rawq.count, u->fd, uud(w, u, SV_OP_U_RECV),
            uud(w, u, SV_OP_U_CANCEL), &u->inflight);
}

/* Starved list: handles {1 = conn | 2 = upstream, slot, gen} waiting for free buffers. */
static void starve(struct sv_worker *w, struct sv_rx *rx, uint64_t handle)
{
    if (rx->starved)
        return;
    rx->starved = true;
    sv_stat_add(w, SV_DP_STAT_ENOBUFS, 1);
    uint32_t cap = sv_slab_cap(&w->conns) + sv_slab_cap(&w->ups);
    if (w->starved_n < cap)
        w->starved[w->starved_n++] = handle;
}

void sv_conn_retry_starved(struct sv_worker *w)
{
    if (w->starved_n == 0)
        return;
    unsigned total = sv_io_buf_count(w->io);
    if (sv_io_buf_in_use(w->io) > total - total / 4)
        return; /* wait until a quarter of the ring is free again */
    uint32_t n = w->starved_n;
    w->starved_n = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h = w->starved[i];
        uint32_t slot = sv_ud_slot(h), gen = sv_ud_gen(h);
        if (sv_ud_op(h) == 1) {
            if (slot >= sv_slab_cap(&w->conns) || sv_slab_gen(&w->conns, slot) != gen)
                continue;
            struct sv_conn *c = conn_at(w, slot);
            c->rx.starved = false;
            sync_conn_rx(w, c);
        } else {
            if (slot >= sv_slab_cap(&w->ups) || sv_slab_gen(&w->ups, slot) != gen)
                continue;
            struct sv_upconn *u = up_at(w, slot);
            u->rx.starved = false;
            sync_up_rx(w, u);
        }
    }
}

/* Handle the end-state of a recv completion common to both sides. Returns true when the bytes
 * (if any) were queued. */
static void rx_complete(struct sv_worker *w, struct sv_rx *rx, struct sv_segq *q,
                        const struct sv_io_cqe *e, uint16_t *inflight, bool discard,
                        uint64_t handle)
{
    if (!e->more) {
        rx->armed = false;
        rx->cancelling = false;
        SV_ASSERT(*inflight > 0);
        (*inflight)--;
    }
    if (e->res > 0) {
        SV_ASSERT(e->has_buf);
        if (discard)
            sv_io_buf_recycle(w->io, e->bid);
        else
            segq_push(q, e->bid, (uint32_t)e->res);
    } else if (e->res == 0) {
        rx->eof = true;
    } else if (e->res == -ENOBUFS) {
        starve(w, rx, handle);
    } else if (e->res != -ECANCELED) {
        rx->eof = true;
    } else if (e->has_buf) {
        sv_io_buf_recycle(w->io, e->bid);
    }
}

/* ---- timers ------------------------------------------------------------------------------- */

static void conn_timer(struct sv_worker *w, struct sv_conn *c, uint8_t kind, uint64_t ms)
{
    c->timer_kind = kind;
    if (kind == T_NONE || ms == 0)
        sv_timer_cancel(&w->wheel, &c->timer);
    else
        sv_timer_arm(&w->wheel, &c->timer, w->now_ms + ms);
}

/* ---- TLS: ciphertext in, plaintext segments out ------------------------------------------- */

/* Recycle the buffers a TLS connection holds outside its plaintext queue. */
static void tls_drop_bufs(struct sv_worker *w, struct sv_conn *c)
{
    segq_clear(w, &c->tls_rawq);
    for (unsigned i = 0; i < c->tls_nspare; i++)
        sv_io_buf_recycle(w->io, c->tls_spare[i]);
    c->tls_nspare = 0;
    c->tls_cin_len = 0;
}

/* A receive buffer whose ciphertext was fully copied out: keep a few for plaintext. */
static void tls_spare_put(struct sv_worker *w, struct sv_conn *c, uint16_t bid)
{
    if (c->tls_nspare < SV_TLS_SPARES)
        c->tls_spare[c->tls_nspare++] = bid;
    else
        sv_io_buf_recycle(w->io, bid);
}

/* With no ciphertext waiting, more than one spare serves nothing until new ciphertext arrives
 * (and each new receive buffer becomes a spare itself once copied out): give the others back to
 * the receive ring. The handshake's buffers (ClientHello, client Finished) would otherwise stay
 * with an idle keep-alive connection, and a small ring runs dry. One stays: see tls_in. */
static void tls_trim_spares(struct sv_worker *w, struct sv_conn *c)
{
    if (c->tls_rawq.count != 0)
        return;
    for (unsigned i = 0; c->tls_nspare > 1 && i < SV_TLS_SPARES; i++)
        sv_io_buf_recycle(w->io, c->tls_spare[--c->tls_nspare]);
}

/* Consume <n> bytes from the front of the client's plaintext queue. A TLS connection without a
 * spare keeps an emptied buffer as its spare instead of recycling it, so that plaintext always
 * has somewhere to go once the queue drained (see tls_in on why this matters); only one: every
 * buffer a connection keeps is missing from the worker's receive ring (idle keep-alive
 * connections holding several each ran a small ring dry). */
static void cl_consume(struct sv_worker *w, struct sv_conn *c, uint32_t n)
{
    if (!c->tls) {
        seg_consume(w, &c->rx.q, n);
        return;
    }
    struct sv_seg *s = segq_front(&c->rx.q);
    SV_ASSERT(n <= s->len);
    s->off += n;
    s->len -= n;
    if (s->len == 0) {
        uint16_t bid = segq_pop_keep(&c->rx.q);
        if (c->tls_nspare == 0)
            c->tls_spare[c->tls_nspare++] = bid;
        else
            sv_io_buf_recycle(w->io, bid);
    }
}

/* cl_consume across segments (q_consume for the client's plaintext queue). */
static void cl_q_consume(struct sv_worker *w, struct sv_conn *c, uint32_t n)
{
    for (unsigned i = 0; n > 0 && i < SV_IOV_MAX + 1; i++) {
        uint32_t m = SV_MIN(n, segq_front(&c->rx.q)->len);
        cl_consume(w, c, m);
        n -= m;
    }
    SV_ASSERT(n == 0);
}

/* Is there room for plaintext now: behind the last plaintext segment, or a spare? */
static bool tls_room(struct sv_worker *w, const struct sv_conn *c)
{
    if (c->tls_nspare)
        return true;
    if (!c->rx.q.count)
        return false;
    const struct sv_seg *t = &t_segs[c->rx.q.tail];
    return (size_t)t->off + t->len < w->dp->cfg.buf_size;
}

/* Send what the TLS output buffer holds when no client send is in flight. Returns true when a
 * send was submitted (or the connection was closed). */
static bool tls_flush(struct sv_worker *w, struct sv_conn *c)
{
    if (!c->tls || c->cl_send.kind != SV_SEND_NONE || c->state == SV_C_CLOSING || c->state == 0)
        return false;
    const uint8_t *p = NULL;
    size_t n = sv_tls_conn_out(&c->tls_c, &p);
    if (n == 0) {
        if (c->tls_fatal) {
            close_conn(w, c);
            return true;
        }
        return false;
    }
    if (sv_io_send(w->io, c->fd, p, (unsigned)n, cud(w, c, SV_OP_C_SEND)) < 0) {
        close_conn(w, c);
        return true;
    }
    c->inflight++;
    c->cl_send.kind = SV_SEND_TLS;
    c->cl_send.len = (uint32_t)n;
    return true;
}

/* Count a fatal TLS error by reason (handshake failures) or as a record error. */
static void tls_count_failure(struct sv_worker *w, const struct sv_conn *c, bool in_handshake)
{
    enum sv_dp_stat st = SV_DP_STAT_TLS_RECORD_ERRORS;
    if (in_handshake) {
        switch (sv_tls_conn_failure(&c->tls_c)) {
        case SV_TLS_FAIL_UNKNOWN_SNI:
            st = SV_DP_STAT_TLS_FAIL_SNI;
            break;
        case SV_TLS_FAIL_PEER_ALERT:
            st = SV_DP_STAT_TLS_FAIL_ALERT;
            break;
        default:
            st = SV_DP_STAT_TLS_FAIL_PROTOCOL;
            break;
        }
    }
    sv_stat_add(w, st, 1);
}

/* Graceful end of a TLS connection: queue close_notify (once; only after a completed handshake)
 * and submit it. Returns true when a send is in flight (the caller shuts the write side after
 * it completes: see on_client_send), false when there is nothing to wait for. */
static bool tls_close_notify(struct sv_worker *w, struct sv_conn *c)
{
    if (!c->tls || c->tls_fatal)
        return false;
    if (sv_tls_conn_shutdown(&c->tls_c) != 1)
        return false;
    sv_stat_add(w, SV_DP_STAT_TLS_CLOSE_NOTIFY, 1);
    return tls_flush(w, c) && c->state != SV_C_CLOSING;
}

/* Decrypt: copy ciphertext from the raw queue into the input area (each buffer emptied that way
 * becomes a spare), drive the handshake and records, and put plaintext into spares (or behind
 * the last plaintext segment when it has room) queued on c->rx.q. A close_notify counts as end
 * of input; a fatal error marks the connection to close after its alert is out.
 *
 * No stall with ciphertext waiting for plaintext room ("no room" = the last plaintext segment
 * is full and there is no spare; sets c->tls_noroom):
 *  - room is missing only while c->rx.q is not empty: every buffer that ever held plaintext came
 *    from the spares, and cl_consume() keeps one as a spare when there is none (the first spare
 *    is the buffer of the ClientHello, which always fits the input area); so once the queue
 *    drained there is a spare. The one exception is hold_up_send: an upstream that fails
 *    in the middle of a body send keeps those buffers until its send completes. If that left no
 *    spare while ciphertext of the same request waits in the input area, progress waits for the
 *    client's next bytes (a new spare) or the timeout; that exchange is ending with an error
 *    answer anyway (a body that was partly sent is not retried).
 *  - whoever consumes c->rx.q then runs tls_in again: head parsing and body coalescing run inside
 *    conn_pump, which loops back to tls_in while c->tls_noroom and tls_room(); the upstream send
 *    completion (the other consumer) ends in conn_pump, which starts with tls_in.
 *  - plaintext wolfSSL decrypted but could not hand over stays inside wolfSSL and comes out on
 *    that next call (sv_tls_conn_recv with no new input).
 * tests/integration/test_tls_ops.py (pipelined requests in records of 1 byte to 16 KiB with
 * --recv-buffers 32) exercises exactly this. */
static void tls_in(struct sv_worker *w, struct sv_conn *c)
{
    c->tls_noroom = false;
    if (!c->tls || c->tls_fatal || c->state == SV_C_CLOSING || c->state == SV_C_LINGER ||
        c->state == SV_C_H2 || sv_tls_conn_state(&c->tls_c) == SV_TLS_CLOSED)
        return; /* closed: by the peer (rx.eof is set) or by tls_close_with_last */
    char *cin = tls_cin(w, c);
    size_t cap = tls_cin_cap(w);
    size_t bsz = w->dp->cfg.buf_size;
    for (unsigned it = 0; it < 4 * SV_SEGQ_CAP; it++) {
        for (unsigned k = 0; k < SV_SEGQ_CAP && c->tls_rawq.count && c->tls_cin_len < cap; k++) {
            struct sv_seg *sg = segq_front(&c->tls_rawq);
            uint32_t n = (uint32_t)SV_MIN((size_t)sg->len, cap - c->tls_cin_len);
            memcpy(cin + c->tls_cin_len, seg_data(w, sg), n);
            c->tls_cin_len += n;
            if (n == sg->len) {
                tls_spare_put(w, c, segq_pop_keep(&c->tls_rawq));
            } else {
                sg->off += n;
                sg->len -= n;
            }
        }
        /* plaintext destination: room behind the last plaintext segment, else a spare */
        char *plain = NULL;
        size_t pcap = 0;
        bool append = false;
        if (c->rx.q.count) {
            struct sv_seg *t = &t_segs[c->rx.q.tail];
            size_t end = (size_t)t->off + t->len;
            if (end < bsz) {
                plain = (char *)sv_io_buf(w->io, t->bid) + end;
                pcap = bsz - end;
                append = true;
            }
        }
        if (!plain && c->tls_nspare) {
            plain = sv_io_buf(w->io, c->tls_spare[c->tls_nspare - 1]);
            pcap = bsz;
        }
        size_t used = 0;
        bool hs = sv_tls_conn_state(&c->tls_c) == SV_TLS_HANDSHAKE;
        ssize_t r = sv_tls_conn_recv(&c->tls_c, cin, c->tls_cin_len, &used, plain, pcap);
        if (hs && sv_tls_conn_state(&c->tls_c) != SV_TLS_HANDSHAKE && r != -EPROTO) {
            sv_stat_add(w, SV_DP_STAT_TLS_HANDSHAKES, 1);
            if (sv_tls_conn_resumed(&c->tls_c))
                sv_stat_add(w, SV_DP_STAT_TLS_RESUMED, 1);
        }
        if (used) {
            memmove(cin, cin + used, c->tls_cin_len - used);
            c->tls_cin_len -= (uint32_t)used;
        }
        if (r > 0) {
            if (append)
                t_segs[c->rx.q.tail].len += (uint32_t)r;
            else
                segq_push(&c->rx.q, c->tls_spare[--c->tls_nspare], (uint32_t)r);
            continue;
        }
        if (r == -EPIPE) {
            c->rx.eof = true; /* close_notify: no more requests */
            return;
        }
        if (r < 0) {
            char eb[96];
            sv_log_rl(1, SV_LOG_INFO, "dataplane", "TLS failure: %s",
                      sv_tls_conn_error(&c->tls_c, eb, sizeof(eb)));
            tls_count_failure(w, c, hs);
            c->tls_fatal = true;
            return;
        }
        if (used == 0 && (c->tls_rawq.count == 0 || c->tls_cin_len == cap || pcap == 0)) {
            c->tls_noroom = pcap == 0;
            tls_trim_spares(w, c);
            return;
        }
    }
    c->tls_noroom = true; /* bound reached: let conn_pump come back */
}

/* ---- upstream pool ------------------------------------------------------------------------ */

static uint32_t ep_hash(const struct sv_route_endpoint *ep)
{
    const unsigned char *p = (const unsigned char *)&ep->addr;
    uint32_t h = 2166136261u;
    for (socklen_t i = 0; i < ep->addrlen && i < sizeof(ep->addr); i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static bool ep_eq(const struct sv_route_endpoint *a, const struct sv_route_endpoint *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void pool_remove(struct sv_worker *w, struct sv_upconn *u)
{
    uint32_t bkt = u->hash % SV_POOL_BUCKETS;
    if (u->pool_prev != SV_NO_SLOT)
        up_at(w, u->pool_prev)->pool_next = u->pool_next;
    else
        w->pool_head[bkt] = u->pool_next;
    if (u->pool_next != SV_NO_SLOT)
        up_at(w, u->pool_next)->pool_prev = u->pool_prev;
    u->pool_next = u->pool_prev = SV_NO_SLOT;
    sv_timer_cancel(&w->wheel, &u->timer);
}

static void h2u_drop_spares(struct sv_worker *w, struct sv_upconn *u)
{
    for (unsigned i = 0; i < u->h2_nspare; i++)
        sv_io_buf_recycle(w->io, u->h2_spare[i]);
    u->h2_nspare = 0;
}

static void pool_put(struct sv_worker *w, struct sv_upconn *u)
{
    uint32_t bkt = u->hash % SV_POOL_BUCKETS;
    h2u_drop_spares(w, u);
    sv_utls_idle(w, u);
    u->state = SV_UP_IDLE;
    u->owner = SV_NO_SLOT;
    u->reused = false;
    u->pool_prev = SV_NO_SLOT;
    u->pool_next = w->pool_head[bkt];
    if (u->pool_next != SV_NO_SLOT)
        up_at(w, u->pool_next)->pool_prev = u->slot;
    w->pool_head[bkt] = u->slot;
    sv_timer_arm(&w->wheel, &u->timer, w->now_ms + w->dp->cfg.upstream_idle_timeout_ms);
    sync_up_rx(w, u);
}

/* Idle <u> (no owner) took in frames or records that needed no answer (h2c PING or SETTINGS,
 * TLS session tickets): the receive buffers they came in, kept as spares while decoding, go back
 * to the ring as pool_put gives them back, else every idle connection an upstream keeps talking
 * to would hold some and enough of them dry the worker's ring. Then receive again. */
static void up_idle_rx(struct sv_worker *w, struct sv_upconn *u)
{
    h2u_drop_spares(w, u);
    sv_utls_idle(w, u);
    sync_up_rx(w, u);
}

/* An idle pooled connection to <ep> speaking h2c (<h2>) or HTTP/1.1, over TLS with context <cl>
 * (NULL: cleartext), or NULL. */
static struct sv_upconn *pool_take(struct sv_worker *w, const struct sv_route_endpoint *ep,
                                   bool h2, const struct sv_tls_client *cl)
{
    uint32_t h = ep_hash(ep);
    uint32_t s = w->pool_head[h % SV_POOL_BUCKETS];
    for (uint32_t i = 0; s != SV_NO_SLOT && i < sv_slab_cap(&w->ups); i++) {
        struct sv_upconn *u = up_at(w, s);
        if (u->hash == h && ep_eq(&u->ep, ep) && !u->rx.eof && u->rx.q.count == 0 &&
            u->h2 == h2 && (!h2 || sv_h2u_reusable(w, u)) && u->tls_cli == cl) {
            pool_remove(w, u);
            return u;
        }
        s = u->pool_next;
    }
    return NULL;
}

/* ---- upstream connections ----------------------------------------------------------------- */

static void maybe_free_up(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->state != SV_UP_CLOSING || u->inflight != 0)
        return;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    u->state = 0;
    sv_utls_close(w, u);
    if (u->mirror)
        sv_mirror_release(w, u);
    sv_h2u_release(w, u);
    sv_slab_free(&w->ups, u->slot);
}

/* The client send in flight from <u>'s queue keeps its buffers until it completes. */
static void hold_client_send(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u)
{
    if (c->cl_send.kind == SV_SEND_SEG) {
        SV_ASSERT(c->cl_hold_n == 0 && c->cl_send.nseg <= u->rx.q.count);
        for (unsigned i = 0; i < c->cl_send.nseg; i++)
            c->cl_hold[c->cl_hold_n++] = segq_pop_keep(&u->rx.q);
        c->cl_send.kind = SV_SEND_BYTES; /* completion must not touch u's queue */
    }
    (void)w;
}

/* The upstream send in flight from <c>'s queue keeps its buffers until it completes. */
static void hold_up_send(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u)
{
    if (u->send_busy && c->up_send.kind == SV_SEND_SEG) {
        SV_ASSERT(u->hold_n == 0 && c->up_send.nseg <= c->rx.q.count);
        for (unsigned i = 0; i < c->up_send.nseg; i++)
            u->hold[u->hold_n++] = segq_pop_keep(&c->rx.q);
    }
    c->up_send.kind = SV_SEND_NONE;
    (void)w;
}

/* Detach the upstream from its client; close it or return it to the pool. */
static void up_detach(struct sv_worker *w, struct sv_conn *c, bool close_it)
{
    struct sv_upconn *u = up_of(w, c);
    if (!u)
        return;
    hold_client_send(w, c, u);
    hold_up_send(w, c, u);
    c->up = SV_NO_SLOT;
    u->owner = SV_NO_SLOT;
    if (close_it || u->send_busy || (u->h2 && !sv_h2u_reusable(w, u)))
        close_up(w, u);
    else
        pool_put(w, u);
}

static void close_up(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->state == SV_UP_CLOSING || u->state == 0)
        return;
    if (u->owner != SV_NO_SLOT) {
        struct sv_conn *c = conn_at(w, u->owner);
        hold_client_send(w, c, u);
        hold_up_send(w, c, u);
        c->up = SV_NO_SLOT;
        u->owner = SV_NO_SLOT;
    }
    if (u->state == SV_UP_IDLE)
        pool_remove(w, u);
    sv_timer_cancel(&w->wheel, &u->timer);
    u->state = SV_UP_CLOSING;
    segq_clear(w, &u->rx.q);
    segq_clear(w, &u->h2_rawq);
    h2u_drop_spares(w, u);
    sv_utls_drop(w, u);
    if (u->inflight > 0 && sv_io_cancel_fd(w->io, u->fd, uud(w, u, SV_OP_U_CANCEL)) == 0)
        u->inflight++;
    maybe_free_up(w, u);
}

/* The TLS context of the backend set <c> is routed to (BackendTLSPolicy), NULL for cleartext.
 * TLS passthrough relays the client's own TLS untouched. */
static struct sv_tls_client *up_tls_client(const struct sv_conn *c)
{
    return c->gen && !c->passthrough ? sv_generation_backend_tls(c->gen, c->set_id) : NULL;
}

/* Open a new upstream connection for <c> to c->ep. Returns 0 or -errno. */
static int dial(struct sv_worker *w, struct sv_conn *c)
{
    int64_t slot = sv_slab_alloc(&w->ups);
    if (slot < 0)
        return -ENOSPC;
    struct sv_upconn *u = up_at(w, (uint32_t)slot);
    u->slot = (uint32_t)slot;
    u->fd = socket(c->ep.addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        int err = -errno;
        sv_slab_free(&w->ups, u->slot);
        return err;
    }
    int one = 1;
    (void)setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->backend && c->backend->app_proto == SV_ROUTE_APP_H2C && !up_tls_client(c) &&
        sv_h2u_open(w, u) < 0) {
        close(u->fd);
        sv_slab_free(&w->ups, u->slot);
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "h2c upstream: no session free");
        return -ENOSPC;
    }
    u->state = SV_UP_CONNECTING;
    u->owner = c->slot;
    u->ep = c->ep;
    u->hash = ep_hash(&c->ep);
    u->pool_next = u->pool_prev = SV_NO_SLOT;
    struct sv_tls_client *cl = up_tls_client(c);
    if (cl && sv_utls_open(w, u, cl) < 0) {
        close(u->fd);
        u->state = 0;
        sv_slab_free(&w->ups, u->slot);
        return -ENOMEM;
    }
    if (sv_io_connect(w->io, u->fd, &u->ep.addr.sa, u->ep.addrlen, uud(w, u, SV_OP_U_CONNECT)) < 0) {
        close(u->fd);
        sv_h2u_release(w, u);
        sv_utls_close(w, u);
        sv_slab_free(&w->ups, u->slot);
        return -EBUSY;
    }
    u->inflight++;
    c->up = u->slot;
    sv_stat_add(w, SV_DP_STAT_UP_CONNECTS, 1);
    return 0;
}

void sv_conn_up_close(struct sv_worker *w, struct sv_upconn *u)
{
    close_up(w, u);
}

/* ---- client connections: local answers and closing ------------------------------------------ */

static void count_status(struct sv_worker *w, int status)
{
    if (status >= 100 && status < 600)
        sv_stat_add(w, (enum sv_dp_stat)(SV_DP_STAT_RESP_1XX + status / 100 - 1), 1);
}

static void release_route(struct sv_worker *w, struct sv_conn *c)
{
    if (c->n_mirror)
        sv_mirror_detach(w, c);
    if (c->gen) {
        sv_generation_unref(c->gen, w->idx);
        c->gen = NULL;
        c->action = NULL;
        c->backend = NULL;
    }
}

static void maybe_free_conn(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state != SV_C_CLOSING || c->inflight != 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = 0;
    c->passthrough = false;
    if (c->tls) {
        sv_tls_conn_close(&c->tls_c);
        c->tls = false;
    }
    if (!c->h2s)
        sv_stat_add(w, SV_DP_STAT_CONNS_ACTIVE, (uint64_t)-1);
    c->h2s = false;
    sv_slab_free(&w->conns, c->slot);
}

static void close_conn(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state == SV_C_CLOSING || c->state == 0)
        return;
    sv_timer_cancel(&w->wheel, &c->timer);
    deadline_clear(w, c);
    if (c->up != SV_NO_SLOT)
        up_detach(w, c, true);
    release_route(w, c);
    if (c->h2s)
        sv_h2_stream_closed(w, c);
    if (c->h2)
        sv_h2_conn_closed(w, c); /* closes its stream connections */
    c->state = SV_C_CLOSING;
    segq_clear(w, &c->rx.q);
    if (c->tls)
        tls_drop_bufs(w, c);
    if (c->inflight > 0 && sv_io_cancel_fd(w->io, c->fd, cud(w, c, SV_OP_C_CANCEL)) == 0)
        c->inflight++;
    maybe_free_conn(w, c);
}

/* Everything was sent and the connection ends: shut our write side and read until the client
 * closes (or a short timer), so a client still sending does not turn our answer into a reset. */
static void linger(struct sv_worker *w, struct sv_conn *c)
{
    deadline_clear(w, c);
    if (c->up != SV_NO_SLOT)
        up_detach(w, c, true);
    release_route(w, c);
    if (c->h2s) {
        /* HTTP/2 stream: END_STREAM once the buffered response is out; h2.c closes it */
        c->state = SV_C_LINGER;
        conn_timer(w, c, T_LINGER, w->dp->cfg.idle_timeout_ms);
        sv_h2_stream_end(w, c);
        return;
    }
    segq_clear(w, &c->rx.q);
    if (c->tls)
        tls_drop_bufs(w, c);
    if (c->rx.eof && !c->tls) {
        close_conn(w, c);
        return;
    }
    c->state = SV_C_LINGER;
    conn_timer(w, c, T_LINGER, LINGER_MS);
    if (tls_close_notify(w, c)) {
        c->tls_shut_wr = true; /* on_client_send shuts the write side once it is out */
    } else if (c->state == SV_C_LINGER && c->rx.eof) {
        close_conn(w, c);
        return;
    } else if (c->state == SV_C_LINGER) {
        (void)shutdown(c->fd, SHUT_WR);
    }
    if (c->state == SV_C_LINGER)
        sync_conn_rx(w, c);
}

static void cl_pump(struct sv_worker *w, struct sv_conn *c);

/* Answer with <bytes> (static, or in resp_out). <keep>: the connection continues afterwards
 * (only when the request has no body left to read). */
static void respond_local(struct sv_worker *w, struct sv_conn *c, struct sv_str bytes, int status,
                          bool keep)
{
    deadline_clear(w, c);
    if (c->up != SV_NO_SLOT)
        up_detach(w, c, true);
    release_route(w, c);
    count_status(w, status);
    c->canned = bytes;
    c->canned_sent = 0;
    c->resp_out_len = c->resp_out_sent = 0;
    c->close_after = !keep;
    c->state = SV_C_LOCAL;
    conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
    cl_pump(w, c);
}

static void respond_error(struct sv_worker *w, struct sv_conn *c, int status)
{
    switch (status) {
    case 400:
    case 501:
    case 505:
        sv_stat_add(w, SV_DP_STAT_ERR_BAD_REQUEST, 1);
        break;
    case 431:
        sv_stat_add(w, SV_DP_STAT_ERR_TOO_LARGE, 1);
        break;
    case 404:
        sv_stat_add(w, SV_DP_STAT_ERR_NO_ROUTE, 1);
        break;
    case 502:
        sv_stat_add(w, SV_DP_STAT_ERR_BAD_GATEWAY, 1);
        break;
    case 503:
        sv_stat_add(w, SV_DP_STAT_ERR_UNAVAILABLE, 1);
        break;
    case 504:
        sv_stat_add(w, SV_DP_STAT_ERR_TIMEOUT, 1);
        break;
    default:
        break;
    }
    /* Keep the connection only for answers to a complete, body-less, well-formed request. */
    bool keep = (status == 404 || status == 503 || status == 500) && c->state == SV_C_PROXY_PRE &&
                c->req_keepalive && c->req_body == SV_HTTP_BODY_NONE && !w->draining;
    struct sv_str bytes = sv_http_canned(status, !keep);
    if (!bytes.ptr)
        bytes = sv_http_canned(500, true);
    respond_local(w, c, bytes, status, keep);
}

/* ---- the next request on a kept-alive connection ------------------------------------------ */

static void reset_request(struct sv_worker *w, struct sv_conn *c)
{
    sv_http_parser_reset(&c->req_p);
    sv_http_parser_reset(&c->resp_p);
    c->ibuf_len = 0;
    c->req_body = 0;
    c->req_keepalive = false;
    c->req_http10 = false;
    c->req_parsed_done = c->req_done = c->req_body_sent_any = false;
    c->upgrade = c->retried_other = c->retried_fresh = c->head_timer = false;
    deadline_clear(w, c);
    c->retries = 0;
    c->backoff = false;
    c->req_out_len = c->req_out_sent = 0;
    c->up_send.kind = SV_SEND_NONE;
    c->resp_body = 0;
    c->resp_started = c->resp_head_done = c->resp_parsed_done = c->resp_complete = false;
    c->client_keep = c->close_after = false;
    c->canned = SV_STR_NULL;
    c->canned_sent = 0;
    c->resp_out_len = c->resp_out_sent = 0;
    c->status = 0;
    c->state = SV_C_HEAD;
    conn_timer(w, c, T_IDLE, w->dp->cfg.idle_timeout_ms);
}

/* ---- routing a parsed request ------------------------------------------------------------ */

static ssize_t header_join(const void *ctx, struct sv_str name, char *out, size_t cap)
{
    return sv_http_head_join(ctx, name, out, cap);
}

static bool method_idempotent(enum sv_http_method m)
{
    return m == SV_HTTP_GET || m == SV_HTTP_HEAD || m == SV_HTTP_OPTIONS || m == SV_HTTP_PUT ||
           m == SV_HTTP_DELETE || m == SV_HTTP_TRACE;
}

static void up_pump(struct sv_worker *w, struct sv_conn *c);

static bool mods_names(const struct sv_http_header_mods *m, struct sv_str name)
{
    for (uint32_t i = 0; i < m->n_set; i++)
        if (sv_str_eq_nocase(m->set[i].name, name))
            return true;
    for (uint32_t i = 0; i < m->n_remove; i++)
        if (sv_str_eq_nocase(m->remove[i], name))
            return true;
    return false;
}

/* The header modifiers of a rule (<r>) followed by those of its backendRef (<b>), as one list
 * with the same effect as applying them in that order: a rule's set/add of a name the backendRef
 * sets or removes is dropped. Returns <r> or <b> when the other is NULL, else the worker's
 * scratch (valid until the next call; used at once by the head writers). Falls back to the
 * rule's list alone if the merge does not fit. */
static const struct sv_http_header_mods *merge_mods(struct sv_worker *w,
                                                    const struct sv_http_header_mods *r,
                                                    const struct sv_http_header_mods *b)
{
    if (!r || !b)
        return r ? r : b;
    struct sv_http_header_mods *m = &w->mods_tmp;
    memset(m, 0, sizeof(*m));
    m->set = w->mods_set;
    m->add = w->mods_add;
    m->remove = w->mods_remove;
    for (uint32_t i = 0; i < r->n_set; i++)
        if (!mods_names(b, r->set[i].name)) {
            if (m->n_set == SV_MODS_MAX)
                goto too_many;
            w->mods_set[m->n_set++] = r->set[i];
        }
    for (uint32_t i = 0; i < b->n_set; i++) {
        if (m->n_set == SV_MODS_MAX)
            goto too_many;
        w->mods_set[m->n_set++] = b->set[i];
    }
    for (uint32_t i = 0; i < r->n_add; i++)
        if (!mods_names(b, r->add[i].name)) {
            if (m->n_add == SV_MODS_MAX)
                goto too_many;
            w->mods_add[m->n_add++] = r->add[i];
        }
    for (uint32_t i = 0; i < b->n_add; i++) {
        if (m->n_add == SV_MODS_MAX)
            goto too_many;
        w->mods_add[m->n_add++] = b->add[i];
    }
    for (uint32_t i = 0; i < r->n_remove + b->n_remove; i++) {
        if (m->n_remove == SV_MODS_MAX)
            goto too_many;
        w->mods_remove[m->n_remove++] = i < r->n_remove ? r->remove[i] : b->remove[i - r->n_remove];
    }
    return m;
too_many:
    sv_log_rl(1, SV_LOG_WARN, "dataplane", "too many header modifiers to merge; rule's only");
    return r;
}

/* Give the request an upstream connection (pooled unless <fresh>). Returns 0 or -errno. */
static int attach_upstream(struct sv_worker *w, struct sv_conn *c, bool fresh)
{
    struct sv_tls_client *cl = up_tls_client(c);
    bool h2 = !cl && c->backend && c->backend->app_proto == SV_ROUTE_APP_H2C;
    struct sv_upconn *u = fresh ? NULL : pool_take(w, &c->ep, h2, cl);
    if (u) {
        u->state = SV_UP_ACTIVE;
        u->owner = c->slot;
        u->reused = true;
        c->up = u->slot;
        sv_stat_add(w, SV_DP_STAT_UP_REUSES, 1);
        return 0;
    }
    return dial(w, c);
}

/* The response head wait of one try (T_UPSTREAM): the gateway's --upstream-timeout, unless the
 * route has timeouts of its own; those replace it and run on the deadline timer (0 here: no
 * head wait timer). */
/* The absolute deadline of a route timeout, or 0 (none) when it is not set or set to "0s". */
static uint64_t route_deadline(const struct sv_worker *w, uint64_t timeout_ms)
{
    return timeout_ms && timeout_ms != SV_ROUTE_TIMEOUT_OFF ? w->now_ms + timeout_ms : 0;
}

static uint64_t route_timeout(const struct sv_worker *w, const struct sv_route_action *a)
{
    if (a->ext->backend_timeout_ms || a->ext->request_timeout_ms)
        return 0;
    return w->dp->cfg.upstream_timeout_ms;
}

/* The TLS connection a request arrived on: its own, or its h2 connection's (NULL: cleartext). */
static const struct sv_tls_conn *req_tls(struct sv_worker *w, const struct sv_conn *c)
{
    if (c->tls)
        return &c->tls_c;
    if (c->h2s && conn_at(w, c->h2_parent)->tls)
        return &conn_at(w, c->h2_parent)->tls_c;
    return NULL; /* cleartext, h2c streams included */
}

static void route_request(struct sv_worker *w, struct sv_conn *c)
{
    const struct sv_http_head *h = &c->req;
    const struct sv_tls_conn *tc = req_tls(w, c);
    sv_stat_add(w, SV_DP_STAT_REQUESTS, 1);
    c->method = h->method;
    /* an HTTP/2 stream carries one exchange */
    c->req_keepalive = (h->flags & SV_HTTP_F_KEEP_ALIVE) != 0 && !c->h2s;
    c->req_http10 = h->version_minor == 0;
    c->upgrade = (h->flags & SV_HTTP_F_UPGRADE) != 0;
    enum sv_http_body_kind body = sv_http_body_begin(&c->req_p);
    c->req_body = (uint8_t)body;
    c->state = SV_C_PROXY_PRE;
    if (h->method == SV_HTTP_CONNECT) {
        respond_error(w, c, 501);
        return;
    }
    if (body == SV_HTTP_BODY_NONE || body == SV_HTTP_BODY_TUNNEL) {
        c->req_body = SV_HTTP_BODY_NONE;
        c->req_parsed_done = true;
    }
    const struct sv_generation *gen = w->gen;
    if (!gen) {
        respond_error(w, c, 503);
        return;
    }
    if (tc) {
        /* GATEWAY_API_RULES §7: the Host must select the listener the SNI selected */
        int sel = sv_generation_select_listener(gen, &c->local.sa, h->host);
        if (sel >= 0) {
            size_t nl = 0;
            const struct sv_route_listener *ls = sv_generation_listeners(gen, &nl);
            if ((size_t)sel < nl &&
                !sv_str_eq_nocase(ls[sel].hostname, sv_tls_conn_listener_hostname(tc))) {
                respond_error(w, c, 421);
                return;
            }
        }
    }
    struct sv_route_request rq = {
        .local = &c->local.sa,
        .host = h->host,
        .path = h->path,
        .query = h->query,
        .method = h->method_str,
        .header = header_join,
        .header_ctx = h,
    };
    struct sv_route_result res;
    if (sv_route_lookup(gen, &rq, &res) < 0 || !res.action) {
        respond_error(w, c, 404);
        return;
    }
    const struct sv_route_action *a = res.action;
    char *scratch = resp_out(w, c);
    size_t scap = out_cap(w);
    if (a->ext->fixed_status) {
        respond_error(w, c, a->ext->fixed_status);
        return;
    }
    if (a->ext->cors) { /* preflights are answered here; allowed origins remembered for the response */
        bool keep = c->req_keepalive && c->req_body == SV_HTTP_BODY_NONE && !w->draining;
        struct sv_str ans;
        int st = sv_dp_cors_request(c, a, keep, scratch, scap, &ans);
        if (st < 0)
            respond_error(w, c, 500);
        else if (st > 0)
            respond_local(w, c, ans, st, keep);
        if (st != 0)
            return;
    }
    /* a backendRef's filters apply only when that backend is picked: its RequestRedirect answers
     * like a rule's, its URLRewrite replaces the rule's (routing/table.h) */
    const struct sv_route_backend *be = a->ext->redirect ? NULL : sv_route_pick_backend(a, rng_next(w));
    struct sv_route_action be_redirect;
    struct sv_route_action_ext be_redirect_ext;
    if (be && be->redirect) {
        be_redirect = *a;
        be_redirect_ext = *a->ext;
        be_redirect_ext.redirect = be->redirect;
        be_redirect.ext = &be_redirect_ext;
        res.action = &be_redirect;
    }
    if (res.action->ext->redirect) {
        char *loc = req_out(w, c);
        ssize_t ln = sv_route_redirect_location(&res, tc ? SV_STR_LIT("https") : SV_STR_LIT("http"), h->host, h->path,
                                                h->query, loc, scap / 2);
        int st = sv_route_redirect_status(&res);
        bool keep = c->req_keepalive && c->req_body == SV_HTTP_BODY_NONE && !w->draining;
        char line[96];
        int ll = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nLocation: ", st, sv_http_reason(st));
        const char *tail = keep ? "\r\nContent-Length: 0\r\n\r\n"
                                : "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        size_t tl = strlen(tail);
        if (ln < 0 || ll < 0 || (size_t)ll >= sizeof(line) || (size_t)ll + (size_t)ln + tl > scap) {
            respond_error(w, c, 500);
            return;
        }
        size_t n = 0;
        memcpy(scratch, line, (size_t)ll);
        n += (size_t)ll;
        memcpy(scratch + n, loc, (size_t)ln);
        n += (size_t)ln;
        memcpy(scratch + n, tail, tl);
        n += tl;
        respond_local(w, c, sv_str_make(scratch, (size_t)n), st, keep);
        return;
    }
    if (!be || be->kind == SV_ROUTE_BACKEND_INVALID) {
        respond_error(w, c, 500);
        return;
    }
    const struct sv_route_endpoint *ep =
        sv_generation_pick_endpoint(gen, be->set_id, &w->rr[be->set_id % SV_RR_CURSORS], NULL);
    if (!ep) {
        respond_error(w, c, 503);
        return;
    }
    struct sv_http_rewrite rw = {
        .mods = merge_mods(w, a->ext->request_mods, be->request_mods),
        .xff = sv_str_make(c->xff, c->xff_len),
        .xf_proto = tc ? SV_STR_LIT("https") : SV_STR_LIT("http"),
        .xf_port = c->local_port,
        .upgrade = c->upgrade,
        .http10 = c->req_http10, /* so a 1.0 client never gets a chunked body */
    };
    if (c->xff_len == 0)
        rw.xff = SV_STR_NULL;
    const struct sv_route_rewrite *urw = be->rewrite ? be->rewrite : a->ext->rewrite;
    if (urw) {
        if (urw->hostname.len)
            rw.host = urw->hostname;
        if (urw->path.type != SV_ROUTE_PATH_MOD_NONE) {
            ssize_t pn = sv_route_apply_path_mod(&urw->path, &res, h->path, scratch, scap);
            if (pn < 0 || (size_t)pn + 1 + h->query.len > scap) {
                respond_error(w, c, 500);
                return;
            }
            size_t tn = (size_t)pn;
            if (h->flags & SV_HTTP_F_QUERY) {
                scratch[tn++] = '?';
                memcpy(scratch + tn, h->query.ptr, h->query.len);
                tn += h->query.len;
            }
            rw.target = sv_str_make(scratch, tn);
        }
    }
    ssize_t n = sv_http_write_request_head(h, &rw, req_out(w, c), out_cap(w));
    if (n < 0) {
        respond_error(w, c, 431);
        return;
    }
    c->req_out_len = (uint32_t)n;
    c->req_out_sent = 0;
    if (!c->req_parsed_done) /* body bytes behind the head go in the same send (and a retry) */
        coalesce_body(w, &c->req_p, &c->rx.q, req_out(w, c), &c->req_out_len, out_cap(w),
                      &c->req_parsed_done, c);
    /* mirrors get the head, the body bytes behind it, then the rest as it is forwarded */
    for (uint32_t i = 0; i < a->ext->n_mirrors; i++) {
        if (!sv_route_mirror_pick(&a->ext->mirrors[i], rng_next(w)))
            continue;
        const struct sv_route_endpoint *mep = sv_generation_pick_endpoint(
            gen, a->ext->mirrors[i].set_id, &w->rr[a->ext->mirrors[i].set_id % SV_RR_CURSORS], NULL);
        if (mep)
            sv_mirror_start(w, c, mep, req_out(w, c), (uint32_t)n, req_out(w, c) + n,
                            c->req_out_len - (uint32_t)n, c->req_parsed_done,
                            sv_generation_backend_tls(gen, a->ext->mirrors[i].set_id));
    }
    sv_generation_ref(gen, w->idx);
    c->gen = gen;
    c->action = a;
    c->backend = be;
    c->set_id = be->set_id;
    c->ep = *ep;
    c->upstream_timeout_ms = route_timeout(w, a);
    c->req_deadline_ms = route_deadline(w, a->ext->request_timeout_ms);
    c->try_deadline_ms = route_deadline(w, a->ext->backend_timeout_ms);
    deadline_arm(w, c);
    sv_http_parser_reset(&c->resp_p);
    sv_http_parser_set_request_method(&c->resp_p, c->method);
    c->ibuf_len = 0; /* the request head is serialized; ibuf now collects the response head */
    int rc = attach_upstream(w, c, false);
    if (rc < 0) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "upstream connection failed: %s", strerror(-rc));
        respond_error(w, c, rc == -ENOSPC ? 503 : 502);
        return;
    }
    c->state = SV_C_PROXY;
    /* Connecting and sending the head are bounded by the upstream timeout too. */
    conn_timer(w, c, T_UPSTREAM, c->upstream_timeout_ms);
    up_pump(w, c);
}

/* Retry once: on a fresh connection when a pooled one failed, else on another endpoint. Only
 * idempotent requests whose body was not sent yet. Returns true when the retry is under way. */
static bool try_retry(struct sv_worker *w, struct sv_conn *c, bool was_reused)
{
    if (!method_idempotent(c->method) || c->req_body_sent_any || c->resp_started || !c->gen)
        return false;
    if (was_reused && !c->retried_fresh) {
        c->retried_fresh = true;
    } else if (!c->retried_other) {
        c->retried_other = true;
        struct sv_route_endpoint failed = c->ep;
        const struct sv_route_endpoint *ep = sv_generation_pick_endpoint(
            c->gen, c->set_id, &w->rr[c->set_id % SV_RR_CURSORS], &failed);
        if (!ep)
            return false;
        c->ep = *ep;
    } else {
        return false;
    }
    c->req_out_sent = 0;
    c->req_done = false;
    if (dial(w, c) < 0)
        return false;
    sv_stat_add(w, SV_DP_STAT_RETRIES, 1);
    return true;
}

/* An upstream connection failed (connect error, send error, closed or reset) while serving
 * <u>->owner. */
static void upstream_failed(struct sv_worker *w, struct sv_upconn *u, int err)
{
    uint32_t owner = u->owner;
    bool reused = u->reused;
    bool connecting = u->state == SV_UP_CONNECTING || !sv_utls_ready(u); /* TLS handshake too */
    close_up(w, u);
    sv_stat_add(w, connecting ? SV_DP_STAT_UP_CONNECT_ERRORS : SV_DP_STAT_UP_RESETS, 1);
    if (owner == SV_NO_SLOT)
        return;
    struct sv_conn *c = conn_at(w, owner);
    if (c->passthrough && c->state == SV_C_TUNNEL) {
        close_conn(w, c); /* TLS passthrough: the client sees its connection end */
        return;
    }
    if (c->state != SV_C_PROXY)
        return;
    if (c->resp_head_done) {
        close_conn(w, c); /* part of the response is out: the client sees the connection end */
        return;
    }
    bool policy = c->action && c->action->ext->retry;
    if (policy ? retry_policy_start(w, c) : try_retry(w, c, reused)) {
        if (!policy)
            up_pump(w, c);
        return;
    }
    sv_log_rl(1, SV_LOG_WARN, "dataplane", "upstream failed before a response: %s",
              err ? strerror(-err) : "closed");
    c->state = SV_C_PROXY_PRE;
    c->req_keepalive = c->req_keepalive && c->req_parsed_done && !c->req_body_sent_any;
    /* retries of a route policy all failed: 503, the "unavailable after retries" of other
     * gateways (conformance HTTPRouteRetryConnectionError accepts 500 or 503) */
    respond_error(w, c, policy && c->retries > 0 ? 503 : 502);
}

/* ---- request deadline and retries (HTTPRoute timeouts and retry) ----------------------------
 *
 * timeouts.request bounds the whole exchange, from the parsed request head to the end of the
 * response (across tries); timeouts.backendRequest bounds each try, from its start to the end of
 * its response. Both run on the connection's deadline timer (dl_timer, armed at the earlier of
 * the two). Expiry before the response head went to the client is a 504 (or, for a try, a retry
 * when the route's policy allows it); after the head the response cannot be completed, so the
 * connection is closed.
 *
 * A retry policy repeats a try that failed (a listed response status, a connection error or
 * reset before the response head, a try timeout) while the request can be replayed: its bytes
 * sent so far all come from req_out (head plus a body that fit behind it), so sending req_out
 * again replays it, and nothing of the response reached the client. The next try waits
 * retry.backoff on the connection timer (T_BACKOFF), then goes to another endpoint when the set
 * has one. */

static void deadline_arm(struct sv_worker *w, struct sv_conn *c)
{
    uint64_t d = c->req_deadline_ms;
    if (c->try_deadline_ms && (!d || c->try_deadline_ms < d))
        d = c->try_deadline_ms;
    if (d)
        sv_timer_arm(&w->wheel, &c->dl_timer, d);
    else
        sv_timer_cancel(&w->wheel, &c->dl_timer);
}

static void deadline_clear(struct sv_worker *w, struct sv_conn *c)
{
    c->req_deadline_ms = c->try_deadline_ms = 0;
    sv_timer_cancel(&w->wheel, &c->dl_timer);
}

/* Whether the current request may be tried again under its route's retry policy. */
static bool retry_policy_allows(const struct sv_conn *c)
{
    const struct sv_route_retry *rt = c->action ? c->action->ext->retry : NULL;
    return rt && c->state == SV_C_PROXY && c->gen && !c->resp_head_done &&
           !c->req_body_sent_any && c->retries < rt->attempts &&
           c->cl_send.kind == SV_SEND_NONE && c->resp_out_sent == c->resp_out_len;
}

/* Under a retry policy, request body bytes that arrive after the head are copied behind it in
 * req_out while they fit (instead of being sent from the receive buffers), so the request stays
 * replayable. Sends what was added; returns true when a send was submitted. */
static bool retry_keep_body(struct sv_worker *w, struct sv_conn *c)
{
    if (!c->action || !c->action->ext->retry || c->req_body_sent_any || c->req_parsed_done ||
        c->rx.q.count == 0)
        return false;
    uint32_t before = c->req_out_len;
    coalesce_body(w, &c->req_p, &c->rx.q, req_out(w, c), &c->req_out_len, out_cap(w),
                  &c->req_parsed_done, c);
    if (c->n_mirror && (c->req_out_len > before || c->req_parsed_done)) {
        /* mirrors get these body bytes as if they had been forwarded from the receive buffers */
        struct iovec iov = {req_out(w, c) + before, c->req_out_len - before};
        sv_mirror_feed(w, c, &iov, iov.iov_len ? 1 : 0, c->req_parsed_done);
    }
    struct sv_upconn *u = up_of(w, c);
    if (c->req_out_sent == c->req_out_len || !u)
        return false;
    up_send(w, c, u, req_out(w, c) + c->req_out_sent, c->req_out_len - c->req_out_sent);
    return true;
}

/* Start the next try now: another endpoint of the set when there is one, a new connection. */
static void retry_next_try(struct sv_worker *w, struct sv_conn *c)
{
    c->backoff = false;
    uint32_t *cursor = &w->rr[c->set_id % SV_RR_CURSORS];
    struct sv_route_endpoint failed = c->ep;
    const struct sv_route_endpoint *ep =
        sv_generation_pick_endpoint(c->gen, c->set_id, cursor, &failed);
    if (!ep)
        ep = sv_generation_pick_endpoint(c->gen, c->set_id, cursor, NULL);
    int rc = ep ? 0 : -ENOENT;
    if (ep) {
        c->ep = *ep;
        rc = attach_upstream(w, c, true);
    }
    if (rc < 0) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "retry: no upstream connection: %s", strerror(-rc));
        c->state = SV_C_PROXY_PRE;
        c->req_keepalive = false;
        respond_error(w, c, rc == -ENOENT || rc == -ENOSPC ? 503 : 502);
        return;
    }
    const struct sv_route_action *a = c->action;
    c->try_deadline_ms = route_deadline(w, a->ext->backend_timeout_ms);
    deadline_arm(w, c);
    conn_timer(w, c, T_UPSTREAM, c->upstream_timeout_ms);
    up_pump(w, c);
}

/* The current try failed (a retryable status, connection error or try timeout): drop its
 * upstream connection and its response, and schedule the next try. Returns false, touching
 * nothing, when the policy does not allow one more (no policy, attempts used, not replayable). */
static bool retry_policy_start(struct sv_worker *w, struct sv_conn *c)
{
    if (!retry_policy_allows(c)) {
        if (c->action && c->action->ext->retry && c->retries >= c->action->ext->retry->attempts)
            sv_stat_add(w, SV_DP_STAT_ROUTE_RETRIES_EXHAUSTED, 1);
        return false;
    }
    c->retries++;
    sv_stat_add(w, SV_DP_STAT_ROUTE_RETRIES, 1);
    if (c->up != SV_NO_SLOT)
        up_detach(w, c, true); /* its response (or what came of it) is not wanted */
    sv_http_parser_reset(&c->resp_p);
    sv_http_parser_set_request_method(&c->resp_p, c->method);
    c->ibuf_len = 0;
    c->resp_started = false;
    c->resp_out_len = c->resp_out_sent = 0;
    c->status = 0;
    c->req_out_sent = 0; /* replay the head (and the body bytes behind it) */
    c->req_done = false;
    c->try_deadline_ms = 0; /* timeouts.request keeps running through the backoff */
    deadline_arm(w, c);
    uint32_t backoff = c->action->ext->retry->backoff_ms;
    if (backoff) {
        c->backoff = true;
        conn_timer(w, c, T_BACKOFF, backoff);
    } else {
        retry_next_try(w, c);
    }
    return true;
}

/* The current try took too long (timeouts.backendRequest, or the response head wait). */
static void try_timed_out(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state != SV_C_PROXY || c->backoff)
        return;
    if (c->resp_head_done) {
        close_conn(w, c); /* the response cannot be completed any more */
        return;
    }
    if (retry_policy_start(w, c))
        return;
    sv_log_rl(1, SV_LOG_WARN, "dataplane", "upstream response timeout");
    c->state = SV_C_PROXY_PRE;
    c->req_keepalive = false;
    respond_error(w, c, 504);
}

/* The deadline timer of <c> fired: the request deadline or the try deadline passed. */
static void deadline_fired(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state != SV_C_PROXY) {
        deadline_clear(w, c);
        return;
    }
    if (c->req_deadline_ms && w->now_ms >= c->req_deadline_ms) {
        deadline_clear(w, c);
        sv_stat_add(w, SV_DP_STAT_REQUEST_TIMEOUTS, 1);
        if (c->resp_head_done) {
            close_conn(w, c);
            return;
        }
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "request timeout");
        c->state = SV_C_PROXY_PRE;
        c->req_keepalive = false;
        respond_error(w, c, 504);
        return;
    }
    if (c->try_deadline_ms && w->now_ms >= c->try_deadline_ms) {
        c->try_deadline_ms = 0;
        deadline_arm(w, c);
        try_timed_out(w, c);
        return;
    }
    deadline_arm(w, c); /* fired early (wheel resolution): wait for the rest */
}

/* ---- request direction: client → upstream ------------------------------------------------- */

/* TLS upstream: encrypt and send; completes like a cleartext send of <len> bytes of <kind>. */
static void up_send_tls(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u,
                        const struct iovec *iov, unsigned n, uint8_t kind, uint32_t len)
{
    int rc = sv_utls_send(w, u, iov, n, len);
    if (rc < 0) {
        upstream_failed(w, u, rc);
        return;
    }
    c->up_send.kind = kind;
    c->up_send.len = len;
}

static void up_send(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u, const void *p,
                    uint32_t len)
{
    if (u->tls) {
        struct iovec iov = {(void *)(uintptr_t)p, len};
        up_send_tls(w, c, u, &iov, 1, SV_SEND_BYTES, len);
        return;
    }
    if (u->h2) { /* h2c: the session takes the bytes; the completion comes from sv_h2u_run */
        struct iovec one = {(void *)p, len};
        if (sv_h2u_send(w, u, &one, 1, len) < 0) {
            upstream_failed(w, u, -EPROTO);
            return;
        }
    } else if (sv_io_send(w->io, u->fd, p, len, uud(w, u, SV_OP_U_SEND)) < 0) {
        upstream_failed(w, u, -EBUSY);
        return;
    }
    u->inflight++;
    u->send_busy = true;
    c->up_send.kind = SV_SEND_BYTES;
    c->up_send.len = len;
}

/* Send the gathered segments in c->up_send (zero-copy from the client's buffers). */
static void up_send_segs(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u, int64_t len)
{
    struct sv_sendst *st = &c->up_send;
    if (u->tls) {
        up_send_tls(w, c, u, st->iov, st->nseg, SV_SEND_SEG, (uint32_t)len);
        return;
    }
    memset(&st->msg, 0, sizeof(st->msg));
    st->msg.msg_iov = st->iov;
    st->msg.msg_iovlen = st->nseg;
    if (u->h2) {
        if (sv_h2u_send(w, u, st->iov, st->nseg, (uint32_t)len) < 0) {
            upstream_failed(w, u, -EPROTO);
            return;
        }
    } else if (sv_io_sendmsg(w->io, u->fd, &st->msg, uud(w, u, SV_OP_U_SEND)) < 0) {
        upstream_failed(w, u, -EBUSY);
        return;
    }
    u->inflight++;
    u->send_busy = true;
    st->kind = SV_SEND_SEG;
    st->len = (uint32_t)len;
}

static void up_pump(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_upconn *u = up_of(w, c);
    if (!u || u->state != SV_UP_ACTIVE || u->send_busy || !sv_utls_ready(u))
        return;
    if (u->h2 && !sv_h2u_can_take(w, u))
        return; /* pumped again from sv_h2u_run when the session has room */
    if (c->req_out_sent < c->req_out_len) {
        up_send(w, c, u, req_out(w, c) + c->req_out_sent, c->req_out_len - c->req_out_sent);
        return;
    }
    if (c->state == SV_C_TUNNEL) {
        bool d = false;
        int64_t n = c->rx.q.count ? gather(w, NULL, &c->rx.q, &c->up_send, &d) : 0;
        if (n > 0)
            up_send_segs(w, c, u, n);
        else if (c->rx.eof)
            (void)shutdown(u->fd, SHUT_WR);
        return;
    }
    if (c->req_done)
        return;
    if (retry_keep_body(w, c))
        return;
    if (!c->req_parsed_done && c->h2s) {
        /* HTTP/2 stream: the body comes from its DATA frames (h2.c) */
        bool done = false;
        int64_t n = sv_h2_body_gather(w, c, &c->up_send, &done);
        if (done)
            c->req_parsed_done = true;
        if (c->n_mirror && (n > 0 || done))
            sv_mirror_feed(w, c, c->up_send.iov, c->up_send.nseg, done);
        if (n > 0) {
            c->req_body_sent_any = true;
            up_send_segs(w, c, u, n);
            if (c->up_send.kind == SV_SEND_SEG)
                c->up_send.kind = SV_SEND_H2;
            return;
        }
    } else if (!c->req_parsed_done && c->rx.q.count) {
        bool done = false;
        int64_t n = gather(w, &c->req_p, &c->rx.q, &c->up_send, &done);
        if (n < 0) {
            sv_log_rl(1, SV_LOG_INFO, "dataplane", "bad request body: %s",
                      sv_http_error_name((int)n));
            if (c->resp_head_done) {
                close_conn(w, c);
            } else {
                c->state = SV_C_PROXY_PRE;
                c->req_keepalive = false;
                respond_error(w, c, 400);
            }
            return;
        }
        if (done)
            c->req_parsed_done = true;
        if (c->n_mirror && (n > 0 || done))
            sv_mirror_feed(w, c, c->up_send.iov, c->up_send.nseg, done);
        if (n > 0) {
            c->req_body_sent_any = true;
            up_send_segs(w, c, u, n);
            return;
        }
    }
    if (c->req_parsed_done) {
        c->req_done = true;
        if (c->resp_complete) {
            exchange_end(w, c);
            return;
        }
        if (!c->resp_head_done)
            conn_timer(w, c, T_UPSTREAM, c->upstream_timeout_ms);
    } else if (c->rx.eof && c->rx.q.count == 0) {
        close_conn(w, c); /* client went away in the middle of its request body */
    }
}

/* ---- response direction: upstream → client ------------------------------------------------ */

/* TLS: the last bytes of a connection's last answer were just encrypted (the exchange ends with
 * linger once their send completes): queue close_notify behind them so that both leave in one
 * send; linger then finds it sent and only shuts the write side (one send and one completion
 * less per Connection: close / HTTP/1.0 exchange). tls_in reads nothing more afterwards. */
static void tls_close_with_last(struct sv_worker *w, struct sv_conn *c)
{
    if (!c->tls || c->tls_fatal || c->h2 || c->h2s)
        return;
    bool last;
    if (c->canned.ptr)
        last = c->canned_sent == c->canned.len && c->close_after;
    else
        last = c->state == SV_C_PROXY && c->resp_out_sent == c->resp_out_len &&
               c->resp_parsed_done && c->req_done && (!c->client_keep || w->draining);
    if (last && sv_tls_conn_shutdown(&c->tls_c) == 1)
        sv_stat_add(w, SV_DP_STAT_TLS_CLOSE_NOTIFY, 1);
}

static void cl_send(struct sv_worker *w, struct sv_conn *c, const void *p, uint32_t len)
{
    if (c->h2s) {
        /* HTTP/2 stream: h2.c converts the bytes into frames; accounted at once */
        ssize_t t = sv_h2_stream_out(w, c, p, len);
        if (t < 0) {
            close_conn(w, c);
            return;
        }
        if (c->canned.ptr)
            c->canned_sent += (uint32_t)t;
        else
            c->resp_out_sent += (uint32_t)t;
        if (t > 0 && c->state == SV_C_PROXY && c->resp_head_done)
            conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
        return;
    }
    if (c->tls) {
        /* encrypt what fits now and account it at once; the ciphertext goes out from the
         * connection's output buffer */
        ssize_t t = sv_tls_conn_send(&c->tls_c, p, len);
        if (t < 0 || (t == 0 && sv_tls_conn_out(&c->tls_c, &(const uint8_t *){NULL}) == 0)) {
            close_conn(w, c);
            return;
        }
        if (c->canned.ptr)
            c->canned_sent += (uint32_t)t;
        else
            c->resp_out_sent += (uint32_t)t;
        tls_close_with_last(w, c);
        (void)tls_flush(w, c);
        return;
    }
    if (sv_io_send(w->io, c->fd, p, len, cud(w, c, SV_OP_C_SEND)) < 0) {
        close_conn(w, c);
        return;
    }
    c->inflight++;
    c->cl_send.kind = SV_SEND_BYTES;
    c->cl_send.len = len;
}

/* Send the gathered segments in c->cl_send (zero-copy from the upstream's buffers). */
static void cl_send_segs(struct sv_worker *w, struct sv_conn *c, int64_t len)
{
    struct sv_sendst *st = &c->cl_send;
    if (c->h2s) {
        /* all of the gathered (parsed) bytes must be taken: cl_pump checked the room */
        struct sv_upconn *u = up_of(w, c);
        SV_ASSERT(u);
        for (unsigned i = 0; i < st->nseg; i++)
            if (sv_h2_stream_out(w, c, st->iov[i].iov_base, st->iov[i].iov_len) !=
                (ssize_t)st->iov[i].iov_len) {
                close_conn(w, c);
                return;
            }
        q_consume(w, &u->rx.q, (uint32_t)len);
        conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
        return;
    }
    if (c->tls) {
        /* the gathered bytes were parsed already: all of them must be encrypted (the output
         * buffer is sized for SV_IOV_MAX buffers); then their buffers go back at once */
        struct sv_upconn *u = up_of(w, c);
        SV_ASSERT(u);
        for (unsigned i = 0; i < st->nseg; i++) {
            ssize_t t = sv_tls_conn_send(&c->tls_c, st->iov[i].iov_base, st->iov[i].iov_len);
            if (t != (ssize_t)st->iov[i].iov_len) {
                sv_log_rl(1, SV_LOG_WARN, "dataplane", "TLS encrypt failed or output full");
                close_conn(w, c);
                return;
            }
        }
        q_consume(w, &u->rx.q, (uint32_t)len);
        tls_close_with_last(w, c);
        (void)tls_flush(w, c);
        return;
    }
    memset(&st->msg, 0, sizeof(st->msg));
    st->msg.msg_iov = st->iov;
    st->msg.msg_iovlen = st->nseg;
    if (sv_io_sendmsg(w->io, c->fd, &st->msg, cud(w, c, SV_OP_C_SEND)) < 0) {
        close_conn(w, c);
        return;
    }
    c->inflight++;
    st->kind = SV_SEND_SEG;
    st->len = (uint32_t)len;
}

static void exchange_end(struct sv_worker *w, struct sv_conn *c)
{
    deadline_clear(w, c);
    struct sv_upconn *u = up_of(w, c);
    if (u) {
        bool clean = (c->resp.flags & SV_HTTP_F_KEEP_ALIVE) &&
                     c->resp_body != SV_HTTP_BODY_UNTIL_CLOSE && c->req_done &&
                     u->rx.q.count == 0 && !u->rx.eof && !u->send_busy && sv_utls_quiet(u);
        up_detach(w, c, !clean);
    }
    release_route(w, c);
    if (!c->client_keep || w->draining) {
        linger(w, c);
        return;
    }
    reset_request(w, c);
    head_step(w, c);
}

static int resp_flags(const struct sv_conn *c)
{
    return (c->client_keep ? SV_HTTP_RESP_KEEP_ALIVE : 0) | (c->req_http10 ? SV_HTTP_RESP_CLIENT_10 : 0);
}

static void bad_upstream_response(struct sv_worker *w, struct sv_conn *c, struct sv_upconn *u,
                                  int rc)
{
    sv_log_rl(1, SV_LOG_WARN, "dataplane", "bad upstream response: %s", sv_http_error_name(rc));
    close_up(w, u);
    c->state = SV_C_PROXY_PRE;
    c->req_keepalive = false;
    respond_error(w, c, 502);
}

/* Collect and parse the response head from the upstream's queue. */
static void resp_step(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_upconn *u = up_of(w, c);
    if (!u || c->resp_head_done || c->resp_out_sent < c->resp_out_len)
        return;
    for (unsigned i = 0; i < SV_SEGQ_CAP && u->rx.q.count; i++) {
        struct sv_seg *s = segq_front(&u->rx.q);
        size_t room = ibuf_cap(w) - c->ibuf_len;
        if (room == 0) {
            bad_upstream_response(w, c, u, SV_HTTP_E_HEAD_TOO_LARGE);
            return;
        }
        uint32_t n = (uint32_t)SV_MIN((size_t)s->len, room);
        memcpy(ibuf(w, c) + c->ibuf_len, seg_data(w, s), n);
        c->ibuf_len += n;
        size_t hl = 0;
        int rc = sv_http_parse_head(&c->resp_p, ibuf(w, c), c->ibuf_len, &c->resp, &hl);
        if (rc == SV_HTTP_AGAIN) {
            seg_consume(w, &u->rx.q, n);
            continue;
        }
        if (rc < 0) {
            bad_upstream_response(w, c, u, rc);
            return;
        }
        uint32_t excess = c->ibuf_len - (uint32_t)hl;
        seg_consume(w, &u->rx.q, n - excess);
        c->ibuf_len = 0;
        if (c->resp.flags & SV_HTTP_F_INTERIM) {
            unsigned fl = SV_HTTP_RESP_KEEP_ALIVE | (c->req_http10 ? SV_HTTP_RESP_CLIENT_10 : 0);
            ssize_t on = sv_http_write_response_head(&c->resp, NULL, fl, resp_out(w, c),
                                                     out_cap(w)); /* 0: not for HTTP/1.0 */
            sv_http_parser_reset(&c->resp_p);
            sv_http_parser_set_request_method(&c->resp_p, c->method);
            if (on > 0) {
                c->resp_out_len = (uint32_t)on;
                c->resp_out_sent = 0;
                return; /* parse the rest once the interim head is out */
            }
            continue;
        }
        if (c->action->ext->retry && sv_route_retry_on_status(c->action->ext->retry, c->resp.status) &&
            retry_policy_start(w, c))
            return; /* this response is dropped with its connection */
        enum sv_http_body_kind body = sv_http_body_begin(&c->resp_p);
        c->resp_body = (uint8_t)body;
        c->status = c->resp.status;
        bool tunnel = body == SV_HTTP_BODY_TUNNEL;
        c->client_keep = !tunnel && c->req_keepalive && !w->draining &&
                         body != SV_HTTP_BODY_UNTIL_CLOSE;
        const struct sv_http_header_mods *rm =
            merge_mods(w, c->action->ext->response_mods, c->backend->response_mods);
        rm = sv_dp_cors_response_mods(w, c, rm);
        ssize_t on = sv_http_write_response_head(&c->resp, rm, (unsigned)resp_flags(c),
                                                 resp_out(w, c), out_cap(w));
        if (on < 0) {
            bad_upstream_response(w, c, u, SV_HTTP_E_HEAD_TOO_LARGE);
            return;
        }
        c->resp_out_len = (uint32_t)on;
        c->resp_out_sent = 0;
        c->resp_head_done = true;
        count_status(w, c->status);
        if (body == SV_HTTP_BODY_NONE)
            c->resp_parsed_done = true;
        else if (!tunnel)
            coalesce_body(w, &c->resp_p, &u->rx.q, resp_out(w, c), &c->resp_out_len,
                          out_cap(w), &c->resp_parsed_done, NULL);
        if (tunnel) {
            c->state = SV_C_TUNNEL; /* idle tunnels close after --idle-timeout, like nginx */
            deadline_clear(w, c);   /* timeouts bound the upgrade exchange, not the tunnel */
            conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
        } else {
            conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
        }
        return;
    }
    if (u->rx.eof && u->rx.q.count == 0)
        upstream_failed(w, u, 0);
}

static void cl_pump(struct sv_worker *w, struct sv_conn *c)
{
    if (c->cl_send.kind != SV_SEND_NONE || c->state == SV_C_CLOSING || c->state == SV_C_LINGER)
        return;
    if (c->canned.ptr) {
        if (c->canned_sent < c->canned.len) {
            cl_send(w, c, c->canned.ptr + c->canned_sent, (uint32_t)(c->canned.len - c->canned_sent));
            return;
        }
        if (c->close_after || c->h2s) {
            linger(w, c);
        } else {
            reset_request(w, c);
            head_step(w, c);
        }
        return;
    }
    if (c->resp_out_sent < c->resp_out_len) {
        cl_send(w, c, resp_out(w, c) + c->resp_out_sent, c->resp_out_len - c->resp_out_sent);
        return;
    }
    struct sv_upconn *u = up_of(w, c);
    if (c->state == SV_C_TUNNEL) {
        bool d = false;
        int64_t n = u && u->rx.q.count ? gather(w, NULL, &u->rx.q, &c->cl_send, &d) : 0;
        if (n > 0)
            cl_send_segs(w, c, n);
        else if (!u || u->rx.eof)
            linger(w, c);
        return;
    }
    if (!c->resp_head_done)
        return;
    if (c->h2s && !sv_h2_stream_can_take(w, c))
        return; /* pumped again when the stream's response area drained */
    if (u && !c->resp_parsed_done && u->rx.q.count) {
        bool done = false;
        int64_t n = gather(w, &c->resp_p, &u->rx.q, &c->cl_send, &done);
        if (n < 0) {
            sv_log_rl(1, SV_LOG_WARN, "dataplane", "bad upstream body: %s",
                      sv_http_error_name((int)n));
            close_conn(w, c);
            return;
        }
        if (done)
            c->resp_parsed_done = true;
        if (n > 0) {
            cl_send_segs(w, c, n);
            return;
        }
    }
    if (c->resp_parsed_done) {
        if (c->req_done)
            exchange_end(w, c);
        else
            c->resp_complete = true; /* the rest of the request body still goes upstream */
        return;
    }
    if (!u || (u->rx.eof && u->rx.q.count == 0)) {
        if (u && c->resp_body == SV_HTTP_BODY_UNTIL_CLOSE && sv_http_parse_eof(&c->resp_p) == 0) {
            c->resp_parsed_done = true;
            exchange_end(w, c);
            return;
        }
        sv_stat_add(w, SV_DP_STAT_UP_RESETS, 1);
        close_conn(w, c); /* upstream died in the middle of the body */
    }
}

/* ---- request heads ------------------------------------------------------------------------ */

/* ---- TLS passthrough ---------------------------------------------------------------------
 *
 * A connection on a TLS passthrough bind (TLSRoute) is never decrypted: its first bytes are
 * moved into its request output area (receive buffers recycled at once, so a client sending a
 * byte at a time holds no buffers) until the ClientHello is complete, its SNI is routed like a
 * Host with path "/", and the connection becomes a tunnel to a fresh connection to the picked
 * endpoint: the kept bytes go first (as a request head would), then everything else as it
 * arrives, untouched. Anything else (not a ClientHello, no route, no endpoint, a ClientHello
 * larger than the area, the header timeout, an upstream failure) closes the connection. */
static void passthrough_step(struct sv_worker *w, struct sv_conn *c)
{
    size_t cap = out_cap(w);
    char *b = req_out(w, c);
    for (uint32_t i = 0; i < sv_io_buf_count(w->io) && c->rx.q.count && c->req_out_len < cap;
         i++) {
        const struct sv_seg *s = segq_front(&c->rx.q);
        uint32_t k = (uint32_t)SV_MIN((size_t)s->len, cap - c->req_out_len);
        memcpy(b + c->req_out_len, seg_data(w, s), k);
        c->req_out_len += k;
        cl_consume(w, c, k);
    }
    size_t n = c->req_out_len;
    char sni[SV_TLS_SNI_MAX + 1];
    int rc = sv_tls_clienthello_sni((const uint8_t *)b, n, sni, sizeof(sni), NULL);
    if (rc == -EAGAIN && n < cap && !c->rx.eof && !w->draining) {
        if (!c->head_timer) {
            c->head_timer = true;
            conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
        }
        return;
    }
    const struct sv_generation *gen = w->gen;
    struct sv_route_request rq = {.local = &c->local.sa,
                                  .host = sv_str_make(sni, rc > 0 ? (size_t)rc : 0),
                                  .path = SV_STR_LIT("/"),
                                  .method = SV_STR_LIT("GET")};
    struct sv_route_result res;
    const struct sv_route_backend *be = NULL;
    const struct sv_route_endpoint *ep = NULL;
    if (rc >= 0 && gen && sv_route_lookup(gen, &rq, &res) == 0 && res.action &&
        !res.action->ext->fixed_status)
        be = sv_route_pick_backend(res.action, rng_next(w));
    if (be && be->kind == SV_ROUTE_BACKEND_SET)
        ep = sv_generation_pick_endpoint(gen, be->set_id, &w->rr[be->set_id % SV_RR_CURSORS],
                                         NULL);
    if (!ep) {
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "TLS passthrough: %s%s closed",
                  rc < 0 ? "not a ClientHello" : "no route or endpoint for SNI ",
                  rc < 0 ? "," : sni);
        close_conn(w, c);
        return;
    }
    sv_generation_ref(gen, w->idx);
    c->gen = gen;
    c->action = res.action;
    c->backend = be;
    c->set_id = be->set_id;
    c->ep = *ep;
    c->req_out_sent = 0; /* the ClientHello (and whatever followed it) goes first */
    if (attach_upstream(w, c, true) < 0) {
        close_conn(w, c);
        return;
    }
    c->state = SV_C_TUNNEL;
    conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
    up_pump(w, c);
}

static void h2_input(struct sv_worker *w, struct sv_conn *c);

/* h2c with prior knowledge: does cleartext connection <c> begin with the HTTP/2 preface?
 * 1 yes, 0 not enough bytes yet, -1 no. The bytes stay queued. */
static int h2c_preface(struct sv_worker *w, struct sv_conn *c)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t have = 0, want = sizeof(preface) - 1;
    uint16_t bid = c->rx.q.head;
    for (uint32_t i = 0; i < c->rx.q.count && have < want; i++) {
        const struct sv_seg *sg = &t_segs[bid];
        size_t k = SV_MIN((size_t)sg->len, want - have);
        if (memcmp(seg_data(w, sg), preface + have, k) != 0)
            return -1;
        have += k;
        bid = sg->next;
    }
    return have == want ? 1 : 0;
}

/* A partial preface (h2c_preface 0: fewer than its 24 bytes queued, all matching) waits in one
 * receive buffer: the bytes of later segments move behind the first one's and their buffers go
 * back to the ring. A client trickling the preface must not hold a buffer per TCP segment: a
 * few such connections would dry the worker's ring (and one would pause at bufs_b buffers and
 * never see the rest) until the header timeout, where an HTTP/1.1 head is copied out at once. */
static void h2c_compact(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_segq *q = &c->rx.q;
    struct sv_seg *h = segq_front(q);
    char *base = sv_io_buf(w->io, h->bid);
    memmove(base, base + h->off, h->len);
    h->off = 0;
    for (unsigned i = 0; i < SV_SEGQ_CAP && q->count > 1; i++) {
        struct sv_seg *sg = &t_segs[h->next];
        SV_ASSERT((size_t)h->len + sg->len < w->dp->cfg.buf_size);
        memcpy(base + h->len, seg_data(w, sg), sg->len);
        h->len += sg->len;
        h->next = sg->next;
        if (q->tail == sg->bid)
            q->tail = h->bid;
        q->count--;
        sv_io_buf_recycle(w->io, sg->bid);
    }
    sync_conn_rx(w, c); /* a receive paused for the held buffers resumes */
}

/* The first bytes of a cleartext connection decide between HTTP/1.1 and h2c (prior knowledge:
 * the HTTP/2 preface). Returns true when the connection was handed to the HTTP/2 frontend or
 * must wait for more bytes. Without a free session an h2c client gets HTTP/1.1's answer to
 * its preface (400). */
static bool h2c_step(struct sv_worker *w, struct sv_conn *c)
{
    if (c->h2c_checked || c->tls || c->passthrough || c->h2s || c->ibuf_len || !c->rx.q.count)
        return false;
    int rc = h2c_preface(w, c);
    if (rc == 0 && !c->rx.eof) {
        if (c->rx.q.count > 1)
            h2c_compact(w, c);
        if (!c->head_timer) {
            c->head_timer = true;
            conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
        }
        return true;
    }
    c->h2c_checked = true;
    if (rc != 1)
        return false;
    if (!sv_h2_reserve(w, c)) {
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "h2c connection: no HTTP/2 session free");
        return false;
    }
    if (!sv_h2_start_clear(w, c))
        return true; /* closed */
    conn_timer(w, c, T_IDLE, w->dp->cfg.idle_timeout_ms);
    h2_input(w, c);
    return true;
}

static void head_step(struct sv_worker *w, struct sv_conn *c)
{
    if (c->state != SV_C_HEAD)
        return;
    if (c->passthrough) {
        passthrough_step(w, c);
        return;
    }
    if (h2c_step(w, c))
        return;
    if (w->draining && c->ibuf_len == 0 && c->rx.q.count == 0) {
        close_conn(w, c);
        return;
    }
    for (unsigned i = 0; i < SV_SEGQ_CAP && c->rx.q.count; i++) {
        struct sv_seg *s = segq_front(&c->rx.q);
        size_t room = ibuf_cap(w) - c->ibuf_len;
        if (room == 0)
            break;
        uint32_t n = (uint32_t)SV_MIN((size_t)s->len, room);
        memcpy(ibuf(w, c) + c->ibuf_len, seg_data(w, s), n);
        c->ibuf_len += n;
        size_t hl = 0;
        int rc = sv_http_parse_head(&c->req_p, ibuf(w, c), c->ibuf_len, &c->req, &hl);
        if (rc == SV_HTTP_AGAIN) {
            cl_consume(w, c, n);
            continue;
        }
        if (rc < 0) {
            sv_log_rl(1, SV_LOG_INFO, "dataplane", "bad request: %s", sv_http_error_name(rc));
            cl_consume(w, c, n);
            c->state = SV_C_PROXY_PRE;
            c->req_keepalive = false;
            respond_error(w, c, sv_http_error_status(rc, SV_HTTP_REQUEST));
            return;
        }
        cl_consume(w, c, n - (c->ibuf_len - (uint32_t)hl));
        route_request(w, c);
        return;
    }
    if (c->ibuf_len >= ibuf_cap(w)) {
        c->state = SV_C_PROXY_PRE;
        c->req_keepalive = false;
        respond_error(w, c, 431);
        return;
    }
    if (c->rx.eof) {
        if (c->tls && c->ibuf_len == 0)
            linger(w, c); /* between requests: answer with close_notify */
        else
            close_conn(w, c);
        return;
    }
    if (c->ibuf_len > 0 && !c->head_timer) {
        c->head_timer = true;
        conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
    }
}

/* ---- the per-connection pump -------------------------------------------------------------- */

/* HTTP/2 connection: hand the plaintext to the session (h2.c does the rest in sv_h2_run).
 * Plaintext queued before the session started goes first; after that records are decrypted
 * straight into the connection's head buffer (unused by an h2 connection) and given to the
 * session, which always takes all of it, so no receive buffer is held for plaintext and
 * wolfSSL never keeps decrypted bytes waiting for room. */
static void h2_input(struct sv_worker *w, struct sv_conn *c)
{
    for (unsigned i = 0; i < SV_SEGQ_CAP && c->rx.q.count; i++) {
        struct sv_seg *s = segq_front(&c->rx.q);
        ssize_t n = sv_h2_recv(w, c, seg_data(w, s), s->len);
        if (n < 0) {
            close_conn(w, c);
            return;
        }
        seg_consume(w, &c->rx.q, (uint32_t)n);
        if ((uint32_t)n == 0)
            break;
    }
    if (!c->tls) { /* h2c: the receive queue is all there is */
        if (c->rx.eof && c->rx.q.count == 0) {
            close_conn(w, c);
            return;
        }
        sv_h2_kick(w, c);
        return;
    }
    for (unsigned i = 0; i < c->tls_nspare; i++)
        sv_io_buf_recycle(w->io, c->tls_spare[i]);
    c->tls_nspare = 0;
    char *cin = tls_cin(w, c);
    size_t cap = tls_cin_cap(w);
    for (unsigned it = 0; it < 4 * SV_SEGQ_CAP && !c->tls_fatal && !c->rx.eof; it++) {
        for (unsigned k = 0; k < SV_SEGQ_CAP && c->tls_rawq.count && c->tls_cin_len < cap; k++) {
            struct sv_seg *sg = segq_front(&c->tls_rawq);
            uint32_t n = (uint32_t)SV_MIN((size_t)sg->len, cap - c->tls_cin_len);
            memcpy(cin + c->tls_cin_len, seg_data(w, sg), n);
            c->tls_cin_len += n;
            seg_consume(w, &c->tls_rawq, n);
        }
        size_t used = 0;
        ssize_t r = sv_tls_conn_recv(&c->tls_c, cin, c->tls_cin_len, &used, ibuf(w, c),
                                     ibuf_cap(w));
        if (used) {
            memmove(cin, cin + used, c->tls_cin_len - used);
            c->tls_cin_len -= (uint32_t)used;
        }
        if (r > 0) {
            if (sv_h2_recv(w, c, ibuf(w, c), (size_t)r) != r) {
                close_conn(w, c);
                return;
            }
            continue;
        }
        if (r == -EPIPE) {
            c->rx.eof = true;
            break;
        }
        if (r < 0) {
            char eb[96];
            sv_log_rl(1, SV_LOG_INFO, "dataplane", "TLS failure: %s",
                      sv_tls_conn_error(&c->tls_c, eb, sizeof(eb)));
            c->tls_fatal = true;
            break;
        }
        if (used == 0 && (c->tls_rawq.count == 0 || c->tls_cin_len == cap))
            break;
    }
    if (c->rx.eof && c->rx.q.count == 0) {
        close_conn(w, c);
        return;
    }
    sv_h2_kick(w, c);
}

/* TLS upstream of <c>: decrypt what arrived (also after the plaintext queue was consumed: the
 * ciphertext may have waited for room). A failed session fails the upstream. */
static void up_tls_in(struct sv_worker *w, struct sv_conn *c)
{
    struct sv_upconn *u = up_of(w, c);
    if (!u || !u->tls)
        return;
    int rc = sv_utls_in(w, u);
    if (rc < 0) {
        upstream_failed(w, u, rc);
        return;
    }
    if (u->rx.q.count) /* a response byte arrived */
        c->resp_started = true;
}

/* Whether the TLS upstream of <c> stopped decrypting for lack of room that exists now. */
static bool up_tls_room(struct sv_worker *w, const struct sv_conn *c)
{
    const struct sv_upconn *u = up_of(w, c);
    if (!u || !u->tls || !u->tls_noroom)
        return false;
    if (u->tls_nspare)
        return true;
    if (!u->rx.q.count)
        return false;
    const struct sv_seg *t = &t_segs[u->rx.q.tail];
    return (size_t)t->off + t->len < w->dp->cfg.buf_size;
}

static void conn_pump(struct sv_worker *w, struct sv_conn *c)
{
    unsigned tls_rounds = 0;
again:
    if (c->tls)
        tls_in(w, c); /* also after sends: ciphertext may wait for plaintext room */
    if (c->state == SV_C_PROXY || c->state == SV_C_TUNNEL)
        up_tls_in(w, c);
    if (c->h2 && c->state == SV_C_HEAD && sv_tls_conn_state(&c->tls_c) == SV_TLS_OPEN &&
        sv_h2_start(w, c) && c->state == SV_C_H2)
        conn_timer(w, c, T_IDLE, w->dp->cfg.idle_timeout_ms);
    switch (c->state) {
    case SV_C_H2:
        if (c->h2)
            h2_input(w, c);
        break;
    case SV_C_HEAD:
        head_step(w, c);
        break;
    case SV_C_PROXY:
        up_pump(w, c);
        if (c->state == SV_C_PROXY)
            resp_step(w, c);
        if (c->state == SV_C_PROXY || c->state == SV_C_TUNNEL)
            cl_pump(w, c);
        if (c->state == SV_C_PROXY || c->state == SV_C_TUNNEL)
            up_pump(w, c);
        break;
    case SV_C_TUNNEL:
        up_pump(w, c);
        if (c->state == SV_C_TUNNEL)
            cl_pump(w, c);
        if (c->state == SV_C_TUNNEL && c->rx.eof && c->rx.q.count == 0 && !up_of(w, c))
            close_conn(w, c);
        break;
    case SV_C_LOCAL:
        cl_pump(w, c);
        break;
    case SV_C_LINGER:
        segq_clear(w, &c->rx.q);
        if (c->rx.eof)
            close_conn(w, c);
        break;
    default:
        break;
    }
    /* the steps above consumed plaintext that tls_in had no room behind: decrypt the rest */
    if (c->tls && c->tls_noroom && ++tls_rounds < 64 && tls_room(w, c) &&
        (c->state == SV_C_HEAD || c->state == SV_C_PROXY || c->state == SV_C_TUNNEL))
        goto again;
    /* the same for the response from a TLS upstream */
    if ((c->state == SV_C_PROXY || c->state == SV_C_TUNNEL) && ++tls_rounds < 64 &&
        up_tls_room(w, c))
        goto again;
    if (c->tls)
        (void)tls_flush(w, c);
    if (c->state != SV_C_CLOSING && c->state != 0) {
        sync_conn_rx(w, c);
        struct sv_upconn *u = up_of(w, c);
        if (u)
            sync_up_rx(w, u);
    }
}

/* ---- h2c upstreams (h2_upstream.h) -------------------------------------------------------- */

static void on_up_send(struct sv_worker *w, struct sv_upconn *u, const struct sv_io_cqe *e);

/* Feed the frames waiting in u->h2_rawq to its session and move the converted HTTP/1.1 bytes
 * into u->rx.q: behind its last segment while that has room, else into a spare (a raw buffer
 * whose frames were fed; h2_upstream.h on why that suffices). Frames are fed only while the
 * conversion area has room for what they can turn into. */
static void h2u_input(struct sv_worker *w, struct sv_upconn *u)
{
    size_t bsz = w->dp->cfg.buf_size;
    const char *p = NULL;
    size_t n = 0;
    for (unsigned it = 0; it < 4 * SV_SEGQ_CAP; it++) {
        n = sv_h2u_out(w, u, &p);
        for (unsigned k = 0; k < SV_SEGQ_CAP && n > 0; k++) {
            struct sv_seg *t = u->rx.q.count ? &t_segs[u->rx.q.tail] : NULL;
            if (!t || (size_t)t->off + t->len >= bsz) {
                if (!u->h2_nspare)
                    break;
                segq_push(&u->rx.q, u->h2_spare[--u->h2_nspare], 0);
                t = &t_segs[u->rx.q.tail];
            }
            size_t room = bsz - ((size_t)t->off + t->len);
            size_t m = SV_MIN(n, room);
            memcpy((char *)sv_io_buf(w->io, t->bid) + t->off + t->len, p, m);
            t->len += (uint32_t)m;
            sv_h2u_out_consume(w, u, m);
            n = sv_h2u_out(w, u, &p);
        }
        /* converted bytes left and nowhere to put them: only feeding more frames frees a
         * buffer, so feed them even when the conversion area is fuller than usual */
        if (!u->h2_rawq.count || (!sv_h2u_can_recv(w, u) && n == 0))
            break;
        struct sv_seg *sg = segq_front(&u->h2_rawq);
        int rc = sv_h2u_recv(w, u, seg_data(w, sg), sg->len);
        uint16_t bid = segq_pop_keep(&u->h2_rawq);
        if (u->h2_nspare < SV_ARRAY_SIZE(u->h2_spare))
            u->h2_spare[u->h2_nspare++] = bid;
        else
            sv_io_buf_recycle(w->io, bid);
        if (rc < 0) {
            segq_clear(w, &u->h2_rawq);
            break;
        }
    }
    n = sv_h2u_out(w, u, &p);
    if (n && !u->h2_rawq.count && sv_h2u_stream_over(w, u)) {
        /* the response grew (HPACK) beyond the buffers its frames came in and nothing more
         * will arrive: it cannot be handed on (h2_upstream.h) */
        sv_log_rl(1, SV_LOG_WARN, "dataplane",
                  "h2c upstream: response head larger than its receive buffers; closed");
        u->rx.eof = true;
    }
    if (sv_h2u_broken(w, u))
        u->rx.eof = true; /* the owner sees the upstream closed (502, retry, or a cut body) */
}

void sv_conn_up_sent(struct sv_worker *w, struct sv_upconn *u, int res)
{
    on_up_send(w, u, &(struct sv_io_cqe){.res = res});
}

int sv_conn_up_frames(struct sv_worker *w, struct sv_upconn *u, const void *p, uint32_t len)
{
    if (sv_io_send(w->io, u->fd, p, len, uud(w, u, SV_OP_U_H2SEND)) < 0)
        return -EBUSY;
    u->inflight++;
    return 0;
}

void sv_conn_up_kick(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->state == SV_UP_CLOSING || u->state == 0)
        return;
    h2u_input(w, u);
    if (u->owner != SV_NO_SLOT) {
        struct sv_conn *c = conn_at(w, u->owner);
        if (u->rx.q.count)
            c->resp_started = true;
        conn_pump(w, c);
    } else if (u->state == SV_UP_IDLE && (u->rx.eof || !sv_h2u_reusable(w, u))) {
        close_up(w, u);
    } else if (u->owner == SV_NO_SLOT) {
        up_idle_rx(w, u);
    } else {
        sync_up_rx(w, u);
    }
}

/* ---- completions -------------------------------------------------------------------------- */

static struct sv_conn *conn_lookup(struct sv_worker *w, uint64_t ud)
{
    uint32_t slot = sv_ud_slot(ud);
    if (slot >= sv_slab_cap(&w->conns) || sv_slab_gen(&w->conns, slot) != sv_ud_gen(ud))
        return NULL;
    struct sv_conn *c = conn_at(w, slot);
    return c->state ? c : NULL;
}

static struct sv_upconn *up_lookup(struct sv_worker *w, uint64_t ud)
{
    uint32_t slot = sv_ud_slot(ud);
    if (slot >= sv_slab_cap(&w->ups) || sv_slab_gen(&w->ups, slot) != sv_ud_gen(ud))
        return NULL;
    struct sv_upconn *u = up_at(w, slot);
    return u->state ? u : NULL;
}

static void on_client_send(struct sv_worker *w, struct sv_conn *c, const struct sv_io_cqe *e)
{
    SV_ASSERT(c->inflight > 0);
    c->inflight--;
    uint8_t kind = c->cl_send.kind;
    uint32_t len = c->cl_send.len;
    c->cl_send.kind = SV_SEND_NONE;
    if (c->cl_hold_n) {
        for (unsigned i = 0; i < c->cl_hold_n; i++)
            sv_io_buf_recycle(w->io, c->cl_hold[i]);
        c->cl_hold_n = 0;
        kind = SV_SEND_NONE; /* its queue is gone */
    }
    if (c->state == SV_C_CLOSING) {
        maybe_free_conn(w, c);
        return;
    }
    if (e->res < 0 || (uint32_t)e->res < len) {
        close_conn(w, c);
        return;
    }
    if (kind == SV_SEND_H2C) {
        char *area = tls_out(w, c);
        SV_ASSERT(len <= c->h2c_out_len);
        memmove(area, area + len, c->h2c_out_len - len);
        c->h2c_out_len -= len;
        if (sv_conn_h2_flush(w, c))
            return;
    } else if (kind == SV_SEND_TLS) {
        sv_tls_conn_out_consume(&c->tls_c, len);
        if (tls_flush(w, c))
            return;
        if (c->tls_shut_wr && c->state == SV_C_LINGER) {
            c->tls_shut_wr = false; /* close_notify is out: now the FIN */
            (void)shutdown(c->fd, SHUT_WR);
        }
    } else if (kind == SV_SEND_BYTES) {
        if (c->canned.ptr)
            c->canned_sent += (uint32_t)e->res;
        else
            c->resp_out_sent += (uint32_t)e->res;
    } else if (kind == SV_SEND_SEG) {
        struct sv_upconn *u = up_of(w, c);
        SV_ASSERT(u && u->rx.q.count > 0);
        q_consume(w, &u->rx.q, len);
    }
    if ((c->state == SV_C_PROXY && c->resp_head_done) || c->state == SV_C_TUNNEL)
        conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
    conn_pump(w, c);
}

static void on_up_send(struct sv_worker *w, struct sv_upconn *u, const struct sv_io_cqe *e)
{
    SV_ASSERT(u->inflight > 0);
    u->inflight--;
    u->send_busy = false;
    if (u->hold_n) {
        for (unsigned i = 0; i < u->hold_n; i++)
            sv_io_buf_recycle(w->io, u->hold[i]);
        u->hold_n = 0;
    }
    if (u->state == SV_UP_CLOSING) {
        maybe_free_up(w, u);
        return;
    }
    int res = e->res;
    if (u->tls) {
        /* ciphertext: the piece completes once all of it is out */
        bool more = false;
        res = sv_utls_sent(w, u, e->res, &more);
        if (more)
            return;
    }
    if (u->mirror) {
        if (u->tls && u->mirror_sending == 0) { /* a handshake flight of a TLS copy */
            if (res < 0)
                close_up(w, u);
            else
                sv_mirror_tls_progress(w, u);
            return;
        }
        sv_mirror_sent(w, u, res);
        return;
    }
    if (u->owner == SV_NO_SLOT) {
        if (res < 0 && u->tls)
            close_up(w, u);
        return;
    }
    struct sv_conn *c = conn_at(w, u->owner);
    uint8_t kind = c->up_send.kind;
    uint32_t len = c->up_send.len;
    c->up_send.kind = SV_SEND_NONE;
    if (res < 0 || (uint32_t)res < len) {
        if (c->resp_started) {
            /* the upstream answered and stopped reading: let the response finish */
            c->req_done = true;
            c->req_keepalive = false;
            close_up(w, u);
            close_conn(w, c);
            return;
        }
        upstream_failed(w, u, res < 0 ? res : -EPIPE);
        return;
    }
    if (kind == SV_SEND_BYTES)
        c->req_out_sent += (uint32_t)res;
    else if (kind == SV_SEND_SEG)
        cl_q_consume(w, c, len);
    else if (kind == SV_SEND_H2)
        sv_h2_body_sent(w, c);
    /* progress of the request (a TLS handshake flight carries none: the upstream timeout that
     * bounds connecting keeps running) */
    if (kind != SV_SEND_NONE &&
        ((c->state == SV_C_PROXY && !c->req_done) || c->state == SV_C_TUNNEL))
        conn_timer(w, c, T_PROGRESS, w->dp->cfg.idle_timeout_ms);
    conn_pump(w, c);
}

void sv_conn_dispatch(struct sv_worker *w, const struct sv_io_cqe *e)
{
    uint8_t op = sv_ud_op(e->ud);
    switch (op) {
    case SV_OP_C_RECV:
    case SV_OP_C_SEND:
    case SV_OP_C_CANCEL: {
        struct sv_conn *c = conn_lookup(w, e->ud);
        if (!c) {
            if (e->has_buf)
                sv_io_buf_recycle(w->io, e->bid);
            return;
        }
        if (op == SV_OP_C_SEND) {
            on_client_send(w, c, e);
            return;
        }
        if (op == SV_OP_C_CANCEL) {
            SV_ASSERT(c->inflight > 0);
            c->inflight--;
            if (c->state == SV_C_CLOSING)
                maybe_free_conn(w, c);
            return;
        }
        bool discard = c->state == SV_C_CLOSING || c->state == SV_C_LINGER;
        rx_complete(w, &c->rx, c->tls ? &c->tls_rawq : &c->rx.q, e, &c->inflight, discard,
                    sv_ud_make(1, c->slot, sv_slab_gen(&w->conns, c->slot)));
        if (c->state == SV_C_CLOSING) {
            maybe_free_conn(w, c);
            return;
        }
        if (c->state == SV_C_HEAD && c->timer_kind == T_IDLE && c->rx.q.count && !c->head_timer) {
            c->head_timer = true;
            conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
        }
        conn_pump(w, c);
        return;
    }
    case SV_OP_U_RECV:
    case SV_OP_U_SEND:
    case SV_OP_U_CONNECT:
    case SV_OP_U_CANCEL:
    case SV_OP_U_H2SEND: {
        struct sv_upconn *u = up_lookup(w, e->ud);
        if (!u) {
            if (e->has_buf)
                sv_io_buf_recycle(w->io, e->bid);
            return;
        }
        if (op == SV_OP_U_SEND) {
            on_up_send(w, u, e);
            return;
        }
        if (op == SV_OP_U_H2SEND) {
            SV_ASSERT(u->inflight > 0);
            u->inflight--;
            if (u->state == SV_UP_CLOSING) {
                maybe_free_up(w, u);
                return;
            }
            if (!sv_h2u_sent(w, u, e->res))
                upstream_failed(w, u, e->res < 0 ? e->res : -EPIPE);
            return;
        }
        if (op == SV_OP_U_CANCEL) {
            SV_ASSERT(u->inflight > 0);
            u->inflight--;
            maybe_free_up(w, u);
            return;
        }
        if (op == SV_OP_U_CONNECT) {
            SV_ASSERT(u->inflight > 0);
            u->inflight--;
            if (u->state == SV_UP_CLOSING) {
                maybe_free_up(w, u);
                return;
            }
            if (e->res < 0) {
                sv_log_rl(1, SV_LOG_WARN, "dataplane", "upstream connect failed: %s",
                          strerror(-e->res));
                upstream_failed(w, u, e->res);
                return;
            }
            u->state = SV_UP_ACTIVE;
            sync_up_rx(w, u);
            if (u->h2)
                sv_h2u_flush(w, u); /* the connection preface and SETTINGS */
            if (u->tls && sv_utls_in(w, u) < 0) { /* queues and sends the ClientHello */
                upstream_failed(w, u, -EIO);
                return;
            }
            if (u->mirror)
                sv_mirror_connected(w, u);
            else if (u->owner != SV_NO_SLOT) {
                conn_pump(w, conn_at(w, u->owner));
            }
            return;
        }
        bool discard = u->state == SV_UP_CLOSING;
        rx_complete(w, &u->rx, u->h2 ? &u->h2_rawq : u->tls ? &u->tls_rawq : &u->rx.q, e,
                    &u->inflight, discard,
                    sv_ud_make(2, u->slot, sv_slab_gen(&w->ups, u->slot)));
        if (u->state == SV_UP_CLOSING) {
            maybe_free_up(w, u);
            return;
        }
        if (u->h2)
            h2u_input(w, u);
        if (u->mirror) {
            /* TLS copy: advance the handshake (then send), decrypt what comes back */
            if (u->tls) {
                if (sv_utls_in(w, u) < 0) {
                    close_up(w, u);
                    return;
                }
                sv_mirror_tls_progress(w, u);
                if (u->state != SV_UP_ACTIVE)
                    return; /* the send failed: closed */
            }
            /* answers to copies are ignored; once the copy is whole, one ends it */
            bool answered = u->rx.q.count > 0;
            segq_clear(w, &u->rx.q);
            if (u->rx.eof || (answered && sv_mirror_complete(u)))
                close_up(w, u);
            else
                sync_up_rx(w, u);
            return;
        }
        if (u->owner == SV_NO_SLOT) {
            /* idle in the pool: the upstream closed it, or sent bytes nobody asked for (an
             * h2c session: frames it cannot go on after, such as GOAWAY; TLS: session tickets
             * and the like are fine, plaintext is not) */
            if ((u->tls && sv_utls_in(w, u) < 0) || u->rx.eof || u->rx.q.count ||
                (u->h2 && !sv_h2u_reusable(w, u)))
                close_up(w, u);
            else
                up_idle_rx(w, u);
            return;
        }
        struct sv_conn *c = conn_at(w, u->owner);
        /* TLS: once plaintext arrives (up_tls_in) */
        if (u->h2 ? u->rx.q.count > 0 : e->res > 0 && !u->tls)
            c->resp_started = true;
        conn_pump(w, c);
        return;
    }
    default:
        return;
    }
}

/* ---- timers, accept, drain ---------------------------------------------------------------- */

void sv_conn_timer_fired(struct sv_timer *t, void *ctx)
{
    struct sv_worker *w = ctx;
    char *p = (char *)t;
    char *ups_lo = (char *)sv_slab_get(&w->ups, 0);
    char *ups_hi = (char *)sv_slab_get(&w->ups, sv_slab_cap(&w->ups));
    if (p >= ups_lo && p < ups_hi) {
        struct sv_upconn *u = sv_container_of(t, struct sv_upconn, timer);
        if (u->state == SV_UP_IDLE || u->mirror)
            close_up(w, u);
        return;
    }
    /* a connection's deadline timer, or its main timer */
    char *conns_lo = (char *)sv_slab_get(&w->conns, 0);
    size_t stride = (size_t)((char *)sv_slab_get(&w->conns, 1) - conns_lo);
    struct sv_conn *owner = conn_at(w, (uint32_t)((size_t)(p - conns_lo) / stride));
    if (t == &owner->dl_timer) {
        deadline_fired(w, owner);
        return;
    }
    struct sv_conn *c = sv_container_of(t, struct sv_conn, timer);
    uint8_t kind = c->timer_kind;
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_IDLE:
        sv_stat_add(w, SV_DP_STAT_IDLE_TIMEOUTS, 1);
        if (c->tls && c->state == SV_C_HEAD && c->ibuf_len == 0 && c->rx.q.count == 0)
            linger(w, c); /* idle keep-alive TLS connection: close_notify, then FIN */
        else
            close_conn(w, c);
        break;
    case T_HEADER:
        sv_stat_add(w, SV_DP_STAT_HEADER_TIMEOUTS, 1);
        if (c->tls && sv_tls_conn_state(&c->tls_c) == SV_TLS_HANDSHAKE)
            sv_stat_add(w, SV_DP_STAT_TLS_FAIL_TIMEOUT, 1);
        if (c->state == SV_C_HEAD && c->ibuf_len > 0) {
            c->state = SV_C_PROXY_PRE;
            c->req_keepalive = false;
            struct sv_str b = sv_http_canned(408, true);
            respond_local(w, c, b, 408, false);
        } else {
            close_conn(w, c);
        }
        break;
    case T_UPSTREAM:
        try_timed_out(w, c);
        break;
    case T_BACKOFF:
        if (c->state == SV_C_PROXY && c->backoff)
            retry_next_try(w, c);
        break;
    case T_PROGRESS:
        /* No progress: before the response head, a stalled upstream (we hold request bytes it
         * does not take, or it does not answer) is a 504; a stalled client just ends. */
        if (c->state == SV_C_PROXY && !c->resp_head_done &&
            (c->req_done || c->rx.q.count > 0)) {
            c->state = SV_C_PROXY_PRE;
            c->req_keepalive = false;
            respond_error(w, c, 504);
        } else {
            sv_stat_add(w, SV_DP_STAT_IDLE_TIMEOUTS, 1);
            close_conn(w, c);
        }
        break;
    default:
        close_conn(w, c);
        break;
    }
}

/* The TLS server object of the current generation's bind that listener <l> serves, or NULL. */
static struct sv_tls_server *bind_tls_server(struct sv_worker *w, const struct sv_listener *l)
{
    if (!w->gen)
        return NULL;
    size_t nb = 0;
    const struct sv_route_bind *b = sv_generation_binds(w->gen, &nb);
    for (size_t i = 0; i < nb; i++)
        if (b[i].proto == SV_ROUTE_PROTO_HTTPS && b[i].addrlen == l->addrlen &&
            memcmp(&b[i].addr, &l->addr, l->addrlen) == 0)
            return sv_generation_bind_tls(w->gen, (uint32_t)i);
    return NULL;
}

void sv_conn_accepted(struct sv_worker *w, int fd, unsigned li)
{
    struct sv_tls_server *srv = NULL;
    if (w->lst[li].proto == SV_ROUTE_PROTO_HTTPS) {
        srv = bind_tls_server(w, &w->lst[li]);
        if (!srv) {
            /* no valid certificate on this bind: never answer cleartext on a TLS port */
            close(fd);
            sv_stat_add(w, SV_DP_STAT_CONNS_REFUSED, 1);
            sv_log_rl(1, SV_LOG_WARN, "dataplane",
                      "connection on HTTPS port %u refused: no TLS certificate for it",
                      w->lst[li].port);
            return;
        }
    }
    int64_t slot = w->draining ? -1 : sv_slab_alloc(&w->conns);
    if (slot < 0) {
        close(fd); /* connection limit (or draining): refuse, existing connections unharmed */
        sv_stat_add(w, SV_DP_STAT_CONNS_REFUSED, 1);
        sv_log_rl(1, SV_LOG_WARN, "dataplane", "connection refused: %s",
                  w->draining ? "draining" : "connection limit reached");
        return;
    }
    struct sv_conn *c = conn_at(w, (uint32_t)slot);
    c->slot = (uint32_t)slot;
    c->fd = fd;
    c->up = SV_NO_SLOT;
    if (srv) {
        bool h2 = sv_h2_reserve(w, c); /* offer h2 only with a session free for it */
        if (sv_tls_conn_open_alpn(&c->tls_c, srv, tls_out(w, c), tls_out_cap(w), h2) < 0) {
            if (h2)
                sv_h2_conn_closed(w, c);
            close(fd);
            sv_slab_free(&w->conns, c->slot);
            sv_stat_add(w, SV_DP_STAT_CONNS_REFUSED, 1);
            sv_log_rl(1, SV_LOG_WARN, "dataplane", "TLS connection could not be opened");
            return;
        }
        c->tls = true;
    }
    c->passthrough = w->lst[li].proto == SV_ROUTE_PROTO_TLS_PASSTHROUGH;
    c->local = w->lst[li].addr;
    c->local_port = w->lst[li].port;
    union sv_route_sockaddr peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(fd, &peer.sa, &plen) == 0) {
        ssize_t n = sv_http_format_xff(&peer.sa, c->xff, sizeof(c->xff));
        c->xff_len = n > 0 ? (uint8_t)n : 0;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sv_http_limits lim = {w->dp->cfg.max_header_size, SV_MAX_HEADERS};
    sv_http_parser_init(&c->req_p, SV_HTTP_REQUEST, &lim);
    sv_http_parser_init(&c->resp_p, SV_HTTP_RESPONSE, &lim);
    struct sv_http_header *hs = w->hdrs + (size_t)c->slot * 2 * SV_MAX_HEADERS;
    sv_http_head_init(&c->req, hs, SV_MAX_HEADERS);
    sv_http_head_init(&c->resp, hs + SV_MAX_HEADERS, SV_MAX_HEADERS);
    sv_stat_add(w, SV_DP_STAT_CONNS_ACCEPTED, 1);
    sv_stat_add(w, SV_DP_STAT_CONNS_ACTIVE, 1);
    reset_request(w, c);
    if (c->tls || c->passthrough) {
        /* the handshake (or ClientHello) and the first request head share the header timeout */
        c->head_timer = true;
        conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
    }
    sync_conn_rx(w, c);
}

void sv_conn_drain(struct sv_worker *w)
{
    uint32_t cap = sv_slab_cap(&w->conns);
    for (uint32_t i = 0; i < cap; i++) {
        struct sv_conn *c = conn_at(w, i);
        if (c->state == SV_C_HEAD && c->ibuf_len == 0 && c->rx.q.count == 0)
            close_conn(w, c);
        else if (c->state == SV_C_H2 && c->h2)
            sv_h2_drain(w, c);
    }
}

void sv_conn_close_all(struct sv_worker *w)
{
    uint32_t cap = sv_slab_cap(&w->conns);
    for (uint32_t i = 0; i < cap; i++) {
        struct sv_conn *c = conn_at(w, i);
        if (c->state && c->state != SV_C_CLOSING)
            close_conn(w, c);
    }
    cap = sv_slab_cap(&w->ups);
    for (uint32_t i = 0; i < cap; i++) {
        struct sv_upconn *u = up_at(w, i);
        if (u->state && u->state != SV_UP_CLOSING)
            close_up(w, u);
    }
}

uint32_t sv_conn_pending(struct sv_worker *w)
{
    return sv_slab_used(&w->conns) + sv_slab_used(&w->ups);
}

static void *mmap_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1,
                   0);
    return p == MAP_FAILED ? NULL : p;
}

static void mmap_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

int sv_conn_init_worker(struct sv_worker *w)
{
    const struct sv_dp_config *cfg = &w->dp->cfg;
    uint32_t max_up = cfg->max_upstream_conns ? cfg->max_upstream_conns : cfg->max_conns;
    int rc = sv_slab_init(&w->conns, sizeof(struct sv_conn), cfg->max_conns);
    if (rc == 0)
        rc = sv_slab_init(&w->ups, sizeof(struct sv_upconn), max_up);
    if (rc < 0)
        return rc;
    w->head_stride = ibuf_cap(w) + 2 * out_cap(w);
    w->head_stride = (w->head_stride + 4095) & ~(size_t)4095;
    w->heads_bytes = w->head_stride * cfg->max_conns;
    w->heads = mmap_alloc(w->heads_bytes);
    w->hdrs = calloc((size_t)cfg->max_conns * 2 * SV_MAX_HEADERS, sizeof(struct sv_http_header));
    w->starved = calloc((size_t)cfg->max_conns + max_up, sizeof(uint64_t));
    w->segs = calloc(sv_io_buf_count(w->io), sizeof(struct sv_seg));
    /* a mirror ring holds a head with the body bytes behind it and twice the most one body send
     * forwards, so a mirror as fast as the primary always has room */
    w->mirror_cap = out_cap(w) + 64 + 2 * (size_t)SV_IOV_MAX * cfg->buf_size;
    w->mirror_cap = (w->mirror_cap + 4095) & ~(size_t)4095;
    w->mirror_mem = mmap_alloc((size_t)SV_MIRROR_BUFS * w->mirror_cap);
    /* TLS buffers, one area per connection slot (touched only by TLS connections) */
    w->tls_stride = (tls_out_cap(w) + tls_cin_cap(w) + 4095) & ~(size_t)4095;
    w->tls_mem_bytes = w->tls_stride * cfg->max_conns;
    w->tls_mem = mmap_alloc(w->tls_mem_bytes);
    if (!w->tls_mem)
        return -ENOMEM;
    /* the same per upstream slot, for TLS to backends (upstream_tls.c; same layout and sizes) */
    SV_ASSERT(sv_utls_out_cap(w) == tls_out_cap(w) && sv_utls_cin_cap(w) == tls_cin_cap(w));
    w->utls_mem_bytes = w->tls_stride * max_up;
    w->utls_mem = mmap_alloc(w->utls_mem_bytes);
    if (!w->utls_mem)
        return -ENOMEM;
    if (!w->heads || !w->hdrs || !w->starved || !w->segs || !w->mirror_mem)
        return -ENOMEM;
    for (uint32_t i = 0; i < SV_MIRROR_BUFS; i++)
        w->mirror_free[w->mirror_nfree++] = (uint16_t)(SV_MIRROR_BUFS - 1 - i);
    t_segs = w->segs;
    for (unsigned i = 0; i < SV_POOL_BUCKETS; i++)
        w->pool_head[i] = SV_NO_SLOT;
    return sv_h2_init_worker(w);
}

void sv_conn_fini_worker(struct sv_worker *w)
{
    /* Sockets still open (stop without drain) are closed here; the ring is gone already, so
     * nothing completes any more. */
    uint32_t cap = sv_slab_cap(&w->conns);
    for (uint32_t i = 0; i < cap; i++) {
        struct sv_conn *c = conn_at(w, i);
        if (c->state && c->fd >= 0)
            close(c->fd);
        if (c->tls)
            sv_tls_conn_close(&c->tls_c);
        if (c->gen)
            sv_generation_unref(c->gen, w->idx);
    }
    cap = sv_slab_cap(&w->ups);
    for (uint32_t i = 0; i < cap; i++) {
        struct sv_upconn *u = up_at(w, i);
        if (u->state && u->fd >= 0)
            close(u->fd);
        if (u->tls)
            sv_tls_conn_close(&u->tls_c); /* the ring and its buffers are gone already */
    }
    sv_slab_destroy(&w->conns);
    sv_slab_destroy(&w->ups);
    mmap_free(w->heads, w->heads_bytes);
    free(w->hdrs);
    free(w->starved);
    free(w->segs);
    mmap_free(w->mirror_mem, (size_t)SV_MIRROR_BUFS * w->mirror_cap);
    mmap_free(w->tls_mem, w->tls_mem_bytes);
    mmap_free(w->utls_mem, w->utls_mem_bytes);
    sv_h2_fini_worker(w);
    t_segs = NULL;
}

/* ---- services for the HTTP/2 frontend (h2.h) ---------------------------------------------- */

struct sv_conn *sv_conn_h2_stream_open(struct sv_worker *w, struct sv_conn *parent)
{
    int64_t slot = sv_slab_alloc(&w->conns);
    if (slot < 0)
        return NULL;
    struct sv_conn *c = conn_at(w, (uint32_t)slot);
    c->slot = (uint32_t)slot;
    c->fd = -1;
    c->up = SV_NO_SLOT;
    c->h2s = true;
    c->h2_parent = parent->slot;
    c->local = parent->local;
    c->local_port = parent->local_port;
    memcpy(c->xff, parent->xff, sizeof(c->xff));
    c->xff_len = parent->xff_len;
    struct sv_http_limits lim = {w->dp->cfg.max_header_size, SV_MAX_HEADERS};
    sv_http_parser_init(&c->req_p, SV_HTTP_REQUEST, &lim);
    sv_http_parser_init(&c->resp_p, SV_HTTP_RESPONSE, &lim);
    struct sv_http_header *hs = w->hdrs + (size_t)c->slot * 2 * SV_MAX_HEADERS;
    sv_http_head_init(&c->req, hs, SV_MAX_HEADERS);
    sv_http_head_init(&c->resp, hs + SV_MAX_HEADERS, SV_MAX_HEADERS);
    reset_request(w, c);
    c->state = SV_C_H2;
    c->head_timer = true;
    conn_timer(w, c, T_HEADER, w->dp->cfg.header_timeout_ms);
    return c;
}

void sv_conn_h2_request(struct sv_worker *w, struct sv_conn *sc, uint32_t head_len)
{
    sc->state = SV_C_PROXY_PRE;
    sc->req_keepalive = false;
    if (head_len == 0) {
        respond_error(w, sc, 431);
        return;
    }
    sc->ibuf_len = head_len;
    size_t hl = 0;
    int rc = sv_http_parse_head(&sc->req_p, ibuf(w, sc), head_len, &sc->req, &hl);
    if (rc != SV_HTTP_OK || hl != head_len) {
        if (rc == SV_HTTP_OK || rc == SV_HTTP_AGAIN)
            rc = SV_HTTP_E_SYNTAX;
        sv_log_rl(1, SV_LOG_INFO, "dataplane", "bad HTTP/2 request: %s", sv_http_error_name(rc));
        respond_error(w, sc, sv_http_error_status(rc, SV_HTTP_REQUEST));
        return;
    }
    route_request(w, sc);
}

void sv_conn_h2_pump(struct sv_worker *w, struct sv_conn *c)
{
    conn_pump(w, c);
}

void sv_conn_h2_close(struct sv_worker *w, struct sv_conn *c)
{
    close_conn(w, c);
}

void sv_conn_h2_end(struct sv_worker *w, struct sv_conn *c)
{
    sv_h2_conn_closed(w, c);
    linger(w, c); /* close_notify, then the FIN */
}

bool sv_conn_h2_flush(struct sv_worker *w, struct sv_conn *c)
{
    if (c->tls)
        return tls_flush(w, c);
    if (c->cl_send.kind != SV_SEND_NONE || c->state == SV_C_CLOSING || c->state == 0 ||
        c->h2c_out_len == 0)
        return false;
    if (sv_io_send(w->io, c->fd, tls_out(w, c), c->h2c_out_len, cud(w, c, SV_OP_C_SEND)) < 0) {
        close_conn(w, c);
        return true;
    }
    c->inflight++;
    c->cl_send.kind = SV_SEND_H2C;
    c->cl_send.len = c->h2c_out_len;
    return true;
}

ssize_t sv_conn_h2_write(struct sv_worker *w, struct sv_conn *c, const void *p, size_t n)
{
    if (c->tls)
        return sv_tls_conn_send(&c->tls_c, p, n);
    size_t room = tls_out_cap(w) - c->h2c_out_len;
    size_t k = SV_MIN(n, room);
    memcpy(tls_out(w, c) + c->h2c_out_len, p, k);
    c->h2c_out_len += (uint32_t)k;
    return (ssize_t)k;
}

bool sv_conn_h2_out_empty(struct sv_worker *w, struct sv_conn *c)
{
    (void)w;
    if (c->cl_send.kind != SV_SEND_NONE)
        return false;
    if (c->tls)
        return sv_tls_conn_out(&c->tls_c, &(const uint8_t *){NULL}) == 0;
    return c->h2c_out_len == 0;
}

void sv_conn_h2_timer(struct sv_worker *w, struct sv_conn *c, bool idle)
{
    if (c->state != SV_C_H2)
        return;
    if (idle && c->timer_kind != T_IDLE)
        conn_timer(w, c, T_IDLE, w->dp->cfg.idle_timeout_ms);
    else if (!idle && c->timer_kind == T_IDLE)
        conn_timer(w, c, T_NONE, 0);
}

void sv_conn_h2_ibuf(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap)
{
    *p = ibuf(w, sc);
    *cap = ibuf_cap(w);
}

void sv_conn_h2_stage(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap)
{
    *p = req_out(w, sc);
    *cap = out_cap(w);
}

void sv_conn_h2_resp(struct sv_worker *w, struct sv_conn *sc, char **p, size_t *cap)
{
    *p = tls_out(w, sc);
    *cap = tls_out_cap(w);
}

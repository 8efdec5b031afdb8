/* TLS to backends (BackendTLSPolicy): a wolfSSL client session per upstream connection, over the
 * worker's buffers (dp_int.h, "upstream_tls.c").
 *
 * Receive: the recv completion queues ciphertext on u->tls_rawq (conn.c); sv_utls_in copies it
 * into the slot's input area (each receive buffer emptied that way becomes a spare, up to
 * SV_TLS_SPARES), lets wolfSSL advance the handshake and decrypt records, and queues plaintext on
 * u->rx.q: behind the last plaintext segment when it has room, else in a spare. The proxying code
 * then reads responses exactly as from a cleartext backend. No stall: every plaintext buffer came
 * from the spares, and an emptied plaintext buffer becomes the spare when there is none
 * (sv_utls_buf_done, called where conn.c consumes u->rx.q), so once the plaintext queue drained
 * there is room again; conn_pump calls sv_utls_in at its start, after the consumers ran.
 *
 * Send: sv_utls_send encrypts the whole request piece (a head, or up to SV_IOV_MAX body buffers:
 * the output area is sized for that) into the slot's output area and sends it; partial sends
 * continue from the area (sv_utls_sent) and the piece counts as sent once all of its ciphertext
 * is out, so the proxying code sees the same completion as for a cleartext send. Handshake
 * flights go out the same way, carrying no plaintext.
 *
 * Memory: as on the server side, wolfSSL allocates the session and its handshake state per
 * connection itself (documented deviation from "no malloc on workers after start"); the buffers
 * are the worker's (ciphertext areas mmap'd per upstream slot at start, receive buffers). */
#include <errno.h>
#include <string.h>

#include "dataplane/dp_int.h"
#include "dataplane/ud.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"

size_t sv_utls_out_cap(const struct sv_worker *w)
{
    size_t pt = SV_MAX((size_t)SV_IOV_MAX * w->dp->cfg.buf_size,
                       (size_t)w->dp->cfg.max_header_size + 4096);
    return pt + (pt / 16384 + 2) * 64 + 16384;
}

size_t sv_utls_cin_cap(const struct sv_worker *w)
{
    return w->dp->cfg.buf_size;
}

static char *out_area(struct sv_worker *w, const struct sv_upconn *u)
{
    return w->utls_mem + (size_t)u->slot * w->tls_stride;
}

static char *cin_area(struct sv_worker *w, const struct sv_upconn *u)
{
    return out_area(w, u) + sv_utls_out_cap(w);
}

/* ---- segment queue helpers (the worker's segment table, as in conn.c) ----------------------- */

static void q_push(struct sv_worker *w, struct sv_segq *q, uint16_t bid, uint32_t len)
{
    struct sv_seg *s = &w->segs[bid];
    s->bid = bid;
    s->off = 0;
    s->len = len;
    s->next = 0;
    if (q->count == 0)
        q->head = bid;
    else
        w->segs[q->tail].next = bid;
    q->tail = bid;
    q->count++;
}

static uint16_t q_pop(struct sv_worker *w, struct sv_segq *q)
{
    SV_ASSERT(q->count > 0);
    struct sv_seg *s = &w->segs[q->head];
    uint16_t bid = s->bid;
    q->head = s->next;
    q->count--;
    return bid;
}

static void spare_put(struct sv_worker *w, struct sv_upconn *u, uint16_t bid)
{
    if (u->tls_nspare < SV_TLS_SPARES)
        u->tls_spare[u->tls_nspare++] = bid;
    else
        sv_io_buf_recycle(w->io, bid);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int sv_utls_open(struct sv_worker *w, struct sv_upconn *u, struct sv_tls_client *cl)
{
    int rc = sv_tls_conn_open_client(&u->tls_c, cl, out_area(w, u), sv_utls_out_cap(w));
    if (rc < 0)
        return rc;
    u->tls = true;
    u->tls_cli = cl;
    u->tls_noroom = false;
    u->tls_rawq = (struct sv_segq){0};
    u->tls_cin_len = 0;
    u->tls_plain = 0;
    u->tls_sending = 0;
    u->tls_nspare = 0;
    return 0;
}

void sv_utls_drop(struct sv_worker *w, struct sv_upconn *u)
{
    if (!u->tls)
        return;
    for (uint32_t i = 0; i < sv_io_buf_count(w->io) && u->tls_rawq.count; i++)
        sv_io_buf_recycle(w->io, q_pop(w, &u->tls_rawq));
    for (unsigned i = 0; i < u->tls_nspare; i++)
        sv_io_buf_recycle(w->io, u->tls_spare[i]);
    u->tls_nspare = 0;
    u->tls_cin_len = 0;
}

bool sv_utls_quiet(const struct sv_upconn *u)
{
    return !u->tls || (u->tls_rawq.count == 0 && u->tls_cin_len == 0);
}

void sv_utls_idle(struct sv_worker *w, struct sv_upconn *u)
{
    for (unsigned i = 0; u->tls && i < u->tls_nspare; i++)
        sv_io_buf_recycle(w->io, u->tls_spare[i]);
    u->tls_nspare = 0;
}

void sv_utls_close(struct sv_worker *w, struct sv_upconn *u)
{
    if (!u->tls)
        return;
    sv_utls_drop(w, u);
    sv_tls_conn_close(&u->tls_c);
    u->tls = false;
    u->tls_cli = NULL;
}

bool sv_utls_ready(const struct sv_upconn *u)
{
    return !u->tls || sv_tls_conn_state(&u->tls_c) == SV_TLS_OPEN;
}

void sv_utls_buf_done(struct sv_worker *w, struct sv_upconn *u, uint16_t bid)
{
    if (u->tls && u->tls_nspare == 0)
        u->tls_spare[u->tls_nspare++] = bid;
    else
        sv_io_buf_recycle(w->io, bid);
}

/* ---- output --------------------------------------------------------------------------------- */

/* Submit the ciphertext waiting in the output area when no send is in flight. 0 or -EIO. */
static int flush(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->send_busy || u->state == SV_UP_CLOSING)
        return 0;
    const uint8_t *p = NULL;
    size_t n = sv_tls_conn_out(&u->tls_c, &p);
    if (n == 0)
        return 0;
    uint64_t ud = sv_ud_make((uint8_t)SV_OP_U_SEND, u->slot, sv_slab_gen(&w->ups, u->slot));
    if (sv_io_send(w->io, u->fd, p, (unsigned)n, ud) < 0)
        return -EIO;
    u->inflight++;
    u->send_busy = true;
    u->tls_sending = (uint32_t)n;
    return 0;
}

int sv_utls_send(struct sv_worker *w, struct sv_upconn *u, const struct iovec *iov, unsigned n,
                 uint32_t len)
{
    SV_ASSERT(u->tls && !u->send_busy);
    size_t total = 0;
    for (unsigned i = 0; i < n && i < SV_IOV_MAX; i++) {
        size_t off = 0;
        /* sv_tls_conn_send takes at most one record per call when the output is tight */
        for (unsigned k = 0; k < 64 && off < iov[i].iov_len; k++) {
            ssize_t t = sv_tls_conn_send(&u->tls_c, (const char *)iov[i].iov_base + off,
                                         iov[i].iov_len - off);
            if (t < 0)
                return -EPROTO;
            if (t == 0)
                return -ENOBUFS;
            off += (size_t)t;
        }
        if (off < iov[i].iov_len)
            return -ENOBUFS;
        total += off;
    }
    SV_ASSERT(total == len);
    u->tls_plain = len;
    return flush(w, u) < 0 ? -EBUSY : 0;
}

int sv_utls_sent(struct sv_worker *w, struct sv_upconn *u, int res, bool *more)
{
    *more = false;
    if (res < 0)
        return res;
    uint32_t n = SV_MIN((uint32_t)res, u->tls_sending);
    sv_tls_conn_out_consume(&u->tls_c, n);
    u->tls_sending = 0;
    if (flush(w, u) < 0)
        return -EIO;
    if (u->send_busy) {
        *more = true; /* the rest of the piece, or output queued meanwhile */
        return 0;
    }
    uint32_t plain = u->tls_plain;
    u->tls_plain = 0;
    return (int)plain;
}

/* ---- input ---------------------------------------------------------------------------------- */

int sv_utls_in(struct sv_worker *w, struct sv_upconn *u)
{
    u->tls_noroom = false;
    if (!u->tls || u->state == SV_UP_CLOSING || u->state == SV_UP_CONNECTING)
        return 0;
    enum sv_tls_state st0 = sv_tls_conn_state(&u->tls_c);
    if (st0 == SV_TLS_FAILED)
        return -EPROTO;
    char *cin = cin_area(w, u);
    size_t cap = sv_utls_cin_cap(w);
    size_t bsz = w->dp->cfg.buf_size;
    int rc = 0;
    for (unsigned it = 0; it < 4 * SV_SEGQ_CAP; it++) {
        for (unsigned k = 0; k < SV_SEGQ_CAP && u->tls_rawq.count && u->tls_cin_len < cap; k++) {
            struct sv_seg *sg = &w->segs[u->tls_rawq.head];
            uint32_t n = (uint32_t)SV_MIN((size_t)sg->len, cap - u->tls_cin_len);
            memcpy(cin + u->tls_cin_len, (char *)sv_io_buf(w->io, sg->bid) + sg->off, n);
            u->tls_cin_len += n;
            if (n == sg->len) {
                spare_put(w, u, q_pop(w, &u->tls_rawq));
            } else {
                sg->off += n;
                sg->len -= n;
            }
        }
        char *plain = NULL;
        size_t pcap = 0;
        bool append = false;
        if (u->rx.q.count) {
            struct sv_seg *t = &w->segs[u->rx.q.tail];
            size_t end = (size_t)t->off + t->len;
            if (end < bsz) {
                plain = (char *)sv_io_buf(w->io, t->bid) + end;
                pcap = bsz - end;
                append = true;
            }
        }
        if (!plain && u->tls_nspare) {
            plain = sv_io_buf(w->io, u->tls_spare[u->tls_nspare - 1]);
            pcap = bsz;
        }
        size_t used = 0;
        bool hs = sv_tls_conn_state(&u->tls_c) == SV_TLS_HANDSHAKE;
        ssize_t r = sv_tls_conn_recv(&u->tls_c, cin, u->tls_cin_len, &used, plain, pcap);
        if (hs && sv_tls_conn_state(&u->tls_c) == SV_TLS_OPEN)
            sv_stat_add(w, SV_DP_STAT_UP_TLS_HANDSHAKES, 1);
        if (used) {
            memmove(cin, cin + used, u->tls_cin_len - used);
            u->tls_cin_len -= (uint32_t)used;
        }
        if (r > 0) {
            if (append)
                w->segs[u->rx.q.tail].len += (uint32_t)r;
            else
                q_push(w, &u->rx.q, u->tls_spare[--u->tls_nspare], (uint32_t)r);
            continue;
        }
        if (r == -EPIPE) {
            u->rx.eof = true; /* close_notify: the backend sends nothing more */
            break;
        }
        if (r < 0) {
            char eb[96];
            sv_log_rl(1, SV_LOG_WARN, "dataplane", "upstream TLS %s failed: %s",
                      hs ? "handshake" : "record", sv_tls_conn_error(&u->tls_c, eb, sizeof(eb)));
            sv_stat_add(w, SV_DP_STAT_UP_TLS_FAILURES, 1);
            return -EPROTO;
        }
        if (used == 0 && (u->tls_rawq.count == 0 || u->tls_cin_len == cap || pcap == 0)) {
            u->tls_noroom = pcap == 0 && (u->tls_rawq.count || u->tls_cin_len);
            break;
        }
    }
    if (flush(w, u) < 0)
        rc = -EIO;
    return rc;
}

/* RequestMirror copies, request bodies included (see dp_int.h, "mirror.c").
 *
 * A copy is an upstream connection (u->mirror, no owner) with a ring of its own from the worker's
 * mirror pool. The ring gets the request head (with "Connection: close") when the copy starts,
 * then every body byte the primary forwards (sv_mirror_feed copies them before the primary's send
 * is submitted, so the copy sees the bytes in the same order). One send in flight reads the
 * oldest contiguous run of the ring; appends only write its free part, so they never touch bytes
 * a send still reads. A copy whose ring has no room for the next bytes is closed at once: the
 * primary never waits for a mirror and memory stays at SV_MIRROR_BUFS rings per worker.
 *
 * The client connection links the copies that still wait for its body (c->mirror_h, handles
 * {slot, gen}); a copy closed for its own reasons is recognised by its state (closing) or its
 * generation (freed) and skipped. Worker thread only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane/dp_int.h"
#include "dataplane/ud.h"
#include "serval/base/assert.h"

static const char close_hdr[] = "Connection: close\r\n\r\n";

static inline char *ring(struct sv_worker *w, const struct sv_upconn *u)
{
    return w->mirror_mem + (size_t)u->mirror_buf * w->mirror_cap;
}

static inline uint64_t handle_of(struct sv_worker *w, const struct sv_upconn *u)
{
    return sv_ud_make(0, u->slot, sv_slab_gen(&w->ups, u->slot));
}

/* The live mirror copy behind handle <h>, or NULL when it was closed or freed meanwhile. */
static struct sv_upconn *mirror_lookup(struct sv_worker *w, uint64_t h)
{
    uint32_t slot = sv_ud_slot(h);
    if (slot >= sv_slab_cap(&w->ups) || sv_slab_gen(&w->ups, slot) != sv_ud_gen(h))
        return NULL;
    struct sv_upconn *u = sv_slab_get(&w->ups, slot);
    if (!u->mirror || u->state == 0 || u->state == SV_UP_CLOSING)
        return NULL;
    return u;
}

/* Append <p>[<n>] to the ring of <u>. Returns false (nothing appended) without room. */
static bool ring_put(struct sv_worker *w, struct sv_upconn *u, const char *p, uint32_t n)
{
    size_t cap = w->mirror_cap;
    if ((size_t)u->mirror_len + n > cap)
        return false;
    size_t at = ((size_t)u->mirror_off + u->mirror_len) % cap;
    size_t first = SV_MIN((size_t)n, cap - at);
    memcpy(ring(w, u) + at, p, first);
    memcpy(ring(w, u), p + first, n - first);
    u->mirror_len += n;
    return true;
}

/* Send the oldest contiguous run of the ring unless a send is in flight or nothing waits (TLS:
 * after the handshake, encrypted, at most what one upstream TLS send takes). */
static void mirror_pump(struct sv_worker *w, struct sv_upconn *u)
{
    if (u->state != SV_UP_ACTIVE || u->send_busy || u->mirror_len == 0 || !sv_utls_ready(u))
        return;
    uint32_t n = (uint32_t)SV_MIN((size_t)u->mirror_len, w->mirror_cap - u->mirror_off);
    if (u->tls) {
        n = (uint32_t)SV_MIN((size_t)n, (size_t)SV_IOV_MAX * w->dp->cfg.buf_size);
        struct iovec iov = {ring(w, u) + u->mirror_off, n};
        if (sv_utls_send(w, u, &iov, 1, n) < 0) {
            sv_conn_up_close(w, u);
            return;
        }
        u->mirror_sending = n;
        return;
    }
    uint64_t ud = sv_ud_make(SV_OP_U_SEND, u->slot, sv_slab_gen(&w->ups, u->slot));
    if (sv_io_send(w->io, u->fd, ring(w, u) + u->mirror_off, n, ud) < 0) {
        sv_conn_up_close(w, u);
        return;
    }
    u->inflight++;
    u->send_busy = true;
    u->mirror_sending = n;
}

/* Progress (bytes queued or sent) re-arms the copy's deadline: the upstream timeout once the
 * whole request is queued; before, the client sets the pace, and the primary waits for it up to
 * the idle timeout, so the copy does too. */
static void mirror_progress(struct sv_worker *w, struct sv_upconn *u)
{
    const struct sv_dp_config *cfg = &w->dp->cfg;
    uint64_t ms = u->mirror_end ? cfg->upstream_timeout_ms
                                : SV_MAX(cfg->upstream_timeout_ms, cfg->idle_timeout_ms);
    sv_timer_arm(&w->wheel, &u->timer, w->now_ms + ms);
}

static void drop_link(struct sv_conn *c, unsigned i)
{
    c->mirror_h[i] = c->mirror_h[--c->n_mirror];
}

void sv_mirror_start(struct sv_worker *w, struct sv_conn *c, const struct sv_route_endpoint *ep,
                     const char *head, uint32_t head_len, const char *body, uint32_t body_len,
                     bool end, struct sv_tls_client *tls)
{
    sv_stat_add(w, SV_DP_STAT_MIRRORS, 1);
    uint32_t hl = head_len - 2 + (uint32_t)sizeof(close_hdr) - 1;
    if (w->mirror_nfree == 0 || head_len < 4 || (size_t)hl + body_len > w->mirror_cap ||
        (!end && c->n_mirror == SV_MIRRORS_PER_REQ)) {
        sv_stat_add(w, SV_DP_STAT_MIRRORS_DROPPED, 1);
        return;
    }
    int64_t slot = sv_slab_alloc(&w->ups);
    if (slot < 0) {
        sv_stat_add(w, SV_DP_STAT_MIRRORS_DROPPED, 1);
        return;
    }
    struct sv_upconn *u = sv_slab_get(&w->ups, (uint32_t)slot);
    u->slot = (uint32_t)slot;
    u->fd = socket(ep->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        sv_slab_free(&w->ups, u->slot);
        sv_stat_add(w, SV_DP_STAT_MIRRORS_DROPPED, 1);
        return;
    }
    int one = 1;
    (void)setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (tls && sv_utls_open(w, u, tls) < 0) {
        close(u->fd);
        sv_slab_free(&w->ups, u->slot);
        sv_stat_add(w, SV_DP_STAT_MIRRORS_DROPPED, 1);
        return;
    }
    u->mirror = true;
    u->mirror_buf = w->mirror_free[--w->mirror_nfree];
    u->mirror_off = u->mirror_len = u->mirror_sending = 0;
    /* the head without its final CRLF, the Connection header and the CRLF, then the body */
    (void)ring_put(w, u, head, head_len - 2);
    (void)ring_put(w, u, close_hdr, (uint32_t)sizeof(close_hdr) - 1);
    (void)ring_put(w, u, body, body_len);
    u->mirror_end = end;
    u->state = SV_UP_CONNECTING;
    u->owner = SV_NO_SLOT;
    u->ep = *ep;
    u->pool_next = u->pool_prev = SV_NO_SLOT;
    uint64_t ud = sv_ud_make(SV_OP_U_CONNECT, u->slot, sv_slab_gen(&w->ups, u->slot));
    if (sv_io_connect(w->io, u->fd, &u->ep.addr.sa, u->ep.addrlen, ud) < 0) {
        sv_conn_up_close(w, u); /* nothing in flight: frees it (and counts the drop) */
        return;
    }
    u->inflight++;
    mirror_progress(w, u);
    if (!end)
        c->mirror_h[c->n_mirror++] = handle_of(w, u);
}

void sv_mirror_feed(struct sv_worker *w, struct sv_conn *c, const struct iovec *iov, unsigned n,
                    bool end)
{
    uint64_t total = 0;
    for (unsigned k = 0; k < n; k++)
        total += iov[k].iov_len;
    for (unsigned i = 0; i < c->n_mirror && i < SV_MIRRORS_PER_REQ;) {
        struct sv_upconn *u = mirror_lookup(w, c->mirror_h[i]);
        if (!u) {
            drop_link(c, i);
            continue;
        }
        if ((uint64_t)u->mirror_len + total > w->mirror_cap) {
            /* the mirror does not keep up: drop its copy rather than hold the primary */
            drop_link(c, i);
            sv_conn_up_close(w, u);
            continue;
        }
        for (unsigned k = 0; k < n; k++)
            (void)ring_put(w, u, iov[k].iov_base, (uint32_t)iov[k].iov_len);
        if (end) {
            u->mirror_end = true;
            drop_link(c, i);
        } else {
            i++;
        }
        mirror_progress(w, u);
        mirror_pump(w, u);
    }
}

void sv_mirror_detach(struct sv_worker *w, struct sv_conn *c)
{
    for (unsigned i = 0; i < c->n_mirror && i < SV_MIRRORS_PER_REQ; i++) {
        struct sv_upconn *u = mirror_lookup(w, c->mirror_h[i]);
        if (u)
            sv_conn_up_close(w, u); /* its request can never be whole */
    }
    c->n_mirror = 0;
}

void sv_mirror_connected(struct sv_worker *w, struct sv_upconn *u)
{
    SV_ASSERT(u->mirror);
    mirror_pump(w, u);
}

void sv_mirror_tls_progress(struct sv_worker *w, struct sv_upconn *u)
{
    SV_ASSERT(u->mirror);
    mirror_pump(w, u);
}

void sv_mirror_sent(struct sv_worker *w, struct sv_upconn *u, int res)
{
    SV_ASSERT(u->mirror && u->mirror_sending > 0);
    uint32_t n = u->mirror_sending;
    u->mirror_sending = 0;
    if (res < 0 || (uint32_t)res != n) {
        sv_conn_up_close(w, u);
        return;
    }
    u->mirror_off = (uint32_t)(((size_t)u->mirror_off + n) % w->mirror_cap);
    u->mirror_len -= n;
    mirror_progress(w, u);
    mirror_pump(w, u);
}

bool sv_mirror_complete(const struct sv_upconn *u)
{
    return u->mirror_end && u->mirror_len == 0;
}

void sv_mirror_release(struct sv_worker *w, struct sv_upconn *u)
{
    SV_ASSERT(u->mirror && w->mirror_nfree < SV_MIRROR_BUFS);
    if (!sv_mirror_complete(u))
        sv_stat_add(w, SV_DP_STAT_MIRRORS_DROPPED, 1);
    w->mirror_free[w->mirror_nfree++] = u->mirror_buf;
    u->mirror = false;
    u->mirror_end = false;
    u->mirror_off = u->mirror_len = u->mirror_sending = 0;
}

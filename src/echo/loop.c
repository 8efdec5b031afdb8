/* serval-echo: the epoll event loop of one worker thread. Level-triggered; a connection asks for
 * EPOLLIN while its input buffer has room (or while it drains input before closing) and for
 * EPOLLOUT while output is queued. conn_progress() is the one place that moves a connection
 * forward: produce pending output, resume the parser, parse or echo WebSocket frames while the
 * output queue is below the high-water mark, flush, then decide about closing. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "echo/echo_int.h"
#include "serval/base/compiler.h"

#define CLOSE_DRAIN_MS 1000 /* after our final answer, wait this long for the peer's EOF */

uint64_t sv_echo_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t queued(const struct sv_echo_conn *c)
{
    return c->out.len - c->out_off;
}

static void conn_free(struct sv_echo_conn *c, bool reset)
{
    struct sv_echo_worker *w = c->w;
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    sv_echo_tls_end(c, !reset);
    sv_echo_h2_end(c);
    close(c->fd); /* also leaves the epoll set */
    if (c->timer_counted)
        w->ntimers--;
    if (c->again)
        w->nagain--;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sv_echo_buf_free(&c->out);
    sv_echo_buf_free(&c->json);
    free(c);
    sv_echo_live--;
}

static void conn_set_events(struct sv_echo_conn *c)
{
    uint32_t ev = 0;
    if (!c->peer_eof && (c->shut_wr || c->in_end - c->in_start < sizeof(c->in)))
        ev |= EPOLLIN;
    if (queued(c) > 0)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Send queued output. Returns false on a fatal send error. */
static bool conn_flush(struct sv_echo_conn *c)
{
    while (queued(c) > 0) { /* bounded: each pass sends bytes or stops */
        ssize_t n = c->ssl ? sv_echo_tls_send(c, c->out.p + c->out_off, queued(c))
                           : send(c->fd, c->out.p + c->out_off, queued(c),
                                  MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* keep the queue compact: appends go to the end of out, so sent bytes at the
             * front must not pile up while a slow peer never lets it drain completely */
            if (c->out_off >= 65536 || c->out_off >= queued(c)) {
                memmove(c->out.p, c->out.p + c->out_off, queued(c));
                c->out.len = queued(c);
                c->out_off = 0;
            }
            return true;
        }
        return false;
    }
    c->out.len = c->out_off = 0;
    if (c->out.cap > (1u << 20)) /* do not keep a burst's memory on an idle connection */
        sv_echo_buf_free(&c->out);
    return true;
}

/* Feed buffered input to the parser (at most what the output queue has room for). Returns true
 * if anything was consumed or a message completed. */
static bool conn_parse(struct sv_echo_conn *c)
{
    size_t avail = c->in_end - c->in_start;
    size_t room = SV_ECHO_HIGH_WATER - queued(c);
    size_t k = SV_MIN(avail, room);
    const char *p = c->in + c->in_start;
    if (k == 0)
        return false;
    llhttp_errno_t err = llhttp_execute(&c->parser, p, k);
    size_t used = k;
    bool used_any = false;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        used = (pos && pos >= p && pos <= p + k) ? (size_t)(pos - p) : k;
        if (err == HPE_PAUSED_UPGRADE) { /* an Upgrade we did not accept: keep speaking HTTP */
            llhttp_resume_after_upgrade(&c->parser);
            used_any = true;
        }
    } else if (err != HPE_OK) {
        sv_echo_http_reject(c);
        c->in_start = c->in_end; /* the rest of the input is not trusted */
        return true;
    }
    c->in_start += used;
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    return used > 0 || used_any || c->message_done;
}

/* Echo WebSocket frames from the input buffer. */
static bool conn_ws(struct sv_echo_conn *c)
{
    size_t avail = c->in_end - c->in_start;
    size_t room = SV_ECHO_HIGH_WATER - queued(c);
    if (avail == 0 || room == 0)
        return false;
    int done = 0;
    size_t used = sv_echo_ws_consume(&c->ws, c->in + c->in_start, avail, &c->out, room, &done);
    c->in_start += used;
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    if (done != 0) {
        c->closing = true;
        c->in_start = c->in_end = 0;
    }
    return used > 0 || done != 0;
}

/* The current response is fully produced: act on what follows it. */
static void conn_after_response(struct sv_echo_conn *c)
{
    c->message_done = false;
    switch (c->after) {
    case SV_ECHO_KEEP: break;
    case SV_ECHO_CLOSE: c->closing = true; break;
    case SV_ECHO_RESET: c->reset_now = true; break;
    case SV_ECHO_UPGRADE_WS: c->ws_mode = true; break;
    }
    llhttp_resume(&c->parser);
}

static void conn_readable(struct sv_echo_conn *c);

/* Keep the worker's count of connections with a timer in step (run_timers scans only then). */
static void timer_sync(struct sv_echo_conn *c)
{
    bool has = c->timer_at_ns != 0;
    if (has != c->timer_counted) {
        c->w->ntimers += has ? 1u : -1u;
        c->timer_counted = has;
    }
}

/* Move the connection forward as far as it can go now. Returns false if it was freed. */
static bool conn_progress(struct sv_echo_conn *c)
{
    uint64_t now = sv_echo_now_ns();
    int guard;
    for (guard = 0; guard < 1024; guard++) {
        bool moved = false;
        now = sv_echo_now_ns();
        if (c->pending != SV_ECHO_P_NONE) {
            size_t before = c->out.len;
            enum sv_echo_pending was = c->pending;
            if (sv_echo_http_continue(c, now) != 0)
                c->dead = true;
            moved = c->out.len != before || c->pending != was;
        }
        if (!c->dead && c->pending == SV_ECHO_P_NONE && c->message_done) {
            conn_after_response(c);
            moved = true;
        }
        bool idle = !c->dead && !c->closing && !c->reset_now && c->pending == SV_ECHO_P_NONE &&
                    !c->message_done;
        if (idle && c->h2c_port && !c->h2_checked && c->in_end > c->in_start &&
            sv_echo_h2_detect(c) != 0)
            moved = true; /* decided: HTTP/2, or HTTP/1.1 (answered 400 by http.c) */
        if (c->ssl && !c->dead && !c->shut_wr && c->in_end < sizeof(c->in) &&
            sv_echo_tls_pending(c)) {
            /* wolfSSL holds decrypted input that did not fit before: epoll cannot tell */
            size_t had = c->in_end;
            conn_readable(c);
            moved |= c->in_end != had || c->dead;
        }
        if (idle && c->h2 && queued(c) < SV_ECHO_HIGH_WATER)
            moved |= sv_echo_h2_step(c);
        else if (idle && (!c->h2c_port || c->h2_checked) && queued(c) < SV_ECHO_HIGH_WATER)
            moved |= c->ws_mode ? conn_ws(c) : conn_parse(c);
        size_t before_flush = queued(c);
        if (c->out.overflow || (!c->dead && !conn_flush(c)))
            c->dead = true;
        moved |= queued(c) < before_flush; /* room freed: parsing may go on */
        if (c->dead || !moved)
            break;
    }
    if (c->dead) {
        conn_free(c, true);
        return false;
    }
    timer_sync(c);
    /* Out of turns with work left (a pipelined burst already read, or TLS input held inside
     * wolfSSL): no socket event may come for it, so the worker calls again without waiting. */
    bool again = guard == 1024;
    if (again != c->again) {
        c->w->nagain += again ? 1u : -1u;
        c->again = again;
    }
    if (queued(c) == 0 && c->reset_now) {
        conn_free(c, true);
        return false;
    }
    if (queued(c) == 0 && c->closing && !c->shut_wr) {
        shutdown(c->fd, SHUT_WR); /* our final answer is out: wait (bounded) for the peer's EOF */
        c->shut_wr = true;
        c->last_active_ms = now / 1000000;
    }
    bool busy = c->pending != SV_ECHO_P_NONE || c->message_done || queued(c) > 0;
    if (c->peer_eof && !busy) {
        /* the peer is gone and everything answerable was answered (what is left in the input,
         * if anything, is a request that can never complete) */
        conn_free(c, false);
        return false;
    }
    conn_set_events(c);
    return true;
}

static void conn_readable(struct sv_echo_conn *c)
{
    for (int guard = 0; guard < 16; guard++) {
        if (c->shut_wr) { /* closing: drain and drop whatever still comes */
            char sink[4096];
            ssize_t n = c->ssl ? sv_echo_tls_recv(c, sink, sizeof(sink))
                               : recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                c->peer_eof = true;
            break;
        }
        if (c->in_start > 0 && c->in_end == sizeof(c->in)) {
            memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
            c->in_end -= c->in_start;
            c->in_start = 0;
        }
        if (c->in_end == sizeof(c->in))
            break;
        ssize_t n = c->ssl ? sv_echo_tls_recv(c, c->in + c->in_end, sizeof(c->in) - c->in_end)
                           : recv(c->fd, c->in + c->in_end, sizeof(c->in) - c->in_end,
                                  MSG_DONTWAIT);
        if (n > 0) {
            c->in_end += (size_t)n;
            c->last_active_ms = sv_echo_now_ns() / 1000000;
            if (c->in_end < sizeof(c->in) && !c->ssl)
                break; /* short read: the socket is drained */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->peer_eof = true;
        if (n < 0) /* reset or error: nothing can be answered any more */
            c->dead = true;
        break;
    }
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(s4->sin_port));
    } else {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(s6->sin6_port));
    }
}

static void accept_some(struct sv_echo_worker *w, struct sv_echo_listen *l)
{
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        sv_echo_connections++;
        struct sv_echo_conn *c = NULL;
        if (sv_echo_live < sv_echo_max_conns)
            c = calloc(1, sizeof(*c));
        if (!c) { /* over --max-conns (or out of memory): refuse this one */
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->tag = SV_ECHO_TAG_CONN;
        c->fd = fd;
        c->w = w;
        c->id = l->id;
        c->h2c_port = l->h2c;
        if (l->tls && sv_echo_tls_start(c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        format_peer(&ss, c->peer, sizeof(c->peer));
        llhttp_init(&c->parser, HTTP_REQUEST, &sv_echo_http_settings);
        c->parser.data = c;
        c->last_active_ms = sv_echo_now_ns() / 1000000;
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        sv_echo_live++;
    }
}

/* Fire due timers and close idle or lingering connections (once a second). Returns the epoll
 * timeout in ms until the next timer or sweep. */
static int run_timers(struct sv_echo_worker *w)
{
    uint64_t now = sv_echo_now_ns();
    uint64_t now_ms = now / 1000000;
    uint64_t next = now + 1000000000ull;
    bool sweep = now_ms >= w->next_sweep_ms;
    if (w->ntimers == 0 && !sweep)
        return (int)SV_MIN(1000, w->next_sweep_ms - now_ms);
    if (sweep)
        w->next_sweep_ms = now_ms + 1000;
    struct sv_echo_conn *c = w->conns;
    while (c) { /* bounded by the number of connections */
        struct sv_echo_conn *nx = c->next;
        if (c->timer_at_ns && c->timer_at_ns <= now) {
            if (!conn_progress(c)) {
                c = nx;
                continue;
            }
        }
        if (c->timer_at_ns && c->timer_at_ns < next)
            next = c->timer_at_ns;
        bool waiting = c->pending != SV_ECHO_P_NONE || c->message_done;
        if (sweep && c->shut_wr && now_ms - c->last_active_ms >= CLOSE_DRAIN_MS)
            conn_free(c, false);
        else if (sweep && !waiting && now_ms - c->last_active_ms >= (uint64_t)sv_echo_idle_ms)
            conn_free(c, false);
        c = nx;
    }
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uint64_t to_sweep = w->next_sweep_ms > now_ms ? w->next_sweep_ms - now_ms : 0;
    return (int)SV_MIN(ms, to_sweep);
}

void *sv_echo_worker_main(void *arg)
{
    struct sv_echo_worker *w = arg;
    struct epoll_event evs[256];
    w->next_sweep_ms = sv_echo_now_ns() / 1000000 + 1000;
    for (;;) { /* runs until the process exits */
        int timeout = run_timers(w);
        int n = epoll_wait(w->epfd, evs, (int)SV_ARRAY_SIZE(evs), w->nagain ? 0 : timeout);
        for (int i = 0; i < n; i++) {
            int tag = *(int *)evs[i].data.ptr;
            if (tag == SV_ECHO_TAG_LISTEN) {
                accept_some(w, evs[i].data.ptr);
                continue;
            }
            struct sv_echo_conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_readable(c);
            if (evs[i].events & EPOLLOUT)
                c->last_active_ms = sv_echo_now_ns() / 1000000;
            conn_progress(c);
        }
        for (struct sv_echo_conn *c = w->conns; c && w->nagain;) { /* bounded by the list */
            struct sv_echo_conn *nx = c->next;
            if (c->again)
                conn_progress(c);
            c = nx;
        }
    }
    return NULL;
}

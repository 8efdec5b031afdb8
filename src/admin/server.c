/* Admin listener: one thread, poll() over an eventfd (stop), the listening socket and at most
 * max_conns connections. Each connection sends one request head (bounded), gets one answer
 * ("Connection: close") and is closed; a connection that has not finished within timeout_ms is
 * closed. See serval/admin/admin.h for the contract. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serval/admin/admin.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "serval/base/time.h"

#define ACCEPT_BATCH 64

struct admin_handler {
    char *path;
    sv_admin_handler_fn fn;
    void *ctx;
};

struct admin_conn {
    int fd; /* -1: free slot */
    bool responding;
    uint64_t deadline_ms;
    size_t rlen;
    char *rbuf; /* cfg.max_request bytes, from the server's block */
    struct sv_admin_buf out;
    size_t out_off;
};

struct sv_admin {
    struct sv_admin_config cfg;
    int lfd;
    int wake_fd;
    uint16_t port;
    pthread_mutex_t mu; /* handlers */
    struct admin_handler handlers[SV_ADMIN_MAX_HANDLERS];
    unsigned nhandlers;
    pthread_mutex_t run_mu; /* start/stop */
    bool running;
    atomic_bool stopping;
    pthread_t thread;
    _Atomic uint64_t requests;
    struct admin_conn *conns;
    char *rbufs;
    struct sv_admin_response resp; /* reused for every request (admin thread only) */
    struct pollfd *pfds;
};

/* ---- set-up ---------------------------------------------------------------------------------- */

static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[128];
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || (size_t)(colon - spec) >= sizeof(host) || !colon[1])
        return -EINVAL;
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    char *h = host;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_listener(struct sv_admin *a)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = parse_addr(a->cfg.addr, &ss, &sl);
    if (rc)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    a->lfd = fd;
    return 0;
}

int sv_admin_create(struct sv_admin **out, const struct sv_admin_config *cfg)
{
    if (!out || !cfg || cfg->max_conns == 0 || cfg->max_conns > 4096 || cfg->timeout_ms == 0 ||
        cfg->max_request < 64 || cfg->max_request > (1u << 20))
        return -EINVAL;
    struct sv_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->cfg = *cfg;
    a->lfd = a->wake_fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->run_mu, NULL);
    a->conns = calloc(cfg->max_conns, sizeof(*a->conns));
    a->rbufs = malloc(cfg->max_conns * cfg->max_request);
    a->pfds = calloc(cfg->max_conns + 2, sizeof(*a->pfds));
    int rc = (a->conns && a->rbufs && a->pfds) ? 0 : -ENOMEM;
    if (rc == 0) {
        a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (a->wake_fd < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = open_listener(a);
    if (rc) {
        sv_admin_destroy(a);
        return rc;
    }
    for (unsigned i = 0; i < cfg->max_conns; i++) {
        a->conns[i].fd = -1;
        a->conns[i].rbuf = a->rbufs + (size_t)i * cfg->max_request;
    }
    *out = a;
    return 0;
}

int sv_admin_register(struct sv_admin *a, const char *path, sv_admin_handler_fn fn, void *ctx)
{
    if (!a || !path || path[0] != '/' || !fn)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    unsigned i = 0;
    while (i < a->nhandlers && strcmp(a->handlers[i].path, path) != 0)
        i++;
    if (i == a->nhandlers) {
        if (i == SV_ADMIN_MAX_HANDLERS) {
            rc = -ENOSPC;
        } else if (!(a->handlers[i].path = strdup(path))) {
            rc = -ENOMEM;
        } else {
            a->nhandlers++;
        }
    }
    if (rc == 0) {
        a->handlers[i].fn = fn;
        a->handlers[i].ctx = ctx;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

uint16_t sv_admin_port(const struct sv_admin *a)
{
    return a->port;
}

uint64_t sv_admin_requests(const struct sv_admin *a)
{
    return atomic_load_explicit(&a->requests, memory_order_relaxed);
}

/* ---- requests -------------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void conn_close(struct admin_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->responding = false;
    c->rlen = 0;
    c->out_off = 0;
    if (c->out.cap > 65536) /* do not keep a large answer's memory per idle slot */
        sv_admin_buf_free(&c->out);
    else
        sv_admin_buf_reset(&c->out);
}

/* Format the answer into c->out and switch the connection to writing. */
static void conn_answer(struct sv_admin *a, struct admin_conn *c, int status, const char *ctype,
                        const struct sv_admin_buf *body, bool head_only, const char *extra)
{
    struct sv_admin_buf *o = &c->out;
    sv_admin_buf_reset(o);
    size_t blen = body ? body->len : 0;
    sv_admin_buf_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                        status, reason(status), ctype, blen, extra ? extra : "");
    if (!head_only && blen)
        sv_admin_buf_append(o, body->data, blen);
    if (o->_err) { /* the head alone always fits; a body that does not becomes a 500 */
        sv_admin_buf_reset(o);
        sv_admin_buf_puts(o, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n");
    }
    c->responding = true;
    c->out_off = 0;
    atomic_fetch_add_explicit(&a->requests, 1, memory_order_relaxed);
}

static void answer_text(struct sv_admin *a, struct admin_conn *c, int status, const char *text,
                        bool head_only, const char *extra)
{
    struct sv_admin_buf *b = &a->resp.body;
    sv_admin_buf_reset(b);
    sv_admin_buf_puts(b, text);
    conn_answer(a, c, status, "text/plain; charset=utf-8", b, head_only, extra);
}

static bool find_handler(struct sv_admin *a, struct sv_str path, struct admin_handler *out)
{
    bool found = false;
    pthread_mutex_lock(&a->mu);
    for (unsigned i = 0; i < a->nhandlers && !found; i++) {
        if (strlen(a->handlers[i].path) == path.len &&
            memcmp(a->handlers[i].path, path.ptr, path.len) == 0) {
            *out = a->handlers[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

static void answer_index(struct sv_admin *a, struct admin_conn *c, bool head_only)
{
    struct sv_admin_buf *b = &a->resp.body;
    sv_admin_buf_reset(b);
    sv_admin_buf_puts(b, "serval-gateway admin\n/healthz\n");
    pthread_mutex_lock(&a->mu);
    for (unsigned i = 0; i < a->nhandlers; i++)
        if (strcmp(a->handlers[i].path, "/healthz") != 0)
            sv_admin_buf_printf(b, "%s\n", a->handlers[i].path);
    pthread_mutex_unlock(&a->mu);
    conn_answer(a, c, 200, "text/plain; charset=utf-8", b, head_only, NULL);
}

/* A complete request head is in c->rbuf[0..len): parse the request line and dispatch. */
static void conn_dispatch(struct sv_admin *a, struct admin_conn *c, size_t len)
{
    char *line = c->rbuf;
    char *eol = memchr(line, '\n', len);
    SV_ASSERT(eol != NULL);
    size_t ll = (size_t)(eol - line);
    if (ll > 0 && line[ll - 1] == '\r')
        ll--;
    char *sp1 = memchr(line, ' ', ll);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp2 == sp1 + 1 || sp1[1] != '/' ||
        (size_t)(line + ll - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        answer_text(a, c, 400, "bad request\n", false, NULL);
        return;
    }
    struct sv_admin_request req = {.method = {line, (size_t)(sp1 - line)}};
    bool head_only = req.method.len == 4 && memcmp(line, "HEAD", 4) == 0;
    if (!head_only && !(req.method.len == 3 && memcmp(line, "GET", 3) == 0)) {
        answer_text(a, c, 405, "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
        return;
    }
    const char *target = sp1 + 1;
    size_t tl = (size_t)(sp2 - target);
    const char *q = memchr(target, '?', tl);
    req.path = sv_str_make(target, q ? (size_t)(q - target) : tl);
    req.query = q ? sv_str_make(q + 1, tl - (size_t)(q + 1 - target)) : sv_str_make(q, 0);
    struct admin_handler h;
    if (!find_handler(a, req.path, &h)) {
        if (sv_str_eq(req.path, SV_STR_LIT("/healthz")))
            answer_text(a, c, 200, "ok\n", head_only, NULL);
        else if (sv_str_eq(req.path, SV_STR_LIT("/")))
            answer_index(a, c, head_only);
        else
            answer_text(a, c, 404, "not found\n", head_only, NULL);
        return;
    }
    struct sv_admin_response *r = &a->resp;
    r->status = 200;
    r->content_type = "text/plain; charset=utf-8";
    sv_admin_buf_reset(&r->body);
    int rc = h.fn(h.ctx, &req, r);
    if (rc < 0 || r->body._err || r->status < 200 || r->status > 599 || !r->content_type) {
        sv_log_rl(1, SV_LOG_WARN, "admin", "handler for %.*s failed (%d)", (int)req.path.len,
                  req.path.ptr, rc < 0 ? rc : r->body._err);
        answer_text(a, c, 500, "handler failed\n", head_only, NULL);
        return;
    }
    conn_answer(a, c, r->status, r->content_type, &r->body, head_only, NULL);
}

/* Returns true when a whole request head is present in c->rbuf. */
static bool head_complete(const struct admin_conn *c, size_t *len)
{
    for (size_t i = 0; i + 1 < c->rlen; i++) {
        if (c->rbuf[i] != '\n')
            continue;
        if (c->rbuf[i + 1] == '\n' ||
            (c->rbuf[i + 1] == '\r' && i + 2 < c->rlen && c->rbuf[i + 2] == '\n')) {
            *len = i + 1;
            return true;
        }
    }
    return false;
}

static void conn_read(struct sv_admin *a, struct admin_conn *c)
{
    size_t room = a->cfg.max_request - c->rlen;
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    size_t len;
    if (head_complete(c, &len))
        conn_dispatch(a, c, len);
    else if (c->rlen == a->cfg.max_request)
        answer_text(a, c, 431, "request too large\n", false, NULL);
}

static void conn_write(struct admin_conn *c)
{
    while (c->out_off < c->out.len) { /* bounded: each pass sends bytes or returns */
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    conn_close(c);
}

static void accept_some(struct sv_admin *a, uint64_t now)
{
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct admin_conn *c = NULL;
        for (unsigned i = 0; i < a->cfg.max_conns && !c; i++)
            if (a->conns[i].fd < 0)
                c = &a->conns[i];
        if (!c) { /* full: refuse this one, keep the others */
            close(fd);
            continue;
        }
        c->fd = fd;
        c->rlen = 0;
        c->responding = false;
        c->deadline_ms = now + a->cfg.timeout_ms;
    }
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void *admin_main(void *arg)
{
    struct sv_admin *a = arg;
    struct pollfd *p = a->pfds;
    unsigned nconn = a->cfg.max_conns;
    while (!atomic_load(&a->stopping)) {
        uint64_t now = sv_now_ms();
        int timeout = 1000;
        p[0] = (struct pollfd){a->wake_fd, POLLIN, 0};
        p[1] = (struct pollfd){a->lfd, POLLIN, 0};
        for (unsigned i = 0; i < nconn; i++) {
            struct admin_conn *c = &a->conns[i];
            if (c->fd >= 0 && now >= c->deadline_ms)
                conn_close(c);
            p[2 + i] = (struct pollfd){c->fd, (short)(c->responding ? POLLOUT : POLLIN), 0};
            if (c->fd >= 0 && (int)(c->deadline_ms - now) < timeout)
                timeout = (int)(c->deadline_ms - now);
        }
        int n = poll(p, nconn + 2, timeout);
        if (n < 0 && errno != EINTR) {
            sv_error("admin", "poll: %s", strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        if (p[0].revents)
            break;
        now = sv_now_ms();
        for (unsigned i = 0; i < nconn; i++) {
            struct admin_conn *c = &a->conns[i];
            if (c->fd < 0 || p[2 + i].fd != c->fd || !p[2 + i].revents)
                continue;
            if (c->responding)
                conn_write(c);
            else
                conn_read(a, c);
            if (c->fd >= 0 && c->responding)
                conn_write(c); /* try at once; usually the whole answer fits */
        }
        if (p[1].revents & POLLIN)
            accept_some(a, now);
    }
    for (unsigned i = 0; i < nconn; i++)
        conn_close(&a->conns[i]);
    return NULL;
}

int sv_admin_start(struct sv_admin *a)
{
    pthread_mutex_lock(&a->run_mu);
    int rc = 0;
    if (a->running) {
        rc = -EALREADY;
    } else {
        uint64_t v;
        while (read(a->wake_fd, &v, sizeof(v)) > 0) { /* drain a previous stop */
        }
        atomic_store(&a->stopping, false);
        rc = -pthread_create(&a->thread, NULL, admin_main, a);
        a->running = rc == 0;
    }
    pthread_mutex_unlock(&a->run_mu);
    return rc;
}

void sv_admin_stop(struct sv_admin *a)
{
    pthread_mutex_lock(&a->run_mu);
    if (a->running) {
        uint64_t one = 1;
        atomic_store(&a->stopping, true);
        (void)!write(a->wake_fd, &one, sizeof(one));
        pthread_join(a->thread, NULL);
        a->running = false;
    }
    pthread_mutex_unlock(&a->run_mu);
}

void sv_admin_destroy(struct sv_admin *a)
{
    if (!a)
        return;
    sv_admin_stop(a);
    if (a->conns)
        for (unsigned i = 0; i < a->cfg.max_conns; i++)
            sv_admin_buf_free(&a->conns[i].out);
    for (unsigned i = 0; i < a->nhandlers; i++)
        free(a->handlers[i].path);
    if (a->lfd >= 0)
        close(a->lfd);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    sv_admin_buf_free(&a->resp.body);
    free(a->conns);
    free(a->rbufs);
    free(a->pfds);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->run_mu);
    free(a);
}

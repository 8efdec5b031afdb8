/* serval-echo: a test and benchmark backend for serval-gateway.
 *
 *   serval-echo --listen ADDR:PORT [--listen ...] [--pod NAME] [--namespace NS] [--service NAME]
 *               [--threads N] [--max-conns N] [--idle-timeout MS] [--quiet]
 *
 * Speaks the Gateway API conformance "echo-basic" contract (any path -> 200 JSON describing the
 * request; ?delay=; /status/NNN; /health; /retry; /ws WebSocket echo; X-Echo-Set-Header; one log
 * line per request on stdout) plus endpoints for proxy tests: /echo-body (streams the request
 * body back), /bytes/N[?chunked=1] (N bytes 'a'+(i%26)), /slow?rate=B&n=N, /reset (TCP reset,
 * no response), /close (answer, then close), /stats (JSON {connections, requests, live}).
 * Environment: POD_NAME, NAMESPACE, SERVICE_NAME, INGRESS_NAME (flags win).
 *
 * --threads N: accept threads per listening address (SO_REUSEPORT sockets). Each accepted
 * connection gets its own thread with blocking I/O; --max-conns bounds them (default 4096; over
 * the limit a new connection is closed at once), --idle-timeout closes idle keep-alive
 * connections (default 60000 ms). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo/echo_int.h"

#define MAX_LISTEN 32
#define MAX_THREADS_PER_LISTEN 16

struct listener {
    int fd;
    struct sv_echo_ident *id;
};

struct conn_arg {
    int fd;
    const struct sv_echo_ident *id;
    char peer[72];
};

static unsigned max_conns = 4096;

static void usage(FILE *f)
{
    fprintf(f, "usage: serval-echo --listen ADDR:PORT [--listen ...] [--pod NAME] "
               "[--namespace NS] [--service NAME]\n"
               "                   [--threads N] [--max-conns N] [--idle-timeout MS] [--quiet]\n");
}

static void *conn_main(void *arg)
{
    struct conn_arg *a = arg;
    sv_echo_serve(a->fd, a->id, a->peer);
    free(a);
    sv_echo_live--;
    return NULL;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", host, port);
    } else {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", host, port);
    }
}

static void *accept_main(void *arg)
{
    struct listener *l = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (;;) { /* runs until the process exits */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                usleep(10000);
            continue;
        }
        sv_echo_connections++;
        if (sv_echo_live >= max_conns) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn_arg *a = malloc(sizeof(*a));
        if (!a) {
            close(fd);
            continue;
        }
        a->fd = fd;
        a->id = l->id;
        format_peer(&ss, a->peer, sizeof(a->peer));
        sv_echo_live++;
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, a) != 0) {
            sv_echo_live--;
            close(fd);
            free(a);
        }
    }
    return NULL;
}

/* "ADDR:PORT" or "[V6]:PORT" -> bound listening socket; returns fd or -1 (message printed). */
static int open_listener(const char *spec, bool reuseport, unsigned *port_out)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
        fprintf(stderr, "serval-echo: bad --listen '%s' (want ADDR:PORT)\n", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    char *h = host;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "serval-echo: bad --listen '%s': %s\n", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "serval-echo: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

int main(int argc, char **argv)
{
    const char *specs[MAX_LISTEN];
    unsigned nspecs = 0, threads = 1, idle = 60000;
    const char *pod = env_or("POD_NAME", "serval-echo"), *ns = env_or("NAMESPACE", "");
    const char *svc = env_or("SERVICE_NAME", ""), *ingress = env_or("INGRESS_NAME", "");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--quiet") == 0) {
            sv_echo_quiet = true;
            continue;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (!v) {
            ok = false;
        } else if (strcmp(a, "--listen") == 0) {
            ok = nspecs < MAX_LISTEN;
            if (ok)
                specs[nspecs++] = v;
        } else if (strcmp(a, "--pod") == 0) {
            pod = v;
        } else if (strcmp(a, "--namespace") == 0) {
            ns = v;
        } else if (strcmp(a, "--service") == 0) {
            svc = v;
        } else if (strcmp(a, "--threads") == 0) {
            ok = parse_uint(v, 1, MAX_THREADS_PER_LISTEN, &threads);
        } else if (strcmp(a, "--max-conns") == 0) {
            ok = parse_uint(v, 1, 1000000, &max_conns);
        } else if (strcmp(a, "--idle-timeout") == 0) {
            ok = parse_uint(v, 1, 3600000, &idle);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "serval-echo: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (nspecs == 0) {
        usage(stderr);
        return 2;
    }
    sv_echo_idle_ms = (int)idle;
    signal(SIGPIPE, SIG_IGN);

    static struct listener ls[MAX_LISTEN * MAX_THREADS_PER_LISTEN];
    static struct sv_echo_ident ids[MAX_LISTEN];
    unsigned nls = 0;
    for (unsigned s = 0; s < nspecs; s++) {
        unsigned port = 0;
        struct sv_echo_ident *id = &ids[s];
        *id = (struct sv_echo_ident){.pod = pod, .ns = ns, .service = svc, .ingress = ingress};
        for (unsigned t = 0; t < threads; t++) {
            char spec[300];
            if (t == 0) {
                snprintf(spec, sizeof(spec), "%s", specs[s]);
            } else { /* same address, the port the first socket got (port 0 allowed) */
                const char *colon = strrchr(specs[s], ':');
                snprintf(spec, sizeof(spec), "%.*s:%u", (int)(colon - specs[s]), specs[s], port);
            }
            int fd = open_listener(spec, threads > 1, &port);
            if (fd < 0)
                return 1;
            ls[nls].fd = fd;
            ls[nls].id = id;
            nls++;
        }
        snprintf(id->port, sizeof(id->port), "%u", port);
        const char *colon = strrchr(specs[s], ':');
        fprintf(stderr, "serval-echo: listening on %.*s:%u pod=%s namespace=%s\n",
                (int)(colon - specs[s]), specs[s], port, pod, ns);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t tids[MAX_LISTEN * MAX_THREADS_PER_LISTEN];
    for (unsigned i = 0; i < nls; i++) {
        if (pthread_create(&tids[i], NULL, accept_main, &ls[i]) != 0) {
            fprintf(stderr, "serval-echo: cannot start threads\n");
            return 1;
        }
    }
    for (unsigned i = 0; i < nls; i++)
        pthread_join(tids[i], NULL);
    return 0;
}

/* serval-echo: a test and benchmark backend for serval-gateway.
 *
 *   serval-echo --listen ADDR:PORT [--listen ...] [--pod NAME] [--namespace NS] [--service NAME]
 *               [--threads N] [--max-conns N] [--idle-timeout MS] [--quiet]
 *               [--tls-listen ADDR:PORT ... --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
 *               [--h2c-listen ADDR:PORT ...]
 *
 * Speaks the Gateway API conformance "echo-basic" contract (any path -> 200 JSON describing the
 * request; ?delay=; /status/NNN; /health; /retry; /ws WebSocket echo; X-Echo-Set-Header; one log
 * line per request on stdout) plus endpoints for proxy tests: /echo-body (streams the request
 * body back), /bytes/N[?chunked=1] (N bytes 'a'+(i%26)), /slow?rate=B&n=N, /reset (TCP reset,
 * no response), /close (answer, then close), /stats (JSON {connections, requests, live}).
 * Environment: POD_NAME, NAMESPACE, SERVICE_NAME, INGRESS_NAME, and for --tls-listen
 * TLS_SERVER_CERT, TLS_SERVER_PRIVKEY, TLS_CLIENT_CACERTS (PEM file paths, as the conformance
 * echo-basic server reads them; flags win). --tls-listen serves the same endpoints over TLS
 * (wolfSSL) and adds "tls" (version, serverName, peerCertificates...) to the echo JSON; with a
 * client CA, client certificates are asked for and verified when given (tls.c). --h2c-listen
 * serves HTTP/2 with prior knowledge like the conformance echo's h2c port (H2C_PORT): plain
 * HTTP/1.1 there is answered 400 "Expected h2c request" (h2.c).
 *
 * --threads N: event-loop threads (epoll; default: online CPUs, at most 4), each with its own
 * SO_REUSEPORT socket per --listen address. --max-conns bounds open connections (default 4096;
 * over the limit a new connection is closed at once); --idle-timeout closes idle connections
 * (default 60000 ms). */
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo/echo_int.h"

#define MAX_LISTEN SV_ECHO_MAX_LISTEN
#define MAX_THREADS 16

static void usage(FILE *f)
{
    fprintf(f, "usage: serval-echo --listen ADDR:PORT [--listen ...] [--pod NAME] "
               "[--namespace NS] [--service NAME]\n"
               "                   [--threads N] [--max-conns N] [--idle-timeout MS] [--quiet]\n"
               "                   [--tls-listen ADDR:PORT --tls-cert FILE --tls-key FILE "
               "[--tls-client-ca FILE]]\n"
               "                   [--h2c-listen ADDR:PORT]\n");
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
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
    bool spec_tls[MAX_LISTEN], spec_h2c[MAX_LISTEN];
    unsigned nspecs = 0, idle = 60000, ntls = 0;
    const char *tls_cert = env_or("TLS_SERVER_CERT", NULL);
    const char *tls_key = env_or("TLS_SERVER_PRIVKEY", NULL);
    const char *tls_ca = env_or("TLS_CLIENT_CACERTS", NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (unsigned)ncpu;
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
        } else if (strcmp(a, "--listen") == 0 || strcmp(a, "--tls-listen") == 0 ||
                   strcmp(a, "--h2c-listen") == 0) {
            ok = nspecs < MAX_LISTEN;
            if (ok) {
                spec_tls[nspecs] = a[2] == 't';
                spec_h2c[nspecs] = a[2] == 'h';
                ntls += spec_tls[nspecs];
                specs[nspecs++] = v;
            }
        } else if (strcmp(a, "--tls-cert") == 0) {
            tls_cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            tls_key = v;
        } else if (strcmp(a, "--tls-client-ca") == 0) {
            tls_ca = v;
        } else if (strcmp(a, "--pod") == 0) {
            pod = v;
        } else if (strcmp(a, "--namespace") == 0) {
            ns = v;
        } else if (strcmp(a, "--service") == 0) {
            svc = v;
        } else if (strcmp(a, "--threads") == 0) {
            ok = parse_uint(v, 1, MAX_THREADS, &threads);
        } else if (strcmp(a, "--max-conns") == 0) {
            ok = parse_uint(v, 1, 1000000, &sv_echo_max_conns);
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
    if (ntls && (!tls_cert || !tls_key)) {
        fprintf(stderr, "serval-echo: --tls-listen needs --tls-cert and --tls-key "
                        "(or TLS_SERVER_CERT and TLS_SERVER_PRIVKEY)\n");
        return 2;
    }
    if (ntls && sv_echo_tls_init(tls_cert, tls_key, tls_ca) != 0)
        return 1;
    sv_echo_idle_ms = (int)idle;
    signal(SIGPIPE, SIG_IGN);

    static struct sv_echo_worker workers[MAX_THREADS];
    static struct sv_echo_ident ids[MAX_LISTEN];
    for (unsigned t = 0; t < threads; t++) {
        workers[t].epfd = epoll_create1(EPOLL_CLOEXEC);
        if (workers[t].epfd < 0) {
            fprintf(stderr, "serval-echo: epoll_create1: %s\n", strerror(errno));
            return 1;
        }
    }
    for (unsigned s = 0; s < nspecs; s++) {
        unsigned port = 0;
        struct sv_echo_ident *id = &ids[s];
        *id = (struct sv_echo_ident){.pod = pod, .ns = ns, .service = svc, .ingress = ingress};
        const char *colon = strrchr(specs[s], ':');
        for (unsigned t = 0; t < threads; t++) {
            char spec[300];
            if (t == 0) /* later sockets take the port the first one got (port 0 allowed) */
                snprintf(spec, sizeof(spec), "%s", specs[s]);
            else
                snprintf(spec, sizeof(spec), "%.*s:%u", (int)(colon - specs[s]), specs[s], port);
            int fd = open_listener(spec, threads > 1, &port);
            if (fd < 0)
                return 1;
            struct sv_echo_worker *w = &workers[t];
            struct sv_echo_listen *l = &w->listen[w->nlisten++];
            *l = (struct sv_echo_listen){
                .tag = SV_ECHO_TAG_LISTEN, .fd = fd, .tls = spec_tls[s], .h2c = spec_h2c[s],
                .id = id};
            struct epoll_event e = {.events = EPOLLIN, .data.ptr = l};
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
                fprintf(stderr, "serval-echo: epoll_ctl: %s\n", strerror(errno));
                return 1;
            }
        }
        snprintf(id->port, sizeof(id->port), "%u", port);
        fprintf(stderr, "serval-echo: %slistening on %.*s:%u pod=%s namespace=%s\n",
                spec_tls[s] ? "TLS " : spec_h2c[s] ? "h2c " : "", (int)(colon - specs[s]), specs[s], port, pod, ns);
    }
    pthread_t tids[MAX_THREADS];
    for (unsigned t = 0; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, sv_echo_worker_main, &workers[t]) != 0) {
            fprintf(stderr, "serval-echo: cannot start threads\n");
            return 1;
        }
    }
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    return 0;
}

/* TLS micro-benchmark of src/tls over one wolfSSL build (compiled against it by
 * perf/bench_tls.sh): full handshakes per second (ECDSA P-256, TLS 1.3 and TLS 1.2, client and
 * server in one process, in memory) with the SERVER's CPU time per handshake measured
 * separately, and record throughput (AES-128-GCM, 16 KiB records) of server encryption and
 * client decryption. Not a test: numbers only.
 *
 * usage: bench_tls CERT_DIR [seconds per scenario] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "serval/tls/tls.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *dir, const char *name, size_t *n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) {
        perror(p);
        exit(1);
    }
    char *b = malloc(65536);
    *n = fread(b, 1, 65536, f);
    fclose(f);
    return b;
}

struct pipe_buf {
    unsigned char b[1 << 17];
    size_t len;
};

static struct pipe_buf c2s, s2c;

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    if (s2c.len == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = s2c.len < (size_t)sz ? s2c.len : (size_t)sz;
    memcpy(buf, s2c.b, n);
    memmove(s2c.b, s2c.b + n, s2c.len - n);
    s2c.len -= n;
    return (int)n;
}

static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    size_t room = sizeof(c2s.b) - c2s.len;
    if (room == 0)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    size_t n = room < (size_t)sz ? room : (size_t)sz;
    memcpy(c2s.b + c2s.len, buf, n);
    c2s.len += n;
    return (int)n;
}

static double g_server_cpu;

/* Feed the server everything the client wrote; move its output to the client. */
static ssize_t server_step(struct sv_tls_conn *s, unsigned char *plain, size_t cap)
{
    double t0 = cpu_s();
    ssize_t total = 0;
    for (int i = 0; i < 64; i++) {
        size_t used = 0;
        ssize_t r = sv_tls_conn_recv(s, c2s.b, c2s.len, &used, plain, cap);
        memmove(c2s.b, c2s.b + used, c2s.len - used);
        c2s.len -= used;
        const uint8_t *o;
        size_t on = sv_tls_conn_out(s, &o);
        if (on) {
            memcpy(s2c.b + s2c.len, o, on);
            s2c.len += on;
            sv_tls_conn_out_consume(s, on);
        }
        if (r < 0) {
            total = r;
            break;
        }
        total += r;
        if (r == 0 && used == 0)
            break;
    }
    g_server_cpu += cpu_s() - t0;
    return total;
}

static WOLFSSL_CTX *client_ctx(int version)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(version == 12 ? wolfTLSv1_2_client_method()
                                                     : wolfTLSv1_3_client_method());
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_SetIORecv(ctx, cli_recv);
    wolfSSL_SetIOSend(ctx, cli_send);
    return ctx;
}

static int handshake(WOLFSSL_CTX *cctx, struct sv_tls_server *srv, struct sv_tls_conn *s,
                     unsigned char *out, size_t outcap, WOLFSSL **cl)
{
    c2s.len = s2c.len = 0;
    WOLFSSL *c = wolfSSL_new(cctx);
    wolfSSL_UseSNI(c, WOLFSSL_SNI_HOST_NAME, "a.example.com", 13);
    if (sv_tls_conn_open(s, srv, out, outcap) != 0)
        return -1;
    unsigned char tmp[256];
    for (int i = 0; i < 20; i++) {
        int rc = wolfSSL_connect(c);
        if (server_step(s, tmp, sizeof(tmp)) < 0)
            return -1;
        if (rc == WOLFSSL_SUCCESS && sv_tls_conn_state(s) == SV_TLS_OPEN) {
            *cl = c;
            return 0;
        }
    }
    return -1;
}

static void bench_handshakes(struct sv_tls_server *srv, int version, double secs)
{
    WOLFSSL_CTX *cctx = client_ctx(version);
    static unsigned char out[20000];
    struct sv_tls_conn s;
    long n = 0;
    g_server_cpu = 0;
    double t0 = now_s(), c0 = cpu_s();
    while (now_s() - t0 < secs) {
        WOLFSSL *c;
        if (handshake(cctx, srv, &s, out, sizeof(out), &c) != 0) {
            fprintf(stderr, "handshake failed\n");
            exit(1);
        }
        wolfSSL_free(c);
        sv_tls_conn_close(&s);
        n++;
    }
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    printf("| full handshake TLS 1.%d ECDSA P-256 | %.0f pairs/s | server %.0f us/handshake "
           "(%.0f handshakes/s per core) | total cpu %.0f us |\n",
           version == 12 ? 2 : 3, n / wall, g_server_cpu / n * 1e6, n / g_server_cpu,
           cpu / n * 1e6);
    wolfSSL_CTX_free(cctx);
}

static void bench_throughput(struct sv_tls_server *srv, double secs)
{
    WOLFSSL_CTX *cctx = client_ctx(13);
    wolfSSL_CTX_set_cipher_list(cctx, "TLS13-AES128-GCM-SHA256");
    static unsigned char out[1 << 16];
    struct sv_tls_conn s;
    WOLFSSL *c;
    if (handshake(cctx, srv, &s, out, sizeof(out), &c) != 0)
        exit(1);
    static unsigned char data[1 << 16], sink[1 << 16];
    memset(data, 'x', sizeof(data));
    double enc = 0, dec = 0;
    size_t bytes = 0;
    double t0 = now_s();
    while (now_s() - t0 < secs) {
        double a = cpu_s();
        ssize_t k = sv_tls_conn_send(&s, data, 16384 * 3);
        double b = cpu_s();
        enc += b - a;
        if (k <= 0)
            exit(2);
        const uint8_t *o;
        size_t on = sv_tls_conn_out(&s, &o);
        memcpy(s2c.b + s2c.len, o, on);
        s2c.len += on;
        sv_tls_conn_out_consume(&s, on);
        size_t got = 0;
        a = cpu_s();
        while (got < (size_t)k) {
            int r = wolfSSL_read(c, sink, sizeof(sink));
            if (r <= 0)
                exit(3);
            got += (size_t)r;
        }
        dec += cpu_s() - a;
        bytes += (size_t)k;
    }
    /* client → server (server decrypts) */
    double sdec = 0;
    size_t sbytes = 0;
    t0 = now_s();
    while (now_s() - t0 < secs) {
        int w = wolfSSL_write(c, data, 16384 * 3);
        if (w <= 0)
            exit(4);
        g_server_cpu = 0;
        ssize_t r = server_step(&s, sink, sizeof(sink));
        size_t got = r > 0 ? (size_t)r : 0;
        while (got < (size_t)w) {
            r = server_step(&s, sink, sizeof(sink));
            if (r <= 0)
                exit(5);
            got += (size_t)r;
        }
        sdec += g_server_cpu;
        sbytes += (size_t)w;
    }
    printf("| AES-128-GCM records (TLS 1.3, 16 KiB) | server encrypt %.0f MB/s | server decrypt "
           "%.0f MB/s | client decrypt %.0f MB/s |\n",
           bytes / enc / 1e6, sbytes / sdec / 1e6, bytes / dec / 1e6);
    wolfSSL_free(c);
    sv_tls_conn_close(&s);
    wolfSSL_CTX_free(cctx);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CERT_DIR [seconds]\n", argv[0]);
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 3;
    sv_tls_global_init();
    size_t cn, kn;
    char *crt = slurp(argv[1], "ec_a.crt", &cn), *key = slurp(argv[1], "ec_a.key", &kn);
    struct sv_tls_cert_pem pem = {crt, cn, key, kn};
    struct sv_tls_listener_spec l = {SV_STR_LIT("a.example.com"), 0, SV_STR_LIT("bench"), &pem, 1};
    struct sv_tls_ticket_keys *keys = sv_tls_ticket_keys_new(3600, 0);
    char err[200];
    struct sv_tls_server *srv = sv_tls_server_new(&l, 1, keys, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    bench_handshakes(srv, 13, secs);
    bench_handshakes(srv, 12, secs);
    bench_throughput(srv, secs);
    sv_tls_server_unref(srv);
    sv_tls_ticket_keys_free(keys);
    free(crt);
    free(key);
    return 0;
}

/* Admin listener and Prometheus writer. The server tests talk to a real listener on
 * 127.0.0.1:<ephemeral> with blocking sockets and receive timeouts (bounded). */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../harness.h"
#include "serval/admin/admin.h"
#include "serval/admin/prom.h"

TEST(admin_prom_family_and_samples)
{
    struct sv_admin_buf b = {0};
    struct sv_prom_label l[] = {{"worker", "0"}, {"code", "2xx"}};
    CHECK_EQ_INT(sv_prom_family(&b, "serval_requests_total", "Requests received.",
                                SV_PROM_COUNTER), 0);
    CHECK_EQ_INT(sv_prom_u64(&b, "serval_requests_total", l, 2, 1234), 0);
    CHECK_EQ_INT(sv_prom_u64(&b, "serval_requests_total", NULL, 0, 0), 0);
    CHECK_EQ_STR(b.data, "# HELP serval_requests_total Requests received.\n"
                         "# TYPE serval_requests_total counter\n"
                         "serval_requests_total{worker=\"0\",code=\"2xx\"} 1234\n"
                         "serval_requests_total 0\n");
    sv_admin_buf_free(&b);
}

TEST(admin_prom_escaping)
{
    struct sv_admin_buf b = {0};
    struct sv_prom_label l[] = {{"path", "a\\b\"c\nd"}};
    CHECK_EQ_INT(sv_prom_family(&b, "m", "back\\slash\nnew \"q\"", SV_PROM_GAUGE), 0);
    CHECK_EQ_INT(sv_prom_u64(&b, "m", l, 1, 7), 0);
    CHECK_EQ_STR(b.data, "# HELP m back\\\\slash\\nnew \"q\"\n# TYPE m gauge\n"
                         "m{path=\"a\\\\b\\\"c\\nd\"} 7\n");
    sv_admin_buf_free(&b);
}

TEST(admin_prom_rejects_bad_names)
{
    struct sv_admin_buf b = {0};
    struct sv_prom_label bad_label[] = {{"1x", "v"}};
    struct sv_prom_label reserved[] = {{"__name", "v"}};
    CHECK_EQ_INT(sv_prom_family(&b, "9lives", NULL, SV_PROM_GAUGE), -EINVAL);
    CHECK_EQ_INT(sv_prom_family(&b, "a-b", NULL, SV_PROM_GAUGE), -EINVAL);
    CHECK_EQ_INT(sv_prom_family(&b, "ok", NULL, (enum sv_prom_type)9), -EINVAL);
    CHECK_EQ_INT(sv_prom_u64(&b, "ok", bad_label, 1, 1), -EINVAL);
    CHECK_EQ_INT(sv_prom_u64(&b, "ok", reserved, 1, 1), -EINVAL);
    CHECK(sv_prom_valid_name("ns:sub_total", false));
    CHECK(!sv_prom_valid_name("ns:sub", true));
    CHECK_EQ_INT(b.len, 0);
    sv_admin_buf_free(&b);
}

TEST(admin_prom_double_values)
{
    struct sv_admin_buf b = {0};
    sv_prom_double(&b, "a", NULL, 0, 1.5);
    sv_prom_double(&b, "a", NULL, 0, 0.1);
    sv_prom_double(&b, "a", NULL, 0, NAN);
    sv_prom_double(&b, "a", NULL, 0, INFINITY);
    sv_prom_double(&b, "a", NULL, 0, -INFINITY);
    sv_prom_single(&b, "g", NULL, SV_PROM_GAUGE, 3);
    CHECK_EQ_STR(b.data, "a 1.5\na 0.1\na NaN\na +Inf\na -Inf\n# TYPE g gauge\ng 3\n");
    sv_admin_buf_free(&b);
}

TEST(admin_prom_histogram)
{
    struct sv_admin_buf b = {0};
    struct sv_prom_label l[] = {{"worker", "1"}};
    double bounds[] = {0.005, 0.1, 1};
    uint64_t cum[] = {3, 7, 9};
    CHECK_EQ_INT(sv_prom_family(&b, "lat_seconds", "Latency.", SV_PROM_HISTOGRAM), 0);
    CHECK_EQ_INT(sv_prom_histogram(&b, "lat_seconds", l, 1, bounds, cum, 3, 1.25, 10), 0);
    CHECK_EQ_STR(b.data, "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
                         "lat_seconds_bucket{worker=\"1\",le=\"0.005\"} 3\n"
                         "lat_seconds_bucket{worker=\"1\",le=\"0.1\"} 7\n"
                         "lat_seconds_bucket{worker=\"1\",le=\"1\"} 9\n"
                         "lat_seconds_bucket{worker=\"1\",le=\"+Inf\"} 10\n"
                         "lat_seconds_sum{worker=\"1\"} 1.25\n"
                         "lat_seconds_count{worker=\"1\"} 10\n");
    size_t len = b.len;
    uint64_t bad_cum[] = {3, 2, 9};
    double bad_bounds[] = {1, 0.5, 2};
    struct sv_prom_label le[] = {{"le", "x"}};
    CHECK_EQ_INT(sv_prom_histogram(&b, "h", NULL, 0, bounds, bad_cum, 3, 0, 10), -EINVAL);
    CHECK_EQ_INT(sv_prom_histogram(&b, "h", NULL, 0, bad_bounds, cum, 3, 0, 10), -EINVAL);
    CHECK_EQ_INT(sv_prom_histogram(&b, "h", NULL, 0, bounds, cum, 3, 0, 8), -EINVAL);
    CHECK_EQ_INT(sv_prom_histogram(&b, "h", le, 1, bounds, cum, 3, 0, 10), -EINVAL);
    CHECK_EQ_INT(b.len, len);
    sv_admin_buf_free(&b);
}

TEST(admin_buf_limit_is_sticky)
{
    struct sv_admin_buf b = {._max = 10};
    CHECK_EQ_INT(sv_admin_buf_puts(&b, "12345"), 0);
    CHECK_EQ_INT(sv_admin_buf_printf(&b, "%s", "678901"), -E2BIG);
    CHECK_EQ_INT(sv_admin_buf_puts(&b, "x"), -E2BIG);
    CHECK_EQ_STR(b.data, "12345");
    sv_admin_buf_reset(&b);
    CHECK_EQ_INT(sv_admin_buf_puts(&b, "ok"), 0);
    CHECK_EQ_STR(b.data, "ok");
    sv_admin_buf_free(&b);
}

/* ---- server ------------------------------------------------------------------------------- */

static int connect_admin(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read until EOF (or timeout) into a static buffer; returns it NUL-terminated. */
static const char *read_all(int fd)
{
    static char buf[65536];
    size_t len = 0;
    for (int i = 0; i < 1000 && len + 1 < sizeof(buf); i++) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static const char *roundtrip(uint16_t port, const char *req)
{
    int fd = connect_admin(port);
    if (fd < 0)
        return "";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    return read_all(fd);
}

static int metrics_handler(void *ctx, const struct sv_admin_request *req,
                           struct sv_admin_response *resp)
{
    int *calls = ctx;
    (*calls)++;
    resp->content_type = "text/plain; version=0.0.4";
    sv_prom_single(&resp->body, "serval_up", "Up.", SV_PROM_GAUGE, 1);
    return sv_admin_buf_printf(&resp->body, "# query=%.*s\n", (int)req->query.len,
                               req->query.ptr);
}

static int failing_handler(void *ctx, const struct sv_admin_request *req,
                           struct sv_admin_response *resp)
{
    (void)ctx;
    (void)req;
    sv_admin_buf_puts(&resp->body, "partial");
    return -EIO;
}

static int not_ready_handler(void *ctx, const struct sv_admin_request *req,
                             struct sv_admin_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 503;
    return sv_admin_buf_puts(&resp->body, "not ready\n");
}

static struct sv_admin *start_server(unsigned max_conns, unsigned timeout_ms)
{
    struct sv_admin_config cfg = SV_ADMIN_CONFIG_DEFAULT;
    cfg.addr = "127.0.0.1:0";
    cfg.max_conns = max_conns;
    cfg.timeout_ms = timeout_ms;
    struct sv_admin *a = NULL;
    if (sv_admin_create(&a, &cfg) != 0)
        return NULL;
    if (sv_admin_start(a) != 0) {
        sv_admin_destroy(a);
        return NULL;
    }
    return a;
}

TEST(admin_serves_registered_paths)
{
    struct sv_admin *a = start_server(8, 2000);
    REQUIRE(a != NULL);
    int calls = 0;
    CHECK_EQ_INT(sv_admin_register(a, "/metrics", metrics_handler, &calls), 0);
    CHECK_EQ_INT(sv_admin_register(a, "/readyz", not_ready_handler, NULL), 0);
    CHECK_EQ_INT(sv_admin_register(a, "/broken", failing_handler, NULL), 0);
    CHECK_EQ_INT(sv_admin_register(a, "nope", failing_handler, NULL), -EINVAL);
    uint16_t port = sv_admin_port(a);
    CHECK(port != 0);

    const char *r = roundtrip(port, "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(r, "Content-Type: text/plain; version=0.0.4\r\n") != NULL);
    CHECK(strstr(r, "Connection: close\r\n") != NULL);
    CHECK(strstr(r, "\r\n\r\n# HELP serval_up Up.\n# TYPE serval_up gauge\nserval_up 1\n"
                    "# query=x=1\n") != NULL);
    CHECK_EQ_INT(calls, 1);

    r = roundtrip(port, "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(r, "\r\n\r\nok\n") != NULL);
    r = roundtrip(port, "GET /readyz HTTP/1.0\n\n");
    CHECK(strncmp(r, "HTTP/1.1 503 ", 13) == 0 && strstr(r, "not ready") != NULL);
    r = roundtrip(port, "GET /broken HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 500 ", 13) == 0 && strstr(r, "partial") == NULL);
    r = roundtrip(port, "GET /missing HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    r = roundtrip(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 405 ", 13) == 0 && strstr(r, "Allow: GET, HEAD\r\n") != NULL);
    CHECK_EQ_INT(calls, 1);
    r = roundtrip(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    const char *end = strstr(r, "\r\n\r\n");
    CHECK(strstr(r, "Content-Length: ") != NULL && end != NULL && end[4] == '\0');
    r = roundtrip(port, "GARBAGE\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    r = roundtrip(port, "GET / HTTP/1.1\r\n\r\n");
    CHECK(strstr(r, "/metrics\n") != NULL && strstr(r, "/readyz\n") != NULL);

    char big[9000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    big[sizeof(big) - 1] = '\0';
    r = roundtrip(port, big);
    CHECK(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
    CHECK(sv_admin_requests(a) >= 10);
    sv_admin_destroy(a);
}

TEST(admin_override_healthz_and_restart)
{
    struct sv_admin *a = start_server(4, 2000);
    REQUIRE(a != NULL);
    CHECK_EQ_INT(sv_admin_register(a, "/healthz", not_ready_handler, NULL), 0);
    uint16_t port = sv_admin_port(a);
    CHECK(strncmp(roundtrip(port, "GET /healthz HTTP/1.1\r\n\r\n"), "HTTP/1.1 503 ", 13) == 0);
    CHECK_EQ_INT(sv_admin_start(a), -EALREADY);
    sv_admin_stop(a);
    sv_admin_stop(a);
    CHECK_EQ_INT(sv_admin_start(a), 0);
    CHECK(strncmp(roundtrip(port, "GET /healthz HTTP/1.1\r\n\r\n"), "HTTP/1.1 503 ", 13) == 0);
    sv_admin_destroy(a);
}

TEST(admin_timeout_and_connection_limit)
{
    struct sv_admin *a = start_server(2, 300);
    REQUIRE(a != NULL);
    uint16_t port = sv_admin_port(a);
    int idle1 = connect_admin(port), idle2 = connect_admin(port);
    REQUIRE(idle1 >= 0 && idle2 >= 0);
    usleep(50000); /* let the server accept both */
    int third = connect_admin(port);
    REQUIRE(third >= 0);
    char c;
    ssize_t n = recv(third, &c, 1, 0); /* closed at accept: EOF (or reset), not a timeout */
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    close(third);
    /* the idle ones are closed by the server after timeout_ms without a request */
    n = recv(idle1, &c, 1, 0);
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    n = recv(idle2, &c, 1, 0);
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    close(idle1);
    close(idle2);
    /* and the slots are free again */
    CHECK(strncmp(roundtrip(port, "GET /healthz HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 ", 13) == 0);
    sv_admin_destroy(a);
}

TEST(admin_create_errors)
{
    struct sv_admin *a = NULL, *b = NULL;
    struct sv_admin_config cfg = SV_ADMIN_CONFIG_DEFAULT;
    cfg.addr = "not-an-address";
    CHECK_EQ_INT(sv_admin_create(&a, &cfg), -EINVAL);
    cfg.addr = "127.0.0.1:0";
    cfg.max_conns = 0;
    CHECK_EQ_INT(sv_admin_create(&a, &cfg), -EINVAL);
    cfg.max_conns = 4;
    REQUIRE(sv_admin_create(&a, &cfg) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", sv_admin_port(a));
    cfg.addr = addr;
    CHECK_EQ_INT(sv_admin_create(&b, &cfg), -EADDRINUSE);
    sv_admin_destroy(a);
    sv_admin_destroy(NULL);
}

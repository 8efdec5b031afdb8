/* Admin listener: a small HTTP/1.1 server on its own thread (poll()-based, loopback by default,
 * 127.0.0.1:9901) answering GET/HEAD for paths registered by main (/readyz, /config, /metrics...).
 * /healthz is built in (200 "ok") and may be overridden by registering the same path.
 *
 * Handlers run on the admin thread, one at a time; they may block briefly and may malloc (this
 * is control-side code). They write a body into a growable buffer owned by the server and set
 * the status and content type. Every connection is answered once and closed ("Connection:
 * close"). Requests are bounded in size, connections in number and in time.
 *
 *   struct sv_admin *a;
 *   struct sv_admin_config cfg = SV_ADMIN_CONFIG_DEFAULT;
 *   cfg.addr = "127.0.0.1:9901";
 *   if (sv_admin_create(&a, &cfg) == 0) {        // binds now: address errors show at start
 *       sv_admin_register(a, "/readyz", readyz_fn, state);
 *       sv_admin_start(a);                        // starts the thread
 *       ...
 *       sv_admin_stop(a);                         // joins it
 *       sv_admin_destroy(a);
 *   }
 */
#ifndef SERVAL_ADMIN_ADMIN_H
#define SERVAL_ADMIN_ADMIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/base/compiler.h"
#include "serval/base/str.h"

/* Growable byte buffer for response bodies (control/admin side: it mallocs). */
struct sv_admin_buf {
    char *data;  /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t _max; /* growth limit (SV_ADMIN_BODY_MAX unless set) */
    int _err;    /* sticky: first failed append (-ENOMEM or -E2BIG) */
};

#define SV_ADMIN_BODY_MAX (64u << 20)

/* Append <n> bytes. Returns 0, or -ENOMEM / -E2BIG (over the limit); after a failure every later
 * append fails too and the server answers 500. Thread: the buffer's owner. */
int sv_admin_buf_append(struct sv_admin_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. Same contract as sv_admin_buf_append. */
int sv_admin_buf_puts(struct sv_admin_buf *b, const char *s);

/* Append printf-style text. Same contract as sv_admin_buf_append (-EINVAL on a format error). */
int sv_admin_buf_printf(struct sv_admin_buf *b, const char *fmt, ...) SV_PRINTF(2, 3);
int sv_admin_buf_vprintf(struct sv_admin_buf *b, const char *fmt, va_list ap) SV_PRINTF(2, 0);

/* Forget the contents, keep the memory. */
void sv_admin_buf_reset(struct sv_admin_buf *b);

/* Free the memory; the buffer may be used again (empty). */
void sv_admin_buf_free(struct sv_admin_buf *b);

/* What a handler sees. Strings point into the server's request buffer, valid during the call. */
struct sv_admin_request {
    struct sv_str method; /* "GET" or "HEAD" (others are answered 405 before any handler) */
    struct sv_str path;   /* without the query */
    struct sv_str query;  /* after '?', empty if none */
};

/* What a handler fills. status starts at 200, content_type at "text/plain; charset=utf-8",
 * body empty. content_type must stay valid until the handler's response is sent (use a string
 * literal). */
struct sv_admin_response {
    int status;
    const char *content_type;
    struct sv_admin_buf body;
};

/* A handler: fill <resp> for <req>. Return 0, or a negative errno to make the server answer 500
 * (the body written so far is discarded). Called on the admin thread only. */
typedef int (*sv_admin_handler_fn)(void *ctx, const struct sv_admin_request *req,
                                   struct sv_admin_response *resp);

struct sv_admin_config {
    const char *addr;        /* "ADDR:PORT" or "[V6]:PORT"; port 0 = any (see sv_admin_port) */
    unsigned max_conns;      /* connections served at once; more are closed at accept */
    unsigned timeout_ms;     /* a connection must send its request and take its answer in this */
    size_t max_request;      /* request head limit in bytes (431 beyond) */
};

#define SV_ADMIN_DEFAULT_ADDR "127.0.0.1:9901"
#define SV_ADMIN_CONFIG_DEFAULT                                                                    \
    ((struct sv_admin_config){SV_ADMIN_DEFAULT_ADDR, 32, 5000, 8192})

/* Highest number of registered paths. */
#define SV_ADMIN_MAX_HANDLERS 32

struct sv_admin;

/* Create a server and bind+listen on cfg->addr now (the thread starts with sv_admin_start), so a
 * busy or invalid address is reported at start-up. <cfg> is copied. Thread: any (typically main).
 * On success *out is owned by the caller (sv_admin_destroy). Returns 0, -EINVAL (bad address or
 * limits), -ENOMEM, or the negative errno of socket/bind/listen (e.g. -EADDRINUSE). */
int sv_admin_create(struct sv_admin **out, const struct sv_admin_config *cfg);

/* Register <fn>(<ctx>, ...) for the exact <path> (e.g. "/metrics"; copied). Registering a path
 * again replaces its handler. Allowed before or after start. Thread: any (serialised inside).
 * Returns 0, -EINVAL (path not starting with '/'), -ENOSPC (SV_ADMIN_MAX_HANDLERS reached) or
 * -ENOMEM. */
int sv_admin_register(struct sv_admin *a, const char *path, sv_admin_handler_fn fn, void *ctx);

/* Start the admin thread. Thread: any; start/stop are serialised. Returns 0, -EALREADY if
 * running, or the negative errno of pthread_create. */
int sv_admin_start(struct sv_admin *a);

/* Stop the admin thread and wait for it (open connections are closed). Safe to call when not
 * running, and more than once. Thread: any except the admin thread itself. */
void sv_admin_stop(struct sv_admin *a);

/* Stop if running, close the listening socket and free everything. NULL is allowed. */
void sv_admin_destroy(struct sv_admin *a);

/* The bound port (useful with port 0). Thread: any. */
uint16_t sv_admin_port(const struct sv_admin *a);

/* Requests answered so far (any status). Thread: any (relaxed atomic read). */
uint64_t sv_admin_requests(const struct sv_admin *a);

#endif

/* Internals of the Kubernetes provider: the TLS/HTTP client, reflectors, status writer, Lease.
 * Control thread only. */
#ifndef SERVAL_CONTROL_K8S_INT_H
#define SERVAL_CONTROL_K8S_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/k8s_config.h"
#include "serval/control/model.h"
#include "serval/control/k8s_stream.h"

struct cJSON;

/* ---- client: shared TLS context, token, limits ---------------------------------------------- */

struct k8s_client {
    struct sv_k8s_config cfg;
    struct sv_k8s_token tok;
    void *ctx; /* WOLFSSL_CTX */
    char host_header[300];
    char user_agent[128];
    uint32_t connect_timeout_ms; /* TCP connect + TLS handshake */
    uint32_t request_timeout_ms; /* whole non-watch request */
    uint64_t requests;
    bool wolf_init;
    bool ca_verify_failed;  /* a handshake failed verification: re-read the CA file */
    uint64_t ca_checked_ms; /* last look at the CA file (every 5 min at most otherwise) */
    uint64_t ca_reloads;
    /* keep-alive pool for LIST/GET/writes (watches get their own connection) */
    struct k8s_idle {
        int fd;
        void *ssl; /* WOLFSSL */
        uint64_t since_ms;
    } pool[4];
    unsigned n_pool;
    uint64_t reused, connects;
};

/* Build the TLS context from cfg (taken over: the client owns it from now on, even on error).
 * Returns 0 or -EINVAL/-ENOMEM with a message. */
int k8s_client_init(struct k8s_client *cl, struct sv_k8s_config *cfg, bool insecure_flag,
                    char *err, size_t errlen);
void k8s_client_free(struct k8s_client *cl);

/* ---- one HTTP/1.1 exchange over its own TLS connection --------------------------------------- */

struct k8s_conn;

/* Start <method> <path> (path includes the query). <body> may be NULL. A <stream> request hands
 * a 200 body, line by line, to line_fn (watch events) instead of buffering it; idle_ms bounds the
 * silence of a stream. Returns 0 with *out (k8s_conn_free) or -errno (socket, resolve). */
int k8s_conn_start(struct k8s_client *cl, const char *method, const char *path,
                   const char *content_type, const char *body, size_t body_len, bool stream,
                   uint32_t idle_ms, sv_k8s_bytes_fn line_fn, void *line_ctx, struct k8s_conn **out);

/* Drive the exchange without blocking. Returns 0 while in progress, 1 when the response is
 * complete (or a stream ended cleanly), or a negative errno (k8s_conn_error says why). */
int k8s_conn_step(struct k8s_conn *c, uint64_t now_ms);

int k8s_conn_fd(const struct k8s_conn *c);
short k8s_conn_events(const struct k8s_conn *c);
/* True when decoded-but-unread TLS data may be waiting (poll will not report it). */
bool k8s_conn_pending(const struct k8s_conn *c);
int k8s_conn_status(const struct k8s_conn *c);  /* 0 before the head */
int k8s_conn_retry_after(const struct k8s_conn *c);
const char *k8s_conn_body(const struct k8s_conn *c, size_t *len); /* buffered, NUL-terminated */
const char *k8s_conn_error(const struct k8s_conn *c);
bool k8s_conn_got_bytes(const struct k8s_conn *c); /* any body byte arrived */
void k8s_conn_free(struct k8s_conn *c);

#endif

/* ---- tuning (defaults from K8S_CLIENT.md; tests shorten some through the environment) ------- */

struct k8s_tuning {
    uint32_t watch_idle_ms;    /* restart a watch silent this long (SERVAL_K8S_WATCH_IDLE_MS) */
    uint32_t watch_timeout_min_s, watch_timeout_max_s; /* timeoutSeconds in [min,max) */
    uint32_t backoff_base_ms, backoff_cap_ms;
    uint32_t lease_duration_ms, renew_deadline_ms, retry_period_ms;
    uint32_t debounce_quiet_ms, debounce_max_ms;
    uint32_t write_qps, write_burst;
};

/* ---- reflector: LIST + WATCH of one kind into the shared store ------------------------------ */

struct sv_store;
struct k8s_reflector;

struct k8s_reflector_stats {
    uint64_t lists, list_pages, watches, relists, events, errors, decode_errors;
};

/* <path> is the collection path ("/api/v1/services"), <selector> an extra query ("fieldSelector=..")
 * or NULL; both borrowed (static strings). Returns NULL when out of memory. */
struct k8s_reflector *k8s_reflector_new(struct k8s_client *cl, struct sv_store *store,
                                        enum sv_kind kind, const char *path, const char *selector,
                                        const struct k8s_tuning *t, uint64_t seed);
void k8s_reflector_free(struct k8s_reflector *r);
/* Drive the reflector (start due requests, advance the open one). */
void k8s_reflector_step(struct k8s_reflector *r, uint64_t now_ms);
/* Its open connection's fd and events (fd -1 when none), and the next timer (UINT64_MAX none). */
int k8s_reflector_poll(const struct k8s_reflector *r, short *events, uint64_t *due_ms);
bool k8s_reflector_synced(const struct k8s_reflector *r);
bool k8s_reflector_watching(const struct k8s_reflector *r);
const char *k8s_reflector_rv(const struct k8s_reflector *r);
void k8s_reflector_stats(const struct k8s_reflector *r, struct k8s_reflector_stats *out);

/* ---- status writer (leader only) -------------------------------------------------------------- */

struct k8s_writer;

struct k8s_writer_stats {
    uint64_t writes, skipped, conflicts, errors, gets;
};

struct k8s_writer *k8s_writer_new(struct k8s_client *cl, const char *controller,
                                  const struct k8s_tuning *t);
void k8s_writer_free(struct k8s_writer *w);
/* New desired status (sv_status_to_json's document, borrowed for the call). Objects whose desired
 * status differs from what we last wrote become pending. Returns 0 or -ENOMEM. */
int k8s_writer_set_desired(struct k8s_writer *w, const struct cJSON *doc);
/* Forget what was written (a new term as leader re-checks every object). */
void k8s_writer_reset(struct k8s_writer *w);
void k8s_writer_step(struct k8s_writer *w, uint64_t now_ms, bool leader);
int k8s_writer_poll(const struct k8s_writer *w, short *events, uint64_t *due_ms);
size_t k8s_writer_pending(const struct k8s_writer *w);
void k8s_writer_stats(const struct k8s_writer *w, struct k8s_writer_stats *out);

/* ---- Lease leader election -------------------------------------------------------------------- */

struct k8s_lease;

struct k8s_lease *k8s_lease_new(struct k8s_client *cl, const char *ns, const char *identity,
                                const struct k8s_tuning *t, uint64_t seed);
void k8s_lease_free(struct k8s_lease *l);
void k8s_lease_step(struct k8s_lease *l, uint64_t now_ms);
int k8s_lease_poll(const struct k8s_lease *l, short *events, uint64_t *due_ms);
bool k8s_lease_leader(const struct k8s_lease *l);
const char *k8s_lease_identity(const struct k8s_lease *l);
const char *k8s_lease_namespace(const struct k8s_lease *l);
uint64_t k8s_lease_transitions(const struct k8s_lease *l); /* times we became leader */
/* Stop leading and release the Lease (holderIdentity "", leaseDurationSeconds 1), waiting at most
 * <timeout_ms>. Blocks the calling (control) thread; for shutdown only. Idempotent. */
void k8s_lease_release(struct k8s_lease *l, uint32_t timeout_ms);

/* Run one request to completion, blocking at most <timeout_ms> (shutdown paths only).
 * Returns the HTTP status, or a negative errno. */
int k8s_request_sync(struct k8s_client *cl, const char *method, const char *path,
                     const char *body, uint32_t timeout_ms, struct k8s_conn **out);

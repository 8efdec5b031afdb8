/* TLS termination with wolfSSL (the only module that includes wolfSSL headers for serving).
 *
 * Three objects:
 *
 *  - struct sv_tls_ticket_keys: session-ticket keys shared by every worker and every server
 *    object, so a ticket issued by one worker (or one generation) resumes on any other. The
 *    control thread rotates them on a schedule (sv_tls_ticket_keys_tick); workers only read them
 *    (a reader-preferring rwlock taken once per full handshake or resumption, never per record).
 *
 *  - struct sv_tls_server: the compiled TLS state of ONE HTTPS bind: its listeners (hostname
 *    patterns) each with one or more certificates (one WOLFSSL_CTX per certificate), built from
 *    PEM on the control thread, immutable afterwards, refcounted (atomic; one reference per
 *    owner: the generation that carries it and every connection accepted with it). The SNI
 *    callback selects the listener (exact hostname, then the wildcard with the most labels, then
 *    the hostname-less listener; none → fatal alert unrecognized_name) and, inside it, the
 *    certificate (first whose names match the SNI exactly, then by wildcard, else the first).
 *    TLS 1.2 and 1.3 only, ECDHE + AEAD suites only, ALPN http/1.1 (and h2 when the data plane
 *    asks for it per connection: sv_tls_conn_open_alpn).
 *
 *  - struct sv_tls_conn: one server-side TLS connection over connection-owned byte buffers. No
 *    socket is ever touched here: the data plane hands ciphertext in (borrowed, with a consumed
 *    count back) and takes ciphertext out of a caller-provided output buffer.
 *
 * Memory: wolfSSL allocates per connection itself (the WOLFSSL object at sv_tls_conn_open,
 * handshake state during the handshake, and record buffers larger than its static ones while a
 * record is processed); Debian's build has no static-memory pool, so this is a documented
 * deviation from "no malloc on workers after start". Our own per-connection state is
 * caller-owned (struct sv_tls_conn embedded in the data plane's connection slab, output buffer
 * from its pools).
 *
 * Data-plane usage per connection (worker thread):
 *
 *   sv_tls_conn_open(&c, srv, outbuf, outcap);           // at accept
 *   on recv: n = sv_tls_conn_recv(&c, in, in_len, &used, plain, cap);  // handshake + records
 *            keep in[used..] for next time; n > 0 plaintext; send sv_tls_conn_out() bytes
 *   to send: sv_tls_conn_send(&c, plain, len) → ciphertext appended to the output buffer
 *   after a send completes: sv_tls_conn_out_consume(&c, sent)
 *   sv_tls_conn_close(&c);                                 // at close (drops the server ref)
 */
#ifndef SERVAL_TLS_TLS_H
#define SERVAL_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "serval/base/str.h"

/* Initialise wolfSSL once per process (idempotent, thread-safe). Any thread, before any other
 * call here. Returns 0 or -EIO. */
int sv_tls_global_init(void);

/* ---- certificates (control thread) ---------------------------------------------------------- */

enum sv_tls_key_type {
    SV_TLS_KEY_UNKNOWN = 0,
    SV_TLS_KEY_RSA = 1,
    SV_TLS_KEY_ECDSA = 2,
};

/* Facts about a leaf certificate, for status, logs and /metrics. */
struct sv_tls_cert_info {
    int64_t not_before;        /* unix seconds */
    int64_t not_after;         /* unix seconds (expiry) */
    enum sv_tls_key_type key_type;
    char subject_cn[128];      /* leaf CN, "" if none */
};

/* Check a certificate chain (PEM, leaf first) and its private key (PEM; PKCS#1, SEC1 or PKCS#8):
 * both parse, and the key matches the leaf. An expired certificate is NOT an error (it is
 * served; see info->not_after). Fills *info when not NULL. Control thread (any thread, really:
 * no shared state). Returns 0, or -EINVAL with a one-line reason in err[errlen] ("certificate
 * PEM does not parse", "private key PEM does not parse", "private key does not match the
 * certificate"), -ENOMEM. */
int sv_tls_cert_check(const void *cert_pem, size_t cert_len, const void *key_pem, size_t key_len,
                      struct sv_tls_cert_info *info, char *err, size_t errlen);

/* Check a CA bundle for backend TLS (BackendTLSPolicy caCertificateRefs, PEM): at least one
 * certificate, and every certificate in it parses as a trust anchor. Any thread (no shared
 * state). Returns 0, or -EINVAL with a one-line reason in err[errlen] ("no PEM certificate",
 * "CA certificate PEM does not parse"), -ENOMEM. */
int sv_tls_ca_check(const void *pem, size_t len, char *err, size_t errlen);

/* ---- session-ticket keys --------------------------------------------------------------------- */

struct sv_tls_ticket_keys;

/* New key set with one fresh random key. <rotate_s> (>= 1) is the rotation period: a ticket is
 * issued under the current key, and accepted while its key is current or the previous one
 * (so a ticket lives at most 2 * rotate_s; tickets under the previous key are accepted and
 * replaced by a new ticket). <now_s> is the caller's clock (seconds, any monotonic base).
 * Control thread. Caller owns the result (sv_tls_ticket_keys_free after every server using it
 * is gone). Returns NULL on out of memory or no randomness. */
struct sv_tls_ticket_keys *sv_tls_ticket_keys_new(uint64_t rotate_s, uint64_t now_s);

/* Free. Control thread, after every sv_tls_server using it was freed. NULL is a no-op. */
void sv_tls_ticket_keys_free(struct sv_tls_ticket_keys *k);

/* Rotate now: a fresh random key becomes current, the current one becomes previous, the
 * previous one is forgotten. Control thread. Returns 0 or -EIO (no randomness). */
int sv_tls_ticket_keys_rotate(struct sv_tls_ticket_keys *k, uint64_t now_s);

/* Rotate if the current key is at least rotate_s old. Call periodically from the control
 * thread. Returns 1 when it rotated, 0 when not due, -EIO. */
int sv_tls_ticket_keys_tick(struct sv_tls_ticket_keys *k, uint64_t now_s);

/* Number of rotations so far (for tests and /metrics). Any thread. */
uint64_t sv_tls_ticket_keys_rotations(const struct sv_tls_ticket_keys *k);

/* The process-wide key set (created on first use, rotated every SV_TLS_TICKET_ROTATE_S on the
 * monotonic clock by sv_tls_default_ticket_keys_tick, which the control thread calls
 * periodically; lives until exit). Returns NULL only when it could not be created. Any thread
 * may call it; only the control thread ticks. */
#define SV_TLS_TICKET_ROTATE_S 3600u
struct sv_tls_ticket_keys *sv_tls_default_ticket_keys(void);
int sv_tls_default_ticket_keys_tick(void);

/* ---- server objects (built on the control thread; read by workers) ------------------------- */

/* One certificate: chain PEM (leaf first) and key PEM. Copied by sv_tls_server_new. */
struct sv_tls_cert_pem {
    const void *cert;
    size_t cert_len;
    const void *key;
    size_t key_len;
};

/* One listener of the bind. */
struct sv_tls_listener_spec {
    struct sv_str hostname;               /* "" = any; "a.example.com"; "*.example.com" */
    uint32_t id;                          /* caller's listener id, reported back */
    struct sv_str name;                   /* caller's name for logs/metrics (copied) */
    const struct sv_tls_cert_pem *certs;  /* at least one */
    uint32_t n_certs;
};

struct sv_tls_server;

/* Build the TLS state of one HTTPS bind: one WOLFSSL_CTX per certificate (TLS 1.2-1.3, ECDHE +
 * AEAD, ALPN http/1.1, tickets via <keys>, SNI selection as described on top). Every listener
 * and certificate must be valid (check them first with sv_tls_cert_check; the translator leaves
 * out listeners whose certificates are bad). <keys> must outlive the server. Control thread.
 * The caller owns the one reference returned (sv_tls_server_unref). Returns NULL with a
 * message in err[errlen] (no listener, a listener without certificate, a bad certificate,
 * more than SV_TLS_MAX_LISTENERS, out of memory). */
struct sv_tls_server *sv_tls_server_new(const struct sv_tls_listener_spec *listeners,
                                        size_t n_listeners, struct sv_tls_ticket_keys *keys,
                                        char *err, size_t errlen);

/* Client certificate validation (Gateway spec.tls.frontend) for listener <i> of a server just
 * built by sv_tls_server_new, before it is attached to a generation or any connection: the PEM
 * bundle ca[0..ca_len) (CA certificates; check it with sv_tls_ca_check) becomes the trust anchor
 * of the listener's certificates' contexts, and the server asks clients for a certificate. Unless
 * <optional> (AllowInsecureFallback) the handshake fails without a certificate or with one that
 * does not chain to the bundle; with <optional> every client is let in. A server with any
 * validating listener neither issues nor accepts session tickets (a resumption would skip the
 * client's certificate). Control thread. Returns 0, -EINVAL (bad index, the bundle does not
 * load). */
int sv_tls_server_set_client_ca(struct sv_tls_server *s, size_t i, const void *ca, size_t ca_len,
                                bool optional);

#define SV_TLS_MAX_LISTENERS 1024u
#define SV_TLS_MAX_CERTS_PER_LISTENER 16u

/* Take / drop a reference (atomic; any thread). The last unref frees the server (wolfSSL keeps
 * each WOLFSSL_CTX alive while a connection still uses it). */
void sv_tls_server_ref(struct sv_tls_server *s);
void sv_tls_server_unref(struct sv_tls_server *s);

/* Number of listeners; for listener index <i> (0..n-1, in the order given) its number of
 * certificates and the facts of certificate <j> (NULL when out of range), and its name. For
 * /metrics (expiry) and logs. Any thread holding a reference. */
size_t sv_tls_server_n_listeners(const struct sv_tls_server *s);
size_t sv_tls_server_n_certs(const struct sv_tls_server *s, size_t i);
const struct sv_tls_cert_info *sv_tls_server_cert(const struct sv_tls_server *s, size_t i,
                                                  size_t j);
struct sv_str sv_tls_server_listener_name(const struct sv_tls_server *s, size_t i);

/* Which listener (index into the spec array) serves SNI <sni> ("" = none): exact, then the
 * wildcard with the most labels, then the hostname-less listener. -1 when none. Case ignored.
 * Any thread holding a reference; no allocation. */
int sv_tls_server_select(const struct sv_tls_server *s, struct sv_str sni);

/* Process-wide count of live server objects (leak checks in tests). Any thread. */
size_t sv_tls_server_live_count(void);

/* ---- connections (one worker thread each) ------------------------------------------------- */

enum sv_tls_state {
    SV_TLS_IDLE = 0,        /* not opened */
    SV_TLS_HANDSHAKE = 1,   /* handshake in progress */
    SV_TLS_OPEN = 2,        /* application data flows */
    SV_TLS_CLOSED = 3,      /* close_notify received or sent */
    SV_TLS_FAILED = 4,      /* fatal error; send what sv_tls_conn_out holds (alert), then close */
};

/* Why a connection failed (sv_tls_conn_failure), for /metrics. */
enum sv_tls_failure {
    SV_TLS_FAIL_NONE = 0,
    SV_TLS_FAIL_UNKNOWN_SNI = 1, /* no listener (so no certificate) for the SNI, or no SNI and no
                                    hostname-less listener: we sent unrecognized_name */
    SV_TLS_FAIL_PEER_ALERT = 2,  /* the peer sent a fatal alert */
    SV_TLS_FAIL_PROTOCOL = 3,    /* anything else (garbage, no common version or suite, bad
                                    record): we sent an alert */
};

struct sv_tls_client;

/* One server connection (or, opened with sv_tls_conn_open_client, one client connection to a
 * backend). Embedded in the caller's connection object; fields are private. */
struct sv_tls_conn {
    void *_ssl;                     /* WOLFSSL * */
    struct sv_tls_server *_srv;     /* referenced while open (server side) */
    struct sv_tls_client *_cli;     /* referenced while open (client side) */
    const uint8_t *_in;             /* borrowed ciphertext during sv_tls_conn_recv */
    size_t _in_len, _in_off;
    uint8_t *_out;                  /* caller's ciphertext output buffer */
    size_t _out_cap, _out_len, _out_off;
    enum sv_tls_state _state;
    int _listener;                  /* selected listener index, -1 before SNI/none */
    int _err;                       /* wolfSSL error code of the failure, 0 */
    bool _peer_closed;
    bool _sni_unknown;              /* the SNI callback found no listener */
    bool _shut_sent;                /* our close_notify was queued */
    uint8_t _hdr[5];                /* record framing of the input (failure reasons only): */
    uint8_t _hdr_len;               /*   partial record header, */
    uint8_t _rec_type;              /*   content type of the last record header seen, */
    uint32_t _rec_left;             /*   bytes of that record not handed to wolfSSL yet */
};

/* Open a server connection on <srv> (takes a reference) writing ciphertext into
 * out[0..out_cap) (caller-owned; >= SV_TLS_MIN_OUT; at least one full record + handshake flight
 * is best: 16 KiB + 512). The connection starts in SV_TLS_HANDSHAKE. Worker thread.
 * Returns 0, -EINVAL (out_cap too small), -ENOMEM (wolfSSL could not allocate). */
int sv_tls_conn_open(struct sv_tls_conn *c, struct sv_tls_server *srv, void *out, size_t out_cap);

#define SV_TLS_MIN_OUT 4096u

/* Like sv_tls_conn_open; with <offer_h2> the ALPN list is "h2,http/1.1" (the client's choice
 * among them wins; see sv_tls_conn_alpn after the handshake), else "http/1.1" only. The data
 * plane offers h2 only when it has an HTTP/2 session free for the connection. Worker thread.
 * Same return contract. */
int sv_tls_conn_open_alpn(struct sv_tls_conn *c, struct sv_tls_server *srv, void *out,
                          size_t out_cap, bool offer_h2);

/* ---- client side (TLS to backends, BackendTLSPolicy) ------------------------------------------ */

#define SV_TLS_CLIENT_MAX_SANS 32u

/* subjectAltNames entry: a DNS name, or a URI when <uri>. */
struct sv_tls_san {
    struct sv_str value;
    bool uri;
};

struct sv_tls_client_spec {
    struct sv_str hostname;       /* SNI; also the name verified when there is no SAN list */
    struct sv_str ca_pem;         /* trust anchors (PEM bundle); may be empty with system_cas */
    bool system_cas;              /* wellKnownCACertificates: System */
    const struct sv_tls_san *sans; /* when given, the leaf must carry one of them (instead of
                                      the hostname) */
    uint32_t n_sans;
    struct sv_str cert_pem, key_pem; /* client certificate (chain) and key; empty = none */
};

/* Build a client context: TLS 1.2-1.3, peer verification against the trust anchors, then the
 * hostname (or one of the SANs), SNI = hostname, ALPN http/1.1, the client certificate when
 * given. Control thread. The caller owns the one reference (sv_tls_client_unref). Returns NULL
 * with a one-line reason in err[errlen]. */
struct sv_tls_client *sv_tls_client_new(const struct sv_tls_client_spec *spec, char *err,
                                        size_t errlen);
/* Take / drop a reference (atomic; any thread). */
void sv_tls_client_ref(struct sv_tls_client *cl);
void sv_tls_client_unref(struct sv_tls_client *cl);

/* Open a client connection with <cl> (takes a reference), output into out[0..out_cap) as for
 * sv_tls_conn_open. The handshake starts with the first sv_tls_conn_recv call (no input needed:
 * it queues the ClientHello); the other connection calls work as on the server side; a peer
 * that fails verification ends in SV_TLS_FAILED. Worker thread. Returns 0, -EINVAL, -ENOMEM. */
int sv_tls_conn_open_client(struct sv_tls_conn *c, struct sv_tls_client *cl, void *out,
                            size_t out_cap);

/* Free the wolfSSL state and drop the server reference. Safe on a zeroed or already closed
 * struct. Worker thread owning <c>. */
void sv_tls_conn_close(struct sv_tls_conn *c);

/* Feed ciphertext in[0..in_len) (borrowed for the call) and drive the connection: advance the
 * handshake, then decrypt application data into plain[0..cap). *used tells how many input bytes
 * were taken (keep the rest and offer it again with more). Handshake output and alerts are
 * appended to the output buffer: check sv_tls_conn_out after every call.
 * Returns > 0 plaintext bytes (call again with the remaining input — and with no new input,
 * in_len 0 — until it returns 0: wolfSSL may hold decrypted data), 0 = needs more input (or
 * output space), -EPIPE = peer sent close_notify (state CLOSED), -EPROTO = fatal TLS error
 * (state FAILED; an alert may wait in the output), -ENOBUFS never (output full just pauses).
 * Worker thread owning <c>. */
ssize_t sv_tls_conn_recv(struct sv_tls_conn *c, const void *in, size_t in_len, size_t *used,
                         void *plain, size_t cap);

/* Encrypt plain[0..len) into the output buffer. Only in state OPEN. Returns the number of
 * plaintext bytes taken (may be fewer than len, or 0, when the output buffer is full: send it
 * and call again), -EPROTO on a fatal error, -EINVAL when not OPEN. Worker thread owning <c>. */
ssize_t sv_tls_conn_send(struct sv_tls_conn *c, const void *plain, size_t len);

/* Queue a close_notify alert in the output (state CLOSED; later sends fail with -EINVAL), once:
 * in state OPEN, or CLOSED by the peer's close_notify (answered with ours). In any other state
 * (handshake not complete, failed, already sent) nothing is queued. Send what sv_tls_conn_out
 * then holds before shutting the socket. Worker thread owning <c>. Returns 1 (queued), 0
 * (nothing to do), -EPROTO (failed connection, or wolfSSL failed). */
int sv_tls_conn_shutdown(struct sv_tls_conn *c);

/* Ciphertext waiting to be sent: pointer and length (0 = nothing). Valid until the next call on
 * <c>. After sending n bytes call sv_tls_conn_out_consume(c, n). Worker thread owning <c>. */
size_t sv_tls_conn_out(const struct sv_tls_conn *c, const uint8_t **p);
void sv_tls_conn_out_consume(struct sv_tls_conn *c, size_t n);

/* State, selected listener index (into the server's spec array; -1 when none), SNI sent by the
 * client ("" = none), negotiated ALPN ("" = none), protocol version string ("TLSv1.3"),
 * whether the session was resumed, and the last wolfSSL error (for logs). Pointers are valid
 * while <c> is open. Worker thread owning <c>. */
enum sv_tls_state sv_tls_conn_state(const struct sv_tls_conn *c);
int sv_tls_conn_listener(const struct sv_tls_conn *c);
struct sv_str sv_tls_conn_listener_hostname(const struct sv_tls_conn *c);
struct sv_str sv_tls_conn_sni(const struct sv_tls_conn *c);
struct sv_str sv_tls_conn_alpn(const struct sv_tls_conn *c);
const char *sv_tls_conn_version(const struct sv_tls_conn *c);
bool sv_tls_conn_resumed(const struct sv_tls_conn *c);
const char *sv_tls_conn_error(const struct sv_tls_conn *c, char *buf, size_t len);

/* Why the connection is in state FAILED (SV_TLS_FAIL_NONE when it is not). Worker thread owning
 * <c>; no allocation. */
enum sv_tls_failure sv_tls_conn_failure(const struct sv_tls_conn *c);

/* The server a connection was opened on (for tests). */
struct sv_tls_server *sv_tls_conn_server(const struct sv_tls_conn *c);

#endif

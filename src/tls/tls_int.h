/* Private to src/tls: the server object layout and the wolfSSL callbacks shared by server.c,
 * conn.c and ticket.c. */
#ifndef SERVAL_TLS_TLS_INT_H
#define SERVAL_TLS_TLS_INT_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdatomic.h>

#include "serval/tls/tls.h"

#define SV_TLS_MAX_NAMES_PER_CERT 64u

struct sv_tls_cert {
    WOLFSSL_CTX *ctx;             /* one reference owned by the server */
    struct sv_tls_cert_info info;
    char **names;                 /* lower-cased SAN DNS names (CN when no SAN) */
    uint32_t n_names;
};

struct sv_tls_listener {
    char *hostname;               /* lower-cased; "" = any */
    size_t hostname_len;
    char *name;
    size_t name_len;
    uint32_t id;
    struct sv_tls_cert *certs;
    uint32_t n_certs;
};

struct sv_tls_server {
    _Atomic long refs;
    struct sv_tls_listener *listeners;
    size_t n_listeners;
    int any_listener;             /* index of the hostname-less listener, -1 */
    bool client_auth;             /* some listener validates client certificates: no tickets */
    struct sv_tls_ticket_keys *keys;
};

/* ticket.c: the SessionTicketEncCb installed on every server WOLFSSL_CTX (userCtx = keys). */
int sv_tls_ticket_cb_(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                      unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                      int enc, unsigned char *ticket, int in_len, int *out_len, void *user);

/* ticket.c: the rotation period (ticket lifetime hint). */
uint64_t sv_tls_ticket_keys_rotate_s_(const struct sv_tls_ticket_keys *k);

/* conn.c: SNI callback (arg = server) installed on every server WOLFSSL_CTX; I/O callbacks. */
int sv_tls_sni_cb_(WOLFSSL *ssl, int *alert, void *arg);
int sv_tls_io_recv_(WOLFSSL *ssl, char *buf, int sz, void *ctx);
int sv_tls_io_send_(WOLFSSL *ssl, char *buf, int sz, void *ctx);

/* server.c: the certificate of listener <l> for SNI <sni> (may be empty). */
const struct sv_tls_cert *sv_tls_pick_cert_(const struct sv_tls_listener *l, struct sv_str sni);

#endif

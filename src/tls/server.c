/* Certificates and server objects: PEM → one WOLFSSL_CTX per certificate, listener selection by
 * SNI, certificate selection inside a listener. Built on the control thread, read by workers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serval/base/assert.h"
#include "serval/base/log.h"
#include "tls_int.h"

static const char k_ciphers[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static _Atomic size_t g_live_servers;
static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

static void do_init(void)
{
    g_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -EIO;
}

int sv_tls_global_init(void)
{
    pthread_once(&g_init_once, do_init);
    return g_init_rc;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int64_t asn1_to_unix(const WOLFSSL_ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
        return 0;
    return (int64_t)timegm(&tm);
}

static void lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = sv_ascii_lower(src[i]);
    dst[n] = '\0';
}

/* Leaf facts and DNS names (lower-cased, malloc'd) from the first certificate of the PEM. */
static int read_leaf(const void *pem, size_t len, struct sv_tls_cert_info *info, char ***names,
                     uint32_t *n_names)
{
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(pem, (int)len, WOLFSSL_FILETYPE_PEM);
    if (!x)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->not_before = asn1_to_unix(wolfSSL_X509_get_notBefore(x));
    info->not_after = asn1_to_unix(wolfSSL_X509_get_notAfter(x));
    WOLFSSL_X509_NAME *subj = wolfSSL_X509_get_subject_name(x);
    if (subj &&
        wolfSSL_X509_NAME_get_text_by_NID(subj, NID_commonName, info->subject_cn,
                                          (int)sizeof(info->subject_cn)) < 0)
        info->subject_cn[0] = '\0';
    WOLFSSL_EVP_PKEY *pk = wolfSSL_X509_get_pubkey(x);
    if (pk) {
        int t = wolfSSL_EVP_PKEY_base_id(pk);
        info->key_type = t == EVP_PKEY_RSA ? SV_TLS_KEY_RSA
                         : t == EVP_PKEY_EC ? SV_TLS_KEY_ECDSA
                                            : SV_TLS_KEY_UNKNOWN;
        wolfSSL_EVP_PKEY_free(pk);
    }
    int rc = 0;
    if (names) {
        *names = NULL;
        *n_names = 0;
        char **v = calloc(SV_TLS_MAX_NAMES_PER_CERT, sizeof(char *));
        uint32_t n = 0;
        if (!v)
            rc = -ENOMEM;
        for (char *alt; rc == 0 && n < SV_TLS_MAX_NAMES_PER_CERT &&
                        (alt = wolfSSL_X509_get_next_altname(x)) != NULL;) {
            size_t l = strlen(alt);
            if (!(v[n] = malloc(l + 1)))
                rc = -ENOMEM;
            else
                lower_copy(v[n++], alt, l);
        }
        if (rc == 0 && n == 0 && info->subject_cn[0]) {
            size_t l = strlen(info->subject_cn);
            if (!(v[n] = malloc(l + 1)))
                rc = -ENOMEM;
            else
                lower_copy(v[n++], info->subject_cn, l);
        }
        if (rc == 0) {
            *names = v;
            *n_names = n;
        } else if (v) {
            for (uint32_t i = 0; i < n; i++)
                free(v[i]);
            free(v);
        }
    }
    wolfSSL_X509_free(x);
    return rc;
}

/* Whether the private key in key_pem belongs to the leaf of cert_pem: sign a fixed message with
 * the key and verify it with the certificate's public key (wolfSSL 5.5.4's
 * wolfSSL_CTX_check_private_key accepts some mismatched EC pairs). */
static bool key_matches_cert(const void *cert_pem, size_t cert_len, const void *key_pem,
                             size_t key_len)
{
    static const unsigned char msg[] = "serval key/certificate pairing check";
    bool ok = false;
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(cert_pem, (int)cert_len,
                                                           WOLFSSL_FILETYPE_PEM);
    WOLFSSL_EVP_PKEY *pub = x ? wolfSSL_X509_get_pubkey(x) : NULL;
    WOLFSSL_BIO *bio = wolfSSL_BIO_new_mem_buf(key_pem, (int)key_len);
    WOLFSSL_EVP_PKEY *priv = bio ? wolfSSL_PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    WOLFSSL_EVP_MD_CTX *sctx = wolfSSL_EVP_MD_CTX_new();
    WOLFSSL_EVP_MD_CTX *vctx = wolfSSL_EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    if (pub && priv && sctx && vctx &&
        wolfSSL_EVP_PKEY_base_id(pub) == wolfSSL_EVP_PKEY_base_id(priv) &&
        wolfSSL_EVP_DigestSignInit(sctx, NULL, wolfSSL_EVP_sha256(), NULL, priv) == 1 &&
        wolfSSL_EVP_DigestSignUpdate(sctx, msg, sizeof(msg)) == 1 &&
        wolfSSL_EVP_DigestSignFinal(sctx, sig, &sig_len) == 1 &&
        wolfSSL_EVP_DigestVerifyInit(vctx, NULL, wolfSSL_EVP_sha256(), NULL, pub) == 1 &&
        wolfSSL_EVP_DigestVerifyUpdate(vctx, msg, sizeof(msg)) == 1 &&
        wolfSSL_EVP_DigestVerifyFinal(vctx, sig, sig_len) == 1)
        ok = true;
    if (sctx)
        wolfSSL_EVP_MD_CTX_free(sctx);
    if (vctx)
        wolfSSL_EVP_MD_CTX_free(vctx);
    if (priv)
        wolfSSL_EVP_PKEY_free(priv);
    if (bio)
        wolfSSL_BIO_free(bio);
    if (pub)
        wolfSSL_EVP_PKEY_free(pub);
    if (x)
        wolfSSL_X509_free(x);
    return ok;
}

/* A configured server CTX for one certificate, or NULL with a message. */
static WOLFSSL_CTX *make_ctx(const void *cert, size_t cert_len, const void *key, size_t key_len,
                             char *err, size_t errlen)
{
    if (sv_tls_global_init() != 0) {
        set_err(err, errlen, "wolfSSL_Init failed");
        return NULL;
    }
    if (!cert || !key || cert_len == 0 || key_len == 0 || cert_len > INT32_MAX ||
        key_len > INT32_MAX) {
        set_err(err, errlen, cert_len == 0 ? "certificate PEM is empty" : "private key PEM is empty");
        return NULL;
    }
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!ctx) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    const char *why = NULL;
    if (wolfSSL_CTX_use_certificate_chain_buffer_format(ctx, cert, (long)cert_len,
                                                        WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        why = "certificate PEM does not parse";
    else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)key_len, WOLFSSL_FILETYPE_PEM) !=
             WOLFSSL_SUCCESS)
        why = "private key PEM does not parse or does not match the certificate";
    else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS ||
             !key_matches_cert(cert, cert_len, key, key_len))
        why = "private key does not match the certificate";
    else if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
        why = "cannot set TLS 1.2 minimum";
    else if (wolfSSL_CTX_set_cipher_list(ctx, k_ciphers) != WOLFSSL_SUCCESS)
        why = "cannot set the cipher list";
    if (why) {
        set_err(err, errlen, why);
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int sv_tls_cert_check(const void *cert_pem, size_t cert_len, const void *key_pem, size_t key_len,
                      struct sv_tls_cert_info *info, char *err, size_t errlen)
{
    set_err(err, errlen, "");
    WOLFSSL_CTX *ctx = make_ctx(cert_pem, cert_len, key_pem, key_len, err, errlen);
    if (!ctx)
        return -EINVAL;
    wolfSSL_CTX_free(ctx);
    struct sv_tls_cert_info tmp;
    if (read_leaf(cert_pem, cert_len, info ? info : &tmp, NULL, NULL) != 0) {
        set_err(err, errlen, "certificate PEM does not parse");
        return -EINVAL;
    }
    return 0;
}

/* AllowInsecureFallback: the certificate was asked for; whatever the client sends is let in. */
static int verify_accept_any(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    (void)preverify;
    (void)store;
    return 1;
}

int sv_tls_server_set_client_ca(struct sv_tls_server *s, size_t i, const void *ca, size_t ca_len,
                                bool optional)
{
    if (!s || i >= s->n_listeners || !ca || ca_len == 0 || ca_len > INT32_MAX)
        return -EINVAL;
    SV_ASSERT(atomic_load(&s->refs) == 1); /* not shared yet */
    struct sv_tls_listener *l = &s->listeners[i];
    for (uint32_t j = 0; j < l->n_certs; j++) {
        WOLFSSL_CTX *ctx = l->certs[j].ctx;
        if (wolfSSL_CTX_load_verify_buffer(ctx, ca, (long)ca_len, WOLFSSL_FILETYPE_PEM) !=
            WOLFSSL_SUCCESS)
            return -EINVAL;
        if (optional)
            wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify_accept_any);
        else
            wolfSSL_CTX_set_verify(ctx,
                                   WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                                   NULL);
    }
    s->client_auth = true;
    return 0;
}

/* ---- server --------------------------------------------------------------------------------- */

static void free_server(struct sv_tls_server *s)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        struct sv_tls_listener *l = &s->listeners[i];
        for (uint32_t j = 0; j < l->n_certs; j++) {
            struct sv_tls_cert *c = &l->certs[j];
            if (c->ctx)
                wolfSSL_CTX_free(c->ctx); /* connections still using it hold their own ref */
            for (uint32_t k = 0; k < c->n_names; k++)
                free(c->names[k]);
            free(c->names);
        }
        free(l->certs);
        free(l->hostname);
        free(l->name);
    }
    free(s->listeners);
    free(s);
}

static bool valid_hostname(struct sv_str h)
{
    if (h.len == 0)
        return true;
    if (h.len > 253)
        return false;
    size_t start = 0;
    if (h.len >= 2 && h.ptr[0] == '*' && h.ptr[1] == '.')
        start = 2;
    if (start == h.len)
        return false;
    for (size_t i = start; i < h.len; i++) {
        char c = h.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static char *dup_lower(struct sv_str s)
{
    char *p = malloc(s.len + 1);
    if (p)
        lower_copy(p, s.ptr ? s.ptr : "", s.len);
    return p;
}

struct sv_tls_server *sv_tls_server_new(const struct sv_tls_listener_spec *ls, size_t n,
                                        struct sv_tls_ticket_keys *keys, char *err, size_t errlen)
{
    set_err(err, errlen, "");
    if (n == 0 || n > SV_TLS_MAX_LISTENERS || !keys) {
        set_err(err, errlen, n == 0 ? "no listener" : !keys ? "no ticket keys" : "too many listeners");
        return NULL;
    }
    if (sv_tls_global_init() != 0) {
        set_err(err, errlen, "wolfSSL_Init failed");
        return NULL;
    }
    struct sv_tls_server *s = calloc(1, sizeof(*s));
    if (!s || !(s->listeners = calloc(n, sizeof(*s->listeners)))) {
        free(s);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->keys = keys;
    s->any_listener = -1;
    int hint = (int)sv_tls_ticket_keys_rotate_s_(keys);
    char why[160];
    for (size_t i = 0; i < n; i++) {
        const struct sv_tls_listener_spec *sp = &ls[i];
        struct sv_tls_listener *l = &s->listeners[i];
        s->n_listeners = i + 1;
        if (!valid_hostname(sp->hostname)) {
            snprintf(why, sizeof(why), "listener %zu: bad hostname", i);
            goto fail;
        }
        if (sp->n_certs == 0 || sp->n_certs > SV_TLS_MAX_CERTS_PER_LISTENER) {
            snprintf(why, sizeof(why), "listener %zu: %s", i,
                     sp->n_certs ? "too many certificates" : "no certificate");
            goto fail;
        }
        l->id = sp->id;
        l->hostname = dup_lower(sp->hostname);
        l->hostname_len = sp->hostname.len;
        l->name = dup_lower(SV_STR_NULL);
        if (sp->name.len) {
            free(l->name);
            l->name = malloc(sp->name.len + 1);
            if (l->name) {
                memcpy(l->name, sp->name.ptr, sp->name.len);
                l->name[sp->name.len] = '\0';
                l->name_len = sp->name.len;
            }
        }
        l->certs = calloc(sp->n_certs, sizeof(*l->certs));
        if (!l->hostname || !l->name || !l->certs) {
            snprintf(why, sizeof(why), "out of memory");
            goto fail;
        }
        if (l->hostname_len == 0) {
            if (s->any_listener >= 0) {
                snprintf(why, sizeof(why), "listener %zu: second listener without hostname", i);
                goto fail;
            }
            s->any_listener = (int)i;
        }
        for (size_t j = 0; j < i; j++) {
            if (j != i && s->listeners[j].hostname_len == l->hostname_len &&
                memcmp(s->listeners[j].hostname, l->hostname, l->hostname_len) == 0 &&
                l->hostname_len) {
                snprintf(why, sizeof(why), "listener %zu: duplicate hostname %s", i, l->hostname);
                goto fail;
            }
        }
        for (uint32_t j = 0; j < sp->n_certs; j++) {
            const struct sv_tls_cert_pem *cp = &sp->certs[j];
            struct sv_tls_cert *c = &l->certs[j];
            char e[120];
            c->ctx = make_ctx(cp->cert, cp->cert_len, cp->key, cp->key_len, e, sizeof(e));
            l->n_certs = j + 1;
            if (!c->ctx) {
                snprintf(why, sizeof(why), "listener %zu certificate %u: %s", i, j, e);
                goto fail;
            }
            if (read_leaf(cp->cert, cp->cert_len, &c->info, &c->names, &c->n_names) != 0) {
                snprintf(why, sizeof(why), "listener %zu certificate %u: cannot read", i, j);
                goto fail;
            }
            /* tickets only, no server-side session cache (global, locked, unbounded churn) */
            wolfSSL_CTX_set_session_cache_mode(c->ctx, WOLFSSL_SESS_CACHE_OFF);
            wolfSSL_CTX_set_TicketEncCb(c->ctx, sv_tls_ticket_cb_);
            wolfSSL_CTX_set_TicketEncCtx(c->ctx, keys);
            wolfSSL_CTX_set_TicketHint(c->ctx, hint);
            wolfSSL_CTX_set_servername_callback(c->ctx, sv_tls_sni_cb_);
            wolfSSL_CTX_set_servername_arg(c->ctx, s);
            wolfSSL_CTX_SetIORecv(c->ctx, sv_tls_io_recv_);
            wolfSSL_CTX_SetIOSend(c->ctx, sv_tls_io_send_);
        }
    }
    atomic_fetch_add(&g_live_servers, 1);
    return s;
fail:
    set_err(err, errlen, why);
    free_server(s);
    return NULL;
}

void sv_tls_server_ref(struct sv_tls_server *s)
{
    long old = atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    SV_ASSERT(old > 0);
}

void sv_tls_server_unref(struct sv_tls_server *s)
{
    if (!s)
        return;
    long old = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel);
    SV_ASSERT(old > 0);
    if (old == 1) {
        free_server(s);
        atomic_fetch_sub(&g_live_servers, 1);
    }
}

size_t sv_tls_server_live_count(void)
{
    return atomic_load(&g_live_servers);
}

size_t sv_tls_server_n_listeners(const struct sv_tls_server *s)
{
    return s->n_listeners;
}

size_t sv_tls_server_n_certs(const struct sv_tls_server *s, size_t i)
{
    return i < s->n_listeners ? s->listeners[i].n_certs : 0;
}

const struct sv_tls_cert_info *sv_tls_server_cert(const struct sv_tls_server *s, size_t i,
                                                  size_t j)
{
    if (i >= s->n_listeners || j >= s->listeners[i].n_certs)
        return NULL;
    return &s->listeners[i].certs[j].info;
}

struct sv_str sv_tls_server_listener_name(const struct sv_tls_server *s, size_t i)
{
    if (i >= s->n_listeners)
        return SV_STR_NULL;
    return sv_str_make(s->listeners[i].name, s->listeners[i].name_len);
}

/* <pat> "*.suffix" matches <host> when host ends with ".suffix" and has at least one more
 * label (Gateway API: any number of labels). */
static bool wild_match(const char *pat, size_t plen, struct sv_str host)
{
    if (plen < 3 || pat[0] != '*' || pat[1] != '.')
        return false;
    size_t sl = plen - 1; /* ".suffix" */
    return host.len > sl && memcmp(host.ptr + host.len - sl, pat + 1, sl) == 0;
}

static size_t count_labels(const char *p, size_t n)
{
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '.';
    return k;
}

int sv_tls_server_select(const struct sv_tls_server *s, struct sv_str sni)
{
    char buf[256];
    if (sni.len >= sizeof(buf))
        return s->any_listener;
    if (sni.len && sni.ptr[sni.len - 1] == '.')
        sni.len--; /* absolute name */
    lower_copy(buf, sni.ptr ? sni.ptr : "", sni.len);
    struct sv_str h = sv_str_make(buf, sni.len);
    if (h.len == 0)
        return s->any_listener;
    int best = -1;
    size_t best_labels = 0;
    for (size_t i = 0; i < s->n_listeners; i++) {
        const struct sv_tls_listener *l = &s->listeners[i];
        if (l->hostname_len == h.len && memcmp(l->hostname, h.ptr, h.len) == 0)
            return (int)i;
        if (wild_match(l->hostname, l->hostname_len, h)) {
            size_t lab = count_labels(l->hostname, l->hostname_len);
            if (best < 0 || lab > best_labels) {
                best = (int)i;
                best_labels = lab;
            }
        }
    }
    return best >= 0 ? best : s->any_listener;
}

/* Certificate names follow RFC 6125: "*.example.com" covers exactly one label. */
static bool cert_name_match(const char *name, struct sv_str host, bool wildcard)
{
    size_t nl = strlen(name);
    if (!wildcard)
        return nl == host.len && memcmp(name, host.ptr, nl) == 0;
    if (nl < 3 || name[0] != '*' || name[1] != '.')
        return false;
    const char *dot = memchr(host.ptr, '.', host.len);
    if (!dot || dot == host.ptr)
        return false;
    size_t rest = host.len - (size_t)(dot - host.ptr);
    return rest == nl - 1 && memcmp(dot, name + 1, rest) == 0;
}

const struct sv_tls_cert *sv_tls_pick_cert_(const struct sv_tls_listener *l, struct sv_str sni)
{
    SV_ASSERT(l->n_certs > 0);
    char buf[256];
    if (sni.len > 0 && sni.len < sizeof(buf)) {
        lower_copy(buf, sni.ptr, sni.len);
        struct sv_str h = sv_str_make(buf, sni.len);
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t j = 0; j < l->n_certs; j++)
                for (uint32_t k = 0; k < l->certs[j].n_names; k++)
                    if (cert_name_match(l->certs[j].names[k], h, pass == 1))
                        return &l->certs[j];
    }
    return &l->certs[0];
}

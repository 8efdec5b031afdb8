/* Session-ticket keys shared by all workers: AES-256-GCM, a current and a previous key, rotated
 * by the control thread. Readers take a pthread rwlock for reading once per ticket operation
 * (one per full handshake or resumption), never per record. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include "serval/base/assert.h"
#include "tls_int.h"

#define KEY_LEN 32u
#define NONCE_LEN 12u
#define TAG_LEN 16u

struct ticket_key {
    uint8_t name[WOLFSSL_TICKET_NAME_SZ];
    uint8_t key[KEY_LEN];
    bool valid;
};

struct sv_tls_ticket_keys {
    pthread_rwlock_t lock;
    struct ticket_key cur, prev;  /* under lock */
    uint64_t rotate_s;
    uint64_t created_s;           /* of cur; control thread only */
    _Atomic uint64_t rotations;
};

static int fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    for (int tries = 0; got < n && tries < 16; tries++) {
        ssize_t r = getrandom(b + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            return -EIO;
    }
    return got == n ? 0 : -EIO;
}

static int fresh_key(struct ticket_key *k)
{
    if (fill_random(k->name, sizeof(k->name)) || fill_random(k->key, sizeof(k->key)))
        return -EIO;
    k->valid = true;
    return 0;
}

struct sv_tls_ticket_keys *sv_tls_ticket_keys_new(uint64_t rotate_s, uint64_t now_s)
{
    struct sv_tls_ticket_keys *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    if (pthread_rwlock_init(&k->lock, NULL) != 0) {
        free(k);
        return NULL;
    }
    k->rotate_s = rotate_s ? rotate_s : 1;
    k->created_s = now_s;
    if (fresh_key(&k->cur) != 0) {
        sv_tls_ticket_keys_free(k);
        return NULL;
    }
    return k;
}

void sv_tls_ticket_keys_free(struct sv_tls_ticket_keys *k)
{
    if (!k)
        return;
    pthread_rwlock_destroy(&k->lock);
    memset(k, 0, sizeof(*k));
    free(k);
}

int sv_tls_ticket_keys_rotate(struct sv_tls_ticket_keys *k, uint64_t now_s)
{
    struct ticket_key next;
    if (fresh_key(&next) != 0)
        return -EIO;
    pthread_rwlock_wrlock(&k->lock);
    k->prev = k->cur;
    k->cur = next;
    pthread_rwlock_unlock(&k->lock);
    memset(&next, 0, sizeof(next));
    k->created_s = now_s;
    atomic_fetch_add_explicit(&k->rotations, 1, memory_order_relaxed);
    return 0;
}

int sv_tls_ticket_keys_tick(struct sv_tls_ticket_keys *k, uint64_t now_s)
{
    if (now_s < k->created_s + k->rotate_s)
        return 0;
    int rc = sv_tls_ticket_keys_rotate(k, now_s);
    return rc == 0 ? 1 : rc;
}

static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
static struct sv_tls_ticket_keys *g_default_keys;

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static void make_default(void)
{
    g_default_keys = sv_tls_ticket_keys_new(SV_TLS_TICKET_ROTATE_S, mono_s());
}

struct sv_tls_ticket_keys *sv_tls_default_ticket_keys(void)
{
    pthread_once(&g_default_once, make_default);
    return g_default_keys;
}

int sv_tls_default_ticket_keys_tick(void)
{
    struct sv_tls_ticket_keys *k = sv_tls_default_ticket_keys();
    return k ? sv_tls_ticket_keys_tick(k, mono_s()) : -ENOMEM;
}

uint64_t sv_tls_ticket_keys_rotations(const struct sv_tls_ticket_keys *k)
{
    return atomic_load_explicit(&k->rotations, memory_order_relaxed);
}

uint64_t sv_tls_ticket_keys_rotate_s_(const struct sv_tls_ticket_keys *k)
{
    return k->rotate_s;
}

/* AES-256-GCM over the ticket in place; AAD = key name || IV; tag in mac[0..16), rest zero. */
static int gcm(const uint8_t key[KEY_LEN], bool enc, const uint8_t *name, const uint8_t *iv,
               uint8_t *mac, uint8_t *buf, word32 len)
{
    uint8_t aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];
    memcpy(aad, name, WOLFSSL_TICKET_NAME_SZ);
    memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
    Aes aes;
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return -1;
    int rc = wc_AesGcmSetKey(&aes, key, KEY_LEN);
    if (rc == 0) {
        if (enc)
            rc = wc_AesGcmEncrypt(&aes, buf, buf, len, iv, NONCE_LEN, mac, TAG_LEN, aad,
                                  sizeof(aad));
        else
            rc = wc_AesGcmDecrypt(&aes, buf, buf, len, iv, NONCE_LEN, mac, TAG_LEN, aad,
                                  sizeof(aad));
    }
    wc_AesFree(&aes);
    return rc == 0 ? 0 : -1;
}

int sv_tls_ticket_cb_(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                      unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                      int enc, unsigned char *ticket, int in_len, int *out_len, void *user)
{
    struct sv_tls_ticket_keys *k = user;
    if (!k || in_len < 0)
        return WOLFSSL_TICKET_RET_FATAL;
    const struct sv_tls_conn *c = ssl ? wolfSSL_GetIOReadCtx(ssl) : NULL;
    if (!enc && c && c->_srv && c->_srv->client_auth)
        return WOLFSSL_TICKET_RET_REJECT; /* client certificates are checked on every handshake */
    struct ticket_key use;
    bool current = true;
    if (enc) {
        if (fill_random(iv, WOLFSSL_TICKET_IV_SZ) != 0)
            return WOLFSSL_TICKET_RET_FATAL;
        pthread_rwlock_rdlock(&k->lock);
        use = k->cur;
        pthread_rwlock_unlock(&k->lock);
        memcpy(key_name, use.name, WOLFSSL_TICKET_NAME_SZ);
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        int rc = gcm(use.key, true, key_name, iv, mac, ticket, (word32)in_len);
        memset(&use, 0, sizeof(use));
        if (rc != 0)
            return WOLFSSL_TICKET_RET_FATAL;
        *out_len = in_len;
        return WOLFSSL_TICKET_RET_OK;
    }
    pthread_rwlock_rdlock(&k->lock);
    if (k->cur.valid && memcmp(k->cur.name, key_name, WOLFSSL_TICKET_NAME_SZ) == 0) {
        use = k->cur;
    } else if (k->prev.valid && memcmp(k->prev.name, key_name, WOLFSSL_TICKET_NAME_SZ) == 0) {
        use = k->prev;
        current = false;
    } else {
        pthread_rwlock_unlock(&k->lock);
        return WOLFSSL_TICKET_RET_REJECT; /* unknown or retired key: full handshake */
    }
    pthread_rwlock_unlock(&k->lock);
    for (size_t i = TAG_LEN; i < WOLFSSL_TICKET_MAC_SZ; i++) {
        if (mac[i] != 0) {
            memset(&use, 0, sizeof(use));
            return WOLFSSL_TICKET_RET_REJECT;
        }
    }
    int rc = gcm(use.key, false, key_name, iv, mac, ticket, (word32)in_len);
    memset(&use, 0, sizeof(use));
    if (rc != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    *out_len = in_len;
    return current ? WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_CREATE;
}

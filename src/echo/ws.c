/* serval-echo: WebSocket (RFC 6455) handshake key and frame echo loop. Runs on a connection
 * thread with blocking I/O; frames are streamed through (never buffered whole). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

#include "echo/echo_int.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static size_t base64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

int sv_echo_ws_accept_key(const char *key, size_t klen, char *out, size_t outcap)
{
    unsigned char cat[128];
    unsigned char digest[WC_SHA_DIGEST_SIZE];
    if (klen == 0 || klen + sizeof(ws_guid) - 1 > sizeof(cat) || outcap < 29)
        return -1;
    memcpy(cat, key, klen);
    memcpy(cat + klen, ws_guid, sizeof(ws_guid) - 1);
    if (wc_ShaHash(cat, (word32)(klen + sizeof(ws_guid) - 1), digest) != 0)
        return -1;
    base64_encode(digest, sizeof(digest), out);
    return 0;
}

/* Blocking reader that first drains bytes received with the handshake. */
struct ws_reader {
    int fd;
    const char *pend;
    size_t npend;
};

static int ws_read(struct ws_reader *r, void *dst, size_t n)
{
    char *d = dst;
    while (n > 0) {
        if (r->npend > 0) {
            size_t k = n < r->npend ? n : r->npend;
            memcpy(d, r->pend, k);
            r->pend += k;
            r->npend -= k;
            d += k;
            n -= k;
            continue;
        }
        ssize_t got = recv(r->fd, d, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        d += got;
        n -= (size_t)got;
    }
    return 0;
}

static int ws_send_header(int fd, unsigned char b0, uint64_t len)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = b0;
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        hl = 10;
    }
    return sv_echo_send_all(fd, h, hl);
}

static void ws_send_close(int fd, unsigned code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    if (ws_send_header(fd, 0x88, 2) == 0)
        (void)sv_echo_send_all(fd, p, 2);
}

/* Read one frame header. Returns 0 and fills the outputs, or -1. */
static int ws_read_header(struct ws_reader *r, unsigned char *b0, uint64_t *len, bool *masked,
                          unsigned char mask[4])
{
    unsigned char h[2];
    if (ws_read(r, h, 2) != 0)
        return -1;
    *b0 = h[0];
    *masked = (h[1] & 0x80) != 0;
    *len = h[1] & 0x7f;
    if (*len == 126) {
        unsigned char e[2];
        if (ws_read(r, e, 2) != 0)
            return -1;
        *len = ((uint64_t)e[0] << 8) | e[1];
    } else if (*len == 127) {
        unsigned char e[8];
        if (ws_read(r, e, 8) != 0)
            return -1;
        *len = 0;
        for (int i = 0; i < 8; i++)
            *len = (*len << 8) | e[i];
    }
    if (*masked && ws_read(r, mask, 4) != 0)
        return -1;
    return 0;
}

void sv_echo_ws_run(int fd, const char *pending, size_t npending, char *scratch, size_t cap)
{
    struct ws_reader r = {fd, pending, npending};
    for (;;) { /* bounded by the peer: every iteration consumes one frame or returns */
        unsigned char b0, mask[4] = {0};
        uint64_t len;
        bool masked;
        if (ws_read_header(&r, &b0, &len, &masked, mask) != 0)
            return;
        unsigned op = b0 & 0x0f;
        if (!masked || (b0 & 0x70) != 0) { /* clients must mask; no extensions negotiated */
            ws_send_close(fd, 1002);
            return;
        }
        if (len > SV_ECHO_WS_MAX_FRAME || (op >= 8 && len > 125)) {
            ws_send_close(fd, 1009);
            return;
        }
        unsigned char out_b0 = b0;
        if (op == 0x9)
            out_b0 = (unsigned char)((b0 & 0xf0) | 0xA); /* ping -> pong */
        bool echo = op != 0xA;                           /* pongs are dropped */
        if (echo && ws_send_header(fd, out_b0, len) != 0)
            return;
        uint64_t off = 0;
        while (off < len) {
            size_t k = (size_t)(len - off < cap ? len - off : cap);
            if (ws_read(&r, scratch, k) != 0)
                return;
            for (size_t i = 0; i < k; i++)
                scratch[i] = (char)(scratch[i] ^ mask[(off + i) & 3]);
            if (echo && sv_echo_send_all(fd, scratch, k) != 0)
                return;
            off += k;
        }
        if (op == 0x8) /* close echoed: done */
            return;
    }
}

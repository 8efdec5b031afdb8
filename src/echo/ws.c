/* serval-echo: WebSocket (RFC 6455) handshake key and incremental frame echo. Frames are
 * streamed through (never buffered whole): payload bytes go back as they arrive, unmasked. */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

#include "echo/echo_int.h"
#include "serval/base/compiler.h"

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

static void ws_put_header(struct sv_echo_buf *out, unsigned char b0, uint64_t len)
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
    sv_echo_buf_put(out, h, hl);
}

static void ws_put_close(struct sv_echo_buf *out, unsigned code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    ws_put_header(out, 0x88, 2);
    sv_echo_buf_put(out, p, 2);
}

/* Header length once the first two bytes are known. */
static size_t ws_header_len(const unsigned char *h)
{
    size_t n = 2;
    if ((h[1] & 0x7f) == 126)
        n += 2;
    else if ((h[1] & 0x7f) == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

/* A complete header is in ws->hdr: decode it and queue the echoed frame's header. Returns 0, or
 * -1 after queueing a close frame for a protocol error. */
static int ws_start_frame(struct sv_echo_ws *ws, struct sv_echo_buf *out)
{
    const unsigned char *h = ws->hdr;
    size_t pos = 2;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        pos = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | h[2 + i];
        pos = 10;
    }
    ws->op = h[0] & 0x0f;
    if (!(h[1] & 0x80) || (h[0] & 0x70) != 0) { /* clients must mask; no extensions */
        ws_put_close(out, 1002);
        return -1;
    }
    if (len > SV_ECHO_WS_MAX_FRAME || (ws->op >= 8 && len > 125)) {
        ws_put_close(out, 1009);
        return -1;
    }
    memcpy(ws->mask, h + pos, 4);
    ws->len = len;
    ws->off = 0;
    ws->echo = ws->op != 0xA; /* pongs are dropped */
    unsigned char b0 = h[0];
    if (ws->op == 0x9)
        b0 = (unsigned char)((h[0] & 0xf0) | 0xA); /* ping -> pong */
    if (ws->echo)
        ws_put_header(out, b0, len);
    ws->in_payload = true;
    return 0;
}

size_t sv_echo_ws_consume(struct sv_echo_ws *ws, const char *in, size_t n, struct sv_echo_buf *out,
                          size_t room, int *done)
{
    size_t used = 0;
    *done = 0;
    while (*done == 0) { /* bounded: every pass consumes input or finishes a frame or stops */
        if (!ws->in_payload) {
            size_t need = ws->hlen < 2 ? 2 : ws_header_len(ws->hdr);
            size_t k = SV_MIN(need - ws->hlen, n - used);
            memcpy(ws->hdr + ws->hlen, in + used, k);
            ws->hlen += k;
            used += k;
            if (ws->hlen == 2)
                need = ws_header_len(ws->hdr);
            if (ws->hlen < need) {
                if (used == n)
                    break;
                continue;
            }
            ws->hlen = 0;
            if (ws_start_frame(ws, out) != 0) {
                *done = -1;
                break;
            }
        }
        size_t k = (size_t)SV_MIN(ws->len - ws->off, (uint64_t)SV_MIN(n - used, room));
        if (k > 0) {
            if (ws->echo) {
                size_t at = out->len;
                sv_echo_buf_put(out, in + used, k);
                if (out->overflow) {
                    *done = -1;
                    break;
                }
                for (size_t i = 0; i < k; i++)
                    out->p[at + i] = (char)(out->p[at + i] ^ ws->mask[(ws->off + i) & 3]);
            }
            ws->off += k;
            used += k;
            room -= k;
        }
        if (ws->off < ws->len)
            break; /* need more input or more room */
        ws->in_payload = false;
        if (ws->op == 0x8)
            *done = 1;
        if (used == n)
            break;
    }
    return used;
}

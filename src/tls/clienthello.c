/* Bounded ClientHello SNI peek for TLS passthrough (serval/tls/clienthello.h).
 *
 * Two steps: collect the handshake bytes from up to SV_TLS_HELLO_MAX_RECORDS consecutive
 * handshake records (as fragments pointing into the input, nothing copied) until the whole
 * ClientHello message is there; then walk its fields with a reader that checks every length
 * against the message end (RFC 8446 §4.1.2 layout, which TLS 1.0-1.2 ClientHellos share). */
#include "serval/tls/clienthello.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>


#define REC_HDR 5u
#define REC_MAX (16384u + 2048u) /* TLSPlaintext/TLSCiphertext upper bound; be lenient */
#define HS_HDR 4u
#define CT_HANDSHAKE 22u
#define HS_CLIENT_HELLO 1u
#define EXT_SERVER_NAME 0u
#define SNI_HOST_NAME 0u

struct frag {
    const uint8_t *p;
    size_t n;
};

/* Sequential reader over the fragments; pos/end count handshake bytes. */
struct rd {
    const struct frag *f;
    unsigned nf;
    size_t pos, end;
    unsigned fi;  /* fragment holding pos */
    size_t foff;  /* offset of pos inside it */
};

static bool rd_byte(struct rd *r, uint8_t *b)
{
    if (r->pos >= r->end)
        return false;
    while (r->fi < r->nf && r->foff >= r->f[r->fi].n) {
        r->fi++;
        r->foff = 0;
    }
    if (r->fi >= r->nf)
        return false;
    *b = r->f[r->fi].p[r->foff++];
    r->pos++;
    return true;
}

static bool rd_uint(struct rd *r, unsigned nbytes, size_t *v)
{
    *v = 0;
    for (unsigned i = 0; i < nbytes; i++) {
        uint8_t b;
        if (!rd_byte(r, &b))
            return false;
        *v = (*v << 8) | b;
    }
    return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
    if (n > r->end - r->pos)
        return false;
    size_t left = n;
    while (left) { /* bounded: each pass consumes a fragment's rest or finishes */
        while (r->fi < r->nf && r->foff >= r->f[r->fi].n) {
            r->fi++;
            r->foff = 0;
        }
        if (r->fi >= r->nf)
            return false;
        size_t room = r->f[r->fi].n - r->foff;
        size_t k = left < room ? left : room;
        r->foff += k;
        r->pos += k;
        left -= k;
    }
    return true;
}

static bool host_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

/* server_name extension body of <elen> bytes at r->pos. Returns the name length, 0 when it
 * has no host_name entry, or -EPROTO / -ENOSPC. */
static int read_server_name(struct rd *r, size_t elen, char *out, size_t cap)
{
    size_t ext_end = r->pos + elen;
    size_t list_len;
    if (elen < 2 || !rd_uint(r, 2, &list_len) || list_len != elen - 2)
        return -EPROTO;
    while (r->pos < ext_end) { /* bounded: every entry consumes at least 3 bytes */
        size_t type, nlen;
        if (!rd_uint(r, 1, &type) || !rd_uint(r, 2, &nlen) || nlen > ext_end - r->pos)
            return -EPROTO;
        if (type != SNI_HOST_NAME) {
            if (!rd_skip(r, nlen))
                return -EPROTO;
            continue;
        }
        if (nlen == 0 || nlen > SV_TLS_SNI_MAX)
            return -EPROTO;
        if (nlen >= cap)
            return -ENOSPC;
        for (size_t i = 0; i < nlen; i++) {
            uint8_t c;
            if (!rd_byte(r, &c) || !host_char(c))
                return -EPROTO;
            out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        out[nlen] = '\0';
        return (int)nlen;
    }
    return 0;
}

int sv_tls_clienthello_sni(const uint8_t *in, size_t len, char *out, size_t cap, size_t *need)
{
    struct frag f[SV_TLS_HELLO_MAX_RECORDS];
    unsigned nf = 0;
    size_t pos = 0, have = 0, total = 0; /* total: handshake bytes needed, 0 = not known yet */
    uint8_t hdr[HS_HDR];
    if (need)
        *need = 0;
    if (cap)
        out[0] = '\0';
    if (!in && len)
        return -EPROTO;
    /* step 1: collect the ClientHello handshake message from the records */
    while (total == 0 || have < total) {
        if (nf == SV_TLS_HELLO_MAX_RECORDS)
            return -EPROTO;
        if (len - pos < REC_HDR) {
            /* the prefix must already look like a handshake record */
            if (len > pos && in[pos] != CT_HANDSHAKE)
                return -EPROTO;
            if (len > pos + 1 && in[pos + 1] != 3)
                return -EPROTO;
            if (need)
                *need = pos + REC_HDR + (total ? total - have : HS_HDR - have);
            return -EAGAIN;
        }
        const uint8_t *rh = in + pos;
        size_t rlen = ((size_t)rh[3] << 8) | rh[4];
        if (rh[0] != CT_HANDSHAKE || rh[1] != 3 || rlen == 0 || rlen > REC_MAX)
            return -EPROTO;
        size_t avail = len - pos - REC_HDR;
        size_t take = avail < rlen ? avail : rlen;
        f[nf].p = rh + REC_HDR;
        f[nf].n = take;
        nf++;
        /* the first HS_HDR handshake bytes give the message length */
        for (size_t i = 0; have + i < HS_HDR && i < take; i++)
            hdr[have + i] = rh[REC_HDR + i];
        have += take;
        if (total == 0 && have >= HS_HDR) {
            if (hdr[0] != HS_CLIENT_HELLO)
                return -EPROTO;
            size_t body = ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
            if (body > SV_TLS_HELLO_MAX_LEN || body < 2 + 32 + 1 + 2 + 1)
                return -EPROTO;
            total = HS_HDR + body;
        }
        if (take < rlen) { /* this record is cut short: wait for the rest */
            if (total && have >= total)
                break;
            if (need)
                *need = pos + REC_HDR + rlen;
            return -EAGAIN;
        }
        pos += REC_HDR + rlen;
    }

    /* step 2: walk the ClientHello body */
    struct rd r = {f, nf, 0, total, 0, 0};
    size_t v;
    if (!rd_skip(&r, HS_HDR) || !rd_skip(&r, 2 + 32)) /* header, legacy_version, random */
        return -EPROTO;
    if (!rd_uint(&r, 1, &v) || v > 32 || !rd_skip(&r, v)) /* legacy_session_id */
        return -EPROTO;
    if (!rd_uint(&r, 2, &v) || v < 2 || (v & 1) || !rd_skip(&r, v)) /* cipher_suites */
        return -EPROTO;
    if (!rd_uint(&r, 1, &v) || v < 1 || !rd_skip(&r, v)) /* legacy_compression_methods */
        return -EPROTO;
    if (r.pos == r.end)
        return 0; /* no extensions (TLS 1.0-1.2 allow it) */
    size_t ext_len;
    if (!rd_uint(&r, 2, &ext_len) || ext_len != r.end - r.pos)
        return -EPROTO;
    while (r.pos < r.end) { /* bounded: every extension consumes at least 4 bytes */
        size_t type, elen;
        if (!rd_uint(&r, 2, &type) || !rd_uint(&r, 2, &elen) || elen > r.end - r.pos)
            return -EPROTO;
        if (type == EXT_SERVER_NAME)
            return read_server_name(&r, elen, out, cap);
        if (!rd_skip(&r, elen))
            return -EPROTO;
    }
    return 0;
}

/* serval-echo: byte buffer, query and duration parsing, /retry table. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo/echo_int.h"

void sv_echo_buf_put(struct sv_echo_buf *b, const void *s, size_t n)
{
    if (b->overflow)
        return;
    if (b->len + n > b->cap) {
        size_t want = b->cap ? b->cap : 4096;
        while (want < b->len + n)
            want *= 2;
        if (want > SV_ECHO_OUT_MAX) {
            if (b->len + n > SV_ECHO_OUT_MAX) {
                b->overflow = true;
                return;
            }
            want = SV_ECHO_OUT_MAX;
        }
        char *np = realloc(b->p, want);
        if (!np) {
            b->overflow = true;
            return;
        }
        b->p = np;
        b->cap = want;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
}

void sv_echo_buf_puts(struct sv_echo_buf *b, const char *s)
{
    sv_echo_buf_put(b, s, strlen(s));
}

void sv_echo_buf_printf(struct sv_echo_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sv_echo_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void sv_echo_buf_json(struct sv_echo_buf *b, const char *s, size_t n)
{
    size_t run = 0; /* start of the bytes copied verbatim */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f)
            continue;
        sv_echo_buf_put(b, s + run, i - run);
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sv_echo_buf_put(b, e, 2);
        } else {
            sv_echo_buf_printf(b, "\\u%04x", ch);
        }
        run = i + 1;
    }
    sv_echo_buf_put(b, s + run, n - run);
}

void sv_echo_buf_free(struct sv_echo_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->overflow = false;
}

int64_t sv_echo_parse_duration_ns(const char *s)
{
    if (*s == '+')
        s++;
    if (strcmp(s, "0") == 0)
        return 0;
    if (*s == '\0')
        return -1;
    double total = 0;
    for (int guard = 0; *s && guard < 16; guard++) {
        char *end;
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return -1;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        double unit;
        if (strncmp(s, "ns", 2) == 0) {
            unit = 1, s += 2;
        } else if (strncmp(s, "us", 2) == 0) {
            unit = 1e3, s += 2;
        } else if (strncmp(s, "\xc2\xb5s", 3) == 0 || strncmp(s, "\xce\xbcs", 3) == 0) {
            unit = 1e3, s += 3;
        } else if (strncmp(s, "ms", 2) == 0) {
            unit = 1e6, s += 2;
        } else if (*s == 's') {
            unit = 1e9, s += 1;
        } else if (*s == 'm') {
            unit = 60e9, s += 1;
        } else if (*s == 'h') {
            unit = 3600e9, s += 1;
        } else {
            return -1;
        }
        total += v * unit;
    }
    if (*s || total > 600e9)
        return -1;
    return (int64_t)total;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool sv_echo_query_get(const char *url, size_t len, const char *key, char *out, size_t cap)
{
    const char *q = memchr(url, '?', len);
    if (!q)
        return false;
    const char *end = url + len;
    size_t klen = strlen(key);
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == klen && memcmp(p, key, klen) == 0) {
            size_t o = 0;
            for (const char *v = eq ? eq + 1 : pe; v < pe && o + 1 < cap; v++) {
                if (*v == '%' && v + 2 < pe && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    out[o++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 2;
                } else {
                    out[o++] = *v == '+' ? ' ' : *v;
                }
            }
            out[o] = '\0';
            return true;
        }
        p = pe + 1;
    }
    return false;
}

bool sv_echo_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

#define RETRY_SLOTS 4096

struct retry_ent {
    char uuid[96];
    uint32_t count;
    uint64_t stamp; /* 0 = free */
};

static struct retry_ent retry_tab[RETRY_SLOTS];
static uint64_t retry_clock;
static pthread_mutex_t retry_mu = PTHREAD_MUTEX_INITIALIZER;

uint32_t sv_echo_retry_hit(const char *uuid)
{
    pthread_mutex_lock(&retry_mu);
    struct retry_ent *victim = &retry_tab[0];
    struct retry_ent *hit = NULL;
    for (size_t i = 0; i < RETRY_SLOTS; i++) {
        struct retry_ent *e = &retry_tab[i];
        if (e->stamp != 0 && strcmp(e->uuid, uuid) == 0) {
            hit = e;
            break;
        }
        if (e->stamp < victim->stamp)
            victim = e;
    }
    if (!hit) {
        hit = victim;
        snprintf(hit->uuid, sizeof(hit->uuid), "%s", uuid);
        hit->count = 0;
    }
    hit->stamp = ++retry_clock;
    uint32_t n = ++hit->count;
    pthread_mutex_unlock(&retry_mu);
    return n;
}

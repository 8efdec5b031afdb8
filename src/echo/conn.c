/* serval-echo: one connection, served with blocking I/O on its own thread. Requests are parsed
 * with llhttp (callbacks below) and answered from on_message_complete, so pipelined requests are
 * answered in order. /echo-body is the exception: its response head goes out when the request
 * head is complete and each body piece is echoed as it arrives (never buffered whole). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "echo/echo_int.h"
#include "serval/base/compiler.h"

enum echo_kind {
    K_ECHO,
    K_HEALTH,
    K_STATUS,
    K_RETRY,
    K_WS,
    K_ECHO_BODY,
    K_BYTES,
    K_SLOW,
    K_RESET,
    K_CLOSE,
    K_STATS,
};

enum echo_action { ACT_KEEP, ACT_CLOSE, ACT_RESET, ACT_WS };

struct echo_hdr {
    uint32_t name_off, name_len, val_off, val_len;
};

struct echo_conn {
    int fd;
    const struct sv_echo_ident *id;
    const char *peer;
    llhttp_t parser;
    /* current request */
    size_t url_len;
    size_t hb_used;
    unsigned nhdrs;
    bool in_value;
    int error_status;       /* 414/431 once a limit is hit */
    enum echo_kind kind;
    enum echo_action action;
    bool chunked_out;       /* /echo-body answers chunked */
    bool io_failed;         /* a send failed: stop */
    struct sv_echo_buf out; /* response head (+ body) */
    struct sv_echo_buf json;
    struct echo_hdr hdrs[SV_ECHO_MAX_HDRS];
    char url[SV_ECHO_URL_MAX];
    char hb[SV_ECHO_HDR_BYTES];
    char rbuf[SV_ECHO_READ_BUF];
};

_Atomic uint64_t sv_echo_connections;
_Atomic uint64_t sv_echo_requests;
_Atomic uint32_t sv_echo_live;
bool sv_echo_quiet;
int sv_echo_idle_ms = 60000;

/* ---- small helpers --------------------------------------------------------------------------- */

void sv_echo_buf_put(struct sv_echo_buf *b, const void *s, size_t n)
{
    if (b->overflow)
        return;
    if (b->len + n > b->cap) {
        size_t want = b->cap ? b->cap : 4096;
        while (want < b->len + n)
            want *= 2;
        if (want > SV_ECHO_OUT_MAX) {
            b->overflow = true;
            return;
        }
        char *np = realloc(b->p, want);
        if (!np) {
            b->overflow = true;
            return;
        }
        b->p = np;
        b->cap = want;
    }
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
    size_t run = 0; /* bytes copied verbatim in one go */
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

int sv_echo_send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Go time.ParseDuration subset: [+]{number[.fraction]unit}... with units ns us µs ms s m h, or
 * "0". Returns nanoseconds, or -1 if malformed or above 10 minutes. */
static int64_t parse_duration_ns(const char *s)
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

/* Value of query parameter <key> of the request-URI (percent-decoded, '+' = space) into <out>.
 * Returns true if present (possibly truncated to <cap>-1 bytes). */
static bool query_get(const char *url, size_t len, const char *key, char *out, size_t cap)
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

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
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

/* ---- retry bookkeeping (/retry) ------------------------------------------------------------ */

#define RETRY_SLOTS 4096

struct retry_ent {
    char uuid[96];
    uint32_t count;
    uint64_t stamp;
};

static struct retry_ent retry_tab[RETRY_SLOTS];
static uint64_t retry_clock;
static pthread_mutex_t retry_mu = PTHREAD_MUTEX_INITIALIZER;

/* Count one request for <uuid>; returns how many have been seen, this one included. The table is
 * bounded: the least recently used uuid is forgotten when it is full. */
static uint32_t retry_hit(const char *uuid)
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

/* ---- request state ------------------------------------------------------------------------- */

struct echo_view {
    const char *p;
    size_t n;
};

static struct echo_view hdr_get(const struct echo_conn *c, const char *name)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < c->nhdrs; i++) {
        const struct echo_hdr *h = &c->hdrs[i];
        if (h->name_len == nl && strncasecmp(c->hb + h->name_off, name, nl) == 0)
            return (struct echo_view){c->hb + h->val_off, h->val_len};
    }
    return (struct echo_view){NULL, 0};
}

static bool view_has_token(struct echo_view v, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; v.p && i + tl <= v.n; i++)
        if (strncasecmp(v.p + i, tok, tl) == 0)
            return true;
    return false;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Go's textproto.CanonicalMIMEHeaderKey, in place: "x-foo-bar" -> "X-Foo-Bar"; names with
 * bytes outside the token set are left alone. */
static void canonicalize(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return;
    bool upper = true;
    for (size_t i = 0; i < n; i++) {
        if (upper && s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 32);
        else if (!upper && s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] + 32);
        upper = s[i] == '-';
    }
}

static enum echo_kind classify(const char *url, size_t len)
{
    const char *q = memchr(url, '?', len);
    size_t pl = q ? (size_t)(q - url) : len;
#define IS(lit) (pl == sizeof(lit) - 1 && memcmp(url, lit, pl) == 0)
#define PREFIX(lit) (pl >= sizeof(lit) - 1 && memcmp(url, lit, sizeof(lit) - 1) == 0)
    if (IS("/health"))
        return K_HEALTH;
    if (PREFIX("/status/"))
        return K_STATUS;
    if (IS("/retry") || PREFIX("/retry/"))
        return K_RETRY;
    if (IS("/ws"))
        return K_WS;
    if (IS("/echo-body"))
        return K_ECHO_BODY;
    if (PREFIX("/bytes/"))
        return K_BYTES;
    if (IS("/slow"))
        return K_SLOW;
    if (IS("/reset"))
        return K_RESET;
    if (IS("/close"))
        return K_CLOSE;
    if (IS("/stats"))
        return K_STATS;
#undef IS
#undef PREFIX
    return K_ECHO;
}

static struct echo_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int on_message_begin(llhttp_t *p)
{
    struct echo_conn *c = conn_of(p);
    c->url_len = 0;
    c->hb_used = 0;
    c->nhdrs = 0;
    c->in_value = false;
    c->error_status = 0;
    c->kind = K_ECHO;
    c->action = ACT_KEEP;
    c->chunked_out = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct echo_conn *c = conn_of(p);
    if (c->url_len + n > sizeof(c->url)) {
        c->error_status = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int hb_append(struct echo_conn *c, const char *at, size_t n)
{
    if (c->hb_used + n > sizeof(c->hb)) {
        c->error_status = 431;
        return -1;
    }
    memcpy(c->hb + c->hb_used, at, n);
    c->hb_used += n;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct echo_conn *c = conn_of(p);
    if (c->in_value || c->nhdrs == 0) {
        if (c->nhdrs == SV_ECHO_MAX_HDRS) {
            c->error_status = 431;
            return -1;
        }
        struct echo_hdr *h = &c->hdrs[c->nhdrs++];
        h->name_off = (uint32_t)c->hb_used;
        h->name_len = h->val_len = 0;
        h->val_off = (uint32_t)c->hb_used;
        c->in_value = false;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
    return hb_append(c, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct echo_conn *c = conn_of(p);
    if (c->nhdrs == 0)
        return -1;
    struct echo_hdr *h = &c->hdrs[c->nhdrs - 1];
    if (!c->in_value) {
        h->val_off = (uint32_t)c->hb_used;
        h->val_len = 0;
        c->in_value = true;
    }
    h->val_len += (uint32_t)n;
    return hb_append(c, at, n);
}

/* ---- responses ----------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static bool is_head(struct echo_conn *c)
{
    return llhttp_get_method(&c->parser) == HTTP_HEAD;
}

/* X-Echo-Set-Header: "Name1:val1,Name2:val2" -> response header lines (same names merged). */
static void add_set_headers(struct echo_conn *c, struct sv_echo_buf *out)
{
    struct echo_view v = hdr_get(c, "X-Echo-Set-Header");
    if (!v.p || v.n == 0)
        return;
    struct {
        const char *n, *val;
        size_t nl, vl;
    } items[32];
    size_t cnt = 0;
    const char *p = v.p, *end = v.p + v.n;
    while (p < end && cnt < SV_ARRAY_SIZE(items)) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *ie = comma ? comma : end;
        const char *colon = memchr(p, ':', (size_t)(ie - p));
        if (colon) {
            const char *ns = p, *ne = colon, *vs = colon + 1, *ve = ie;
            while (ns < ne && *ns == ' ')
                ns++;
            while (ne > ns && ne[-1] == ' ')
                ne--;
            while (vs < ve && *vs == ' ')
                vs++;
            while (ve > vs && ve[-1] == ' ')
                ve--;
            if (ne > ns) {
                items[cnt].n = ns, items[cnt].nl = (size_t)(ne - ns);
                items[cnt].val = vs, items[cnt].vl = (size_t)(ve - vs);
                cnt++;
            }
        }
        p = ie + 1;
    }
    for (size_t i = 0; i < cnt; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = items[j].nl == items[i].nl && strncasecmp(items[j].n, items[i].n, items[i].nl) == 0;
        if (seen)
            continue;
        sv_echo_buf_put(out, items[i].n, items[i].nl);
        sv_echo_buf_puts(out, ": ");
        sv_echo_buf_put(out, items[i].val, items[i].vl);
        for (size_t j = i + 1; j < cnt; j++) {
            if (items[j].nl == items[i].nl && strncasecmp(items[j].n, items[i].n, items[i].nl) == 0) {
                sv_echo_buf_puts(out, ",");
                sv_echo_buf_put(out, items[j].val, items[j].vl);
            }
        }
        sv_echo_buf_puts(out, "\r\n");
    }
}

/* Send a whole response with Content-Length. <body> is skipped for HEAD, 1xx, 204 and 304 (which
 * also get no Content-Length). Returns 0 or -1. */
static int respond(struct echo_conn *c, int status, const char *ctype, const char *body,
                   size_t blen, bool keep)
{
    struct sv_echo_buf *o = &c->out;
    o->len = 0;
    o->overflow = false;
    bool no_body = status == 204 || status == 304 || status < 200;
    sv_echo_buf_printf(o, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (ctype)
        sv_echo_buf_printf(o, "Content-Type: %s\r\n", ctype);
    if (!no_body)
        sv_echo_buf_printf(o, "Content-Length: %zu\r\n", blen);
    sv_echo_buf_puts(o, "X-Content-Type-Options: nosniff\r\n");
    add_set_headers(c, o);
    if (!keep)
        sv_echo_buf_puts(o, "Connection: close\r\n");
    sv_echo_buf_puts(o, "\r\n");
    if (!no_body && !is_head(c))
        sv_echo_buf_put(o, body, blen);
    if (o->overflow)
        return -1;
    return sv_echo_send_all(c->fd, o->p, o->len);
}

static __thread const char *sort_base; /* qsort has no context argument */

static int hdr_cmp(const void *a, const void *b)
{
    const struct echo_hdr *x = *(const struct echo_hdr *const *)a;
    const struct echo_hdr *y = *(const struct echo_hdr *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int r = memcmp(sort_base + x->name_off, sort_base + y->name_off, n);
    if (r)
        return r;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static void json_field(struct sv_echo_buf *j, const char *key, const char *v, size_t n, bool comma)
{
    sv_echo_buf_printf(j, "%s\"%s\":\"", comma ? "," : "", key);
    sv_echo_buf_json(j, v ? v : "", v ? n : 0);
    sv_echo_buf_puts(j, "\"");
}

/* The echo-basic JSON body for the current request into c->json. */
static void build_echo_json(struct echo_conn *c)
{
    struct sv_echo_buf *j = &c->json;
    j->len = 0;
    j->overflow = false;
    struct echo_view host = hdr_get(c, "Host");
    const char *method = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    char proto[16];
    snprintf(proto, sizeof(proto), "HTTP/%u.%u", llhttp_get_http_major(&c->parser),
             llhttp_get_http_minor(&c->parser));
    sv_echo_buf_puts(j, "{");
    json_field(j, "path", c->url, c->url_len, false);
    json_field(j, "host", host.p, host.n, true);
    json_field(j, "method", method, strlen(method), true);
    json_field(j, "proto", proto, strlen(proto), true);
    sv_echo_buf_puts(j, ",\"headers\":{");
    const struct echo_hdr *sorted[SV_ECHO_MAX_HDRS];
    unsigned ns = 0;
    for (unsigned i = 0; i < c->nhdrs; i++) {
        const struct echo_hdr *h = &c->hdrs[i];
        const char *nm = c->hb + h->name_off;
        if ((h->name_len == 4 && strncasecmp(nm, "Host", 4) == 0) ||
            (h->name_len == 17 && strncasecmp(nm, "Transfer-Encoding", 17) == 0))
            continue;
        sorted[ns++] = h;
    }
    sort_base = c->hb;
    qsort(sorted, ns, sizeof(sorted[0]), hdr_cmp);
    for (unsigned i = 0; i < ns; i++) {
        const struct echo_hdr *h = sorted[i];
        bool first_of_name = i == 0 || sorted[i - 1]->name_len != h->name_len ||
                             memcmp(c->hb + sorted[i - 1]->name_off, c->hb + h->name_off,
                                    h->name_len) != 0;
        if (first_of_name) {
            sv_echo_buf_puts(j, i ? "],\"" : "\"");
            sv_echo_buf_json(j, c->hb + h->name_off, h->name_len);
            sv_echo_buf_puts(j, "\":[\"");
        } else {
            sv_echo_buf_puts(j, ",\"");
        }
        sv_echo_buf_json(j, c->hb + h->val_off, h->val_len);
        sv_echo_buf_puts(j, "\"");
    }
    sv_echo_buf_puts(j, ns ? "]}" : "}");
    const struct sv_echo_ident *id = c->id;
    json_field(j, "namespace", id->ns, strlen(id->ns), true);
    json_field(j, "ingress", id->ingress, strlen(id->ingress), true);
    json_field(j, "service", id->service, strlen(id->service), true);
    json_field(j, "pod", id->pod, strlen(id->pod), true);
    json_field(j, "httpPort", id->port, strlen(id->port), true);
    sv_echo_buf_puts(j, "}");
}

static void log_request(struct echo_conn *c)
{
    if (sv_echo_quiet)
        return;
    char line[SV_ECHO_URL_MAX + 256];
    int n = snprintf(line, sizeof(line), "Echoing back request made to %.*s to client (%s)\n",
                     (int)c->url_len, c->url, c->peer);
    if (n > 0)
        (void)!write(STDOUT_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static int respond_echo(struct echo_conn *c, bool keep)
{
    build_echo_json(c);
    if (c->json.overflow)
        return respond(c, 431, "text/plain", "request too large to echo\n", 26, false);
    return respond(c, 200, "application/json", c->json.p, c->json.len, keep);
}

static int respond_text(struct echo_conn *c, int status, const char *text, bool keep)
{
    return respond(c, status, "text/plain; charset=utf-8", text, strlen(text), keep);
}

/* ---- endpoint handlers --------------------------------------------------------------------- */

static void pattern_fill(char *dst, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)('a' + (off + i) % 26);
}

/* /bytes/N[?chunked=1]: N bytes of the pattern 'a'+(i%26). */
static int handle_bytes(struct echo_conn *c, bool keep)
{
    uint64_t n;
    char tmp[32];
    const char *q = memchr(c->url, '?', c->url_len);
    size_t pl = q ? (size_t)(q - c->url) : c->url_len;
    size_t dl = pl - 7;
    if (dl == 0 || dl >= sizeof(tmp))
        return respond_text(c, 400, "bad length\n", keep);
    memcpy(tmp, c->url + 7, dl);
    tmp[dl] = '\0';
    if (!parse_u64(tmp, 1ull << 32, &n))
        return respond_text(c, 400, "bad length\n", keep);
    bool chunked = query_get(c->url, c->url_len, "chunked", tmp, sizeof(tmp)) &&
                   strcmp(tmp, "0") != 0;
    struct sv_echo_buf *o = &c->out;
    o->len = 0;
    sv_echo_buf_puts(o, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n");
    if (chunked)
        sv_echo_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    else
        sv_echo_buf_printf(o, "Content-Length: %" PRIu64 "\r\n", n);
    sv_echo_buf_puts(o, keep ? "\r\n" : "Connection: close\r\n\r\n");
    if (sv_echo_send_all(c->fd, o->p, o->len) != 0)
        return -1;
    if (is_head(c))
        return 0;
    char *blk = c->hb; /* headers no longer needed */
    size_t bsz = 16384;
    for (uint64_t off = 0; off < n;) {
        size_t k = (size_t)(n - off < bsz ? n - off : bsz);
        pattern_fill(blk, off, k);
        if (chunked) {
            char h[24];
            int hl = snprintf(h, sizeof(h), "%zx\r\n", k);
            if (sv_echo_send_all(c->fd, h, (size_t)hl) != 0)
                return -1;
        }
        if (sv_echo_send_all(c->fd, blk, k) != 0 || (chunked && sv_echo_send_all(c->fd, "\r\n", 2)))
            return -1;
        off += k;
    }
    return chunked ? sv_echo_send_all(c->fd, "0\r\n\r\n", 5) : 0;
}

/* /slow?rate=B&n=N: N pattern bytes at about B bytes/s, in ten pieces per second. */
static int handle_slow(struct echo_conn *c, bool keep)
{
    char tmp[32];
    uint64_t rate = 1000, n = 10000;
    if (query_get(c->url, c->url_len, "rate", tmp, sizeof(tmp)) && !parse_u64(tmp, 1ull << 30, &rate))
        return respond_text(c, 400, "bad rate\n", keep);
    if (query_get(c->url, c->url_len, "n", tmp, sizeof(tmp)) && !parse_u64(tmp, 64ull << 20, &n))
        return respond_text(c, 400, "bad n\n", keep);
    if (rate == 0)
        rate = 1;
    struct sv_echo_buf *o = &c->out;
    o->len = 0;
    sv_echo_buf_printf(o, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: %" PRIu64 "\r\n%s\r\n",
                       n, keep ? "" : "Connection: close\r\n");
    if (sv_echo_send_all(c->fd, o->p, o->len) != 0)
        return -1;
    if (is_head(c))
        return 0;
    uint64_t piece = rate / 10 ? rate / 10 : 1;
    if (piece > 16384)
        piece = 16384;
    int64_t tick = (int64_t)(1000000000ull * piece / rate);
    for (uint64_t off = 0; off < n;) {
        size_t k = (size_t)(n - off < piece ? n - off : piece);
        pattern_fill(c->hb, off, k);
        if (sv_echo_send_all(c->fd, c->hb, k) != 0)
            return -1;
        off += k;
        if (off < n)
            sleep_ns(tick);
    }
    return 0;
}

static int handle_retry(struct echo_conn *c, bool keep)
{
    char uuid[96], tmp[64];
    uint64_t after = 0, code = 0;
    int64_t delay = 0;
    if (!query_get(c->url, c->url_len, "uuid", uuid, sizeof(uuid)) || !uuid[0])
        return respond_text(c, 400, "missing uuid\n", keep);
    if (query_get(c->url, c->url_len, "succeedAfter", tmp, sizeof(tmp)) &&
        !parse_u64(tmp, 1000000, &after))
        return respond_text(c, 400, "bad succeedAfter\n", keep);
    bool with_code = query_get(c->url, c->url_len, "responseCode", tmp, sizeof(tmp));
    if (with_code && (!parse_u64(tmp, 599, &code) || code < 200))
        return respond_text(c, 400, "bad responseCode\n", keep);
    if (query_get(c->url, c->url_len, "delayRetry", tmp, sizeof(tmp)) &&
        (delay = parse_duration_ns(tmp)) < 0)
        return respond_text(c, 400, "bad delayRetry\n", keep);
    if (retry_hit(uuid) > after)
        return respond_echo(c, keep);
    sleep_ns(delay);
    if (!with_code) {
        c->action = ACT_RESET;
        return 0;
    }
    return respond_text(c, (int)code, "", keep);
}

static int handle_ws(struct echo_conn *c, bool keep)
{
    struct echo_view up = hdr_get(c, "Upgrade");
    struct echo_view key = hdr_get(c, "Sec-WebSocket-Key");
    char accept[64];
    if (!view_has_token(up, "websocket") || !key.p ||
        sv_echo_ws_accept_key(key.p, key.n, accept, sizeof(accept)) != 0)
        return respond_text(c, 400, "expected a WebSocket upgrade\n", keep);
    struct sv_echo_buf *o = &c->out;
    o->len = 0;
    sv_echo_buf_printf(o, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                       accept);
    if (sv_echo_send_all(c->fd, o->p, o->len) != 0)
        return -1;
    c->action = ACT_WS;
    return 0;
}

static int handle_stats(struct echo_conn *c, bool keep)
{
    char body[160];
    snprintf(body, sizeof(body), "{\"connections\":%" PRIu64 ",\"requests\":%" PRIu64
                                 ",\"live\":%u}",
             (uint64_t)sv_echo_connections, (uint64_t)sv_echo_requests, (unsigned)sv_echo_live);
    return respond(c, 200, "application/json", body, strlen(body), keep);
}

static int handle_status(struct echo_conn *c, bool keep)
{
    char tmp[8];
    const char *q = memchr(c->url, '?', c->url_len);
    size_t pl = (q ? (size_t)(q - c->url) : c->url_len) - 8;
    uint64_t code;
    if (pl == 0 || pl >= sizeof(tmp))
        return respond_text(c, 400, "bad status\n", keep);
    memcpy(tmp, c->url + 8, pl);
    tmp[pl] = '\0';
    if (!parse_u64(tmp, 599, &code) || code < 200)
        return respond_text(c, 400, "bad status\n", keep);
    return respond(c, (int)code, "text/plain; charset=utf-8", "", 0, keep);
}

/* Echo JSON after an optional ?delay=. */
static int handle_echo(struct echo_conn *c, bool keep)
{
    char tmp[64];
    if (query_get(c->url, c->url_len, "delay", tmp, sizeof(tmp))) {
        int64_t d = parse_duration_ns(tmp);
        if (d < 0)
            return respond_text(c, 400, "invalid delay\n", keep);
        sleep_ns(d);
    }
    return respond_echo(c, keep);
}

static int dispatch(struct echo_conn *c, bool keep)
{
    switch (c->kind) {
    case K_ECHO: return handle_echo(c, keep);
    case K_HEALTH: return respond_text(c, 200, "OK", keep);
    case K_STATUS: return handle_status(c, keep);
    case K_RETRY: return handle_retry(c, keep);
    case K_WS: return handle_ws(c, keep);
    case K_BYTES: return handle_bytes(c, keep);
    case K_SLOW: return handle_slow(c, keep);
    case K_STATS: return handle_stats(c, keep);
    case K_RESET: c->action = ACT_RESET; return 0;
    case K_CLOSE: c->action = ACT_CLOSE; return respond_echo(c, false);
    case K_ECHO_BODY: /* head and body went out already; finish the chunked body */
        return c->chunked_out ? sv_echo_send_all(c->fd, "0\r\n\r\n", 5) : 0;
    }
    return -1;
}

static int on_headers_complete(llhttp_t *p)
{
    struct echo_conn *c = conn_of(p);
    for (unsigned i = 0; i < c->nhdrs; i++) {
        struct echo_hdr *h = &c->hdrs[i];
        while (h->val_len > 0 && (c->hb[h->val_off + h->val_len - 1] == ' ' ||
                                  c->hb[h->val_off + h->val_len - 1] == '\t'))
            h->val_len--;
        canonicalize(c->hb + h->name_off, h->name_len);
    }
    c->kind = classify(c->url, c->url_len);
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    struct echo_view ex = hdr_get(c, "Expect");
    if (has_body && ex.p && ex.n == 12 && strncasecmp(ex.p, "100-continue", 12) == 0 &&
        sv_echo_send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
        c->io_failed = true;
        return -1;
    }
    if (c->kind == K_ECHO_BODY) {
        struct sv_echo_buf *o = &c->out;
        o->len = 0;
        c->chunked_out = (p->flags & F_CHUNKED) != 0;
        sv_echo_buf_puts(o, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n");
        if (c->chunked_out)
            sv_echo_buf_puts(o, "Transfer-Encoding: chunked\r\n");
        else
            sv_echo_buf_printf(o, "Content-Length: %" PRIu64 "\r\n",
                               has_body ? (uint64_t)p->content_length : 0);
        sv_echo_buf_puts(o, llhttp_should_keep_alive(p) ? "\r\n" : "Connection: close\r\n\r\n");
        if (sv_echo_send_all(c->fd, o->p, o->len) != 0) {
            c->io_failed = true;
            return -1;
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct echo_conn *c = conn_of(p);
    if (c->kind != K_ECHO_BODY || is_head(c))
        return 0;
    int rc;
    if (c->chunked_out) {
        char h[24];
        int hl = snprintf(h, sizeof(h), "%zx\r\n", n);
        struct iovec iov[3] = {{h, (size_t)hl}, {(void *)at, n}, {"\r\n", 2}};
        size_t total = (size_t)hl + n + 2;
        ssize_t w = 0;
        do {
            w = writev(c->fd, iov, 3);
        } while (w < 0 && errno == EINTR);
        if (w == (ssize_t)total) {
            rc = 0;
        } else if (w < 0) {
            rc = -1;
        } else { /* short write: finish piece by piece */
            rc = 0;
            size_t done = (size_t)w;
            for (int i = 0; i < 3 && rc == 0; i++) {
                if (done >= iov[i].iov_len) {
                    done -= iov[i].iov_len;
                    continue;
                }
                rc = sv_echo_send_all(c->fd, (char *)iov[i].iov_base + done, iov[i].iov_len - done);
                done = 0;
            }
        }
    } else {
        rc = sv_echo_send_all(c->fd, at, n);
    }
    if (rc != 0) {
        c->io_failed = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct echo_conn *c = conn_of(p);
    bool keep = llhttp_should_keep_alive(p) != 0;
    if (c->kind != K_STATS) {
        sv_echo_requests++;
        log_request(c);
    }
    if (dispatch(c, keep) != 0) {
        c->io_failed = true;
        return HPE_PAUSED;
    }
    if (c->action == ACT_KEEP && !keep)
        c->action = ACT_CLOSE;
    return c->action == ACT_KEEP ? 0 : HPE_PAUSED;
}

static llhttp_settings_t echo_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connection loop ----------------------------------------------------------------------- */

/* Close after a final response: stop sending, drain what the client still sends (bounded), so
 * the kernel does not turn unread input into a reset that destroys the response. */
static void graceful_close(int fd)
{
    char sink[4096];
    shutdown(fd, SHUT_WR);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 256; i++)
        if (recv(fd, sink, sizeof(sink), 0) <= 0)
            break;
    close(fd);
}

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Feed one received block to the parser. Returns 1 to keep reading, 0 when the connection is
 * finished (and closed). */
static int feed(struct echo_conn *c, const char *data, size_t n)
{
    const char *p = data;
    size_t left = n;
    for (int guard = 0; left > 0 && guard < 100000; guard++) {
        llhttp_errno_t err = llhttp_execute(&c->parser, p, left);
        if (err == HPE_OK)
            return 1;
        if (c->io_failed) {
            close(c->fd);
            return 0;
        }
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            if (!pos || pos < p || pos > p + left)
                pos = p + left;
            switch (c->action) {
            case ACT_WS:
                sv_echo_ws_run(c->fd, pos, (size_t)(p + left - pos), c->hb, sizeof(c->hb));
                graceful_close(c->fd);
                return 0;
            case ACT_RESET: reset_close(c->fd); return 0;
            case ACT_CLOSE: graceful_close(c->fd); return 0;
            case ACT_KEEP: break;
            }
            if (err == HPE_PAUSED_UPGRADE)
                llhttp_resume_after_upgrade(&c->parser);
            else
                llhttp_resume(&c->parser);
            left -= (size_t)(pos - p);
            p = pos;
            continue;
        }
        int status = c->error_status ? c->error_status : 400;
        (void)respond_text(c, status, status == 400 ? "bad request\n" : "too large\n", false);
        graceful_close(c->fd);
        return 0;
    }
    return 1;
}

void sv_echo_serve(int fd, const struct sv_echo_ident *id, const char *peer)
{
    struct echo_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->id = id;
    c->peer = peer;
    llhttp_init(&c->parser, HTTP_REQUEST, &echo_settings);
    c->parser.data = c;
    struct timeval rt = {sv_echo_idle_ms / 1000, (sv_echo_idle_ms % 1000) * 1000};
    struct timeval st = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st));
    for (;;) { /* bounded by the idle timeout and the peer */
        ssize_t n = recv(fd, c->rbuf, sizeof(c->rbuf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            break;
        }
        if (!feed(c, c->rbuf, (size_t)n))
            break;
    }
    sv_echo_buf_free(&c->out);
    sv_echo_buf_free(&c->json);
    free(c);
}

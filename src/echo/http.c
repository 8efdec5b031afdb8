/* serval-echo: request parsing (llhttp callbacks) and the endpoints. Everything here appends to
 * the connection's output queue and never does I/O: loop.c flushes the queue, feeds the parser
 * only while the queue is below the high-water mark, and calls sv_echo_http_continue() when a
 * timer fires or the queue drains. on_message_complete always pauses the parser, so pipelined
 * requests are answered strictly in order, one response at a time. /echo-body is streamed: its
 * response head is queued when the request head is complete and each body piece as it is parsed. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "echo/echo_int.h"
#include "serval/base/compiler.h"

_Atomic uint64_t sv_echo_connections;
_Atomic uint64_t sv_echo_requests;
_Atomic uint32_t sv_echo_live;
bool sv_echo_quiet;
int sv_echo_idle_ms = 60000;
unsigned sv_echo_max_conns = 4096;

/* ---- request state ------------------------------------------------------------------------- */

struct echo_view {
    const char *p;
    size_t n;
};

static struct echo_view hdr_get(const struct sv_echo_conn *c, const char *name)
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

static enum sv_echo_kind classify(const char *url, size_t len)
{
    const char *q = memchr(url, '?', len);
    size_t pl = q ? (size_t)(q - url) : len;
#define IS(lit) (pl == sizeof(lit) - 1 && memcmp(url, lit, pl) == 0)
#define PREFIX(lit) (pl >= sizeof(lit) - 1 && memcmp(url, lit, sizeof(lit) - 1) == 0)
    if (IS("/health"))
        return SV_ECHO_K_HEALTH;
    if (PREFIX("/status/"))
        return SV_ECHO_K_STATUS;
    if (IS("/retry") || PREFIX("/retry/"))
        return SV_ECHO_K_RETRY;
    if (IS("/ws"))
        return SV_ECHO_K_WS;
    if (IS("/echo-body"))
        return SV_ECHO_K_ECHO_BODY;
    if (PREFIX("/bytes/"))
        return SV_ECHO_K_BYTES;
    if (IS("/slow"))
        return SV_ECHO_K_SLOW;
    if (IS("/reset"))
        return SV_ECHO_K_RESET;
    if (IS("/close"))
        return SV_ECHO_K_CLOSE;
    if (IS("/stats"))
        return SV_ECHO_K_STATS;
#undef IS
#undef PREFIX
    return SV_ECHO_K_ECHO;
}

static struct sv_echo_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static bool is_head(struct sv_echo_conn *c)
{
    return llhttp_get_method(&c->parser) == HTTP_HEAD;
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

struct set_item {
    const char *n, *v;
    size_t nl, vl;
};

static size_t parse_set_items(struct echo_view v, struct set_item *items, size_t max)
{
    size_t cnt = 0;
    const char *p = v.p, *end = v.p + v.n;
    while (p < end && cnt < max) {
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
            if (ne > ns)
                items[cnt++] = (struct set_item){ns, vs, (size_t)(ne - ns), (size_t)(ve - vs)};
        }
        p = ie + 1;
    }
    return cnt;
}

static bool same_name(const struct set_item *a, const struct set_item *b)
{
    return a->nl == b->nl && strncasecmp(a->n, b->n, a->nl) == 0;
}

/* X-Echo-Set-Header: "Name1:val1,Name2:val2" -> response header lines (same names merged). */
static void add_set_headers(struct sv_echo_conn *c, struct sv_echo_buf *out)
{
    struct echo_view v = hdr_get(c, "X-Echo-Set-Header");
    if (!v.p || v.n == 0)
        return;
    struct set_item items[32];
    size_t cnt = parse_set_items(v, items, SV_ARRAY_SIZE(items));
    for (size_t i = 0; i < cnt; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = same_name(&items[j], &items[i]);
        if (seen)
            continue;
        sv_echo_buf_put(out, items[i].n, items[i].nl);
        sv_echo_buf_puts(out, ": ");
        sv_echo_buf_put(out, items[i].v, items[i].vl);
        for (size_t j = i + 1; j < cnt; j++) {
            if (same_name(&items[j], &items[i])) {
                sv_echo_buf_puts(out, ",");
                sv_echo_buf_put(out, items[j].v, items[j].vl);
            }
        }
        sv_echo_buf_puts(out, "\r\n");
    }
}

/* Queue a whole response with Content-Length. <body> is skipped for HEAD, 1xx, 204 and 304
 * (which also get no Content-Length). */
static void respond(struct sv_echo_conn *c, int status, const char *ctype, const char *body,
                    size_t blen)
{
    struct sv_echo_buf *o = &c->out;
    bool no_body = status == 204 || status == 304 || status < 200;
    sv_echo_buf_printf(o, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (ctype)
        sv_echo_buf_printf(o, "Content-Type: %s\r\n", ctype);
    if (!no_body)
        sv_echo_buf_printf(o, "Content-Length: %zu\r\n", blen);
    sv_echo_buf_puts(o, "X-Content-Type-Options: nosniff\r\n");
    add_set_headers(c, o);
    if (!c->keep)
        sv_echo_buf_puts(o, "Connection: close\r\n");
    sv_echo_buf_puts(o, "\r\n");
    if (!no_body && !is_head(c))
        sv_echo_buf_put(o, body, blen);
}

static void respond_text(struct sv_echo_conn *c, int status, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static __thread const char *sort_base; /* qsort has no context argument */

static int hdr_cmp(const void *a, const void *b)
{
    const struct echo_hdr *x = *(const struct echo_hdr *const *)a;
    const struct echo_hdr *y = *(const struct echo_hdr *const *)b;
    size_t n = SV_MIN(x->name_len, y->name_len);
    int r = memcmp(sort_base + x->name_off, sort_base + y->name_off, n);
    if (r)
        return r;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x < y ? -1 : (x > y); /* stable: wire order among equal names */
}

static void json_field(struct sv_echo_buf *j, const char *key, const char *v, size_t n, bool comma)
{
    sv_echo_buf_printf(j, "%s\"%s\":\"", comma ? "," : "", key);
    sv_echo_buf_json(j, v ? v : "", v ? n : 0);
    sv_echo_buf_puts(j, "\"");
}

static void json_headers(struct sv_echo_conn *c, struct sv_echo_buf *j)
{
    const struct echo_hdr *sorted[SV_ECHO_MAX_HDRS];
    unsigned ns = 0;
    for (unsigned i = 0; i < c->nhdrs; i++) {
        const struct echo_hdr *h = &c->hdrs[i];
        const char *nm = c->hb + h->name_off;
        /* Go's server keeps Host and Transfer-Encoding out of Request.Header */
        if ((h->name_len == 4 && strncasecmp(nm, "Host", 4) == 0) ||
            (h->name_len == 17 && strncasecmp(nm, "Transfer-Encoding", 17) == 0))
            continue;
        sorted[ns++] = h;
    }
    sort_base = c->hb;
    qsort(sorted, ns, sizeof(sorted[0]), hdr_cmp);
    sv_echo_buf_puts(j, ",\"headers\":{");
    for (unsigned i = 0; i < ns; i++) {
        const struct echo_hdr *h = sorted[i];
        bool first = i == 0 || sorted[i - 1]->name_len != h->name_len ||
                     memcmp(c->hb + sorted[i - 1]->name_off, c->hb + h->name_off, h->name_len);
        if (first) {
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
}

/* The echo-basic JSON body for the current request into c->json. */
static void build_echo_json(struct sv_echo_conn *c)
{
    struct sv_echo_buf *j = &c->json;
    j->len = 0;
    j->overflow = false;
    struct echo_view host = hdr_get(c, "Host");
    const char *method = c->h2_method
                             ? c->h2_method
                             : llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    char proto[16];
    if (c->h2_method)
        snprintf(proto, sizeof(proto), "HTTP/2.0");
    else
        snprintf(proto, sizeof(proto), "HTTP/%u.%u", llhttp_get_http_major(&c->parser),
                 llhttp_get_http_minor(&c->parser));
    sv_echo_buf_puts(j, "{");
    json_field(j, "path", c->url, c->url_len, false);
    json_field(j, "host", host.p, host.n, true);
    json_field(j, "method", method, strlen(method), true);
    json_field(j, "proto", proto, strlen(proto), true);
    json_headers(c, j);
    const struct sv_echo_ident *id = c->id;
    json_field(j, "namespace", id->ns, strlen(id->ns), true);
    json_field(j, "ingress", id->ingress, strlen(id->ingress), true);
    json_field(j, "service", id->service, strlen(id->service), true);
    json_field(j, "pod", id->pod, strlen(id->pod), true);
    json_field(j, "httpPort", id->port, strlen(id->port), true);
    sv_echo_tls_json(c, j);
    sv_echo_buf_puts(j, "}");
}

void sv_echo_http_json(struct sv_echo_conn *c)
{
    build_echo_json(c);
}

enum sv_echo_kind sv_echo_http_classify(const char *url, size_t len)
{
    return classify(url, len);
}

void sv_echo_http_canonicalize(char *name, size_t n)
{
    canonicalize(name, n);
}

static void respond_echo(struct sv_echo_conn *c)
{
    build_echo_json(c);
    if (c->json.overflow) {
        c->keep = false;
        respond_text(c, 431, "request too large to echo\n");
        return;
    }
    respond(c, 200, "application/json", c->json.p, c->json.len);
    if (c->json.cap > (256u << 10))
        sv_echo_buf_free(&c->json);
}

static void log_request(struct sv_echo_conn *c)
{
    if (sv_echo_quiet)
        return;
    char line[SV_ECHO_URL_MAX + 256];
    int n = snprintf(line, sizeof(line), "Echoing back request made to %.*s to client (%s)\n",
                     (int)c->url_len, c->url, c->peer);
    if (n > 0)
        (void)!write(STDOUT_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ---- endpoints ------------------------------------------------------------------------------ */

#define PATTERN_BLOCK 16384

static char pattern[PATTERN_BLOCK + 26]; /* 'a'+(i%26), filled once */
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;

static void pattern_init(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char)('a' + i % 26);
}

/* Append <n> (<= PATTERN_BLOCK) pattern bytes starting at stream offset <off>. */
static void pattern_put(struct sv_echo_buf *out, uint64_t off, size_t n)
{
    pthread_once(&pattern_once, pattern_init);
    sv_echo_buf_put(out, pattern + off % 26, n);
}

void sv_echo_pattern_put(struct sv_echo_buf *out, uint64_t off, size_t n)
{
    pattern_put(out, off, n);
}

/* The digits after <prefix_len> bytes of the path, as a number <= max. */
static bool path_number(struct sv_echo_conn *c, size_t prefix_len, uint64_t max, uint64_t *out)
{
    char tmp[24];
    const char *q = memchr(c->url, '?', c->url_len);
    size_t pl = q ? (size_t)(q - c->url) : c->url_len;
    if (pl <= prefix_len || pl - prefix_len >= sizeof(tmp))
        return false;
    memcpy(tmp, c->url + prefix_len, pl - prefix_len);
    tmp[pl - prefix_len] = '\0';
    return sv_echo_parse_u64(tmp, max, out);
}

static void stream_head(struct sv_echo_conn *c, bool chunked, uint64_t len)
{
    struct sv_echo_buf *o = &c->out;
    sv_echo_buf_puts(o, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n");
    if (chunked)
        sv_echo_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    else
        sv_echo_buf_printf(o, "Content-Length: %" PRIu64 "\r\n", len);
    sv_echo_buf_puts(o, c->keep ? "\r\n" : "Connection: close\r\n\r\n");
}

/* /bytes/N[?chunked=1]: N bytes of the pattern 'a'+(i%26), generated as the socket drains. */
static void start_bytes(struct sv_echo_conn *c)
{
    char tmp[16];
    uint64_t n;
    if (!path_number(c, 7, 1ull << 40, &n)) {
        respond_text(c, 400, "bad length\n");
        return;
    }
    c->gen_chunked = sv_echo_query_get(c->url, c->url_len, "chunked", tmp, sizeof(tmp)) &&
                     strcmp(tmp, "0") != 0;
    stream_head(c, c->gen_chunked, n);
    if (is_head(c))
        return;
    c->gen_total = n;
    c->gen_sent = 0;
    c->pending = SV_ECHO_P_BYTES;
}

/* /slow?rate=B&n=N: N pattern bytes at about B bytes/s, ten pieces per second. */
static void start_slow(struct sv_echo_conn *c, uint64_t now)
{
    char tmp[32];
    uint64_t rate = 1000, n = 10000;
    if (sv_echo_query_get(c->url, c->url_len, "rate", tmp, sizeof(tmp)) &&
        !sv_echo_parse_u64(tmp, 1ull << 30, &rate)) {
        respond_text(c, 400, "bad rate\n");
        return;
    }
    if (sv_echo_query_get(c->url, c->url_len, "n", tmp, sizeof(tmp)) &&
        !sv_echo_parse_u64(tmp, 64ull << 20, &n)) {
        respond_text(c, 400, "bad n\n");
        return;
    }
    rate = rate ? rate : 1;
    stream_head(c, false, n);
    if (is_head(c) || n == 0)
        return;
    c->gen_piece = SV_MIN(SV_MAX(rate / 10, 1), 16384);
    c->gen_tick_ns = 1000000000ull * c->gen_piece / rate;
    c->gen_total = n;
    c->gen_sent = 0;
    c->gen_chunked = false;
    c->pending = SV_ECHO_P_SLOW;
    c->timer_at_ns = now; /* first piece at once */
}

static void start_retry(struct sv_echo_conn *c, uint64_t now)
{
    char uuid[96], tmp[64];
    uint64_t after = 0, code = 0;
    int64_t delay = 0;
    if (!sv_echo_query_get(c->url, c->url_len, "uuid", uuid, sizeof(uuid)) || !uuid[0]) {
        respond_text(c, 400, "missing uuid\n");
        return;
    }
    if (sv_echo_query_get(c->url, c->url_len, "succeedAfter", tmp, sizeof(tmp)) &&
        !sv_echo_parse_u64(tmp, 1000000, &after)) {
        respond_text(c, 400, "bad succeedAfter\n");
        return;
    }
    bool with_code = sv_echo_query_get(c->url, c->url_len, "responseCode", tmp, sizeof(tmp));
    if (with_code && (!sv_echo_parse_u64(tmp, 599, &code) || code < 200)) {
        respond_text(c, 400, "bad responseCode\n");
        return;
    }
    if (sv_echo_query_get(c->url, c->url_len, "delayRetry", tmp, sizeof(tmp)) &&
        (delay = sv_echo_parse_duration_ns(tmp)) < 0) {
        respond_text(c, 400, "bad delayRetry\n");
        return;
    }
    if (sv_echo_retry_hit(uuid) > after) {
        respond_echo(c);
        return;
    }
    c->retry_code = with_code ? (int)code : 0;
    c->pending = SV_ECHO_P_DELAY_RETRY;
    c->timer_at_ns = now + (uint64_t)delay;
}

static void finish_retry(struct sv_echo_conn *c)
{
    if (c->retry_code)
        respond_text(c, c->retry_code, "");
    else
        c->after = SV_ECHO_RESET;
}

static void start_ws(struct sv_echo_conn *c)
{
    struct echo_view up = hdr_get(c, "Upgrade");
    struct echo_view key = hdr_get(c, "Sec-WebSocket-Key");
    char accept[64];
    if (!view_has_token(up, "websocket") || !key.p ||
        sv_echo_ws_accept_key(key.p, key.n, accept, sizeof(accept)) != 0) {
        respond_text(c, 400, "expected a WebSocket upgrade\n");
        return;
    }
    sv_echo_buf_printf(&c->out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                       accept);
    memset(&c->ws, 0, sizeof(c->ws));
    c->after = SV_ECHO_UPGRADE_WS;
}

static void respond_stats(struct sv_echo_conn *c)
{
    char body[160];
    snprintf(body, sizeof(body),
             "{\"connections\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"live\":%u}",
             (uint64_t)sv_echo_connections, (uint64_t)sv_echo_requests, (unsigned)sv_echo_live);
    respond(c, 200, "application/json", body, strlen(body));
}

static void respond_status(struct sv_echo_conn *c)
{
    uint64_t code;
    if (!path_number(c, 8, 599, &code) || code < 200)
        respond_text(c, 400, "bad status\n");
    else
        respond(c, (int)code, "text/plain; charset=utf-8", "", 0);
}

bool sv_echo_http_path_number(struct sv_echo_conn *c, size_t prefix_len, uint64_t max,
                              uint64_t *out)
{
    return path_number(c, prefix_len, max, out);
}

static void start_echo(struct sv_echo_conn *c, uint64_t now)
{
    char tmp[64];
    if (sv_echo_query_get(c->url, c->url_len, "delay", tmp, sizeof(tmp))) {
        int64_t d = sv_echo_parse_duration_ns(tmp);
        if (d < 0) {
            respond_text(c, 400, "invalid delay\n");
            return;
        }
        if (d > 0) {
            c->pending = SV_ECHO_P_DELAY_ECHO;
            c->timer_at_ns = now + (uint64_t)d;
            return;
        }
    }
    respond_echo(c);
}

static void begin_response(struct sv_echo_conn *c)
{
    uint64_t now = sv_echo_now_ns();
    if (c->h2c_port) { /* like the conformance echo's h2c port: HTTP/2 only */
        respond_text(c, 400, "Expected h2c request");
        return;
    }
    switch (c->kind) {
    case SV_ECHO_K_ECHO: start_echo(c, now); break;
    case SV_ECHO_K_HEALTH: respond_text(c, 200, "OK"); break;
    case SV_ECHO_K_STATUS: respond_status(c); break;
    case SV_ECHO_K_RETRY: start_retry(c, now); break;
    case SV_ECHO_K_WS: start_ws(c); break;
    case SV_ECHO_K_BYTES: start_bytes(c); break;
    case SV_ECHO_K_SLOW: start_slow(c, now); break;
    case SV_ECHO_K_STATS: respond_stats(c); break;
    case SV_ECHO_K_RESET: c->after = SV_ECHO_RESET; break;
    case SV_ECHO_K_CLOSE:
        c->keep = false;
        c->after = SV_ECHO_CLOSE;
        respond_echo(c);
        break;
    case SV_ECHO_K_ECHO_BODY: /* head and body are queued already; end the chunked body */
        if (c->chunked_out)
            sv_echo_buf_puts(&c->out, "0\r\n\r\n");
        break;
    }
}

int sv_echo_http_continue(struct sv_echo_conn *c, uint64_t now)
{
    switch (c->pending) {
    case SV_ECHO_P_NONE: break;
    case SV_ECHO_P_DELAY_ECHO:
    case SV_ECHO_P_DELAY_RETRY:
        if (now < c->timer_at_ns)
            break;
        c->timer_at_ns = 0;
        if (c->pending == SV_ECHO_P_DELAY_ECHO)
            respond_echo(c);
        else
            finish_retry(c);
        c->pending = SV_ECHO_P_NONE;
        break;
    case SV_ECHO_P_BYTES:
        for (int guard = 0; guard < 64 && c->gen_sent < c->gen_total &&
                            c->out.len - c->out_off < SV_ECHO_HIGH_WATER; guard++) {
            size_t k = (size_t)SV_MIN(c->gen_total - c->gen_sent, PATTERN_BLOCK);
            if (c->gen_chunked)
                sv_echo_buf_printf(&c->out, "%zx\r\n", k);
            pattern_put(&c->out, c->gen_sent, k);
            if (c->gen_chunked)
                sv_echo_buf_puts(&c->out, "\r\n");
            c->gen_sent += k;
        }
        if (c->gen_sent == c->gen_total) {
            if (c->gen_chunked)
                sv_echo_buf_puts(&c->out, "0\r\n\r\n");
            c->pending = SV_ECHO_P_NONE;
        }
        break;
    case SV_ECHO_P_SLOW:
        if (now < c->timer_at_ns)
            break;
        {
            size_t k = (size_t)SV_MIN(c->gen_total - c->gen_sent, c->gen_piece);
            pattern_put(&c->out, c->gen_sent, k);
            c->gen_sent += k;
        }
        c->timer_at_ns = now + c->gen_tick_ns;
        if (c->gen_sent == c->gen_total) {
            c->timer_at_ns = 0;
            c->pending = SV_ECHO_P_NONE;
        }
        break;
    }
    return c->out.overflow ? -1 : 0;
}

void sv_echo_http_reject(struct sv_echo_conn *c)
{
    int status = c->error_status ? c->error_status : 400;
    c->keep = false;
    c->nhdrs = 0; /* no X-Echo-Set-Header on errors */
    respond_text(c, status, status == 400 ? "bad request\n" : "too large\n");
    c->closing = true;
}

/* ---- llhttp callbacks ------------------------------------------------------------------------ */

static int on_message_begin(llhttp_t *p)
{
    struct sv_echo_conn *c = conn_of(p);
    c->url_len = 0;
    c->hb_used = 0;
    c->nhdrs = 0;
    c->in_value = false;
    c->error_status = 0;
    c->kind = SV_ECHO_K_ECHO;
    c->after = SV_ECHO_KEEP;
    c->chunked_out = false;
    c->pending = SV_ECHO_P_NONE;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct sv_echo_conn *c = conn_of(p);
    if (c->url_len + n > sizeof(c->url)) {
        c->error_status = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int hb_append(struct sv_echo_conn *c, const char *at, size_t n)
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
    struct sv_echo_conn *c = conn_of(p);
    if (c->in_value || c->nhdrs == 0) {
        if (c->nhdrs == SV_ECHO_MAX_HDRS) {
            c->error_status = 431;
            return -1;
        }
        struct echo_hdr *h = &c->hdrs[c->nhdrs++];
        h->name_off = h->val_off = (uint32_t)c->hb_used;
        h->name_len = h->val_len = 0;
        c->in_value = false;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
    return hb_append(c, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct sv_echo_conn *c = conn_of(p);
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

static int on_headers_complete(llhttp_t *p)
{
    struct sv_echo_conn *c = conn_of(p);
    for (unsigned i = 0; i < c->nhdrs; i++) {
        struct echo_hdr *h = &c->hdrs[i];
        while (h->val_len > 0 && (c->hb[h->val_off + h->val_len - 1] == ' ' ||
                                  c->hb[h->val_off + h->val_len - 1] == '\t'))
            h->val_len--;
        canonicalize(c->hb + h->name_off, h->name_len);
    }
    c->kind = classify(c->url, c->url_len);
    c->keep = llhttp_should_keep_alive(p) != 0;
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    struct echo_view ex = hdr_get(c, "Expect");
    if (has_body && ex.p && ex.n == 12 && strncasecmp(ex.p, "100-continue", 12) == 0)
        sv_echo_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (c->kind == SV_ECHO_K_ECHO_BODY) {
        c->chunked_out = (p->flags & F_CHUNKED) != 0;
        stream_head(c, c->chunked_out, has_body ? (uint64_t)p->content_length : 0);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct sv_echo_conn *c = conn_of(p);
    if (c->kind != SV_ECHO_K_ECHO_BODY || n == 0)
        return 0;
    if (c->chunked_out)
        sv_echo_buf_printf(&c->out, "%zx\r\n", n);
    sv_echo_buf_put(&c->out, at, n);
    if (c->chunked_out)
        sv_echo_buf_puts(&c->out, "\r\n");
    return c->out.overflow ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct sv_echo_conn *c = conn_of(p);
    c->keep = llhttp_should_keep_alive(p) != 0;
    if (c->kind != SV_ECHO_K_STATS) {
        sv_echo_requests++;
        log_request(c);
    }
    if (!c->keep)
        c->after = SV_ECHO_CLOSE;
    begin_response(c);
    c->message_done = true;
    return HPE_PAUSED; /* one response at a time: loop.c resumes when this one is produced */
}

const llhttp_settings_t sv_echo_http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

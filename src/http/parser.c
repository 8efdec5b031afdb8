/* HTTP/1.1 head parser and body framer.
 *
 * A head is handled in two steps. While bytes trickle in, only the new bytes are scanned for the
 * end of the head (an empty line); a LF without CR is refused right there. When the end is seen,
 * the whole head is parsed once by our own strict line parser (which fills sv_http_head and
 * enforces every rule in parser.h), and then llhttp runs over exactly the same bytes: it gives a
 * second opinion on the head (its errors are mapped too, and its framing must agree with ours) and
 * leaves its state at the start of the body. Chunked bodies go through our own strict framer
 * first and then through llhttp, which must end the message at the same byte. Content-Length
 * bodies are counted here; close-delimited bodies take every byte until EOF. */
#include "serval/http/parser.h"

#include "serval/base/assert.h"
#include "serval/base/compiler.h"

#include <string.h>

enum parse_phase {
    PH_HEAD = 0,  /* scanning for the end of a head */
    PH_HEAD_DONE, /* head parsed; sv_http_body_begin not called yet */
    PH_BODY,      /* inside the body */
    PH_DONE,      /* message complete; sv_http_parser_reset before the next head */
};

/* ---- byte classes --------------------------------------------------------------------------- */

enum {
    C_TCHAR = 1u << 0,  /* token characters (RFC 9110 §5.6.2) */
    C_VALUE = 1u << 1,  /* field-value bytes: HTAB, SP, VCHAR, obs-text */
    C_TARGET = 1u << 2, /* request-target bytes we accept: VCHAR minus '#' */
    C_HOST = 1u << 3,   /* uri-host / port bytes (reg-name, IP literal, pct-encoded) */
    C_SCHEME = 1u << 4, /* scheme characters after the first */
};

static uint8_t sv_http_class[256];

__attribute__((constructor)) static void sv_http_class_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (alnum || (c && strchr("!#$%&'*+-.^_`|~", c)))
            k |= C_TCHAR;
        if (c == '\t' || (c >= 0x20 && c != 0x7f))
            k |= C_VALUE;
        if (c > 0x20 && c < 0x7f && c != '#')
            k |= C_TARGET;
        if (alnum || (c && strchr("-._~!$&'()*+,;=:[]%", c)))
            k |= C_HOST;
        if (alnum || c == '+' || c == '-' || c == '.')
            k |= C_SCHEME;
        sv_http_class[c] = k;
    }
}

static inline bool is_class(char c, uint8_t k)
{
    return (sv_http_class[(uint8_t)c] & k) != 0;
}

static bool all_class(struct sv_str s, uint8_t k)
{
    for (size_t i = 0; i < s.len; i++) {
        if (!is_class(s.ptr[i], k))
            return false;
    }
    return true;
}

/* ---- llhttp glue ---------------------------------------------------------------------------- */

static int ll_on_headers_complete(llhttp_t *ll)
{
    struct sv_http_parser *p = ll->data;
    p->_ll_headers_done = true;
    p->_ll_flags = ll->flags;
    p->_ll_cl = ll->content_length;
    /* 1 = "no body, go on with the next message" (HEAD, 1xx, 204, 304, CONNECT 2xx responses). */
    return p->_ll_skip_body ? 1 : 0;
}

static int ll_on_message_complete(llhttp_t *ll)
{
    struct sv_http_parser *p = ll->data;
    p->_ll_done = true;
    return HPE_PAUSED; /* stop exactly at the end of this message */
}

static const llhttp_settings_t sv_http_ll_settings = {
    .on_headers_complete = ll_on_headers_complete,
    .on_message_complete = ll_on_message_complete,
};

static int map_ll_head_error(llhttp_errno_t e)
{
    switch (e) {
    case HPE_INVALID_METHOD:
        return SV_HTTP_E_METHOD;
    case HPE_INVALID_URL:
        return SV_HTTP_E_TARGET;
    case HPE_INVALID_VERSION:
    case HPE_PAUSED_H2_UPGRADE:
        return SV_HTTP_E_VERSION;
    case HPE_INVALID_STATUS:
        return SV_HTTP_E_STATUS;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return SV_HTTP_E_CL_TE;
    case HPE_INVALID_CONTENT_LENGTH:
        return SV_HTTP_E_CL_INVALID;
    case HPE_INVALID_TRANSFER_ENCODING:
        return SV_HTTP_E_TE;
    case HPE_INVALID_HEADER_TOKEN:
        return SV_HTTP_E_HEADER_VALUE;
    case HPE_LF_EXPECTED:
    case HPE_CR_EXPECTED:
        return SV_HTTP_E_BARE_CR;
    default:
        return SV_HTTP_E_SYNTAX;
    }
}

static int map_ll_body_error(llhttp_errno_t e)
{
    switch (e) {
    case HPE_INVALID_CHUNK_SIZE:
    case HPE_LF_EXPECTED:
    case HPE_CR_EXPECTED:
    case HPE_STRICT:
        return SV_HTTP_E_CHUNK;
    default:
        return SV_HTTP_E_BODY;
    }
}

/* ---- public: lifecycle ---------------------------------------------------------------------- */

void sv_http_parser_init(struct sv_http_parser *p, enum sv_http_kind kind,
                         const struct sv_http_limits *limits)
{
    SV_ASSERT(kind == SV_HTTP_REQUEST || kind == SV_HTTP_RESPONSE);
    memset(p, 0, sizeof(*p));
    p->_kind = kind;
    p->_limits = limits ? *limits : SV_HTTP_LIMITS_DEFAULT;
    if (p->_limits.max_header_bytes == 0)
        p->_limits.max_header_bytes = SV_DEFAULT_MAX_HEADER_BYTES;
    p->_req_method = SV_HTTP_GET;
    sv_http_parser_reset(p);
}

void sv_http_parser_reset(struct sv_http_parser *p)
{
    p->_phase = PH_HEAD;
    p->_body_kind = SV_HTTP_BODY_NONE;
    p->_error = 0;
    p->_scan = 0;
    p->_line_start = 0;
    p->_skip = 0;
    p->_head_len = 0;
    p->_body_seen = 0;
    p->_content_length = 0;
    p->_ll_done = false;
    p->_ll_headers_done = false;
    p->_ll_skip_body = false;
}

void sv_http_parser_set_request_method(struct sv_http_parser *p, enum sv_http_method m)
{
    SV_ASSERT((unsigned)m < SV_HTTP_METHOD_COUNT);
    p->_req_method = m;
}

static int fail(struct sv_http_parser *p, int err)
{
    SV_DASSERT(err < 0);
    p->_error = err;
    return err;
}

/* ---- the head line parser ------------------------------------------------------------------- */

/* State gathered over the header lines of one head. */
struct head_scan {
    bool seen_cl;
    bool seen_te;
    bool te_chunked_last; /* the last transfer coding seen so far is chunked */
    bool te_chunked_any;
    bool te_other;
    uint32_t n_host;
    bool upgrade_hdr;
};

static const struct sv_str s_content_length = SV_STR_LIT("content-length");
static const struct sv_str s_transfer_encoding = SV_STR_LIT("transfer-encoding");
static const struct sv_str s_host = SV_STR_LIT("host");
static const struct sv_str s_connection = SV_STR_LIT("connection");
static const struct sv_str s_upgrade = SV_STR_LIT("upgrade");
static const struct sv_str s_expect = SV_STR_LIT("expect");

/* Parse the request-target <t> into head->target_form/scheme/authority/path/query. */
static int parse_target(struct sv_http_head *h, struct sv_str t)
{
    if (t.len == 0 || !all_class(t, C_TARGET))
        return SV_HTTP_E_TARGET;
    h->target = t;
    struct sv_str rest = t;
    if (h->method == SV_HTTP_CONNECT) {
        /* authority-form: host:port, nothing else */
        const char *colon = memrchr(t.ptr, ':', t.len);
        if (!all_class(t, C_HOST) || !colon || colon == t.ptr || colon + 1 == t.ptr + t.len)
            return SV_HTTP_E_TARGET;
        h->target_form = SV_HTTP_TARGET_AUTHORITY;
        h->authority = t;
        return SV_HTTP_OK;
    }
    if (t.len == 1 && t.ptr[0] == '*') {
        if (h->method != SV_HTTP_OPTIONS)
            return SV_HTTP_E_TARGET;
        h->target_form = SV_HTTP_TARGET_ASTERISK;
        h->path = t;
        return SV_HTTP_OK;
    }
    if (t.ptr[0] != '/') {
        /* absolute-form: scheme "://" authority [path-abempty] ["?" query] */
        size_t i = 0;
        if (!((t.ptr[0] >= 'a' && t.ptr[0] <= 'z') || (t.ptr[0] >= 'A' && t.ptr[0] <= 'Z')))
            return SV_HTTP_E_TARGET;
        while (i < t.len && is_class(t.ptr[i], C_SCHEME))
            i++;
        if (t.len - i < 3 || memcmp(t.ptr + i, "://", 3) != 0)
            return SV_HTTP_E_TARGET;
        h->scheme = sv_str_make(t.ptr, i);
        if (!sv_str_eq_nocase(h->scheme, SV_STR_LIT("http")) &&
            !sv_str_eq_nocase(h->scheme, SV_STR_LIT("https")))
            return SV_HTTP_E_TARGET;
        size_t a = i + 3, e = a;
        while (e < t.len && t.ptr[e] != '/' && t.ptr[e] != '?')
            e++;
        h->authority = sv_str_make(t.ptr + a, e - a);
        /* no userinfo ('@' is not in C_HOST), no empty authority */
        if (h->authority.len == 0 || !all_class(h->authority, C_HOST))
            return SV_HTTP_E_TARGET;
        h->target_form = SV_HTTP_TARGET_ABSOLUTE;
        rest = sv_str_make(t.ptr + e, t.len - e);
    } else {
        h->target_form = SV_HTTP_TARGET_ORIGIN;
    }
    const char *q = memchr(rest.ptr, '?', rest.len);
    size_t plen = q ? (size_t)(q - rest.ptr) : rest.len;
    h->path = plen ? sv_str_make(rest.ptr, plen) : SV_STR_LIT("/");
    if (q) {
        h->flags |= SV_HTTP_F_QUERY;
        h->query = sv_str_make(q + 1, rest.len - plen - 1);
    }
    return SV_HTTP_OK;
}

/* "HTTP/1.0" or "HTTP/1.1" → minor version; other "HTTP/x.y" → E_VERSION; anything else
 * → E_SYNTAX. */
static int parse_version(struct sv_str v, uint8_t *minor)
{
    if (v.len != 8 || memcmp(v.ptr, "HTTP/", 5) != 0 || v.ptr[6] != '.')
        return SV_HTTP_E_SYNTAX;
    if (v.ptr[5] < '0' || v.ptr[5] > '9' || v.ptr[7] < '0' || v.ptr[7] > '9')
        return SV_HTTP_E_SYNTAX;
    if (v.ptr[5] != '1' || (v.ptr[7] != '0' && v.ptr[7] != '1'))
        return SV_HTTP_E_VERSION;
    *minor = (uint8_t)(v.ptr[7] - '0');
    return SV_HTTP_OK;
}

static int parse_request_line(struct sv_http_head *h, struct sv_str line)
{
    const char *sp1 = memchr(line.ptr, ' ', line.len);
    if (!sp1)
        return SV_HTTP_E_SYNTAX;
    struct sv_str method = sv_str_make(line.ptr, (size_t)(sp1 - line.ptr));
    if (method.len == 0 || !all_class(method, C_TCHAR))
        return SV_HTTP_E_SYNTAX;
    const char *tstart = sp1 + 1;
    const char *end = line.ptr + line.len;
    const char *sp2 = memchr(tstart, ' ', (size_t)(end - tstart));
    if (!sp2)
        return SV_HTTP_E_SYNTAX;
    struct sv_str target = sv_str_make(tstart, (size_t)(sp2 - tstart));
    struct sv_str version = sv_str_make(sp2 + 1, (size_t)(end - sp2 - 1));
    if (target.len == 0) /* two spaces in a row */
        return SV_HTTP_E_SYNTAX;
    h->method_str = method;
    h->method = sv_http_method_from_str(method);
    int r = parse_version(version, &h->version_minor);
    if (r < 0) {
        /* "GET /a b HTTP/1.1": a space inside the target shows up as a bad version */
        const char *last = memrchr(version.ptr, ' ', version.len);
        uint8_t minor;
        if (last && parse_version(sv_str_make(last + 1, (size_t)(end - last - 1)), &minor) == 0)
            return SV_HTTP_E_TARGET;
        return r;
    }
    return parse_target(h, target);
}

static int parse_status_line(struct sv_http_head *h, struct sv_str line)
{
    if (line.len < 8)
        return SV_HTTP_E_SYNTAX;
    int r = parse_version(sv_str_make(line.ptr, 8), &h->version_minor);
    if (r < 0)
        return r;
    if (line.len < 12 || line.ptr[8] != ' ')
        return SV_HTTP_E_STATUS;
    const char *d = line.ptr + 9;
    if (d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
        return SV_HTTP_E_STATUS;
    h->status = (uint16_t)((d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0'));
    if (line.len > 12) {
        if (line.ptr[12] != ' ')
            return SV_HTTP_E_STATUS;
        h->reason = sv_str_make(line.ptr + 13, line.len - 13);
        if (!all_class(h->reason, C_VALUE))
            return memchr(h->reason.ptr, '\r', h->reason.len) ? SV_HTTP_E_BARE_CR
                                                              : SV_HTTP_E_SYNTAX;
    }
    return SV_HTTP_OK;
}

/* Transfer-Encoding value: a list of codings; chunked must be last and appear once. */
static int scan_transfer_encoding(struct head_scan *hs, struct sv_str v)
{
    size_t pos = 0;
    bool any = false;
    struct sv_str elem;
    while (sv_http_list_next(v, &pos, &elem)) {
        if (elem.len == 0)
            continue;
        any = true;
        if (hs->te_chunked_any)
            return SV_HTTP_E_TE; /* something after chunked, or chunked twice */
        if (sv_str_eq_nocase(elem, SV_STR_LIT("chunked"))) {
            hs->te_chunked_any = true;
        } else {
            if (!all_class(elem, C_TCHAR))
                return SV_HTTP_E_TE; /* parameters or garbage */
            hs->te_other = true;
        }
    }
    if (!any)
        return SV_HTTP_E_TE;
    hs->te_chunked_last = hs->te_chunked_any;
    return SV_HTTP_OK;
}

static void scan_connection(struct sv_http_head *h, struct sv_str v)
{
    size_t pos = 0;
    struct sv_str elem;
    while (sv_http_list_next(v, &pos, &elem)) {
        if (elem.len == 0)
            continue;
        if (sv_str_eq_nocase(elem, SV_STR_LIT("close")))
            h->flags |= SV_HTTP_F_CONNECTION_CLOSE;
        else if (sv_str_eq_nocase(elem, SV_STR_LIT("keep-alive")))
            h->flags |= SV_HTTP_F_CONNECTION_KEEP_ALIVE;
        else if (sv_str_eq_nocase(elem, s_upgrade))
            h->flags |= SV_HTTP_F_CONNECTION_UPGRADE;
        else
            h->flags |= SV_HTTP_F_CONNECTION_OTHER;
    }
}

/* Semantics of one header field already checked for syntax. */
static int header_semantics(struct sv_http_head *h, struct head_scan *hs, struct sv_str name,
                            struct sv_str value)
{
    /* Dispatch on length first: most headers are none of these. */
    switch (name.len) {
    case 4:
        if (h->kind == SV_HTTP_REQUEST && sv_str_eq_nocase(name, s_host)) {
            if (++hs->n_host > 1)
                return SV_HTTP_E_MULTI_HOST;
            if (!all_class(value, C_HOST))
                return SV_HTTP_E_HOST;
            h->flags |= SV_HTTP_F_HOST;
            h->host = value;
        }
        break;
    case 6:
        if (h->kind == SV_HTTP_REQUEST && sv_str_eq_nocase(name, s_expect) &&
            sv_http_list_has(value, SV_STR_LIT("100-continue")))
            h->flags |= SV_HTTP_F_EXPECT_CONTINUE;
        break;
    case 7:
        if (sv_str_eq_nocase(name, s_upgrade) && !hs->upgrade_hdr) {
            hs->upgrade_hdr = true;
            h->upgrade = value;
        }
        break;
    case 10:
        if (sv_str_eq_nocase(name, s_connection))
            scan_connection(h, value);
        break;
    case 14:
        if (sv_str_eq_nocase(name, s_content_length)) {
            if (hs->seen_cl || memchr(value.ptr, ',', value.len))
                return SV_HTTP_E_CL_DUP;
            hs->seen_cl = true;
            /* 1*DIGIT only; 19 digits keep us far from overflow and above any real body */
            if (value.len > 19 || sv_str_to_u64(value, UINT64_MAX, &h->content_length) < 0)
                return SV_HTTP_E_CL_INVALID;
            h->flags |= SV_HTTP_F_CONTENT_LENGTH;
        }
        break;
    case 17:
        if (sv_str_eq_nocase(name, s_transfer_encoding)) {
            hs->seen_te = true;
            return scan_transfer_encoding(hs, value);
        }
        break;
    default:
        break;
    }
    return SV_HTTP_OK;
}

/* One header line <line> (without CRLF). */
static int parse_header_line(struct sv_http_head *h, struct head_scan *hs, uint32_t max_headers,
                             struct sv_str line)
{
    if (line.ptr[0] == ' ' || line.ptr[0] == '\t')
        return SV_HTTP_E_OBS_FOLD;
    size_t i = 0;
    while (i < line.len && is_class(line.ptr[i], C_TCHAR))
        i++;
    if (i == line.len)
        return SV_HTTP_E_SYNTAX; /* no colon */
    if (line.ptr[i] != ':') {
        if (i > 0 && (line.ptr[i] == ' ' || line.ptr[i] == '\t'))
            return SV_HTTP_E_SPACE_BEFORE_COLON;
        if (line.ptr[i] == '\r')
            return SV_HTTP_E_BARE_CR;
        return SV_HTTP_E_HEADER_NAME;
    }
    if (i == 0)
        return SV_HTTP_E_HEADER_NAME;
    struct sv_str name = sv_str_make(line.ptr, i);
    struct sv_str value = sv_str_make(line.ptr + i + 1, line.len - i - 1);
    for (size_t k = 0; k < value.len; k++) {
        if (sv_unlikely(!is_class(value.ptr[k], C_VALUE)))
            return value.ptr[k] == '\r' ? SV_HTTP_E_BARE_CR : SV_HTTP_E_HEADER_VALUE;
    }
    value = sv_str_trim(value);
    if (h->n_headers >= max_headers)
        return SV_HTTP_E_TOO_MANY_HEADERS;
    h->headers[h->n_headers].name = name;
    h->headers[h->n_headers].value = value;
    h->n_headers++;
    return header_semantics(h, hs, name, value);
}

/* Decide framing, keep-alive and upgrade once every header is known. */
static int finish_head(struct sv_http_parser *p, struct sv_http_head *h, struct head_scan *hs)
{
    if (hs->seen_cl && hs->seen_te)
        return SV_HTTP_E_CL_TE;
    if (hs->seen_te) {
        /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing */
        if (h->version_minor == 0)
            return SV_HTTP_E_TE;
        if (!hs->te_chunked_last)
            return SV_HTTP_E_TE;
        if (hs->te_other)
            return SV_HTTP_E_TE_UNSUPPORTED;
        h->flags |= SV_HTTP_F_CHUNKED;
    }
    bool v11 = h->version_minor == 1;
    bool close = h->flags & SV_HTTP_F_CONNECTION_CLOSE;
    bool ka = v11 ? !close : (h->flags & SV_HTTP_F_CONNECTION_KEEP_ALIVE) && !close;
    enum sv_http_body_kind body;

    if (h->kind == SV_HTTP_REQUEST) {
        if (v11 && !(h->flags & SV_HTTP_F_HOST))
            return SV_HTTP_E_NO_HOST;
        if (h->target_form == SV_HTTP_TARGET_ABSOLUTE)
            h->host = h->authority; /* RFC 9112 §3.2.2: the target's authority wins */
        else if (h->target_form == SV_HTTP_TARGET_AUTHORITY && !(h->flags & SV_HTTP_F_HOST))
            h->host = h->authority;
        if (v11 && hs->upgrade_hdr && (h->flags & SV_HTTP_F_CONNECTION_UPGRADE) && h->upgrade.len)
            h->flags |= SV_HTTP_F_UPGRADE;
        if (h->flags & SV_HTTP_F_CHUNKED)
            body = SV_HTTP_BODY_CHUNKED;
        else if (h->content_length > 0)
            body = SV_HTTP_BODY_LENGTH;
        else
            body = SV_HTTP_BODY_NONE;
    } else {
        uint16_t st = h->status;
        h->request_method = p->_req_method;
        if (st == 101) {
            h->flags |= SV_HTTP_F_UPGRADE;
            body = SV_HTTP_BODY_TUNNEL;
        } else if (st < 200) {
            h->flags |= SV_HTTP_F_INTERIM;
            body = SV_HTTP_BODY_NONE;
        } else if (p->_req_method == SV_HTTP_CONNECT && st < 300) {
            h->flags |= SV_HTTP_F_TUNNEL;
            body = SV_HTTP_BODY_TUNNEL;
        } else if (st == 204 || st == 304 || p->_req_method == SV_HTTP_HEAD) {
            body = SV_HTTP_BODY_NONE;
        } else if (h->flags & SV_HTTP_F_CHUNKED) {
            body = SV_HTTP_BODY_CHUNKED;
        } else if (h->flags & SV_HTTP_F_CONTENT_LENGTH) {
            body = h->content_length ? SV_HTTP_BODY_LENGTH : SV_HTTP_BODY_NONE;
        } else {
            body = SV_HTTP_BODY_UNTIL_CLOSE;
            ka = false;
        }
        if (st < 200 || st == 204) /* these never carry framing headers (RFC 9110 §8.6) */
            h->flags &= ~(uint32_t)(SV_HTTP_F_CHUNKED | SV_HTTP_F_CONTENT_LENGTH);
    }
    if (ka)
        h->flags |= SV_HTTP_F_KEEP_ALIVE;
    if (body == SV_HTTP_BODY_LENGTH || body == SV_HTTP_BODY_CHUNKED ||
        body == SV_HTTP_BODY_UNTIL_CLOSE)
        h->flags |= SV_HTTP_F_BODY;
    p->_body_kind = (uint8_t)body;
    p->_content_length = body == SV_HTTP_BODY_LENGTH ? h->content_length : 0;
    return SV_HTTP_OK;
}

/* Parse the complete head buf[p->_skip .. p->_head_len) into <h>. */
static int parse_whole_head(struct sv_http_parser *p, const char *buf, struct sv_http_head *h)
{
    struct sv_http_header *storage = h->headers;
    uint32_t cap = h->headers_cap;
    memset(h, 0, sizeof(*h));
    h->headers = storage;
    h->headers_cap = storage ? cap : 0;
    h->kind = p->_kind;
    uint32_t max_headers = SV_MIN(h->headers_cap, p->_limits.max_headers);

    struct head_scan hs = {0};
    const char *pos = buf + p->_skip;
    const char *end = buf + p->_head_len - 2; /* the final CRLF is the empty line */
    bool first = true;
    /* One iteration per line; the scan already proved every LF has its CR, and the line count is
     * bounded by the head length. */
    while (pos < end) {
        const char *lf = memchr(pos, '\n', (size_t)(end - pos));
        SV_ASSERT(lf && lf > pos && lf[-1] == '\r');
        struct sv_str line = sv_str_make(pos, (size_t)(lf - 1 - pos));
        int r;
        if (line.len == 0)
            r = SV_HTTP_E_SYNTAX; /* cannot happen: the first empty line ends the head */
        else if (first)
            r = p->_kind == SV_HTTP_REQUEST ? parse_request_line(h, line)
                                            : parse_status_line(h, line);
        else
            r = parse_header_line(h, &hs, max_headers, line);
        if (r < 0)
            return r;
        first = false;
        pos = lf + 1;
    }
    if (first)
        return SV_HTTP_E_SYNTAX;
    return finish_head(p, h, &hs);
}

/* Run llhttp over the head as a second opinion and to position it for the body. */
static int run_llhttp_head(struct sv_http_parser *p, const char *buf, const struct sv_http_head *h)
{
    enum sv_http_body_kind body = p->_body_kind;
    p->_ll_skip_body =
        p->_kind == SV_HTTP_RESPONSE && (body == SV_HTTP_BODY_NONE || body == SV_HTTP_BODY_TUNNEL);
    p->_ll_done = false;
    p->_ll_headers_done = false;
    llhttp_init(&p->_ll, p->_kind == SV_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE,
                &sv_http_ll_settings);
    p->_ll.data = p;
    llhttp_errno_t e = llhttp_execute(&p->_ll, buf, p->_head_len);
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
        return map_ll_head_error(e);
    if (!p->_ll_headers_done)
        return SV_HTTP_E_INTERNAL;
    /* llhttp must frame the message exactly as we do (both ignore framing headers of 1xx and
     * 204 responses). */
    bool ll_chunked = p->_ll_flags & F_CHUNKED;
    bool ll_cl = p->_ll_flags & F_CONTENT_LENGTH;
    if (!(h->kind == SV_HTTP_RESPONSE && (h->status < 200 || h->status == 204))) {
        if (ll_chunked != ((h->flags & SV_HTTP_F_CHUNKED) != 0) ||
            ll_cl != ((h->flags & SV_HTTP_F_CONTENT_LENGTH) != 0))
            return SV_HTTP_E_INTERNAL;
        if (ll_cl && p->_ll_cl != h->content_length)
            return SV_HTTP_E_INTERNAL;
    }
    bool no_body = body == SV_HTTP_BODY_NONE || body == SV_HTTP_BODY_TUNNEL;
    if (no_body && h->kind == SV_HTTP_REQUEST && h->method == SV_HTTP_CONNECT)
        return SV_HTTP_OK; /* llhttp stops CONNECT at the head either way */
    if (no_body != p->_ll_done)
        return SV_HTTP_E_INTERNAL;
    if (p->_ll_done && p->_ll.error_pos != buf + p->_head_len)
        return SV_HTTP_E_INTERNAL;
    return SV_HTTP_OK;
}

int sv_http_parse_head(struct sv_http_parser *p, const char *buf, size_t len,
                       struct sv_http_head *head, size_t *head_len)
{
    if (p->_error)
        return p->_error;
    if (p->_phase != PH_HEAD)
        return SV_HTTP_E_STATE;
    SV_ASSERT(len >= p->_scan); /* the caller gives back at least what it gave before */
    const uint32_t max = p->_limits.max_header_bytes;
    size_t limit = SV_MIN(len, (size_t)max);
    size_t i = p->_scan;

    /* Bounded by <limit>: each iteration consumes one line. */
    while (i < limit) {
        const char *lf = memchr(buf + i, '\n', limit - i);
        if (!lf) {
            i = limit;
            break;
        }
        size_t j = (size_t)(lf - buf);
        if (j == 0 || buf[j - 1] != '\r')
            return fail(p, SV_HTTP_E_BARE_LF);
        i = j + 1;
        if (j - 1 == p->_line_start) { /* an empty line */
            if (p->_line_start == p->_skip) {
                /* empty line before any start line: requests may skip it (RFC 9112 §2.2) */
                if (p->_kind != SV_HTTP_REQUEST)
                    return fail(p, SV_HTTP_E_SYNTAX);
                p->_skip = (uint32_t)i;
                p->_line_start = (uint32_t)i;
                continue;
            }
            p->_head_len = (uint32_t)i;
            p->_scan = (uint32_t)i;
            int r = parse_whole_head(p, buf, head);
            if (r == SV_HTTP_OK)
                r = run_llhttp_head(p, buf, head);
            if (r < 0)
                return fail(p, r);
            p->_phase = PH_HEAD_DONE;
            *head_len = p->_head_len;
            return SV_HTTP_OK;
        }
        p->_line_start = (uint32_t)i;
    }
    p->_scan = (uint32_t)i;
    if (len >= max)
        return fail(p, SV_HTTP_E_HEAD_TOO_LARGE);
    return SV_HTTP_AGAIN;
}

/* ---- body ------------------------------------------------------------------------------------ */

/* Our own strict chunked framer (RFC 9112 §7.1). llhttp 8.1 accepts a bare LF ending the trailer
 * section, obs-fold and whitespace before the colon in trailers: an upstream that reads those
 * differently would see a different message end, so we refuse them. */
enum chunk_state {
    CS_SIZE = 0, /* chunk-size hex digits */
    CS_EXT,      /* after the size: BWS / chunk extensions up to CR */
    CS_SIZE_LF,  /* LF ending the size line */
    CS_DATA,     /* chunk data (_chunk_left bytes) */
    CS_DATA_CR,  /* CR after chunk data */
    CS_DATA_LF,  /* LF after chunk data */
    CS_TLINE,    /* start of a trailer line, or the final CRLF */
    CS_TNAME,    /* trailer field name */
    CS_TVALUE,   /* trailer field value */
    CS_TLF,      /* LF ending a trailer line */
    CS_END_LF,   /* LF of the final CRLF */
    CS_DONE,
};

#define SV_CHUNK_LINE_MAX 4096 /* size line with extensions */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Span collector for sv_http_parse_body_spans (NULL when not wanted). */
struct span_out {
    struct sv_str *v;
    uint32_t max;
    uint32_t n;
};

/* Run the framer over <data>[<len>], recording payload spans in <so> when given. Returns the
 * bytes that belong to the message (== len unless it ended inside, or <so> ran out of room) or a
 * negative error. Bounded by <len>. */
static ssize_t chunk_scan(struct sv_http_parser *p, const char *data, size_t len,
                          struct span_out *so)
{
    size_t i = 0;
    while (i < len && p->_cstate != CS_DONE) {
        char c = data[i];
        switch ((enum chunk_state)p->_cstate) {
        case CS_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (p->_chunk_left > (UINT64_MAX >> 8))
                    return SV_HTTP_E_CHUNK; /* absurd size */
                p->_chunk_left = p->_chunk_left * 16 + (uint64_t)v;
                p->_chunk_digits = true;
            } else if (!p->_chunk_digits) {
                return SV_HTTP_E_CHUNK;
            } else if (c == '\r') {
                p->_cstate = CS_SIZE_LF;
            } else if (c == ';') {
                p->_cstate = CS_EXT;
            } else {
                return SV_HTTP_E_CHUNK; /* llhttp 8.1 refuses BWS before ';' too */
            }
            if (++p->_chunk_line > SV_CHUNK_LINE_MAX)
                return SV_HTTP_E_CHUNK;
            i++;
            break;
        }
        case CS_EXT:
            if (c == '\r')
                p->_cstate = CS_SIZE_LF;
            else if (!is_class(c, C_VALUE))
                return SV_HTTP_E_CHUNK;
            if (++p->_chunk_line > SV_CHUNK_LINE_MAX)
                return SV_HTTP_E_CHUNK;
            i++;
            break;
        case CS_SIZE_LF:
            if (c != '\n')
                return SV_HTTP_E_CHUNK;
            i++;
            p->_chunk_line = 0;
            p->_cstate = p->_chunk_left ? CS_DATA : CS_TLINE;
            break;
        case CS_DATA: {
            size_t take = (uint64_t)(len - i) < p->_chunk_left ? len - i : (size_t)p->_chunk_left;
            if (so) {
                if (so->n == so->max)
                    return (ssize_t)i; /* no room for another span: stop before this data */
                so->v[so->n++] = sv_str_make(data + i, take);
            }
            i += take;
            p->_chunk_left -= take;
            if (p->_chunk_left == 0)
                p->_cstate = CS_DATA_CR;
            break;
        }
        case CS_DATA_CR:
            if (c != '\r')
                return SV_HTTP_E_CHUNK;
            i++;
            p->_cstate = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n')
                return SV_HTTP_E_CHUNK;
            i++;
            p->_chunk_digits = false;
            p->_chunk_left = 0;
            p->_cstate = CS_SIZE;
            break;
        default:
            /* trailer section: every byte counts against the head limit */
            if (++p->_chunk_line > p->_limits.max_header_bytes)
                return SV_HTTP_E_CHUNK;
            switch ((enum chunk_state)p->_cstate) {
            case CS_TLINE:
                if (c == '\r')
                    p->_cstate = CS_END_LF;
                else if (is_class(c, C_TCHAR))
                    p->_cstate = CS_TNAME;
                else
                    return SV_HTTP_E_CHUNK; /* obs-fold, bare LF, bad name byte */
                break;
            case CS_TNAME:
                if (c == ':')
                    p->_cstate = CS_TVALUE;
                else if (!is_class(c, C_TCHAR))
                    return SV_HTTP_E_CHUNK; /* whitespace before colon, bad byte */
                break;
            case CS_TVALUE:
                if (c == '\r')
                    p->_cstate = CS_TLF;
                else if (!is_class(c, C_VALUE))
                    return SV_HTTP_E_CHUNK;
                break;
            case CS_TLF:
                if (c != '\n')
                    return SV_HTTP_E_CHUNK;
                p->_cstate = CS_TLINE;
                break;
            case CS_END_LF:
                if (c != '\n')
                    return SV_HTTP_E_CHUNK;
                p->_cstate = CS_DONE;
                break;
            default:
                SV_ASSERT(0);
            }
            i++;
            break;
        }
    }
    return (ssize_t)i;
}

enum sv_http_body_kind sv_http_body_begin(struct sv_http_parser *p)
{
    SV_ASSERT(p->_phase == PH_HEAD_DONE || p->_phase == PH_BODY || p->_phase == PH_DONE);
    if (p->_phase == PH_HEAD_DONE) {
        enum sv_http_body_kind k = p->_body_kind;
        p->_phase = (k == SV_HTTP_BODY_NONE || k == SV_HTTP_BODY_TUNNEL) ? PH_DONE : PH_BODY;
        p->_body_seen = 0;
        p->_cstate = CS_SIZE;
        p->_chunk_digits = false;
        p->_chunk_line = 0;
        p->_chunk_left = 0;
    }
    return (enum sv_http_body_kind)p->_body_kind;
}

static int parse_body(struct sv_http_parser *p, const char *data, size_t len, size_t *used,
                      bool *done, struct span_out *so)
{
    *used = 0;
    *done = false;
    if (p->_error)
        return p->_error;
    if (p->_phase == PH_DONE) {
        *done = true;
        return SV_HTTP_OK;
    }
    if (p->_phase != PH_BODY)
        return SV_HTTP_E_STATE;

    switch ((enum sv_http_body_kind)p->_body_kind) {
    case SV_HTTP_BODY_LENGTH: {
        uint64_t left = p->_content_length - p->_body_seen;
        size_t take = (uint64_t)len < left ? len : (size_t)left;
        if (so && take) {
            if (so->max == 0)
                return SV_HTTP_OK; /* no room for a span: nothing consumed */
            so->v[so->n++] = sv_str_make(data, take);
        }
        p->_body_seen += take;
        *used = take;
        if (p->_body_seen == p->_content_length) {
            *done = true;
            p->_phase = PH_DONE;
        }
        return SV_HTTP_OK;
    }
    case SV_HTTP_BODY_UNTIL_CLOSE:
        if (so && len) {
            if (so->max == 0)
                return SV_HTTP_OK;
            so->v[so->n++] = sv_str_make(data, len);
        }
        p->_body_seen += len;
        *used = len;
        return SV_HTTP_OK;
    case SV_HTTP_BODY_CHUNKED: {
        if (len == 0)
            return SV_HTTP_OK;
        ssize_t mine = chunk_scan(p, data, len, so);
        if (mine < 0)
            return fail(p, (int)mine);
        bool our_done = p->_cstate == CS_DONE;
        /* llhttp sees exactly the bytes we claim and must agree on where the message ends */
        llhttp_errno_t e = llhttp_execute(&p->_ll, data, (size_t)mine);
        if (mine == 0)
            return SV_HTTP_OK; /* span array full before any byte */
        if (e == HPE_OK && !our_done && !p->_ll_done) {
            p->_body_seen += (size_t)mine;
            *used = (size_t)mine;
            return SV_HTTP_OK;
        }
        if (e == HPE_PAUSED && p->_ll_done && our_done && p->_ll.error_pos == data + (size_t)mine) {
            *used = (size_t)mine;
            p->_body_seen += *used;
            *done = true;
            p->_phase = PH_DONE;
            return SV_HTTP_OK;
        }
        return fail(p, e == HPE_OK || e == HPE_PAUSED ? SV_HTTP_E_CHUNK : map_ll_body_error(e));
    }
    case SV_HTTP_BODY_NONE:
    case SV_HTTP_BODY_TUNNEL:
    default:
        return SV_HTTP_E_STATE;
    }
}

int sv_http_parse_body(struct sv_http_parser *p, const char *data, size_t len, size_t *used,
                       bool *done)
{
    return parse_body(p, data, len, used, done, NULL);
}

int sv_http_parse_body_spans(struct sv_http_parser *p, const char *data, size_t len, size_t *used,
                             bool *done, struct sv_str *spans, uint32_t max_spans,
                             uint32_t *n_spans)
{
    struct span_out so = {spans, max_spans, 0};
    int rc = parse_body(p, data, len, used, done, &so);
    *n_spans = so.n;
    return rc;
}

int sv_http_parse_eof(struct sv_http_parser *p)
{
    if (p->_error)
        return p->_error;
    switch (p->_phase) {
    case PH_HEAD:
        /* nothing but (skipped) empty lines received for the next head: a clean close */
        return p->_scan == p->_skip ? SV_HTTP_OK : fail(p, SV_HTTP_E_EOF);
    case PH_BODY:
        if (p->_body_kind == SV_HTTP_BODY_UNTIL_CLOSE) {
            p->_phase = PH_DONE;
            return SV_HTTP_OK;
        }
        return fail(p, SV_HTTP_E_EOF);
    case PH_DONE:
        return SV_HTTP_OK;
    case PH_HEAD_DONE:
    default:
        /* head complete, body_begin not called: only a body-less message is complete */
        return (p->_body_kind == SV_HTTP_BODY_NONE || p->_body_kind == SV_HTTP_BODY_TUNNEL ||
                p->_body_kind == SV_HTTP_BODY_UNTIL_CLOSE)
                   ? SV_HTTP_OK
                   : fail(p, SV_HTTP_E_EOF);
    }
}

/* ---- errors -----------------------------------------------------------------------------------
 */

int sv_http_error_status(int err, enum sv_http_kind kind)
{
    if (err >= 0)
        return 200;
    if (kind == SV_HTTP_RESPONSE)
        return 502;
    switch (err) {
    case SV_HTTP_E_HEAD_TOO_LARGE:
    case SV_HTTP_E_TOO_MANY_HEADERS:
        return 431;
    case SV_HTTP_E_TE_UNSUPPORTED:
    case SV_HTTP_E_METHOD:
        return 501;
    case SV_HTTP_E_VERSION:
        return 505;
    case SV_HTTP_E_STATE:
    case SV_HTTP_E_INTERNAL:
        return 400;
    default:
        return 400;
    }
}

const char *sv_http_error_name(int err)
{
    switch (err) {
    case SV_HTTP_OK:
        return "ok";
    case SV_HTTP_AGAIN:
        return "again";
    case SV_HTTP_E_SYNTAX:
        return "malformed";
    case SV_HTTP_E_BARE_LF:
        return "bare LF";
    case SV_HTTP_E_BARE_CR:
        return "bare CR";
    case SV_HTTP_E_OBS_FOLD:
        return "obs-fold";
    case SV_HTTP_E_HEADER_NAME:
        return "bad header name";
    case SV_HTTP_E_SPACE_BEFORE_COLON:
        return "whitespace before colon";
    case SV_HTTP_E_HEADER_VALUE:
        return "bad header value";
    case SV_HTTP_E_METHOD:
        return "unknown method";
    case SV_HTTP_E_TARGET:
        return "bad request-target";
    case SV_HTTP_E_VERSION:
        return "unsupported HTTP version";
    case SV_HTTP_E_STATUS:
        return "bad status code";
    case SV_HTTP_E_CL_TE:
        return "Content-Length with Transfer-Encoding";
    case SV_HTTP_E_CL_DUP:
        return "duplicate Content-Length";
    case SV_HTTP_E_CL_INVALID:
        return "bad Content-Length";
    case SV_HTTP_E_TE:
        return "bad Transfer-Encoding";
    case SV_HTTP_E_TE_UNSUPPORTED:
        return "unsupported transfer coding";
    case SV_HTTP_E_NO_HOST:
        return "missing Host";
    case SV_HTTP_E_MULTI_HOST:
        return "duplicate Host";
    case SV_HTTP_E_HEAD_TOO_LARGE:
        return "header section too large";
    case SV_HTTP_E_TOO_MANY_HEADERS:
        return "too many headers";
    case SV_HTTP_E_CHUNK:
        return "bad chunk framing";
    case SV_HTTP_E_BODY:
        return "bad body framing";
    case SV_HTTP_E_EOF:
        return "connection closed mid-message";
    case SV_HTTP_E_STATE:
        return "parser call out of order";
    case SV_HTTP_E_INTERNAL:
        return "framing disagreement";
    case SV_HTTP_E_HOST:
        return "bad Host";
    default:
        return "unknown error";
    }
}

/* HTTP/1.1 head writers for the proxy (hop-by-hop removal, header modifiers, X-Forwarded-*). */
#include "serval/http/serialize.h"

#include "serval/base/compiler.h"
#include "wbuf.h"

#include <errno.h>
#include <string.h>

static const struct sv_str s_connection = SV_STR_LIT("connection");
static const struct sv_str s_host = SV_STR_LIT("host");
static const struct sv_str s_content_length = SV_STR_LIT("content-length");
static const struct sv_str s_xff = SV_STR_LIT("x-forwarded-for");
static const struct sv_str s_xfproto = SV_STR_LIT("x-forwarded-proto");
static const struct sv_str s_xfport = SV_STR_LIT("x-forwarded-port");

/* The fixed hop-by-hop names (RFC 9110 §7.6.1 and the usual legacy ones). */
static bool fixed_hop_by_hop(struct sv_str n)
{
    switch (n.len) {
    case 2:
        return sv_str_eq_nocase(n, SV_STR_LIT("te"));
    case 7:
        return sv_str_eq_nocase(n, SV_STR_LIT("trailer")) ||
               sv_str_eq_nocase(n, SV_STR_LIT("upgrade"));
    case 10:
        return sv_str_eq_nocase(n, s_connection) || sv_str_eq_nocase(n, SV_STR_LIT("keep-alive"));
    case 16:
        return sv_str_eq_nocase(n, SV_STR_LIT("proxy-connection"));
    case 17:
        return sv_str_eq_nocase(n, SV_STR_LIT("transfer-encoding"));
    default:
        return false;
    }
}

/* Names a header modifier may not write: we own framing, connection management and Host. */
static bool reserved_name(struct sv_str n)
{
    return fixed_hop_by_hop(n) || sv_str_eq_nocase(n, s_content_length) ||
           sv_str_eq_nocase(n, s_host);
}

bool sv_http_is_hop_by_hop(const struct sv_http_head *head, struct sv_str name)
{
    if (fixed_hop_by_hop(name))
        return true;
    if (!(head->flags & SV_HTTP_F_CONNECTION_OTHER))
        return false;
    for (int i = sv_http_head_find(head, s_connection, 0); i >= 0;
         i = sv_http_head_find(head, s_connection, (uint32_t)i + 1)) {
        if (sv_http_list_has(head->headers[i].value, name))
            return true;
    }
    return false;
}

bool sv_http_mods_drop(const struct sv_http_header_mods *mods, struct sv_str name)
{
    if (!mods)
        return false;
    for (uint32_t i = 0; i < mods->n_remove; i++) {
        if (sv_str_eq_nocase(mods->remove[i], name))
            return true;
    }
    for (uint32_t i = 0; i < mods->n_set; i++) {
        if (sv_str_eq_nocase(mods->set[i].name, name))
            return true;
    }
    return false;
}

/* Bytes we refuse to write into a head: CR, LF, NUL and other controls except HTAB. */
static bool safe_value(struct sv_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool safe_token(struct sv_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == ':')
            return false;
    }
    return true;
}

/* A replacement request-target: visible ASCII only. */
static bool safe_target(struct sv_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static bool mods_valid(const struct sv_http_header_mods *m)
{
    if (!m)
        return true;
    for (uint32_t i = 0; i < m->n_set; i++) {
        if (!safe_token(m->set[i].name) || !safe_value(m->set[i].value))
            return false;
    }
    for (uint32_t i = 0; i < m->n_add; i++) {
        if (!safe_token(m->add[i].name) || !safe_value(m->add[i].value))
            return false;
    }
    return true;
}

/* Write set[] then add[] of <m>, leaving out reserved names. */
static void put_mods(struct sv_wbuf *w, const struct sv_http_header_mods *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n_set; i++) {
        if (!reserved_name(m->set[i].name))
            sv_wbuf_header(w, m->set[i].name, m->set[i].value);
    }
    for (uint32_t i = 0; i < m->n_add; i++) {
        if (!reserved_name(m->add[i].name))
            sv_wbuf_header(w, m->add[i].name, m->add[i].value);
    }
}

static void put_framing(struct sv_wbuf *w, const struct sv_http_head *h)
{
    if (h->flags & SV_HTTP_F_CHUNKED) {
        sv_wbuf_lit(w, "Transfer-Encoding: chunked\r\n");
    } else if (h->flags & SV_HTTP_F_CONTENT_LENGTH) {
        sv_wbuf_lit(w, "Content-Length: ");
        sv_wbuf_u64(w, h->content_length);
        sv_wbuf_lit(w, "\r\n");
    }
}

ssize_t sv_http_write_request_head(const struct sv_http_head *head,
                                   const struct sv_http_rewrite *rw, char *out, size_t cap)
{
    static const struct sv_http_rewrite none;
    if (!rw)
        rw = &none;
    const struct sv_http_header_mods *mods = rw->mods;
    if (!mods_valid(mods) || (rw->target.ptr && !safe_target(rw->target)) ||
        (rw->host.ptr && !safe_value(rw->host)) || (rw->xff.ptr && !safe_value(rw->xff)) ||
        (rw->xf_proto.ptr && !safe_value(rw->xf_proto)))
        return -EINVAL;

    struct sv_wbuf w = {out, 0, cap, false};
    sv_wbuf_str(&w, head->method_str);
    sv_wbuf_lit(&w, " ");
    if (rw->target.ptr) {
        sv_wbuf_str(&w, rw->target);
    } else if (head->target_form == SV_HTTP_TARGET_AUTHORITY) {
        sv_wbuf_str(&w, head->authority);
    } else {
        sv_wbuf_str(&w, head->path);
        if (head->flags & SV_HTTP_F_QUERY) {
            sv_wbuf_lit(&w, "?");
            sv_wbuf_str(&w, head->query);
        }
    }
    if (rw->http10)
        sv_wbuf_lit(&w, " HTTP/1.0\r\n");
    else
        sv_wbuf_lit(&w, " HTTP/1.1\r\n");

    /* Host first: rewritten, or set by a modifier, or passed through. */
    struct sv_str host = head->host;
    if (rw->host.ptr) {
        host = rw->host;
    } else if (mods) {
        for (uint32_t i = 0; i < mods->n_set; i++) {
            if (sv_str_eq_nocase(mods->set[i].name, s_host))
                host = mods->set[i].value;
        }
    }
    /* HTTP/1.1 requires Host (empty when the client had none); an HTTP/1.0 request may go
     * without, and an empty one makes common servers (nginx) answer 400 and close */
    if (host.len > 0 || !rw->http10)
        sv_wbuf_header(&w, SV_STR_LIT("Host"), host);

    for (uint32_t i = 0; i < head->n_headers; i++) {
        struct sv_str n = head->headers[i].name;
        if (sv_str_eq_nocase(n, s_host) || sv_str_eq_nocase(n, s_content_length) ||
            sv_http_is_hop_by_hop(head, n) || sv_http_mods_drop(mods, n))
            continue;
        if ((rw->xff.ptr && sv_str_eq_nocase(n, s_xff)) ||
            (rw->xf_proto.ptr && sv_str_eq_nocase(n, s_xfproto)) ||
            (rw->xf_port && sv_str_eq_nocase(n, s_xfport)))
            continue;
        sv_wbuf_header(&w, n, head->headers[i].value);
    }
    put_mods(&w, mods);
    put_framing(&w, head);

    if (rw->xff.ptr) {
        /* append the client to the list the client sent (all X-Forwarded-For lines, in order) */
        sv_wbuf_lit(&w, "X-Forwarded-For: ");
        for (int i = sv_http_head_find(head, s_xff, 0); i >= 0;
             i = sv_http_head_find(head, s_xff, (uint32_t)i + 1)) {
            if (head->headers[i].value.len == 0)
                continue;
            sv_wbuf_str(&w, head->headers[i].value);
            sv_wbuf_lit(&w, ", ");
        }
        sv_wbuf_str(&w, rw->xff);
        sv_wbuf_lit(&w, "\r\n");
    }
    if (rw->xf_proto.ptr)
        sv_wbuf_header(&w, SV_STR_LIT("X-Forwarded-Proto"), rw->xf_proto);
    if (rw->xf_port) {
        sv_wbuf_lit(&w, "X-Forwarded-Port: ");
        sv_wbuf_u64(&w, rw->xf_port);
        sv_wbuf_lit(&w, "\r\n");
    }
    if (rw->upgrade && (head->flags & SV_HTTP_F_UPGRADE) && !rw->http10) {
        sv_wbuf_header(&w, SV_STR_LIT("Upgrade"), head->upgrade);
        sv_wbuf_lit(&w, "Connection: upgrade\r\n");
    } else if (rw->http10) {
        sv_wbuf_lit(&w, "Connection: keep-alive\r\n");
    }
    sv_wbuf_lit(&w, "\r\n");
    return sv_wbuf_result(&w);
}

/* True when the client can only find the end of this response by the connection closing. */
static bool close_delimited(const struct sv_http_head *h)
{
    return !(h->flags & (SV_HTTP_F_CHUNKED | SV_HTTP_F_CONTENT_LENGTH)) && h->status >= 200 &&
           h->status != 204 && h->status != 304 && h->request_method != SV_HTTP_HEAD &&
           !(h->flags & SV_HTTP_F_TUNNEL);
}

ssize_t sv_http_write_response_head(const struct sv_http_head *head,
                                    const struct sv_http_header_mods *mods, unsigned flags,
                                    char *out, size_t cap)
{
    if (!mods_valid(mods) || head->status < 100 || head->status > 999)
        return -EINVAL;
    if (head->status < 200 && head->status != 101 && (flags & SV_HTTP_RESP_CLIENT_10))
        return 0; /* no interim responses to HTTP/1.0 clients */
    struct sv_wbuf w = {out, 0, cap, false};
    sv_wbuf_lit(&w, "HTTP/1.1 ");
    sv_wbuf_u64(&w, head->status);
    sv_wbuf_lit(&w, " ");
    if (head->reason.len)
        sv_wbuf_str(&w, head->reason);
    else
        sv_wbuf_str(&w, sv_str_cstr(sv_http_reason(head->status)));
    sv_wbuf_lit(&w, "\r\n");

    for (uint32_t i = 0; i < head->n_headers; i++) {
        struct sv_str n = head->headers[i].name;
        if (sv_str_eq_nocase(n, s_content_length) || sv_http_is_hop_by_hop(head, n) ||
            sv_http_mods_drop(mods, n))
            continue;
        sv_wbuf_header(&w, n, head->headers[i].value);
    }
    put_mods(&w, mods);
    bool dechunk = (flags & SV_HTTP_RESP_DECHUNK) && (head->flags & SV_HTTP_F_CHUNKED);
    if (!dechunk)
        put_framing(&w, head);

    if (head->status == 101) {
        if (head->upgrade.len)
            sv_wbuf_header(&w, SV_STR_LIT("Upgrade"), head->upgrade);
        sv_wbuf_lit(&w, "Connection: upgrade\r\n");
    } else if (head->status < 200) {
        /* interim responses carry no connection management */
    } else if (!(flags & SV_HTTP_RESP_KEEP_ALIVE) || close_delimited(head) || dechunk) {
        sv_wbuf_lit(&w, "Connection: close\r\n");
    } else if (flags & SV_HTTP_RESP_CLIENT_10) {
        sv_wbuf_lit(&w, "Connection: keep-alive\r\n");
    }
    sv_wbuf_lit(&w, "\r\n");
    return sv_wbuf_result(&w);
}

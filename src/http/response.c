/* Responses made by the proxy itself: canned errors, redirects, simple responses, XFF text. */
#include "serval/http/response.h"

#include "serval/base/compiler.h"
#include "serval/http/message.h"
#include "wbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

const struct sv_str sv_http_100_continue = SV_STR_LIT("HTTP/1.1 100 Continue\r\n\r\n");

/* <len> is the length of <reason> plus the newline; a unit test parses every canned response
 * and checks Content-Length against the body. */
#define CANNED_HEAD(code, reason, len)                                                             \
    "HTTP/1.1 " #code " " reason "\r\nContent-Type: text/plain\r\nContent-Length: " #len "\r\n"
#define CANNED(code, reason, len)                                                                  \
    {                                                                                              \
        code, SV_STR_LIT(CANNED_HEAD(code, reason, len) "\r\n" reason "\n"),                       \
            SV_STR_LIT(CANNED_HEAD(code, reason, len) "Connection: close\r\n\r\n" reason "\n")     \
    }

static const struct {
    int status;
    struct sv_str keep;
    struct sv_str close;
} canned[] = {
    CANNED(400, "Bad Request", 12),           CANNED(404, "Not Found", 10),
    CANNED(408, "Request Timeout", 16),       CANNED(413, "Content Too Large", 18),
    CANNED(421, "Misdirected Request", 20),   CANNED(431, "Request Header Fields Too Large", 32),
    CANNED(500, "Internal Server Error", 22), CANNED(501, "Not Implemented", 16),
    CANNED(502, "Bad Gateway", 12),           CANNED(503, "Service Unavailable", 20),
    CANNED(504, "Gateway Timeout", 16),       CANNED(505, "HTTP Version Not Supported", 27),
};

struct sv_str sv_http_canned(int status, bool close)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(canned); i++) {
        if (canned[i].status == status)
            return close ? canned[i].close : canned[i].keep;
    }
    return SV_STR_NULL;
}

static bool printable(struct sv_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static void put_status_line(struct sv_wbuf *w, int status)
{
    sv_wbuf_lit(w, "HTTP/1.1 ");
    sv_wbuf_u64(w, (uint64_t)status);
    sv_wbuf_lit(w, " ");
    sv_wbuf_str(w, sv_str_cstr(sv_http_reason(status)));
    sv_wbuf_lit(w, "\r\n");
}

ssize_t sv_http_write_redirect(char *out, size_t cap, int status,
                               const struct sv_http_location *loc, bool close)
{
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return -EINVAL;
    if (loc->scheme.len == 0 || loc->host.len == 0 || !printable(loc->scheme) ||
        !printable(loc->host) || !printable(loc->path) ||
        (loc->query.ptr && !printable(loc->query)))
        return -EINVAL;
    struct sv_wbuf w = {out, 0, cap, false};
    put_status_line(&w, status);
    sv_wbuf_lit(&w, "Location: ");
    sv_wbuf_str(&w, loc->scheme);
    sv_wbuf_lit(&w, "://");
    /* an IPv6 literal needs brackets in a URI */
    bool v6 = memchr(loc->host.ptr, ':', loc->host.len) && loc->host.ptr[0] != '[';
    if (v6)
        sv_wbuf_lit(&w, "[");
    sv_wbuf_str(&w, loc->host);
    if (v6)
        sv_wbuf_lit(&w, "]");
    bool well_known = (loc->port == 80 && sv_str_eq_nocase(loc->scheme, SV_STR_LIT("http"))) ||
                      (loc->port == 443 && sv_str_eq_nocase(loc->scheme, SV_STR_LIT("https")));
    if (loc->port && !well_known) {
        sv_wbuf_lit(&w, ":");
        sv_wbuf_u64(&w, loc->port);
    }
    if (loc->path.len)
        sv_wbuf_str(&w, loc->path);
    else
        sv_wbuf_lit(&w, "/");
    if (loc->query.ptr) {
        sv_wbuf_lit(&w, "?");
        sv_wbuf_str(&w, loc->query);
    }
    sv_wbuf_lit(&w, "\r\nContent-Length: 0\r\n");
    if (close)
        sv_wbuf_lit(&w, "Connection: close\r\n");
    sv_wbuf_lit(&w, "\r\n");
    return sv_wbuf_result(&w);
}

ssize_t sv_http_write_simple_response(char *out, size_t cap, int status, bool close,
                                      struct sv_str content_type, struct sv_str body)
{
    if (status < 100 || status > 999)
        return -EINVAL;
    for (size_t i = 0; content_type.ptr && i < content_type.len; i++) {
        unsigned char c = (unsigned char)content_type.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -EINVAL;
    }
    struct sv_wbuf w = {out, 0, cap, false};
    put_status_line(&w, status);
    if (content_type.ptr)
        sv_wbuf_header(&w, SV_STR_LIT("Content-Type"), content_type);
    sv_wbuf_lit(&w, "Content-Length: ");
    sv_wbuf_u64(&w, body.len);
    sv_wbuf_lit(&w, "\r\n");
    if (close)
        sv_wbuf_lit(&w, "Connection: close\r\n");
    sv_wbuf_lit(&w, "\r\n");
    sv_wbuf_str(&w, body);
    return sv_wbuf_result(&w);
}

ssize_t sv_http_format_xff(const struct sockaddr *sa, char *out, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN];
    const char *s = NULL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        s = inet_ntop(AF_INET, &in->sin_addr, tmp, sizeof(tmp));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            s = inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], tmp, sizeof(tmp));
        else
            s = inet_ntop(AF_INET6, &in6->sin6_addr, tmp, sizeof(tmp));
    } else {
        return -EAFNOSUPPORT;
    }
    if (!s)
        return -EAFNOSUPPORT;
    size_t n = strlen(tmp);
    if (n + 1 > cap)
        return -ENOSPC;
    memcpy(out, tmp, n + 1);
    return (ssize_t)n;
}

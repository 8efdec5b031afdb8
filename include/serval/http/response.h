/* Responses the proxy makes itself: canned error answers as static bytes, redirects (Gateway API
 * RequestRedirect), a generic small response writer, and the X-Forwarded-For address format.
 * Pure; any thread; no allocation. */
#ifndef SERVAL_HTTP_RESPONSE_H
#define SERVAL_HTTP_RESPONSE_H

#include "serval/base/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sockaddr;

/* "HTTP/1.1 100 Continue\r\n\r\n": the interim answer to Expect: 100-continue. */
extern const struct sv_str sv_http_100_continue;

/* A complete canned response for <status> (400 404 408 413 421 431 500 501 502 503 504 505):
 * status line, Content-Type: text/plain, Content-Length, a one-line body, and "Connection: close"
 * when <close> (else nothing: the connection stays open). The bytes are static and never freed.
 * Returns SV_STR_NULL (ptr NULL) for any other status. Any thread. */
struct sv_str sv_http_canned(int status, bool close);

/* Pieces of a redirect Location: scheme "://" host [":" port] path ["?" query]. <port> 0 or the
 * scheme's well-known port (http 80, https 443) is left out, as Gateway API asks. <path> empty
 * means "/". <query> ptr NULL means no '?'. */
struct sv_http_location {
    struct sv_str scheme;
    struct sv_str host;
    uint16_t port;
    struct sv_str path;
    struct sv_str query;
};

/* Write a complete redirect response (301 302 303 307 308) with the Location built from <loc>,
 * an empty body (Content-Length: 0) and "Connection: close" when <close>. Returns bytes written,
 * -EINVAL for another status or a Location containing CR/LF/control bytes, -ENOSPC when <cap> is
 * too small. Any thread. */
ssize_t sv_http_write_redirect(char *out, size_t cap, int status,
                               const struct sv_http_location *loc, bool close);

/* Write a complete response: status line with the standard reason, Content-Type <content_type>
 * (omitted when its ptr is NULL), Content-Length of <body>, "Connection: close" when <close>,
 * then <body>. Returns bytes written, -EINVAL for a status outside 100..999 or a content type
 * with control bytes, -ENOSPC when <cap> is too small. Any thread. */
ssize_t sv_http_write_simple_response(char *out, size_t cap, int status, bool close,
                                      struct sv_str content_type, struct sv_str body);

/* Format the address of <sa> (AF_INET or AF_INET6; IPv4-mapped IPv6 printed as IPv4; IPv6
 * without brackets or port, as X-Forwarded-For carries it) into <out>[<cap>], NUL-terminated.
 * Returns the length (without NUL), -EAFNOSUPPORT or -ENOSPC. Any thread. */
ssize_t sv_http_format_xff(const struct sockaddr *sa, char *out, size_t cap);

#endif

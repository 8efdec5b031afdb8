/* HTTP/1.1 head writers for the proxy: the request head sent upstream and the response head sent
 * back to the client, with hop-by-hop headers removed, Gateway API header modifiers applied and
 * X-Forwarded-* added. Pure functions over caller buffers; any thread; no allocation.
 *
 * Hop-by-hop (never forwarded as received): Connection and every header it lists, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding (written again as "Transfer-Encoding: chunked"
 * when the body is chunked), Upgrade (kept only when proxying an upgrade, with "Connection:
 * upgrade"). */
#ifndef SERVAL_HTTP_SERIALIZE_H
#define SERVAL_HTTP_SERIALIZE_H

#include "serval/http/message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Gateway API RequestHeaderModifier / ResponseHeaderModifier, as pure data (the routing module
 * embeds it in compiled routes; the arrays live in the route's arena). Names compare ASCII
 * case-insensitively. Applied in this order: remove deletes every instance of each name; set
 * replaces every instance of a name with one header carrying the given value (added when
 * absent); add appends one more header line with the given value (existing ones are kept). */
struct sv_http_header_mods {
    const struct sv_http_header *set;
    uint32_t n_set;
    const struct sv_http_header *add;
    uint32_t n_add;
    const struct sv_str *remove;
    uint32_t n_remove;
};

/* How the request head sent upstream differs from the client's. A zeroed struct (or NULL)
 * forwards the head unchanged apart from hop-by-hop handling. */
struct sv_http_rewrite {
    struct sv_str target;                   /* new path+query ("/x?y"); ptr NULL = keep path and
                                               query of the client's target */
    struct sv_str host;                     /* new Host value; ptr NULL = keep head->host */
    const struct sv_http_header_mods *mods; /* request header modifier, or NULL */
    struct sv_str xff;                      /* client address ("192.0.2.1", see
                                               sv_http_format_xff) appended to X-Forwarded-For;
                                               ptr NULL = leave X-Forwarded-For alone */
    struct sv_str xf_proto;                 /* X-Forwarded-Proto value to set; ptr NULL = none */
    uint16_t xf_port;                       /* X-Forwarded-Port value to set; 0 = none */
    bool upgrade;                           /* proxying an upgrade: keep Upgrade, send
                                               "Connection: upgrade" */
    bool http10;                            /* send "HTTP/1.0" + "Connection: keep-alive"
                                               instead of HTTP/1.1: set it for HTTP/1.0
                                               clients, so the upstream never answers with a
                                               chunked body they could not read (nginx's
                                               proxy_http_version 1.0 idea) */
};

/* True when header <name> is hop-by-hop for message <head>: one of the fixed names above or a
 * token listed in one of its Connection headers. Any thread. */
bool sv_http_is_hop_by_hop(const struct sv_http_head *head, struct sv_str name);

/* Apply <mods> semantics to one header name: 1 when a header named <name> must be dropped from
 * the original message (it is removed or set), 0 when kept. Any thread. */
bool sv_http_mods_drop(const struct sv_http_header_mods *mods, struct sv_str name);

/* Write the request head for the upstream into <out>[<cap>]: "<METHOD> <path?query> HTTP/1.1",
 * Host (rewritten or passed through, added from an absolute-form target when missing; left out
 * when empty on an HTTP/1.0 request (<rw>->http10), where it is optional), the
 * client's end-to-end headers in order with <rw>->mods applied, X-Forwarded-For/-Proto/-Port,
 * "Content-Length" or "Transfer-Encoding: chunked" as framed by the client, Upgrade +
 * "Connection: upgrade" when <rw>->upgrade, and the final CRLF. Always HTTP/1.1; an HTTP/1.0
 * client's framing is kept (unless <rw>->http10). Upstream connections are keep-alive (no
 * Connection header unless upgrading or <rw>->http10). Modifiers never write Host (a "set" of Host
 * rewrites it when <rw>->host is not given), Content-Length or hop-by-hop names. <rw> may be NULL.
 * Returns the bytes written, -EINVAL when a rewrite or modifier holds CR/LF/control bytes (header
 * injection), or -ENOSPC (the contents of <out> are then unspecified). Any thread; no allocation.
 */
ssize_t sv_http_write_request_head(const struct sv_http_head *head,
                                   const struct sv_http_rewrite *rw, char *out, size_t cap);

/* Options of sv_http_write_response_head. */
enum sv_http_resp_flag {
    SV_HTTP_RESP_KEEP_ALIVE = 1u << 0, /* the client connection stays open after this response;
                                          otherwise "Connection: close" is written */
    SV_HTTP_RESP_CLIENT_10 = 1u << 1,  /* the client spoke HTTP/1.0: write "Connection:
                                          keep-alive" when keeping it alive */
    SV_HTTP_RESP_DECHUNK = 1u << 2,    /* the body will be sent de-chunked (spans from
                                          sv_http_parse_body_spans): no Transfer-Encoding, and
                                          "Connection: close" (the client reads until close) */
};

/* Write the response head for the client into <out>[<cap>]: "HTTP/1.1 <status> <reason>",
 * the upstream's end-to-end headers with <mods> applied (NULL = none), Content-Length or
 * "Transfer-Encoding: chunked" as framed by the upstream, "Connection: close" unless
 * SV_HTTP_RESP_KEEP_ALIVE (also forced for a close-delimited body), "Connection: keep-alive" for
 * a kept HTTP/1.0 client, for 101 the Upgrade header with "Connection: upgrade", and nothing
 * about the connection on other 1xx. <flags> is a mask of enum sv_http_resp_flag. Returns the
 * bytes written; 0 when nothing may be sent (an interim 1xx response to an HTTP/1.0 client,
 * RFC 9110 §15.2: drop it and wait for the final response); -EINVAL (bad modifier bytes, status
 * outside 100..999) or -ENOSPC. Any thread; no allocation. Note: a chunked body is forwarded
 * chunked, also to an HTTP/1.0 client: send its request upstream with sv_http_rewrite.http10 so
 * the upstream does not chunk. */
ssize_t sv_http_write_response_head(const struct sv_http_head *head,
                                    const struct sv_http_header_mods *mods, unsigned flags,
                                    char *out, size_t cap);

#endif

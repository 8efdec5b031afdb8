/* HTTP/2 <-> HTTP/1.1 head conversion for the h2 frontend (h2.c) and h2c upstreams
 * (h2_upstream.c). Pure functions over caller
 * buffers; any thread; no allocation.
 *
 * Requests: the stream's pseudo-headers and fields become an HTTP/1.1 request head, which the
 * data plane then parses and routes exactly like one read from an HTTP/1.1 client (same checks,
 * limits, filters). :authority becomes Host (a "host" field is used only without :authority,
 * RFC 9113 §8.3.1); cookie crumbs are joined into one Cookie field with "; " (§8.2.3); a body
 * without content-length is sent upstream chunked.
 *
 * Responses: an HTTP/1.1 response head (as the proxy writes it for an HTTP/1.1 client) becomes
 * the nghttp2 header list: ":status", then the fields with lower-case names, without the
 * connection-specific ones (Connection and what it lists, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade: RFC 9113 §8.2.2). */
#ifndef SERVAL_DATAPLANE_H2_CONV_H
#define SERVAL_DATAPLANE_H2_CONV_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "serval/base/str.h"
#include "serval/http/message.h"

struct sv_h2_req {
    struct sv_str method;    /* :method */
    struct sv_str path;      /* :path */
    struct sv_str authority; /* :authority (may be empty) */
    struct sv_str host;      /* value of a "host" field (used when :authority is empty) */
    struct sv_str lines;     /* every other field as "name: value\r\n" (lower-case names, as
                                HTTP/2 requires), in arrival order */
    bool body;               /* DATA frames follow (the HEADERS did not end the stream) */
    bool has_cl;             /* <lines> carries a content-length field */
};

/* Write "<method> <path> HTTP/1.1\r\nHost: <authority>\r\n<lines>" plus the framing
 * ("Transfer-Encoding: chunked" for a body without content-length; "Content-Length: 0" for a
 * body-less POST/PUT/PATCH without one) and the final CRLF into out[cap]. No Host line when
 * both authority and host are empty (the request parser then answers 400). Returns the length,
 * or -ENOSPC. */
ssize_t sv_h2_request_head(const struct sv_h2_req *r, char *out, size_t cap);

/* Fill nv[0..nv_cap) from response head <h> (status and fields; the strings of <h> must stay
 * valid until nghttp2 copied them, i.e. until nghttp2_submit_response returns). Lower-case
 * names and the status digits go to scratch[scap]. Returns the number of entries, or -ENOSPC. */
ssize_t sv_h2_response_nv(const struct sv_http_head *h, nghttp2_nv *nv, size_t nv_cap,
                          char *scratch, size_t scap);

/* Fill nv[0..nv_cap) from request head <h> for an HTTP/2 upstream (h2c): :method, :scheme
 * "http", :authority (the Host; left out when empty), :path (the origin-form target), then the
 * fields with lower-case names, without Host and the connection-specific ones. Strings of <h>
 * must stay valid until nghttp2 copied them (nghttp2_submit_request); lower-case names (and the
 * path of an absolute-form target) go to scratch[scap]. Returns the number of entries, or
 * -ENOSPC. */
ssize_t sv_h2_request_nv(const struct sv_http_head *h, nghttp2_nv *nv, size_t nv_cap,
                         char *scratch, size_t scap);

/* True for a field name that must not appear in HTTP/2 (see top). Case-insensitive. */
bool sv_h2_is_connection_header(const struct sv_http_head *h, struct sv_str name);

#endif

/* HTTP/1.1 message model: a parsed request or response head whose strings all point into the
 * caller's buffer (nothing is copied, nothing is owned). Pure data + small pure helpers; any
 * thread. The routing module includes this header for the method and header types. */
#ifndef SERVAL_HTTP_MESSAGE_H
#define SERVAL_HTTP_MESSAGE_H

#include "serval/base/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sv_http_method {
    SV_HTTP_GET = 0,
    SV_HTTP_HEAD,
    SV_HTTP_POST,
    SV_HTTP_PUT,
    SV_HTTP_DELETE,
    SV_HTTP_CONNECT,
    SV_HTTP_OPTIONS,
    SV_HTTP_TRACE,
    SV_HTTP_PATCH,
    SV_HTTP_OTHER, /* any other token: see sv_http_head.method_str */
    SV_HTTP_METHOD_COUNT
};

/* Upper-case method names indexed by enum sv_http_method; [SV_HTTP_OTHER] is "". */
extern const struct sv_str sv_http_method_names[SV_HTTP_METHOD_COUNT];

/* The method whose name is exactly <s> (methods are case-sensitive), else SV_HTTP_OTHER. Any
 * thread. */
enum sv_http_method sv_http_method_from_str(struct sv_str s);

enum sv_http_kind { SV_HTTP_REQUEST = 1, SV_HTTP_RESPONSE = 2 };

/* The four request-target forms of RFC 9112 §3.2. */
enum sv_http_target_form {
    SV_HTTP_TARGET_ORIGIN = 0, /* /path?query */
    SV_HTTP_TARGET_ABSOLUTE,   /* http://authority/path?query */
    SV_HTTP_TARGET_AUTHORITY,  /* host:port (CONNECT only) */
    SV_HTTP_TARGET_ASTERISK,   /* * (OPTIONS only) */
};

/* One header field. Both strings point into the parsed buffer; the value has no leading or
 * trailing whitespace. Names keep the case they arrived with. */
struct sv_http_header {
    struct sv_str name;
    struct sv_str value;
};

/* Flags of sv_http_head.flags. */
enum sv_http_head_flag {
    SV_HTTP_F_CONTENT_LENGTH = 1u << 0,   /* a (valid, single-valued) Content-Length is present */
    SV_HTTP_F_CHUNKED = 1u << 1,          /* Transfer-Encoding: chunked */
    SV_HTTP_F_KEEP_ALIVE = 1u << 2,       /* the connection may carry another message after this
                                             one (1.1 without close; 1.0 with keep-alive) */
    SV_HTTP_F_CONNECTION_CLOSE = 1u << 3, /* Connection lists "close" */
    SV_HTTP_F_UPGRADE = 1u << 4,          /* request: Upgrade present and Connection lists
                                             "upgrade" (token in .upgrade); response: 101 */
    SV_HTTP_F_EXPECT_CONTINUE = 1u << 5,  /* request: Expect: 100-continue */
    SV_HTTP_F_BODY = 1u << 6,             /* a body follows the head (see sv_http_body_begin) */
    SV_HTTP_F_CONNECTION_OTHER = 1u << 7, /* Connection lists tokens other than close/keep-alive/
                                             upgrade (those headers are hop-by-hop too) */
    SV_HTTP_F_HOST = 1u << 8,             /* request: a Host header is present */
    SV_HTTP_F_INTERIM = 1u << 9,          /* response: 1xx other than 101 (a final one follows) */
    SV_HTTP_F_TUNNEL = 1u << 10,          /* response: 2xx to CONNECT (bytes become a tunnel) */
    SV_HTTP_F_QUERY = 1u << 11,           /* request: the target has a '?' (query may be empty) */
    SV_HTTP_F_CONNECTION_KEEP_ALIVE = 1u << 12, /* Connection lists "keep-alive" */
    SV_HTTP_F_CONNECTION_UPGRADE = 1u << 13,    /* Connection lists "upgrade" */
};

/* A parsed message head. Fill .headers/.headers_cap with sv_http_head_init() before parsing;
 * everything else is written by the parser. All sv_str fields point into the parsed buffer, which
 * must outlive the head (and must not move while the head is in use). */
struct sv_http_head {
    enum sv_http_kind kind;
    /* request line (requests) */
    enum sv_http_method method;
    struct sv_str method_str; /* the method token as received */
    struct sv_str target;     /* request-target as received */
    enum sv_http_target_form target_form;
    struct sv_str scheme;    /* absolute-form only ("http" or "https"), else empty */
    struct sv_str authority; /* absolute-form and authority-form, else empty */
    struct sv_str path;      /* origin/absolute: "/..." (a static "/" when an
                                absolute-form target has no path); asterisk: "*";
                                authority-form: empty */
    struct sv_str query;     /* after '?', without it; empty if none (see F_QUERY) */
    /* status line (responses) */
    uint16_t status;
    struct sv_str reason;
    enum sv_http_method request_method; /* response: the method of the request it answers */
    /* both */
    uint8_t version_minor;          /* 0 or 1 (HTTP/1.x only) */
    uint32_t flags;                 /* enum sv_http_head_flag */
    uint64_t content_length;        /* valid when SV_HTTP_F_CONTENT_LENGTH */
    struct sv_str host;             /* request: authority of an absolute-form target, else the
                                       Host header value; empty if neither */
    struct sv_str upgrade;          /* Upgrade header value when SV_HTTP_F_UPGRADE */
    struct sv_http_header *headers; /* caller storage, in arrival order */
    uint32_t n_headers;
    uint32_t headers_cap;
};

/* Reset <h> to empty and give it <cap> header slots at <storage> (caller-owned, must outlive the
 * head). Any thread. */
void sv_http_head_init(struct sv_http_head *h, struct sv_http_header *storage, uint32_t cap);

/* Index of the first header named <name> (ASCII case-insensitive) at index >= <start>, or -1.
 * Iterate repeated headers with: for (i = find(h,n,0); i >= 0; i = find(h,n,i+1)). Any thread. */
int sv_http_head_find(const struct sv_http_head *h, struct sv_str name, uint32_t start);

/* Value of the first header named <name>, or SV_STR_NULL (ptr NULL) when absent. Any thread. */
struct sv_str sv_http_head_get(const struct sv_http_head *h, struct sv_str name);

/* Join the values of every header named <name> with "," (no space, in arrival order) into
 * <out>[<cap>]. Not NUL-terminated. Returns the length written, -ENOENT when the header is absent,
 * -ENOSPC when <cap> is too small. Any thread; no allocation. */
ssize_t sv_http_head_join(const struct sv_http_head *h, struct sv_str name, char *out, size_t cap);

/* Iterate a comma-separated header list: stores the next element (spaces and tabs trimmed; may
 * be empty, e.g. "a,,b") in *elem and advances *pos past its comma. Start with *pos = 0.
 * Returns false when the list is exhausted. Any thread; no allocation. */
bool sv_http_list_next(struct sv_str value, size_t *pos, struct sv_str *elem);

/* True when the comma-separated list <value> (OWS around elements allowed, empty elements
 * skipped) contains <token> (ASCII case-insensitive). Bounded by <value>.len. Any thread. */
bool sv_http_list_has(struct sv_str value, struct sv_str token);

/* Reason phrase for <status> ("Not Found"), or "Unknown" for codes we do not name. Any thread;
 * returns a static string. */
const char *sv_http_reason(int status);

#endif

// clang-format off
/* HTTP/1.1 head parser and body framer over llhttp (Debian's llhttp 8.1), plus our own strict
 * checks where llhttp is lax (bare LF, obs-fold, bytes in names/values/target, Host, CL/TE).
 *
 * Usage on one direction of one connection (requests from a client, or responses from an
 * upstream):
 *
 *   sv_http_parser_init(&p, SV_HTTP_REQUEST, &limits);          once
 *   loop per message:
 *     [response parser: sv_http_parser_set_request_method(&p, m)]
 *     sv_http_parse_head(&p, headbuf, len, &head, &head_len)     again with more bytes while AGAIN
 *     kind = sv_http_body_begin(&p)                              NONE/LENGTH/CHUNKED/UNTIL_CLOSE/TUNNEL
 *     sv_http_parse_body(&p, data, n, &used, &done)              until done; bytes past <used>
 *                                                                belong to the next message
 *     [UNTIL_CLOSE: sv_http_parse_eof(&p) when the peer closes]
 *     sv_http_parser_reset(&p)                                   before the next head
 *
 * The parser holds no pointer into any buffer between calls and never allocates, so it can be
 * embedded by value in a connection. One parser is used by one thread at a time (a worker).
 * Errors are sticky: after a negative return every call returns the same error until reset or
 * init (callers close the connection after answering, see sv_http_error_status). */
// clang-format on
#ifndef SERVAL_HTTP_PARSER_H
#define SERVAL_HTTP_PARSER_H

#include "serval/base/limits.h"
#include "serval/http/message.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sv_http_limits {
    uint32_t max_header_bytes; /* whole head incl. request/status line and final CRLF (431) */
    uint32_t max_headers;      /* header fields (431); also capped by head->headers_cap */
};

#define SV_HTTP_LIMITS_DEFAULT                                                                     \
    ((struct sv_http_limits){SV_DEFAULT_MAX_HEADER_BYTES, SV_MAX_HEADERS})

/* Results. 0 and positive: progress; negative: the message is bad, answer with
 * sv_http_error_status() and close the connection. */
enum sv_http_result {
    SV_HTTP_OK = 0,
    SV_HTTP_AGAIN = 1, /* need more bytes */

    SV_HTTP_E_SYNTAX = -1,             /* malformed start line or header line (400) */
    SV_HTTP_E_BARE_LF = -2,            /* LF not preceded by CR in the head (400) */
    SV_HTTP_E_BARE_CR = -3,            /* CR not followed by LF (400) */
    SV_HTTP_E_OBS_FOLD = -4,           /* line folding (400) */
    SV_HTTP_E_HEADER_NAME = -5,        /* empty name or non-token byte in a name (400) */
    SV_HTTP_E_SPACE_BEFORE_COLON = -6, /* whitespace between name and colon (400) */
    SV_HTTP_E_HEADER_VALUE = -7,       /* control byte or DEL in a value (400) */
    SV_HTTP_E_METHOD = -8,             /* method llhttp does not know, e.g. lower case (501) */
    SV_HTTP_E_TARGET = -9,             /* bad request-target (400) */
    SV_HTTP_E_VERSION = -10,           /* not HTTP/1.0 or HTTP/1.1 (505 for requests) */
    SV_HTTP_E_STATUS = -11,            /* bad status code (responses) */
    SV_HTTP_E_CL_TE = -12,             /* Content-Length together with Transfer-Encoding (400) */
    SV_HTTP_E_CL_DUP = -13,            /* repeated or list-valued Content-Length (400) */
    SV_HTTP_E_CL_INVALID = -14,        /* Content-Length not a plain decimal (400) */
    SV_HTTP_E_TE = -15,                /* Transfer-Encoding whose last coding is not chunked,
                                          chunked twice, or any in an HTTP/1.0 message (400) */
    SV_HTTP_E_TE_UNSUPPORTED = -16,    /* a coding other than chunked before chunked (501) */
    SV_HTTP_E_NO_HOST = -17,           /* HTTP/1.1 request without Host (400) */
    SV_HTTP_E_MULTI_HOST = -18,        /* more than one Host header (400) */
    SV_HTTP_E_HEAD_TOO_LARGE = -19,    /* head longer than max_header_bytes (431) */
    SV_HTTP_E_TOO_MANY_HEADERS = -20,  /* more header fields than allowed (431) */
    SV_HTTP_E_CHUNK = -21,             /* bad chunk size line / chunk framing (400) */
    SV_HTTP_E_BODY = -22,              /* other body framing error reported by llhttp (400) */
    SV_HTTP_E_EOF = -23,               /* the peer closed in the middle of a message (400/502) */
    SV_HTTP_E_STATE = -24,             /* API misuse (call out of order); a bug in the caller */
    SV_HTTP_E_INTERNAL = -25,          /* llhttp disagreed with our own framing checks (400) */
    SV_HTTP_E_HOST = -26,              /* Host value with bytes outside uri-host[:port] (400) */
};

/* How the body after a head is delimited. */
enum sv_http_body_kind {
    SV_HTTP_BODY_NONE = 0,    /* no body: the message ended with its head */
    SV_HTTP_BODY_LENGTH,      /* exactly head.content_length bytes (> 0) */
    SV_HTTP_BODY_CHUNKED,     /* chunked framing, checked by llhttp, forwarded byte for byte */
    SV_HTTP_BODY_UNTIL_CLOSE, /* response only: every byte until the upstream closes */
    SV_HTTP_BODY_TUNNEL,      /* CONNECT 2xx / 101 / upgrade: bytes after the head are opaque */
};

/* One parser; embed by value. Fields starting with _ are private. */
struct sv_http_parser {
    llhttp_t _ll; /* body framing (and a second opinion on the head) */
    struct sv_http_limits _limits;
    enum sv_http_kind _kind;
    enum sv_http_method _req_method; /* response parser: method of the request being answered */
    uint8_t _phase;                  /* private enum in parser.c */
    uint8_t _body_kind;              /* enum sv_http_body_kind, valid after a head */
    bool _ll_done;                   /* llhttp reported on_message_complete */
    int _error;                      /* sticky enum sv_http_result (< 0) or 0 */
    uint32_t _scan;                  /* bytes of the head already scanned for its end */
    uint32_t _line_start;            /* offset of the line the scan is in */
    uint32_t _skip;                  /* leading empty lines skipped (requests) */
    uint32_t _head_len;              /* length of the parsed head */
    uint64_t _content_length;        /* LENGTH bodies: bytes expected */
    uint64_t _body_seen;             /* body bytes consumed so far */
    uint64_t _ll_cl;                 /* llhttp's Content-Length at headers complete */
    uint16_t _ll_flags;              /* llhttp's flags at headers complete */
    bool _ll_headers_done;           /* llhttp reached headers complete */
    bool _ll_skip_body;              /* tell llhttp the response has no body */
    uint8_t _cstate;                 /* our strict chunked framer: private enum in parser.c */
    bool _chunk_digits;              /* the chunk-size line has at least one digit */
    uint32_t _chunk_line;            /* bytes in the current size line / whole trailer */
    uint64_t _chunk_left;            /* chunk-size being read, then data bytes left */
};

/* Prepare <p> for messages of <kind>; <limits> NULL means SV_HTTP_LIMITS_DEFAULT. Any thread
 * (no allocation). */
void sv_http_parser_init(struct sv_http_parser *p, enum sv_http_kind kind,
                         const struct sv_http_limits *limits);

/* Get ready for the next message head on the same connection (keeps kind, limits and the
 * request method). Clears a sticky error too. Owner thread. */
void sv_http_parser_reset(struct sv_http_parser *p);

/* Response parsers: the method of the request this response answers (HEAD → no body,
 * CONNECT 2xx → tunnel). Call before sv_http_parse_head for each response. Owner thread. */
void sv_http_parser_set_request_method(struct sv_http_parser *p, enum sv_http_method m);

/* Parse the head at the start of <buf>[<len>], which holds every byte received so far for this
 * message (it may also hold body bytes and later pipelined messages after the head). Call again
 * with the same bytes plus more after SV_HTTP_AGAIN (the buffer may have moved, its prefix must
 * not change); only the new bytes are scanned, and the full parse runs once, when the end of the
 * head is seen. The parser never reads past <len>.
 * On SV_HTTP_OK fills <head> (strings point into <buf>) and sets *<head_len> to the number of
 * bytes of the head (including leading empty lines skipped and the final CRLF CRLF); body bytes
 * start at buf + *head_len. Returns SV_HTTP_OK, SV_HTTP_AGAIN or a negative enum sv_http_result.
 * <head> must have been set up with sv_http_head_init(). Owner thread; no allocation. */
int sv_http_parse_head(struct sv_http_parser *p, const char *buf, size_t len,
                       struct sv_http_head *head, size_t *head_len);

/* After SV_HTTP_OK from sv_http_parse_head: how the body is delimited, and arm the body framer.
 * NONE and TUNNEL need no sv_http_parse_body call (the message is over at the head; for TUNNEL
 * the caller stops parsing HTTP on this connection). Owner thread. */
enum sv_http_body_kind sv_http_body_begin(struct sv_http_parser *p);

/* Feed body bytes <data>[<len>] of the current message. Sets *<used> to how many of them belong
 * to this message (the rest start the next message) and *<done> when the message is complete.
 * Chunked framing is checked twice, by our strict framer (hex sizes, CRLF everywhere, extension
 * bytes, trailer fields as strict as header fields: no bare LF, no obs-fold, no space before
 * colon, trailer section within max_header_bytes) and by llhttp, which must end the message at
 * the same byte; the bytes are meant to be forwarded as they are. Returns SV_HTTP_OK (also when
 * more bytes are needed: then *used == len and !*done) or a negative enum sv_http_result. Owner
 * thread; no allocation. */
int sv_http_parse_body(struct sv_http_parser *p, const char *data, size_t len, size_t *used,
                       bool *done);

/* Like sv_http_parse_body, and also reports where the payload is: up to <max_spans> spans
 * (pointing into <data>) whose concatenation is the body content of the bytes consumed, without
 * chunk framing, extensions or trailers. Stops early (with *<used> < <len> and !*<done>) when the
 * spans run out: call again with the rest. Use it to de-chunk a body for an HTTP/1.0 client (with
 * SV_HTTP_RESP_DECHUNK), sending the spans instead of the raw bytes. Sets *<n_spans>. Same return
 * contract; owner thread; no allocation. */
int sv_http_parse_body_spans(struct sv_http_parser *p, const char *data, size_t len, size_t *used,
                             bool *done, struct sv_str *spans, uint32_t max_spans,
                             uint32_t *n_spans);

/* The peer closed its side. For UNTIL_CLOSE bodies this ends the message (returns SV_HTTP_OK);
 * in any other place in a message it returns SV_HTTP_E_EOF; between messages (nothing received
 * yet for the next head) it returns SV_HTTP_OK. Owner thread. */
int sv_http_parse_eof(struct sv_http_parser *p);

/* The HTTP status to answer for error <err> of a parser of <kind>: requests get 400, 431, 501
 * or 505; a bad upstream response is 502. Any thread. */
int sv_http_error_status(int err, enum sv_http_kind kind);

/* A short static name for <err> ("bare LF"), for logs. Any thread. */
const char *sv_http_error_name(int err);

#endif

/* Pure pieces of the Kubernetes API client, kept apart so they can be tested byte by byte:
 * HTTP/1.1 response head parsing, chunked transfer decoding, newline framing of watch events
 * (never framed by chunk), and exponential backoff with jitter. No I/O, no globals.
 */
#ifndef SERVAL_CONTROL_K8S_STREAM_H
#define SERVAL_CONTROL_K8S_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Consumer of decoded bytes or of a framed line. Returns 0 to go on, a negative errno to stop
 * (the feeding function then returns it unchanged). */
typedef int (*sv_k8s_bytes_fn)(void *ctx, const char *p, size_t n);

/* ---- response head ------------------------------------------------------------------------ */

struct sv_k8s_resp_head {
    int status;             /* 100..599 */
    int64_t content_length; /* -1 if absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool close;             /* Connection: close (or HTTP/1.0 without keep-alive) */
    int retry_after_s;      /* Retry-After seconds, -1 if absent or not a number */
    bool gzip;              /* Content-Encoding: gzip (we never ask for it) */
};

/* Parse a response head: <p>/<n> runs through the blank line that ends it ("\r\n\r\n").
 * Returns 0 or -EINVAL (malformed status line or header, conflicting lengths). */
int sv_k8s_parse_head(const char *p, size_t n, struct sv_k8s_resp_head *h);

/* ---- chunked transfer coding -------------------------------------------------------------- */

struct sv_k8s_chunked {
    int _state;
    uint64_t _rem;
    unsigned _digits;
    unsigned _ext; /* bytes of chunk extensions / trailer line, bounded */
};

/* Decode <p>/<n> (any split), handing chunk data to <fn>. Returns 0 when more input is needed,
 * 1 when the last chunk and its trailers were consumed (*used says how many bytes of <p> were
 * consumed in that case; otherwise all were), -EINVAL on a malformed coding, or fn's error. */
int sv_k8s_chunked_feed(struct sv_k8s_chunked *c, const char *p, size_t n, size_t *used,
                        sv_k8s_bytes_fn fn, void *ctx);

/* ---- newline framing of watch events ------------------------------------------------------ */

#define SV_K8S_MAX_EVENT (8u << 20)

struct sv_k8s_lines {
    char *_buf;
    size_t _len, _cap;
    size_t max; /* longest line accepted (0 = SV_K8S_MAX_EVENT) */
};

/* Append <p>/<n>; for every complete line (without "\n" and a trailing "\r"; empty lines are
 * skipped) call <fn>. Returns 0, -E2BIG when a line grows past max (a stream error: the caller
 * drops the stream), -ENOMEM, or fn's error. */
int sv_k8s_lines_feed(struct sv_k8s_lines *l, const char *p, size_t n, sv_k8s_bytes_fn fn,
                      void *ctx);

/* Bytes of an unfinished line held. */
size_t sv_k8s_lines_pending(const struct sv_k8s_lines *l);

/* Drop any partial line and free the buffer. */
void sv_k8s_lines_reset(struct sv_k8s_lines *l);

/* ---- backoff ------------------------------------------------------------------------------ */

struct sv_k8s_backoff {
    uint32_t base_ms; /* 0 = 100 */
    uint32_t cap_ms;  /* 0 = 30000 */
    uint32_t failures;
    uint64_t _rng;    /* seeded by the caller (0 = fixed seed) */
};

/* Delay before the next attempt after one more failure: d = min(cap, base * 2^failures), then
 * "equal jitter": uniform in [d/2, d]. Increments failures. */
uint32_t sv_k8s_backoff_next(struct sv_k8s_backoff *b);

/* max(Retry-After, the next backoff delay) for a 429/5xx that carried Retry-After (<0 = none). */
uint32_t sv_k8s_backoff_retry_after(struct sv_k8s_backoff *b, int retry_after_s);

void sv_k8s_backoff_reset(struct sv_k8s_backoff *b);

/* Small xorshift generator for jitter (never 0 once seeded). */
uint64_t sv_k8s_rand(uint64_t *state);

#endif

/* Regex matching for RegularExpression path/header/query matches: PCRE2, anchored at both ends
 * (the whole subject must match), case-sensitive, no UTF mode (bytes).
 *
 * Patterns are compiled (and JIT-compiled when the library supports it) on the control thread.
 * Matching runs on workers and must not call malloc: each thread gets its match data and match
 * context from a small thread-local buffer through a PCRE2 general context with its own
 * allocator. The interpreter's backtracking frames also come from that buffer (the heap limit
 * keeps them inside it); a match that would need more fails as "no match". A match limit bounds
 * CPU time on hostile patterns/subjects. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/table_int.h"
#include "serval/base/assert.h"
#include "serval/base/log.h"

#define SV_REGEX_TLS_BYTES (48 * 1024)
#define SV_REGEX_HEAP_LIMIT_KIB 32
#define SV_REGEX_MATCH_LIMIT 200000

struct sv_regex {
    pcre2_code *code;
};

struct regex_tls {
    unsigned char buf[SV_REGEX_TLS_BYTES] __attribute__((aligned(16)));
    size_t used;
    size_t last; /* offset of the most recent allocation (LIFO free) */
    pcre2_general_context *gc;
    pcre2_match_context *mc;
    pcre2_match_data *md;
    int state; /* 0 = not set up, 1 = ready, -1 = failed */
};

static __thread struct regex_tls *tls_rx;
static __thread struct regex_tls tls_rx_storage;

static void *tls_malloc(PCRE2_SIZE size, void *data)
{
    struct regex_tls *t = data;
    size_t n = (size + 15) & ~(size_t)15;
    if (n > sizeof(t->buf) - t->used)
        return NULL;
    void *p = t->buf + t->used;
    t->last = t->used;
    t->used += n;
    return p;
}

static void tls_free(void *p, void *data)
{
    struct regex_tls *t = data;
    if (p && (unsigned char *)p == t->buf + t->last) {
        t->used = t->last; /* undo the most recent allocation; others stay (bounded buffer) */
    }
}

static struct regex_tls *tls_get(void)
{
    struct regex_tls *t = tls_rx;
    if (sv_likely(t != NULL))
        return t->state == 1 ? t : NULL;
    t = &tls_rx_storage;
    tls_rx = t;
    t->state = -1;
    /* the general context itself is allocated with our allocator too */
    t->gc = pcre2_general_context_create(tls_malloc, tls_free, t);
    if (!t->gc)
        return NULL;
    t->mc = pcre2_match_context_create(t->gc);
    if (!t->mc)
        return NULL;
    pcre2_set_match_limit(t->mc, SV_REGEX_MATCH_LIMIT);
    pcre2_set_heap_limit(t->mc, SV_REGEX_HEAP_LIMIT_KIB);
    t->md = pcre2_match_data_create(1, t->gc);
    if (!t->md)
        return NULL;
    t->last = t->used; /* never roll back below the persistent objects */
    t->state = 1;
    return t;
}

struct sv_regex *sv_regex_compile_(struct sv_str pattern, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern.ptr, pattern.len,
                                     PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY,
                                     &ec, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "bad regular expression \"%.*s\" at offset %zu: %s",
                 (int)SV_MIN(pattern.len, 200), pattern.ptr, (size_t)off, (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional: interpreter otherwise */
    struct sv_regex *re = malloc(sizeof(*re));
    if (!re) {
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    re->code = code;
    return re;
}

void sv_regex_free_(struct sv_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re);
}

int sv_regex_match_(const struct sv_regex *re, struct sv_str subject)
{
    struct regex_tls *t = tls_get();
    if (!t)
        return 0;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(subject.ptr ? subject.ptr : ""), subject.len, 0,
                         0, t->md, t->mc);
    if (rc >= 0)
        return 1;
    if (rc != PCRE2_ERROR_NOMATCH)
        sv_log_rl(1, SV_LOG_WARN, "routing", "regex match failed (%d); treated as no match", rc);
    return 0;
}

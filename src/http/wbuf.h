/* Module-internal: a bounded writer into a caller buffer. Writes past <cap> are dropped and
 * remembered, so a writer can emit everything and check once at the end. */
#ifndef SERVAL_HTTP_WBUF_H
#define SERVAL_HTTP_WBUF_H

#include "serval/base/str.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct sv_wbuf {
    char *p;
    size_t n;
    size_t cap;
    bool overflow;
};

static inline void sv_wbuf_put(struct sv_wbuf *w, const char *s, size_t len)
{
    if (w->overflow || len > w->cap - w->n) {
        w->overflow = true;
        return;
    }
    if (len)
        memcpy(w->p + w->n, s, len);
    w->n += len;
}

static inline void sv_wbuf_str(struct sv_wbuf *w, struct sv_str s)
{
    sv_wbuf_put(w, s.ptr, s.len);
}

#define sv_wbuf_lit(w, lit) sv_wbuf_put((w), (lit), sizeof(lit) - 1)

static inline void sv_wbuf_u64(struct sv_wbuf *w, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    sv_wbuf_put(w, tmp + i, sizeof(tmp) - i);
}

/* "<name>: <value>\r\n" */
static inline void sv_wbuf_header(struct sv_wbuf *w, struct sv_str name, struct sv_str value)
{
    sv_wbuf_str(w, name);
    sv_wbuf_lit(w, ": ");
    sv_wbuf_str(w, value);
    sv_wbuf_lit(w, "\r\n");
}

static inline ssize_t sv_wbuf_result(const struct sv_wbuf *w)
{
    return w->overflow ? -ENOSPC : (ssize_t)w->n;
}

#endif

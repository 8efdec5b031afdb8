/* Growable response-body buffer of the admin listener (see serval/admin/admin.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serval/admin/admin.h"

static int buf_reserve(struct sv_admin_buf *b, size_t extra)
{
    size_t max = b->_max ? b->_max : SV_ADMIN_BODY_MAX;
    if (b->_err)
        return b->_err;
    if (extra > max || b->len + extra > max) {
        b->_err = -E2BIG;
        return b->_err;
    }
    size_t need = b->len + extra + 1; /* room for the trailing NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->_err = -ENOMEM;
        return b->_err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int sv_admin_buf_append(struct sv_admin_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sv_admin_buf_puts(struct sv_admin_buf *b, const char *s)
{
    return sv_admin_buf_append(b, s, strlen(s));
}

int sv_admin_buf_vprintf(struct sv_admin_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sv_admin_buf_printf(struct sv_admin_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sv_admin_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void sv_admin_buf_reset(struct sv_admin_buf *b)
{
    b->len = 0;
    b->_err = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sv_admin_buf_free(struct sv_admin_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->_err = 0;
}

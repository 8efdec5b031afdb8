/* Per-session size-class allocator over a fixed region (see h2_pool.h). */
#include "dataplane/h2_pool.h"

#include <string.h>

#include "serval/base/assert.h"

#define HDR 16u
#define MAGIC 0x5632u /* "V2" */

struct blk {
    uint32_t cls;
    uint32_t magic;
    uint32_t next; /* free list link (offset + 1) while free */
    uint32_t pad;
};

void sv_h2_pool_init(struct sv_h2_pool *p, void *mem, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->_base = mem;
    p->_cap = cap > UINT32_MAX ? UINT32_MAX : cap;
}

void sv_h2_pool_reset(struct sv_h2_pool *p)
{
    char *b = p->_base;
    size_t cap = p->_cap;
    uint64_t fails = p->_fails;
    size_t peak = p->_peak;
    memset(p, 0, sizeof(*p));
    p->_base = b;
    p->_cap = cap;
    p->_fails = fails;
    p->_peak = peak;
}

static int cls_of(size_t n)
{
    size_t need = n + HDR;
    for (unsigned c = 0; c < SV_H2_POOL_CLASSES; c++)
        if ((size_t)SV_H2_POOL_MIN << c >= need)
            return (int)c;
    return -1;
}

void *sv_h2_pool_alloc(struct sv_h2_pool *p, size_t n)
{
    int c = n ? cls_of(n) : -1;
    if (c < 0) {
        p->_fails++;
        return NULL;
    }
    size_t sz = (size_t)SV_H2_POOL_MIN << c;
    struct blk *b;
    if (p->_free[c]) {
        b = (struct blk *)(p->_base + p->_free[c] - 1);
        SV_ASSERT(b->magic == MAGIC && b->cls == (uint32_t)c);
        p->_free[c] = b->next;
    } else {
        if (p->_top + sz > p->_cap) {
            p->_fails++;
            return NULL;
        }
        b = (struct blk *)(p->_base + p->_top);
        p->_top += sz;
        b->cls = (uint32_t)c;
        b->magic = MAGIC;
    }
    b->next = 0;
    p->_used += sz;
    if (p->_used > p->_peak)
        p->_peak = p->_used;
    return (char *)b + HDR;
}

void *sv_h2_pool_calloc(struct sv_h2_pool *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        p->_fails++;
        return NULL;
    }
    void *q = sv_h2_pool_alloc(p, nmemb * size);
    if (q)
        memset(q, 0, nmemb * size);
    return q;
}

static struct blk *blk_of(const struct sv_h2_pool *p, void *ptr)
{
    struct blk *b = (struct blk *)((char *)ptr - HDR);
    SV_ASSERT((char *)b >= p->_base && (char *)b < p->_base + p->_top);
    SV_ASSERT(b->magic == MAGIC && b->cls < SV_H2_POOL_CLASSES);
    return b;
}

void sv_h2_pool_free(struct sv_h2_pool *p, void *ptr)
{
    if (!ptr)
        return;
    struct blk *b = blk_of(p, ptr);
    size_t sz = (size_t)SV_H2_POOL_MIN << b->cls;
    SV_ASSERT(p->_used >= sz);
    p->_used -= sz;
    b->next = p->_free[b->cls];
    p->_free[b->cls] = (uint32_t)((char *)b - p->_base) + 1;
}

void *sv_h2_pool_realloc(struct sv_h2_pool *p, void *ptr, size_t n)
{
    if (!ptr)
        return sv_h2_pool_alloc(p, n);
    if (n == 0) {
        sv_h2_pool_free(p, ptr);
        return NULL;
    }
    struct blk *b = blk_of(p, ptr);
    size_t have = ((size_t)SV_H2_POOL_MIN << b->cls) - HDR;
    if (n <= have)
        return ptr;
    void *q = sv_h2_pool_alloc(p, n);
    if (!q)
        return NULL;
    memcpy(q, ptr, have);
    sv_h2_pool_free(p, ptr);
    return q;
}

size_t sv_h2_pool_used(const struct sv_h2_pool *p)
{
    return p->_used;
}

size_t sv_h2_pool_peak(const struct sv_h2_pool *p)
{
    return p->_peak;
}

uint64_t sv_h2_pool_fails(const struct sv_h2_pool *p)
{
    return p->_fails;
}

/* ---- nghttp2 hooks ------------------------------------------------------------------------- */

static void *mem_malloc(size_t n, void *ud)
{
    return sv_h2_pool_alloc(ud, n);
}

static void mem_free(void *ptr, void *ud)
{
    sv_h2_pool_free(ud, ptr);
}

static void *mem_calloc(size_t n, size_t sz, void *ud)
{
    return sv_h2_pool_calloc(ud, n, sz);
}

static void *mem_realloc(void *ptr, size_t n, void *ud)
{
    return sv_h2_pool_realloc(ud, ptr, n);
}

void sv_h2_pool_mem(struct sv_h2_pool *p, nghttp2_mem *out)
{
    *out = (nghttp2_mem){p, mem_malloc, mem_free, mem_calloc, mem_realloc};
}

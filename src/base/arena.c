#include "serval/base/arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serval/base/assert.h"

struct sv_arena_block {
    struct sv_arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static struct sv_arena_block *block_new(size_t size)
{
    struct sv_arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

int sv_arena_init(struct sv_arena *a, size_t block_size, bool fixed)
{
    SV_ASSERT(block_size > 0);
    a->head = block_new(block_size);
    if (!a->head)
        return -ENOMEM;
    a->block_size = block_size;
    a->total = block_size;
    a->fixed = fixed;
    return 0;
}

void sv_arena_destroy(struct sv_arena *a)
{
    struct sv_arena_block *b = a->head;
    while (b) {
        struct sv_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

void sv_arena_reset(struct sv_arena *a)
{
    if (!a->head)
        return;
    /* Keep the last (first-allocated) block: it is the original one. */
    struct sv_arena_block *b = a->head;
    while (b->next) {
        struct sv_arena_block *n = b->next;
        a->total -= b->size;
        free(b);
        b = n;
    }
    b->used = 0;
    a->head = b;
}

void *sv_arena_alloc(struct sv_arena *a, size_t n)
{
    SV_ASSERT(a->head != NULL);
    size_t need = (n + 15u) & ~(size_t)15u;
    if (need < n)
        return NULL;
    struct sv_arena_block *b = a->head;
    if (b->size - b->used < need) {
        if (a->fixed)
            return NULL;
        size_t sz = need > a->block_size ? need : a->block_size;
        struct sv_arena_block *nb = block_new(sz);
        if (!nb)
            return NULL;
        nb->next = b;
        a->head = nb;
        a->total += sz;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *sv_arena_zalloc(struct sv_arena *a, size_t n)
{
    void *p = sv_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *sv_arena_strndup(struct sv_arena *a, const char *s, size_t n)
{
    char *p = sv_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct sv_str sv_arena_str(struct sv_arena *a, struct sv_str s)
{
    char *p = sv_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
    if (!p)
        return SV_STR_NULL;
    return sv_str_make(p, s.len);
}

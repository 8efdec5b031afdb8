/* Guard-page buffers for parser tests (the picohttpparser test.c idea): the bytes under test end
 * exactly where a PROT_NONE page begins, so any read past the end faults. */
#ifndef SERVAL_TESTS_HTTP_GUARD_H
#define SERVAL_TESTS_HTTP_GUARD_H

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard_buf {
    char *base;  /* mapping start */
    size_t size; /* whole mapping */
    char *limit; /* first byte of the PROT_NONE page */
};

/* Room for <cap> bytes followed by a guard page. Returns 0 or -1. */
static inline int guard_init(struct guard_buf *g, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (cap + page - 1) / page * page;
    if (data == 0)
        data = page;
    g->size = data + page;
    void *m = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    g->base = m;
    g->limit = g->base + data;
    if (mprotect(g->limit, page, PROT_NONE) != 0) {
        munmap(m, g->size);
        return -1;
    }
    return 0;
}

/* Copy <n> bytes so that they end at the guard page; returns where they start. */
static inline const char *guard_put(struct guard_buf *g, const char *s, size_t n)
{
    char *dst = g->limit - n;
    memmove(dst, s, n);
    return dst;
}

static inline void guard_free(struct guard_buf *g)
{
    munmap(g->base, g->size);
}

#endif

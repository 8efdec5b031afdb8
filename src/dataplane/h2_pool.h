/* Bounded allocator for one HTTP/2 session (nghttp2's nghttp2_mem hooks land here).
 *
 * Each session owns one fixed region carved at worker start (no malloc on the worker after
 * start). Blocks come in power-of-two classes from SV_H2_POOL_MIN to SV_H2_POOL_MAX bytes
 * (a 16-byte header in front of each); freed blocks go to their class's free list and are
 * reused by the same session; a request larger than SV_H2_POOL_MAX, or one that no longer fits
 * in the region, fails (NULL: nghttp2 then answers NGHTTP2_ERR_NOMEM and the connection is
 * closed). The whole region is given back at once when the session ends (sv_h2_pool_reset), so
 * fragmentation never outlives a connection. Worker thread owning the session only. */
#ifndef SERVAL_DATAPLANE_H2_POOL_H
#define SERVAL_DATAPLANE_H2_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#define SV_H2_POOL_MIN 32u
#define SV_H2_POOL_CLASSES 13u /* 32 B .. 128 KiB */
#define SV_H2_POOL_MAX (SV_H2_POOL_MIN << (SV_H2_POOL_CLASSES - 1))

struct sv_h2_pool {
    char *_base;
    size_t _cap;
    size_t _top;                              /* bytes carved from the region so far */
    size_t _used;                             /* bytes in live blocks (class sizes) */
    size_t _peak;
    uint32_t _free[SV_H2_POOL_CLASSES];       /* free list heads: block offset + 1, 0 = none */
    uint64_t _fails;
};

/* Use mem[0..cap) (caller-owned, 16-byte aligned) as the region. Any thread. */
void sv_h2_pool_init(struct sv_h2_pool *p, void *mem, size_t cap);

/* Forget every block: the region is empty again. */
void sv_h2_pool_reset(struct sv_h2_pool *p);

/* malloc/calloc/realloc/free semantics over the region. NULL when it does not fit (or n is 0
 * for alloc). free(NULL) is a no-op. realloc(NULL, n) allocates; realloc(ptr, 0) frees and
 * returns NULL; a failed realloc leaves <ptr> intact. */
void *sv_h2_pool_alloc(struct sv_h2_pool *p, size_t n);
void *sv_h2_pool_calloc(struct sv_h2_pool *p, size_t nmemb, size_t size);
void *sv_h2_pool_realloc(struct sv_h2_pool *p, void *ptr, size_t n);
void sv_h2_pool_free(struct sv_h2_pool *p, void *ptr);

/* Fill *out with nghttp2 memory hooks that allocate from <p> (mem_user_data = p), for
 * nghttp2_session_*_new3 (which copies the struct). Worker thread owning the session. */
void sv_h2_pool_mem(struct sv_h2_pool *p, nghttp2_mem *out);

/* Bytes in live blocks, the most ever, and failed requests (for tests and logs). */
size_t sv_h2_pool_used(const struct sv_h2_pool *p);
size_t sv_h2_pool_peak(const struct sv_h2_pool *p);
uint64_t sv_h2_pool_fails(const struct sv_h2_pool *p);

#endif

/* Fixed-capacity object slab with index + generation handles. All memory is taken at init; alloc
 * and free never call malloc. A slot's generation is bumped on free, so a handle {slot, gen}
 * taken before the free no longer matches (see ud.h). One owner thread. */
#ifndef SERVAL_DATAPLANE_SLAB_H
#define SERVAL_DATAPLANE_SLAB_H

#include <stddef.h>
#include <stdint.h>

struct sv_slab {
    char *_mem;
    size_t _elem;
    uint32_t _cap;
    uint32_t _nfree;
    uint32_t *_free;  /* stack of free slots (LIFO: hot slots are reused first) */
    uint32_t *_gen;
};

/* Reserve <cap> zeroed objects of <elem> bytes. Returns 0 or -ENOMEM/-EINVAL. Allocates. */
int sv_slab_init(struct sv_slab *s, size_t elem, uint32_t cap);

/* Release all memory. */
void sv_slab_destroy(struct sv_slab *s);

/* Take a free slot; returns its index, or -1 when all are in use. The object is zeroed. */
int64_t sv_slab_alloc(struct sv_slab *s);

/* Return <slot> to the slab and bump its generation. */
void sv_slab_free(struct sv_slab *s, uint32_t slot);

/* The object at <slot> (valid for any slot < capacity). */
static inline void *sv_slab_get(const struct sv_slab *s, uint32_t slot)
{
    return s->_mem + (size_t)slot * s->_elem;
}

/* Current generation of <slot>. */
static inline uint32_t sv_slab_gen(const struct sv_slab *s, uint32_t slot)
{
    return s->_gen[slot];
}

static inline uint32_t sv_slab_cap(const struct sv_slab *s)
{
    return s->_cap;
}

static inline uint32_t sv_slab_used(const struct sv_slab *s)
{
    return s->_cap - s->_nfree;
}

#endif

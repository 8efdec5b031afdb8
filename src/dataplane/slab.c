/* Fixed-capacity slab (slab.h). */
#include "dataplane/slab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/ud.h"
#include "serval/base/assert.h"

int sv_slab_init(struct sv_slab *s, size_t elem, uint32_t cap)
{
    memset(s, 0, sizeof(*s));
    if (cap == 0 || cap > SV_UD_MAX_SLOTS || elem == 0)
        return -EINVAL;
    elem = (elem + 15) & ~(size_t)15;
    s->_mem = calloc(cap, elem);
    s->_free = calloc(cap, sizeof(uint32_t));
    s->_gen = calloc(cap, sizeof(uint32_t));
    if (!s->_mem || !s->_free || !s->_gen) {
        sv_slab_destroy(s);
        return -ENOMEM;
    }
    s->_elem = elem;
    s->_cap = cap;
    s->_nfree = cap;
    for (uint32_t i = 0; i < cap; i++)
        s->_free[i] = cap - 1 - i; /* slot 0 is handed out first */
    return 0;
}

void sv_slab_destroy(struct sv_slab *s)
{
    free(s->_mem);
    free(s->_free);
    free(s->_gen);
    memset(s, 0, sizeof(*s));
}

int64_t sv_slab_alloc(struct sv_slab *s)
{
    if (s->_nfree == 0)
        return -1;
    uint32_t slot = s->_free[--s->_nfree];
    memset(sv_slab_get(s, slot), 0, s->_elem);
    return slot;
}

void sv_slab_free(struct sv_slab *s, uint32_t slot)
{
    SV_ASSERT(slot < s->_cap);
    SV_ASSERT(s->_nfree < s->_cap);
    SV_DASSERT(({
        int seen = 0;
        for (uint32_t i = 0; i < s->_nfree; i++)
            seen |= s->_free[i] == slot;
        !seen;
    }));
    s->_gen[slot]++;
    s->_free[s->_nfree++] = slot;
}

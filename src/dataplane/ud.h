/* user_data codec: every submitted operation carries {op:8, slot:24, gen:32} so a completion is
 * dispatched by op, finds its object by slot, and is dropped when the slot's generation moved on
 * (the slot was freed and reused after the operation was submitted). Pure; any thread. */
#ifndef SERVAL_DATAPLANE_UD_H
#define SERVAL_DATAPLANE_UD_H

#include <stdint.h>

#include "serval/base/compiler.h"

#define SV_UD_SLOT_BITS 24
#define SV_UD_MAX_SLOTS (1u << SV_UD_SLOT_BITS)

SV_STATIC_ASSERT(8 + SV_UD_SLOT_BITS + 32 == 64, "user_data fields fill 64 bits");

static inline uint64_t sv_ud_make(uint8_t op, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)op << 56) | ((uint64_t)(slot & (SV_UD_MAX_SLOTS - 1)) << 32) | gen;
}

static inline uint8_t sv_ud_op(uint64_t ud)
{
    return (uint8_t)(ud >> 56);
}

static inline uint32_t sv_ud_slot(uint64_t ud)
{
    return (uint32_t)(ud >> 32) & (SV_UD_MAX_SLOTS - 1);
}

static inline uint32_t sv_ud_gen(uint64_t ud)
{
    return (uint32_t)ud;
}

#endif

/* Assertions. SV_ASSERT is always compiled in (cheap invariants); SV_DASSERT only in debug/ASan
 * builds (SV_DEBUG=1). A failed assertion prints file:line and the expression, then aborts.
 * Any thread. */
#ifndef SERVAL_BASE_ASSERT_H
#define SERVAL_BASE_ASSERT_H

#include "serval/base/compiler.h"

SV_NORETURN void sv_assert_fail(const char *expr, const char *file, int line);

#define SV_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (sv_unlikely(!(cond)))                                                                  \
            sv_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

#if defined(SV_DEBUG) && SV_DEBUG
#define SV_DASSERT(cond) SV_ASSERT(cond)
#else
#define SV_DASSERT(cond)                                                                           \
    do {                                                                                           \
        (void)sizeof(cond);                                                                        \
    } while (0)
#endif

#endif

/* Compiler helpers shared by every module. Any thread. */
#ifndef SERVAL_BASE_COMPILER_H
#define SERVAL_BASE_COMPILER_H

#include <stddef.h>

#define sv_likely(x) __builtin_expect(!!(x), 1)
#define sv_unlikely(x) __builtin_expect(!!(x), 0)
#define SV_UNUSED __attribute__((unused))
#define SV_NORETURN __attribute__((noreturn))
#define SV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SV_CACHELINE 64
#define SV_ALIGNED_CACHELINE __attribute__((aligned(SV_CACHELINE)))
#define SV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SV_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define SV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SV_MAX(a, b) ((a) > (b) ? (a) : (b))

/* container_of: the struct that embeds <member> at <ptr>. */
#define sv_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif

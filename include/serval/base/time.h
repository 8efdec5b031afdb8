/* Clocks. Any thread. */
#ifndef SERVAL_BASE_TIME_H
#define SERVAL_BASE_TIME_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC). */
static inline uint64_t sv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Monotonic time in milliseconds. */
static inline uint64_t sv_now_ms(void)
{
    return sv_now_ns() / 1000000ull;
}

/* Coarse monotonic milliseconds (CLOCK_MONOTONIC_COARSE, a few ms resolution, no syscall). */
static inline uint64_t sv_now_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

#endif

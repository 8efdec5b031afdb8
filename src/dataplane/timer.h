/* Per-worker hashed timer wheel (idle, header, upstream-response and drain deadlines). Timers are
 * intrusive (embedded in the connection), so arming never allocates. Deadlines further away than
 * one revolution stay in their slot and are skipped until due. Resolution is one tick. One owner
 * thread. */
#ifndef SERVAL_DATAPLANE_TIMER_H
#define SERVAL_DATAPLANE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define SV_WHEEL_SLOTS 1024u

struct sv_timer {
    struct sv_timer *_next, *_prev;
    uint64_t _deadline_ms;
};

typedef void (*sv_timer_fn)(struct sv_timer *t, void *ctx);

struct sv_wheel {
    struct sv_timer _slots[SV_WHEEL_SLOTS]; /* list heads */
    uint64_t _tick;     /* last processed tick */
    uint32_t _tick_ms;
    uint32_t _armed;
};

/* Start the wheel at time <now_ms> with <tick_ms> resolution. */
void sv_wheel_init(struct sv_wheel *w, uint64_t now_ms, uint32_t tick_ms);

/* Arm (or re-arm) <t> to fire at <deadline_ms>; a deadline in the past fires on the next advance. */
void sv_timer_arm(struct sv_wheel *w, struct sv_timer *t, uint64_t deadline_ms);

/* Disarm <t> if armed. Safe on a zeroed or already disarmed timer. */
void sv_timer_cancel(struct sv_wheel *w, struct sv_timer *t);

static inline bool sv_timer_armed(const struct sv_timer *t)
{
    return t->_next != 0;
}

/* Fire every timer with deadline <= now_ms (each is disarmed before <fn> runs; <fn> may re-arm or
 * cancel any timer). Returns how many fired. */
unsigned sv_wheel_advance(struct sv_wheel *w, uint64_t now_ms, sv_timer_fn fn, void *ctx);

/* Milliseconds from <now_ms> until the first non-empty slot within the next <max_ms> (looking at
 * most that far, bounded by one revolution), or <max_ms> when there is none. A slot may hold
 * timers due in later revolutions, so this is a lower bound: the right wait before the next
 * sv_wheel_advance. */
uint64_t sv_wheel_next_ms(const struct sv_wheel *w, uint64_t now_ms, uint64_t max_ms);

/* Number of armed timers. */
static inline uint32_t sv_wheel_armed(const struct sv_wheel *w)
{
    return w->_armed;
}

#endif

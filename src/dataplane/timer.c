/* Hashed timer wheel (timer.h). */
#include "dataplane/timer.h"

#include <string.h>

#include "serval/base/assert.h"

void sv_wheel_init(struct sv_wheel *w, uint64_t now_ms, uint32_t tick_ms)
{
    SV_ASSERT(tick_ms > 0);
    memset(w, 0, sizeof(*w));
    w->_tick_ms = tick_ms;
    w->_tick = now_ms / tick_ms;
    for (unsigned i = 0; i < SV_WHEEL_SLOTS; i++)
        w->_slots[i]._next = w->_slots[i]._prev = &w->_slots[i];
}

static void unlink_timer(struct sv_wheel *w, struct sv_timer *t)
{
    t->_prev->_next = t->_next;
    t->_next->_prev = t->_prev;
    t->_next = t->_prev = 0;
    SV_ASSERT(w->_armed > 0);
    w->_armed--;
}

void sv_timer_arm(struct sv_wheel *w, struct sv_timer *t, uint64_t deadline_ms)
{
    if (sv_timer_armed(t))
        unlink_timer(w, t);
    uint64_t tick = deadline_ms / w->_tick_ms;
    if (tick <= w->_tick)
        tick = w->_tick + 1;
    struct sv_timer *head = &w->_slots[tick % SV_WHEEL_SLOTS];
    t->_deadline_ms = deadline_ms;
    t->_next = head;
    t->_prev = head->_prev;
    head->_prev->_next = t;
    head->_prev = t;
    w->_armed++;
}

void sv_timer_cancel(struct sv_wheel *w, struct sv_timer *t)
{
    if (sv_timer_armed(t))
        unlink_timer(w, t);
}

unsigned sv_wheel_advance(struct sv_wheel *w, uint64_t now_ms, sv_timer_fn fn, void *ctx)
{
    uint64_t target = now_ms / w->_tick_ms;
    unsigned fired = 0;
    if (target <= w->_tick)
        return 0;
    uint64_t steps = target - w->_tick;
    if (steps > SV_WHEEL_SLOTS)
        steps = SV_WHEEL_SLOTS; /* every slot visited once covers everything due */
    uint64_t base = w->_tick;
    for (uint64_t i = 1; i <= steps; i++) {
        struct sv_timer *head = &w->_slots[(base + i) % SV_WHEEL_SLOTS];
        /* Detach the due timers first: callbacks may re-arm into this very slot. */
        struct sv_timer due = {&due, &due, 0};
        struct sv_timer *t = head->_next;
        while (t != head) {
            struct sv_timer *next = t->_next;
            if (t->_deadline_ms / w->_tick_ms <= target) {
                t->_prev->_next = t->_next;
                t->_next->_prev = t->_prev;
                t->_next = &due;
                t->_prev = due._prev;
                due._prev->_next = t;
                due._prev = t;
            }
            t = next;
        }
        /* This slot is processed: a callback arming a deadline due by now goes to the next
         * slot (still visited by this advance or the next), never back into this one, which
         * would hold it for a whole revolution. */
        w->_tick = base + i;
        while (due._next != &due) {
            t = due._next;
            unlink_timer(w, t);
            fired++;
            fn(t, ctx);
        }
    }
    w->_tick = target;
    return fired;
}

uint64_t sv_wheel_next_ms(const struct sv_wheel *w, uint64_t now_ms, uint64_t max_ms)
{
    if (w->_armed == 0)
        return max_ms;
    uint64_t now_tick = now_ms / w->_tick_ms;
    uint64_t first = w->_tick + 1; /* the next slot an advance visits */
    uint64_t span = max_ms / w->_tick_ms + 1;
    if (span > SV_WHEEL_SLOTS)
        span = SV_WHEEL_SLOTS;
    for (uint64_t i = 0; i < span; i++) {
        uint64_t tick = first + i;
        const struct sv_timer *head = &w->_slots[tick % SV_WHEEL_SLOTS];
        if (head->_next != head) {
            if (tick <= now_tick)
                return 0;
            uint64_t ms = tick * w->_tick_ms - now_ms;
            return ms < max_ms ? ms : max_ms;
        }
    }
    return max_ms;
}

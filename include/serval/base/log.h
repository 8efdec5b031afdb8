/* Leveled logger writing one line per call to stderr:
 *   2026-11-27T08:00:00.123Z level module: message
 * Any thread. sv_log_rl() is the rate-limited form for worker threads: at most <per_sec> lines per
 * second per call site, and the number suppressed is reported with the next line that passes. */
#ifndef SERVAL_BASE_LOG_H
#define SERVAL_BASE_LOG_H

#include <stdint.h>

#include "serval/base/compiler.h"

enum sv_log_level { SV_LOG_DEBUG = 0, SV_LOG_INFO, SV_LOG_WARN, SV_LOG_ERROR, SV_LOG_OFF };

/* Set the minimum level printed. Call before threads start (a plain store; racy readers only
 * ever see an old or new level). */
void sv_log_set_level(enum sv_log_level level);

/* Parse "debug", "info", "warn", "error", "off". Returns 0 and sets *out, or -1 if unknown. */
int sv_log_parse_level(const char *name, enum sv_log_level *out);

int sv_log_enabled(enum sv_log_level level);

void sv_log(enum sv_log_level level, const char *module, const char *fmt, ...) SV_PRINTF(3, 4);

/* State of one rate-limited call site (a static per call site; owned by one thread or racy-but-
 * harmless counters). */
struct sv_log_rl_state {
    uint64_t window_ms;
    uint32_t count;
    uint32_t suppressed;
};

void sv_log_ratelimited(struct sv_log_rl_state *st, uint32_t per_sec, enum sv_log_level level,
                        const char *module, const char *fmt, ...) SV_PRINTF(5, 6);

#define sv_log_rl(per_sec, level, module, ...)                                                     \
    do {                                                                                           \
        static __thread struct sv_log_rl_state sv__rl_state_;                                      \
        sv_log_ratelimited(&sv__rl_state_, (per_sec), (level), (module), __VA_ARGS__);            \
    } while (0)

#define sv_debug(module, ...)                                                                      \
    do {                                                                                           \
        if (sv_unlikely(sv_log_enabled(SV_LOG_DEBUG)))                                             \
            sv_log(SV_LOG_DEBUG, (module), __VA_ARGS__);                                           \
    } while (0)
#define sv_info(module, ...) sv_log(SV_LOG_INFO, (module), __VA_ARGS__)
#define sv_warn(module, ...) sv_log(SV_LOG_WARN, (module), __VA_ARGS__)
#define sv_error(module, ...) sv_log(SV_LOG_ERROR, (module), __VA_ARGS__)

#endif

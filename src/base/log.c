#include "serval/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "serval/base/time.h"

static volatile int log_level = SV_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sv_log_set_level(enum sv_log_level level)
{
    log_level = (int)level;
}

int sv_log_parse_level(const char *name, enum sv_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum sv_log_level)i;
            return 0;
        }
    }
    return -1;
}

int sv_log_enabled(enum sv_log_level level)
{
    return (int)level >= log_level && level != SV_LOG_OFF;
}

static void log_vwrite(enum sv_log_level level, const char *module, uint32_t suppressed,
                       const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], module);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line)) {
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        n = m < 0 ? n : n + m;
    }
    if ((size_t)n >= sizeof(line) - 40)
        n = (int)sizeof(line) - 40;
    if (suppressed)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " (%u similar suppressed)", suppressed);
    line[n++] = '\n';
    /* One write(2) per line keeps lines whole across threads. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void sv_log(enum sv_log_level level, const char *module, const char *fmt, ...)
{
    if (!sv_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, 0, fmt, ap);
    va_end(ap);
}

void sv_log_ratelimited(struct sv_log_rl_state *st, uint32_t per_sec, enum sv_log_level level,
                        const char *module, const char *fmt, ...)
{
    if (!sv_log_enabled(level))
        return;
    uint64_t now = sv_now_coarse_ms();
    if (now - st->window_ms >= 1000) {
        st->window_ms = now;
        st->count = 0;
    }
    if (st->count >= per_sec) {
        st->suppressed++;
        return;
    }
    st->count++;
    uint32_t suppressed = st->suppressed;
    st->suppressed = 0;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, suppressed, fmt, ap);
    va_end(ap);
}

/* The folder controller (--config-dir DIR): folder provider -> store -> translate -> publish,
 * plus the text GET /config serves. The control thread owns it and calls sv_folder_process when
 * sv_folder_fd is readable (or periodically); the admin thread may call sv_folder_config_json
 * at any time.
 */
#ifndef SERVAL_CONTROL_FOLDER_H
#define SERVAL_CONTROL_FOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/file_provider.h"
#include "serval/control/translate.h"

struct sv_generation_domain;
struct sv_folder;

struct sv_folder_opts {
    const char *dir;                        /* required */
    struct sv_translate_opts translate;     /* controller name, --bind */
    struct sv_file_provider_opts provider;  /* zero = defaults */
};

/* Open the folder, load and translate it, and publish the first generation into <dom> (an empty
 * one, with no listeners, if the folder is broken: the error is kept for /config). Control
 * thread. Returns 0 and *out (caller owns it; sv_folder_close), or -errno (folder missing,
 * bad --bind, out of memory) with a message in err[errlen]. */
int sv_folder_open(const struct sv_folder_opts *o, struct sv_generation_domain *dom,
                   struct sv_folder **out, char *err, size_t errlen);

/* Free the controller (its store and status; published generations belong to the domain).
 * Control thread, after the admin thread no longer calls sv_folder_config_json. NULL is fine. */
void sv_folder_close(struct sv_folder *f);

/* Pollable fd (readable when sv_folder_process has work). Owned by the controller. */
int sv_folder_fd(const struct sv_folder *f);

/* Milliseconds until a pending reload is due, -1 if none (for a poll timeout); 0 while the full
 * translation that follows an overlay is due. Control thread. */
int sv_folder_timeout_ms(const struct sv_folder *f);

/* Handle folder events without blocking: after the debounce, reload, translate and publish.
 * When only HTTPRoutes changed, the first generation published is an overlay (only the touched
 * host names rebuilt: fast); the next call that finds nothing new translates in full and
 * publishes again (sv_folder_timeout_ms is 0 until then), then refreshes the /config document
 * (so call it again soon after a non-zero result; the control loop's periodic call does).
 * Control thread. Returns 1 when a generation was published, 0 when nothing changed, or a
 * negative errno when the reload failed (the last good generation keeps serving). */
int sv_folder_process(struct sv_folder *f);

/* Where the time of the last reload went (for perf/control_bench.c and logs), nanoseconds:
 * the load (stat every file, read and decode the changed ones), the comparison with the previous
 * load, and the translation (or endpoint-only update) with its publication. */
struct sv_folder_timings {
    uint64_t load_ns, classify_ns, translate_ns;
    bool incremental;   /* translate_ns made an overlay (HTTPRoute edits only) */
    uint64_t compact_ns; /* the last full translation that followed an overlay */
};

/* The timings of the last sv_folder_process call that loaded the folder. Control thread. */
void sv_folder_last_timings(const struct sv_folder *f, struct sv_folder_timings *out);

/* Generations published by this controller so far. Control thread. */
uint64_t sv_folder_published(const struct sv_folder *f);

/* The /config document (JSON): provider, folder, last error ("" if none), reload counters, the
 * published generation id and the status of every GatewayClass/Gateway/HTTPRoute we own.
 * Any thread (copied under a mutex). Returns a malloc'd NUL-terminated string (caller frees) or
 * NULL when out of memory. */
char *sv_folder_config_json(struct sv_folder *f);

#endif

/* Overlay generations: serving a change to a few routes without recompiling the whole table.
 *
 * The control thread builds a small route table holding only the routes of the host names a
 * change touched (with the same binds and listeners as the current table, and the current
 * table's backend sets declared first, in order), then turns that generation into an overlay of
 * the current one: lookups of an overridden (listener, host name) use the small table, every
 * other name uses the base table, which the overlay shares (refcounted, never copied). An
 * overlay routes exactly like a full rebuild of the same configuration; it is meant to be
 * replaced by a full rebuild soon after (sv_generation_write_json describes only the small
 * table). Control thread only.
 */
#ifndef SERVAL_ROUTING_OVERLAY_H
#define SERVAL_ROUTING_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/base/str.h"

struct sv_generation;

/* A host name of a listener as sv_route_builder_attach takes it: "" = routes without a host
 * name, "*.suffix" or an exact name (case-insensitive, a trailing dot ignored). */
struct sv_route_host_key {
    uint32_t listener;
    struct sv_str hostname;
};

/* Make <gen> (unpublished, fresh from sv_route_builder_finish, not an overlay) an overlay on
 * <base> (alive, not an overlay, e.g. sv_generation_current): names in keys[n_keys] are served
 * by <gen>'s own table (a name without routes there now has none), all others by <base>'s
 * table, which <gen> keeps a reference to. <gen>'s binds and listeners must equal <base>'s and
 * its first backend sets must be <base>'s (same names, same order); the endpoints of those sets
 * are copied from <base> (an overlay is only valid while endpoints did not change). Control
 * thread. Returns 0, -EINVAL (layouts differ, a bad key; message in err[errlen]; <gen> is left
 * as it was) or -ENOMEM. */
int sv_generation_overlay(struct sv_generation *gen, const struct sv_generation *base,
                          const struct sv_route_host_key *keys, size_t n_keys, char *err,
                          size_t errlen);

/* True when <gen> is an overlay (for logs and tests). Any thread holding <gen>. */
bool sv_generation_is_overlay(const struct sv_generation *gen);

#endif

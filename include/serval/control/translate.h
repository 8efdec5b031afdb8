/* Translation: a store snapshot -> routing builder calls -> a new unpublished generation, plus
 * the status of every GatewayClass, Gateway and HTTPRoute we own (status.h). The only module
 * that sees both the model and routing/builder.h. Control thread only.
 */
#ifndef SERVAL_CONTROL_TRANSLATE_H
#define SERVAL_CONTROL_TRANSLATE_H

#include <stddef.h>
#include <sys/socket.h>

#include "serval/control/status.h"
#include "serval/control/store.h"

#define SV_DEFAULT_CONTROLLER_NAME "serval.dev/gateway-controller"

struct sv_generation;
struct sv_tls_ticket_keys;

struct sv_translate_opts {
    const char *controller_name; /* NULL = SV_DEFAULT_CONTROLLER_NAME */
    const char *bind_addr;       /* --bind: IPv4 or IPv6 literal; NULL = "0.0.0.0" */
    /* session-ticket keys for the TLS contexts of HTTPS binds; NULL = the process-wide
     * sv_tls_default_ticket_keys() */
    struct sv_tls_ticket_keys *ticket_keys;
    /* --gateway-address-pool: IPv4 CIDR ("127.64.0.0/16") or NULL. When set, every Gateway gets
     * its own address from the pool (like a load balancer's per-Gateway IP): an IPAddress of its
     * spec.addresses that lies in the pool, else one derived from a hash of namespace/name
     * (linear probing in Gateway age order). Its listeners bind that address, listeners merge
     * only within one address, and status.addresses reports it. NULL = every Gateway binds
     * bind_addr. */
    const char *address_pool;
};

/* Translate <store> (borrowed; it must outlive *status_out, which points into it).
 * On success returns 0 with *gen_out (unpublished; caller publishes or frees it) and
 * *status_out (caller frees with sv_status_free). Problems in the objects never fail the
 * translation: they become status conditions and 404/500/503 behaviour. Returns -EINVAL (bad
 * bind_addr or address_pool) or -ENOMEM, with a message in err[errlen]; then both outputs are
 * NULL. */
int sv_translate(struct sv_store *store, const struct sv_translate_opts *opts,
                 struct sv_generation **gen_out, struct sv_status **status_out, char *err,
                 size_t errlen);

/* Endpoint-only update (pods scaling): a new unpublished generation sharing <base>'s route table,
 * with the endpoints of every backend set of <base> recomputed from <store>'s Services and
 * EndpointSlices (only sets whose endpoints changed are replaced; *sets_changed says how many).
 * Valid only when nothing but EndpointSlices changed since <base> was translated (the caller
 * checks, e.g. with sv_object.content_hash). <base> must stay alive during the call (control
 * thread: sv_generation_current). Returns 0 with *gen_out (caller publishes or frees), or
 * -ENOMEM with a message in err[errlen]. */
int sv_translate_endpoints(struct sv_store *store, const struct sv_generation *base,
                           struct sv_generation **gen_out, size_t *sets_changed, char *err,
                           size_t errlen);

/* ---- incremental translation of HTTPRoute changes (src/control/translate/incremental.c) --- */

/* Where every HTTPRoute of a fully translated store attached, with the digests of the store's
 * other kinds: what sv_translate_routes needs to rebuild only what a route change touches. */
struct sv_tx_index;

/* sv_translate, and also return the index of that translation in *index_out (caller frees it
 * with sv_tx_index_free; NULL when out of memory for it, which only loses the shortcut). Same
 * return contract as sv_translate. Control thread. */
int sv_translate_indexed(struct sv_store *store, const struct sv_translate_opts *opts,
                         struct sv_generation **gen_out, struct sv_status **status_out,
                         struct sv_tx_index **index_out, char *err, size_t errlen);

/* Free an index. NULL is a no-op. Control thread. */
void sv_tx_index_free(struct sv_tx_index *idx);

/* After an endpoint-only update (sv_translate_endpoints) of the indexed configuration was
 * published: remember <store>'s EndpointSlices as the indexed ones. NULL idx is a no-op. */
void sv_tx_index_endpoints_changed(struct sv_tx_index *idx, const struct sv_store *store);

struct sv_translate_routes_info {
    size_t changed; /* HTTPRoutes added, changed or removed since the indexed store */
    size_t routes;  /* HTTPRoutes translated into the overlay */
    size_t hosts;   /* (listener, host name) pairs the overlay serves */
};

/* Incremental translation: when <store> differs from the store <idx> was made from in
 * HTTPRoutes alone (same options; every other kind has the same digest), translate only the
 * changed routes and the routes sharing a host name with them (before or after the change) into
 * an overlay generation over <base> (serval/routing/overlay.h), which must be the generation of
 * that translation or an endpoint-only update of it (not an overlay). The overlay routes like
 * sv_translate(store) would; no status is computed (a full translation should follow to report
 * it). <store> and <base> are borrowed. Returns 0 with *gen_out (unpublished; caller publishes or
 * frees it) and *info filled; -EAGAIN when not applicable (other kinds or options changed,
 * nothing changed, too many routes or host names touched): translate in full; -EINVAL or
 * -ENOMEM with a message in err[errlen]. Control thread. */
int sv_translate_routes(struct sv_store *store, const struct sv_translate_opts *opts,
                        const struct sv_tx_index *idx, const struct sv_generation *base,
                        struct sv_generation **gen_out, struct sv_translate_routes_info *info,
                        char *err, size_t errlen);

#endif

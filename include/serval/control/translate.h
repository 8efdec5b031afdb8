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

#endif

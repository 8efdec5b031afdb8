/* Internal state of one translation (src/control/translate/). Control thread only. */
#ifndef SERVAL_CONTROL_TRANSLATE_INT_H
#define SERVAL_CONTROL_TRANSLATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/builder.h"

struct tx_listener {
    const struct sv_listener *l;
    struct sv_status_listener *status;
    bool accepted;      /* Accepted=True and not conflicted */
    bool http_routes;   /* HTTPRoute is among the supported kinds */
    bool programmed;    /* present in the generation */
    int builder_index;  /* listener index in the builder, -1 if none */
    const char *host;   /* "" = any */
};

struct tx_gateway {
    const struct sv_object *obj;
    struct sv_status_gateway *status;
    struct tx_listener *ls;
    size_t n_ls;
    bool accepted;
    union sv_route_sockaddr addr; /* what its listeners bind (port set per listener) */
    const char *addr_text;        /* the same as text (status arena) */
};

struct tx_set_memo {
    const struct sv_object *svc; /* NULL = empty slot */
    int32_t port;
    uint32_t set_id;
    uint8_t app_proto; /* enum sv_route_app_proto */
};

struct tx {
    struct sv_store *store;
    const char *controller;
    union sv_route_sockaddr bind;
    socklen_t bindlen;
    const char *bind_text;
    bool bind_wildcard;
    bool pool;                   /* --gateway-address-pool given */
    uint32_t pool_base, pool_n;  /* host order: first address, number of addresses */
    struct sv_route_builder *b;
    struct sv_status *st;
    struct sv_arena *a;       /* the status arena: lives as long as the report */
    struct sv_arena scratch;  /* reset per rule */
    struct tx_gateway *gws;
    size_t n_gws;
    const struct sv_object **slices; /* EndpointSlices sorted by namespace, service name */
    size_t n_slices;
    uint8_t *set_filled; /* per backend set id: endpoints added */
    size_t set_cap;
    /* backendRefs resolved so far: (Service object, port) -> backend set (route.c), so that
     * the set name is formatted and looked up once per set, not once per backendRef */
    struct tx_set_memo *memo;
    size_t memo_n, memo_mask;
    size_t cap_certs; /* entries allocated in st->certs */
    bool nomem;
};

/* Condition helpers (status.c). */
void sv_tx_cond(struct tx *t, struct sv_condition_set *set, const char *type, bool ok,
                const char *reason, int64_t gen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
char *sv_tx_strdup(struct tx *t, const char *s);

/* Hostname intersection (host.c): the hostname a route serves under on a listener, or NULL when
 * they do not intersect. <lh> NULL = listener without hostname; <rh> a route hostname. */
const char *sv_tx_host_intersect(const char *lh, const char *rh);

/* Routes (route.c). */
int sv_tx_routes(struct tx *t);

#endif

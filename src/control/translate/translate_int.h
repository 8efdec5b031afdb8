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

struct tx_listenerset;

struct tx_listener {
    const struct sv_listener *l;
    const struct tx_listenerset *owner; /* NULL = the Gateway's own listener */
    struct sv_status_listener *status;
    bool accepted;      /* Accepted=True and not conflicted */
    bool http_routes;   /* HTTPRoute is among the supported kinds */
    bool passthrough;   /* protocol TLS, tls.mode Passthrough (TLSRoute; no HTTPRoute) */
    bool programmed;    /* present in the generation */
    int builder_index;  /* listener index in the builder, -1 if none */
    const char *host;   /* "" = any */
};

struct tx_gateway {
    const struct sv_object *obj;
    struct sv_status_gateway *status;
    struct tx_listener *ls; /* own listeners first, then those of attached ListenerSets */
    size_t n_ls;
    size_t n_own;  /* the Gateway's own listeners: ls[0..n_own) */
    size_t n_lset; /* listeners of attached ListenerSets (counted before ls is allocated) */
    bool accepted;
    union sv_route_sockaddr addr; /* what its listeners bind (port set per listener) */
    const char *addr_text;        /* the same as text (status arena) */
    const struct sv_object *backend_cert; /* spec.tls.backend.clientCertificateRef's Secret when
                                             it resolved and holds a valid pair, else NULL */
};

struct tx_set_memo {
    const struct sv_object *svc; /* NULL = empty slot */
    int32_t port;
    uint32_t set_id;
    uint8_t app_proto; /* enum sv_route_app_proto */
};

/* One BackendTLSPolicy as resolved for this translation (policy.c). */
struct tx_policy {
    const struct sv_object *obj;
    bool conflicted;            /* an older policy claims the same target and section */
    bool valid;                 /* Accepted (apart from conflicts): usable for traffic */
    const char *accepted_reason, *accepted_msg;
    const char *refs_reason;    /* first ResolvedRefs problem, NULL if none */
    const char *refs_msg;
    const char *ca_pem;         /* the usable CA bundles (borrowed from the store, or joined in
                                   the status arena when several), or NULL */
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
    struct tx_listenerset *lsets; /* ListenerSets whose parent is one of gws, precedence order */
    size_t n_lsets;
    const struct sv_object **slices; /* EndpointSlices sorted by namespace, service name */
    size_t n_slices;
    bool slices_ok;                  /* <slices> built (sv_tx_index_slices) */
    uint8_t *set_filled; /* per backend set id: endpoints added */
    size_t set_cap;
    /* backendRefs resolved so far: (Service object, port) -> backend set (route.c), so that
     * the set name is formatted and looked up once per set, not once per backendRef */
    struct tx_set_memo *memo;
    size_t memo_n, memo_mask;
    /* tx_route's per-route lists (attachments, listeners counted), kept across routes */
    void *route_att;
    size_t route_att_cap;
    void *route_counted;
    size_t route_counted_cap;
    size_t cap_certs; /* entries allocated in st->certs */
    struct tx_policy *pols; /* BackendTLSPolicies, oldest first */
    size_t n_pols;
    bool nomem;
    bool scratch_ok;          /* <scratch> initialised */
    struct sv_tx_rec *rec;    /* incremental.c: records HTTPRoute attachments, or NULL */
    uint32_t rec_route;       /* the HTTPRoute being translated (its sv_store_list index) */
};

/* Condition helpers (status.c). */
void sv_tx_cond(struct tx *t, struct sv_condition_set *set, const char *type, bool ok,
                const char *reason, int64_t gen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
char *sv_tx_strdup(struct tx *t, const char *s);

/* Hostname intersection (host.c): the hostname a route serves under on a listener, or NULL when
 * they do not intersect. <lh> NULL = listener without hostname; <rh> a route hostname. */
const char *sv_tx_host_intersect(const char *lh, const char *rh);

/* A ListenerSet whose parentRef names one of our Gateways (listenerset.c). */
struct tx_listenerset {
    const struct sv_object *obj;
    struct sv_status_listenerset *status;
    struct tx_gateway *g;
    bool allowed; /* selected by the Gateway's allowedListeners: its listeners are merged */
};

/* ListenerSets (listenerset.c). Called by tx_gateways once t->gws[].obj are set: finds the
 * ListenerSets of our Gateways, decides which are allowed, sets g->n_lset and adds the number of
 * certificate slots their listeners need to *n_certs. 0 or -ENOMEM. */
int sv_tx_lsets_collect(struct tx *t, size_t *n_certs);
/* Fill g->ls[g->n_own..g->n_ls) with the listeners of g's allowed ListenerSets (l, owner,
 * status; the caller computes their status). 0 or -ENOMEM. */
int sv_tx_lsets_fill(struct tx *t, struct tx_gateway *g);
/* ListenerSet conditions and the Gateway's attachedListenerSets, after g's listeners are
 * programmed. */
void sv_tx_lsets_status(struct tx *t, struct tx_gateway *g);
/* The Gateway a parentRef (kind Gateway or ListenerSet) of a route in <route_ns> names, or NULL
 * when not ours (or a ListenerSet that is not attached); *owner = the ListenerSet (NULL for a
 * Gateway). A route on a parent only uses listeners with tl->owner == *owner. */
struct tx_gateway *sv_tx_parent(struct tx *t, const struct sv_parent_ref *p,
                                const char *route_ns, const struct tx_listenerset **owner);
/* The generation listener conditions of <tl> carry. */
int64_t sv_tx_listener_gen(const struct tx_gateway *g, const struct tx_listener *tl);
/* BackendTLSPolicies (policy.c): resolve every policy (before the routes), the policy that
 * applies to a Service port (NULL = none; <port_name> NULL or "" for an unnamed port), and the
 * policies' status.ancestors (after the routes). Return 0 or -ENOMEM. */
int sv_tx_policies_resolve(struct tx *t);
const struct tx_policy *sv_tx_policy_for(const struct tx *t, const char *ns, const char *svc,
                                         const char *port_name);
int sv_tx_policies_status(struct tx *t);
/* The upstream TLS context for backends of <route> behind the valid policy <tp>: trust anchors,
 * hostname or SANs from the policy, and the client certificate of the first of the route's
 * Gateways that has a valid spec.tls.backend.clientCertificateRef. Contexts are cached by
 * content across translations (an unchanged policy keeps its WOLFSSL_CTX). Returns a new
 * reference (the caller hands it to sv_route_builder_set_backend_tls or unrefs it), or NULL
 * when it cannot be built (logged; the caller makes the backend invalid: never plaintext). */
struct sv_tls_client *sv_tx_policy_client(struct tx *t, const struct tx_policy *tp,
                                          const struct sv_object *route);

/* Routes (route.c). */
int sv_tx_routes(struct tx *t);
/* Translate one route into t->b with its status in *sr (route.c). 0 or -ENOMEM. */
int sv_tx_route(struct tx *t, const struct sv_object *route, struct sv_status_route *sr);

/* ---- stages (translate.c), for incremental.c -------------------------------------------- */

/* Start a translation of <store>: options, status arena, builder, GatewayClasses, Gateways
 * (binds and listeners declared in the builder) and BackendTLSPolicies. 0, or -EINVAL / -ENOMEM
 * with a message and nothing left to free. */
int sv_tx_begin(struct tx *t, struct sv_store *store, const struct sv_translate_opts *opts,
                char *err, size_t errlen);
/* Index the store's EndpointSlices by (namespace, service name) into t->slices (status arena;
 * route.c does it on first use when not done yet). 0 or -ENOMEM. */
int sv_tx_index_slices(struct tx *t);
/* Free everything a begun translation holds (builder, status, scratch). */
void sv_tx_abort(struct tx *t);
/* sv_translate, and when <rec> is not NULL, record where every HTTPRoute attached. */
struct sv_tx_rec;
int sv_tx_translate(struct sv_store *store, const struct sv_translate_opts *opts,
                    struct sv_tx_rec *rec, struct sv_generation **gen_out,
                    struct sv_status **status_out, char *err, size_t errlen);
/* Record that HTTPRoute t->rec_route attaches to builder listener <listener> under <host>
 * (incremental.c; called by route.c when t->rec is set). */
void sv_tx_rec_attach(struct tx *t, uint32_t listener, const char *host);

#endif

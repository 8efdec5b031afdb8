/* Status computed by the translator for every object it reports on (Gateway API §6 of
 * GATEWAY_API_RULES.md): GatewayClass, Gateway (+ listeners, addresses) and HTTPRoute parents.
 * A report is plain data owned by one arena; sv_status_to_json renders it in the Kubernetes
 * status shape for GET /config and for the status writer. Control thread only.
 */
#ifndef SERVAL_CONTROL_STATUS_H
#define SERVAL_CONTROL_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "serval/base/arena.h"
#include "serval/control/model.h"

struct cJSON;

struct sv_condition {
    const char *type;   /* "Accepted", "Programmed", "ResolvedRefs", ... */
    const char *status; /* "True", "False", "Unknown" */
    const char *reason;
    const char *message; /* never NULL */
    int64_t observed_generation;
};

#define SV_STATUS_MAX_CONDITIONS 6

struct sv_condition_set {
    struct sv_condition c[SV_STATUS_MAX_CONDITIONS];
    size_t n;
};

/* The condition of <type> in <set>, or NULL. */
const struct sv_condition *sv_condition_find(const struct sv_condition_set *set, const char *type);

struct sv_status_listener {
    const char *name;
    struct sv_route_group_kind *supported_kinds;
    size_t n_supported_kinds;
    int32_t attached_routes;
    struct sv_condition_set conds;
};

struct sv_status_gateway {
    const struct sv_object *obj; /* borrowed from the translated store */
    struct sv_gateway_address *addresses;
    size_t n_addresses;
    struct sv_condition_set conds;
    struct sv_status_listener *listeners; /* one per spec listener, same order */
    size_t n_listeners;
    int32_t attached_listener_sets; /* ListenerSets allowed here and Accepted */
};

/* A ListenerSet whose parentRef names one of our Gateways. */
struct sv_status_listenerset {
    const struct sv_object *obj;
    struct sv_condition_set conds;
    struct sv_status_listener *listeners; /* one per spec listener when attached, else none */
    size_t n_listeners;
};

struct sv_status_gatewayclass {
    const struct sv_object *obj;
    struct sv_condition_set conds;
};

struct sv_status_route_parent {
    struct sv_parent_ref ref; /* group/kind defaulted; namespace/sectionName/port as written */
    const char *controller_name;
    struct sv_condition_set conds;
};

struct sv_status_route {
    const struct sv_object *obj;
    struct sv_status_route_parent *parents; /* only parentRefs that target our Gateways */
    size_t n_parents;
};

/* One status.ancestors[] entry of a BackendTLSPolicy: a Gateway of ours whose routes use a
 * Service the policy targets. */
struct sv_status_policy_ancestor {
    struct sv_parent_ref ref; /* the Gateway: group, kind, namespace and name set */
    const char *controller_name;
    struct sv_condition_set conds; /* Accepted, ResolvedRefs */
};

struct sv_status_policy {
    const struct sv_object *obj; /* the BackendTLSPolicy (borrowed from the store) */
    struct sv_status_policy_ancestor *ancestors;
    size_t n_ancestors;
};

/* A certificate an HTTPS listener serves (for the TLS layer; bytes borrowed from the store). */
struct sv_status_tls_cert {
    uint32_t listener; /* index in the generation's listener table */
    uint32_t bind;     /* index in the generation's bind table */
    const char *hostname; /* "" = any */
    const char *listener_name; /* the Gateway listener's name */
    const uint8_t *cert_pem;
    size_t cert_len;
    const uint8_t *key_pem;
    size_t key_len;
    /* client certificate validation (spec.tls.frontend) of the listener: CA PEM bundle, NULL =
     * none; optional = AllowInsecureFallback */
    const uint8_t *client_ca_pem;
    size_t client_ca_len;
    bool client_ca_optional;
};

struct sv_status {
    struct sv_status_gatewayclass *classes;
    size_t n_classes;
    struct sv_status_gateway *gateways;
    size_t n_gateways;
    struct sv_status_route *routes;
    size_t n_routes;
    struct sv_status_tls_cert *certs;
    size_t n_certs;
    struct sv_status_listenerset *listenersets;
    size_t n_listenersets;
    struct sv_status_policy *policies; /* BackendTLSPolicies with at least one ancestor */
    size_t n_policies;
    struct sv_arena _arena;
};

/* Free a report. NULL is fine. */
void sv_status_free(struct sv_status *st);

/* Lookups for tests, /config and the status writer (NULL when absent). */
const struct sv_status_gateway *sv_status_gateway(const struct sv_status *st, const char *ns,
                                                  const char *name);
/* sv_status_route: <kind> is SV_KIND_HTTPROUTE or SV_KIND_TLSROUTE (both kinds share
 * st->routes, and a TLSRoute may have the name of an HTTPRoute). */
const struct sv_status_route *sv_status_route(const struct sv_status *st, enum sv_kind kind,
                                              const char *ns, const char *name);
const struct sv_status_policy *sv_status_policy(const struct sv_status *st, const char *ns,
                                                const char *name);
const struct sv_status_listener *sv_status_listener(const struct sv_status_gateway *gw,
                                                    const char *name);
const struct sv_status_listenerset *sv_status_listenerset(const struct sv_status *st,
                                                          const char *ns, const char *name);

/* {"gatewayClasses":[{"name":..,"status":{"conditions":[..]}}], "gateways":[{"namespace":..,
 * "name":..,"status":{"addresses":[..],"conditions":[..],"listeners":[..],
 * "attachedListenerSets":N}}], "httpRoutes": [{"namespace":..,"name":..,"status":{"parents":
 * [..]}}], "tlsRoutes": [the TLSRoutes, same shape as httpRoutes], "listenerSets":[{"namespace":
 * ..,"name":..,"status":{"conditions":[..],"listeners":[..]}}], "backendTLSPolicies":[{
 * "namespace":..,"name":..,"status":{"ancestors":[{"ancestorRef":..,"controllerName":..,
 * "conditions":..}]}}]} with Kubernetes field names.
 * lastTransitionTime is not included (the status writer owns it). Returns a new tree (caller
 * frees with cJSON_Delete) or NULL when out of memory. */
struct cJSON *sv_status_to_json(const struct sv_status *st);

#endif

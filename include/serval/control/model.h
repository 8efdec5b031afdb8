/* Gateway API and Kubernetes core objects as typed C structs, decoded from cJSON trees.
 *
 * One object = one struct sv_object that owns every string and array it points to (they live in the
 * object's private arena and die with sv_object_free). Strings are NUL-terminated; an absent
 * optional string is NULL. Absent optional integers use the sentinel documented on the field.
 *
 * CRD defaults are applied during decoding, because manifests read from a folder never passed
 * through an API server (see GATEWAY_API_RULES.md, "Defaults"). Enum values we do not know are
 * never an error here: the enum field gets its *_UNSUPPORTED value and the raw text is kept next to
 * it, so the translator can report UnsupportedValue. Type errors (a string where an object is
 * needed, a missing name, a malformed duration) are decoding errors whose message names the field
 * path, e.g. "spec.rules[0].matches[1].path.type: expected string".
 *
 * Control thread only (or any single thread): nothing here is synchronised.
 */
#ifndef SERVAL_CONTROL_MODEL_H
#define SERVAL_CONTROL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/base/arena.h"

struct cJSON;

#define SV_GATEWAY_API_GROUP "gateway.networking.k8s.io"

enum sv_kind {
    SV_KIND_GATEWAYCLASS = 0,
    SV_KIND_GATEWAY,
    SV_KIND_HTTPROUTE,
    SV_KIND_REFERENCEGRANT,
    SV_KIND_NAMESPACE,
    SV_KIND_SERVICE,
    SV_KIND_ENDPOINTSLICE,
    SV_KIND_SECRET,
    SV_KIND_LISTENERSET,
    SV_KIND_TLSROUTE, /* decoded into u.httproute: parents, hostnames, rules with backendRefs only
                         (each rule gets the default PathPrefix "/" match, no filters) */
    SV_KIND_CONFIGMAP,
    SV_KIND_BACKENDTLSPOLICY,
    SV_KIND__COUNT
};

/* "Gateway", "HTTPRoute", ... for a kind (static string). */
const char *sv_kind_name(enum sv_kind kind);

/* True for kinds without a namespace (GatewayClass, Namespace). */
bool sv_kind_cluster_scoped(enum sv_kind kind);

struct sv_kv {
    const char *key;
    const char *value;
};

struct sv_meta {
    const char *name;             /* required */
    const char *ns;               /* "" for cluster-scoped kinds; "default" when a namespaced
                                   * object in a folder gives none */
    const char *uid;              /* NULL if absent */
    int64_t generation;           /* 0 if absent */
    const char *resource_version; /* NULL if absent */
    int64_t creation_ns;          /* creationTimestamp as ns since the epoch (sortable); 0 if absent */
    struct sv_kv *labels;
    size_t n_labels;
    struct sv_kv *annotations;
    size_t n_annotations;
};

/* Value of label <key> or NULL. */
const char *sv_meta_label(const struct sv_meta *m, const char *key);

/* ---- shared references ------------------------------------------------------------------- */

/* parentRef; group/kind defaulted to gateway.networking.k8s.io/Gateway. */
struct sv_parent_ref {
    const char *group;
    const char *kind;
    const char *ns;           /* NULL = the route's namespace */
    const char *name;
    const char *section_name; /* NULL = every listener */
    int32_t port;             /* 0 = unset */
};

/* A reference to a Secret (certificateRefs) or another object; group "" and kind "Secret" by
 * default for certificate refs. */
struct sv_object_ref {
    const char *group;
    const char *kind;
    const char *ns; /* NULL = the referrer's namespace */
    const char *name;
};

/* ---- GatewayClass ------------------------------------------------------------------------ */

struct sv_gatewayclass {
    const char *controller_name;
    bool has_parameters_ref;
    struct sv_object_ref parameters_ref;
    const char *description;
};

/* ---- Gateway ----------------------------------------------------------------------------- */

enum sv_protocol {
    SV_PROTO_HTTP = 0,
    SV_PROTO_HTTPS,
    SV_PROTO_TLS,
    SV_PROTO_TCP,
    SV_PROTO_UDP,
    SV_PROTO_UNSUPPORTED
};

enum sv_tls_mode { SV_TLS_TERMINATE = 0, SV_TLS_PASSTHROUGH, SV_TLS_MODE_UNSUPPORTED };

enum sv_from { SV_FROM_SAME = 0, SV_FROM_ALL, SV_FROM_SELECTOR, SV_FROM_UNSUPPORTED };

enum sv_selector_op {
    SV_SEL_IN = 0,
    SV_SEL_NOT_IN,
    SV_SEL_EXISTS,
    SV_SEL_DOES_NOT_EXIST,
    SV_SEL_UNSUPPORTED
};

struct sv_selector_expr {
    const char *key;
    enum sv_selector_op op;
    const char *op_raw;
    const char **values;
    size_t n_values;
};

/* metav1.LabelSelector. An empty selector (present, nothing in it) matches everything. */
struct sv_label_selector {
    struct sv_kv *match_labels;
    size_t n_match_labels;
    struct sv_selector_expr *exprs;
    size_t n_exprs;
};

/* Does <sel> select an object with these labels? An expression with an unsupported operator
 * never matches. */
bool sv_label_selector_matches(const struct sv_label_selector *sel, const struct sv_kv *labels,
                               size_t n_labels);

struct sv_route_group_kind {
    const char *group; /* defaulted to gateway.networking.k8s.io */
    const char *kind;
};

struct sv_listener_tls {
    enum sv_tls_mode mode; /* default Terminate */
    const char *mode_raw;
    struct sv_object_ref *cert_refs; /* group "" kind "Secret" by default */
    size_t n_cert_refs;
};

struct sv_listener {
    const char *name;
    const char *hostname; /* NULL = any */
    int32_t port;
    enum sv_protocol protocol;
    const char *protocol_raw;
    bool has_tls;
    struct sv_listener_tls tls;
    enum sv_from from; /* allowedRoutes.namespaces.from, default Same */
    const char *from_raw;
    bool has_selector;
    struct sv_label_selector selector;
    struct sv_route_group_kind *kinds; /* allowedRoutes.kinds; empty = implied by protocol */
    size_t n_kinds;
};

struct sv_gateway_address {
    const char *type; /* default "IPAddress" */
    const char *value;
};

/* spec.allowedListeners.namespaces.from: which ListenerSets may attach (default None). */
enum sv_ls_from {
    SV_LSFROM_NONE = 0,
    SV_LSFROM_SAME,
    SV_LSFROM_ALL,
    SV_LSFROM_SELECTOR,
    SV_LSFROM_UNSUPPORTED
};

/* Gateway spec.tls.frontend: client certificate validation of HTTPS listeners. */
enum sv_frontend_mode {
    SV_FRONTEND_ALLOW_VALID_ONLY = 0, /* default */
    SV_FRONTEND_ALLOW_INSECURE_FALLBACK,
    SV_FRONTEND_MODE_UNSUPPORTED
};

struct sv_frontend_tls {
    bool has_validation;                 /* validation present */
    struct sv_object_ref *ca_refs;       /* validation.caCertificateRefs; kind "ConfigMap" and
                                          * group "" by default */
    size_t n_ca_refs;
    enum sv_frontend_mode mode;          /* validation.mode */
    const char *mode_raw;
};

struct sv_frontend_port {
    int32_t port;
    struct sv_frontend_tls tls;
};

struct sv_gateway {
    const char *class_name;
    enum sv_ls_from ls_from; /* allowedListeners.namespaces.from, default None */
    const char *ls_from_raw;
    bool has_ls_selector;
    struct sv_label_selector ls_selector; /* allowedListeners.namespaces.selector */
    bool has_backend_client_cert; /* spec.tls.backend.clientCertificateRef present */
    struct sv_object_ref backend_client_cert; /* group "" kind "Secret" by default */
    bool has_parameters_ref; /* spec.infrastructure.parametersRef (we support none) */
    struct sv_object_ref parameters_ref;
    struct sv_listener *listeners;
    size_t n_listeners;
    struct sv_gateway_address *addresses;
    size_t n_addresses;
    struct sv_frontend_tls frontend_default; /* spec.tls.frontend.default */
    struct sv_frontend_port *frontend_ports; /* spec.tls.frontend.perPort */
    size_t n_frontend_ports;
};

/* ---- ListenerSet ------------------------------------------------------------------------- */

/* gateway.networking.k8s.io/v1 ListenerSet: listeners merged into a parent Gateway. Listener
 * defaults are those of Gateway listeners (allowedRoutes from Same, tls.mode Terminate). */
struct sv_listenerset {
    struct sv_parent_ref parent; /* spec.parentRef: group/kind defaulted to Gateway; ns NULL =
                                  * the ListenerSet's namespace; section_name/port unused */
    struct sv_listener *listeners;
    size_t n_listeners;
};

/* ---- HTTPRoute --------------------------------------------------------------------------- */

enum sv_path_type {
    SV_PATH_PREFIX = 0, /* default */
    SV_PATH_EXACT,
    SV_PATH_REGEX,
    SV_PATH_UNSUPPORTED
};

/* Header and query-param match types. */
enum sv_value_match { SV_MATCH_EXACT = 0, SV_MATCH_REGEX, SV_MATCH_UNSUPPORTED };

struct sv_kv_match {
    enum sv_value_match type; /* default Exact */
    const char *type_raw;
    const char *name;
    const char *value;
};

struct sv_route_match {
    enum sv_path_type path_type; /* default PathPrefix */
    const char *path_type_raw;
    const char *path; /* default "/" */
    struct sv_kv_match *headers;
    size_t n_headers;
    struct sv_kv_match *query;
    size_t n_query;
    const char *method; /* NULL = any; validated by the translator */
};

enum sv_filter_type {
    SV_FILTER_REQUEST_HEADER_MODIFIER = 0,
    SV_FILTER_RESPONSE_HEADER_MODIFIER,
    SV_FILTER_REQUEST_REDIRECT,
    SV_FILTER_URL_REWRITE,
    SV_FILTER_REQUEST_MIRROR,
    SV_FILTER_CORS,
    SV_FILTER_EXTENSION_REF,
    SV_FILTER_UNSUPPORTED
};

struct sv_header_modifier {
    struct sv_kv *set; /* key = header name */
    size_t n_set;
    struct sv_kv *add;
    size_t n_add;
    const char **remove;
    size_t n_remove;
};

enum sv_path_mod_type {
    SV_PATHMOD_NONE = 0, /* no path modifier given */
    SV_PATHMOD_FULL,     /* ReplaceFullPath */
    SV_PATHMOD_PREFIX,   /* ReplacePrefixMatch */
    SV_PATHMOD_UNSUPPORTED
};

struct sv_path_modifier {
    enum sv_path_mod_type type;
    const char *type_raw;
    const char *value; /* replaceFullPath or replacePrefixMatch ("" allowed); NULL if absent */
};

struct sv_redirect {
    const char *scheme;   /* NULL = keep the request's; validated by the translator */
    const char *hostname; /* NULL = keep */
    struct sv_path_modifier path;
    int32_t port;        /* 0 = unset */
    int32_t status_code; /* default 302; validated by the translator */
};

struct sv_url_rewrite {
    const char *hostname; /* NULL = keep */
    struct sv_path_modifier path;
};

struct sv_backend_ref;

struct sv_mirror {
    struct sv_backend_ref *backend; /* exactly one */
    int32_t percent;                /* -1 = unset */
    int32_t fraction_num;           /* -1 = unset */
    int32_t fraction_den;           /* default 100 */
};

struct sv_cors {
    const char **allow_origins;
    size_t n_allow_origins;
    bool allow_credentials;
    const char **allow_methods;
    size_t n_allow_methods;
    const char **allow_headers;
    size_t n_allow_headers;
    const char **expose_headers;
    size_t n_expose_headers;
    int32_t max_age; /* default 5 */
};

struct sv_local_ref {
    const char *group;
    const char *kind;
    const char *name;
};

struct sv_filter {
    enum sv_filter_type type;
    const char *type_raw;
    union {
        struct sv_header_modifier headers; /* Request/ResponseHeaderModifier */
        struct sv_redirect redirect;
        struct sv_url_rewrite rewrite;
        struct sv_mirror mirror;
        struct sv_cors cors;
        struct sv_local_ref extension;
    } u;
    bool has_config; /* the type's own field (e.g. requestRedirect) was present */
};

struct sv_backend_ref {
    const char *group; /* default "" */
    const char *kind;  /* default "Service" */
    const char *ns;    /* NULL = the route's namespace */
    const char *name;
    int32_t port;   /* 0 = unset */
    int32_t weight; /* default 1 */
    struct sv_filter *filters;
    size_t n_filters;
};

/* HTTPRouteRetry (spec.rules[].retry). Values are kept as written; the translator checks them. */
struct sv_retry {
    int32_t *codes; /* HTTP status codes to retry on (may be empty) */
    size_t n_codes;
    int32_t attempts;   /* maximum retries (valid when has_attempts) */
    bool has_attempts;
    int64_t backoff_ms; /* minimum wait between tries; -1 = unset */
};

struct sv_route_rule {
    const char *name; /* NULL if absent */
    struct sv_route_match *matches; /* never empty after defaults */
    size_t n_matches;
    struct sv_filter *filters;
    size_t n_filters;
    struct sv_backend_ref *backends;
    size_t n_backends;
    int64_t timeout_request_ms; /* -1 = unset, 0 = disabled */
    int64_t timeout_backend_ms; /* -1 = unset, 0 = disabled */
    struct sv_retry *retry;     /* NULL = no retry field */
};

struct sv_httproute {
    struct sv_parent_ref *parents;
    size_t n_parents;
    const char **hostnames;
    size_t n_hostnames;
    struct sv_route_rule *rules; /* never empty after defaults */
    size_t n_rules;
};

/* ---- ReferenceGrant ---------------------------------------------------------------------- */

struct sv_grant_from {
    const char *group;
    const char *kind;
    const char *ns;
};

struct sv_grant_to {
    const char *group;
    const char *kind;
    const char *name; /* NULL = every object of the kind */
};

struct sv_referencegrant {
    struct sv_grant_from *from;
    size_t n_from;
    struct sv_grant_to *to;
    size_t n_to;
};

/* ---- Namespace, Service, EndpointSlice, Secret -------------------------------------------- */

/* A Namespace has no spec we need: its labels are in meta (kubernetes.io/metadata.name is added
 * when absent, as the API server does). */

struct sv_service_port {
    const char *name;     /* "" when unnamed */
    const char *protocol; /* default "TCP" */
    int32_t port;
    int32_t target_port;          /* 0 if absent or named */
    const char *target_port_name; /* NULL unless targetPort is a string */
    const char *app_protocol;     /* NULL if absent */
};

struct sv_service {
    const char *type; /* default "ClusterIP" */
    const char *cluster_ip;
    const char *external_name;
    struct sv_kv *selector;
    size_t n_selector;
    struct sv_service_port *ports;
    size_t n_ports;
};

struct sv_slice_port {
    const char *name;     /* "" when unnamed */
    int32_t port;         /* -1 if absent */
    const char *protocol; /* default "TCP" */
    const char *app_protocol;
};

/* Endpoint conditions: -1 = unknown (absent), 0 = false, 1 = true. */
struct sv_endpoint {
    const char **addresses;
    size_t n_addresses;
    int8_t ready;
    int8_t serving;
    int8_t terminating;
};

struct sv_endpointslice {
    const char *service_name; /* label kubernetes.io/service-name, NULL if absent */
    const char *address_type;
    struct sv_slice_port *ports;
    size_t n_ports;
    struct sv_endpoint *endpoints;
    size_t n_endpoints;
};

struct sv_bytes_kv {
    const char *key;
    const uint8_t *data; /* NUL-terminated for convenience; len excludes it */
    size_t len;
};

struct sv_secret {
    const char *type; /* default "Opaque" */
    struct sv_bytes_kv *data; /* data (base64-decoded) merged with stringData */
    size_t n_data;
    const struct sv_bytes_kv *tls_crt; /* points into data, or NULL */
    const struct sv_bytes_kv *tls_key;
};

/* A ConfigMap: data only (binaryData is not read). */
struct sv_configmap {
    struct sv_kv *data;
    size_t n_data;
};

/* ---- BackendTLSPolicy (gateway.networking.k8s.io/v1) ------------------------------------ */

/* spec.targetRefs[] (LocalPolicyTargetReferenceWithSectionName). */
struct sv_policy_target {
    const char *group; /* "" for core */
    const char *kind;
    const char *name;
    const char *section_name; /* NULL = every port of the target */
};

enum sv_san_type { SV_SAN_HOSTNAME = 0, SV_SAN_URI, SV_SAN_UNSUPPORTED };

/* spec.validation.subjectAltNames[]. */
struct sv_san {
    enum sv_san_type type;
    const char *type_raw;
    const char *value; /* hostname or uri, whichever the type names; "" if absent */
};

struct sv_backendtlspolicy {
    struct sv_policy_target *targets;
    size_t n_targets;
    struct sv_object_ref *ca_refs; /* validation.caCertificateRefs; group "" when absent */
    size_t n_ca_refs;
    const char *well_known_ca;     /* validation.wellKnownCACertificates, NULL if absent */
    const char *hostname;          /* validation.hostname (required by the CRD), NULL if absent */
    struct sv_san *sans;
    size_t n_sans;
};

/* Value of key <key> of a ConfigMap's data (NUL-terminated), or NULL. */
const char *sv_configmap_get(const struct sv_configmap *cm, const char *key);

/* ---- the object ------------------------------------------------------------------------- */

struct sv_object {
    enum sv_kind kind;
    struct sv_meta meta;
    union {
        struct sv_gatewayclass gatewayclass;
        struct sv_gateway gateway;
        struct sv_httproute httproute;
        struct sv_referencegrant referencegrant;
        struct sv_service service;
        struct sv_endpointslice endpointslice;
        struct sv_secret secret;
        struct sv_listenerset listenerset;
        struct sv_configmap configmap;
        struct sv_backendtlspolicy backendtlspolicy;
    } u;
    const char *source; /* where it came from ("file.yaml#2"), NULL if not set */
    uint64_t content_hash; /* of the decoded JSON without status, resourceVersion and
                              managedFields: equal hashes = same content (change detection) */
    int _refs;             /* references: 1 after decoding; sv_object_ref / sv_object_free */
    struct sv_arena _arena;
};

/* Result of sv_model_decode. */
enum sv_decode_result {
    SV_DECODE_OK = 0,      /* *out holds a new object */
    SV_DECODE_IGNORED = 1, /* not a kind we model (or a different apiVersion): *out is NULL */
};

/* Decode one Kubernetes object from <json> (apiVersion, kind, metadata, spec, ...), applying CRD
 * defaults. <source> (may be NULL) is copied into the object for messages.
 * Returns SV_DECODE_OK with *out owned by the caller (free with sv_object_free),
 * SV_DECODE_IGNORED for kinds we do not model, -EINVAL with a message "<field path>: <problem>"
 * written to <err> (always NUL-terminated, may be truncated), or -ENOMEM. */
int sv_model_decode(const struct cJSON *json, const char *source, struct sv_object **out, char *err,
                    size_t errlen);

/* Drop one reference; the last one frees the object and everything it owns. NULL is fine. */
void sv_object_free(struct sv_object *obj);

/* Take one more reference (objects are immutable after decoding, so several stores may hold the
 * same object: the folder provider reuses the objects of unchanged files). Returns <obj>. */
struct sv_object *sv_object_ref(struct sv_object *obj);

/* Parse a Gateway API duration (GEP-2257: ^([0-9]{1,5}(h|m|s|ms)){1,4}$, the sum of the
 * components; "0s" is zero, a bare "0" is invalid).
 * Returns 0 and *ms, or -EINVAL. */
int sv_model_parse_duration(const char *text, int64_t *ms);

/* Parse an RFC 3339 timestamp ("2026-11-27T08:00:00Z", fraction and offset allowed) into ns since
 * the epoch. Returns 0 or -EINVAL. */
int sv_model_parse_time(const char *text, int64_t *ns_out);

#endif

/* Building a generation (control thread only). The translator (and quick mode) declare binds,
 * listeners, backend sets with their endpoints, routes, the hostnames each route serves on each
 * listener, and rules; sv_route_builder_finish compiles the lookup indexes (host hash, wildcard
 * suffixes, per-bucket segment trie with pre-sorted candidate lists, PCRE2 regexes) and returns
 * a generation ready for sv_generation_publish.
 *
 * Every input is copied: the caller's strings and arrays may be freed after each call. Indexes
 * returned by the add functions are small integers (>= 0) used to refer to the object later;
 * errors are negative errnos and the builder keeps a message (sv_route_builder_error) naming
 * the bad value. A builder that reported an error can still be used for other objects (the
 * failed object is not added) — the translator drops the bad rule and continues.
 *
 * Endpoint-only updates (pods scaling) do not need a builder: sv_generation_new_with_endpoints
 * makes a new generation that shares the route table of an existing one.
 */
#ifndef SERVAL_ROUTING_BUILDER_H
#define SERVAL_ROUTING_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "serval/base/str.h"
#include "serval/routing/table.h"

struct sv_generation;
struct sv_route_builder;

/* ---- specs (plain data the caller fills; copied by the builder) --------------------------- */

enum sv_route_value_type {
    SV_ROUTE_VALUE_EXACT = 0, /* Gateway API default */
    SV_ROUTE_VALUE_REGEX = 1, /* PCRE2, anchored full match, case-sensitive */
};

/* A header (name case-insensitive) or query-param (name case-sensitive) condition. */
struct sv_route_kv_match {
    enum sv_route_value_type type;
    struct sv_str name;
    struct sv_str value;
};

/* One HTTPRouteMatch: every condition must hold. Duplicate header/query names: the first
 * entry counts, later ones are ignored (Gateway API). */
struct sv_route_match_spec {
    enum sv_route_path_type path_type;  /* PREFIX by default */
    struct sv_str path;                 /* "" = "/" (with PREFIX) */
    const struct sv_route_kv_match *headers;
    uint32_t n_headers;
    const struct sv_route_kv_match *query;
    uint32_t n_query;
    struct sv_str method;               /* "" = any method */
};

struct sv_route_header_kv {
    struct sv_str name;
    struct sv_str value;
};

/* RequestHeaderModifier / ResponseHeaderModifier. */
struct sv_route_header_mods_spec {
    const struct sv_route_header_kv *set;
    uint32_t n_set;
    const struct sv_route_header_kv *add;
    uint32_t n_add;
    const struct sv_str *remove;
    uint32_t n_remove;
};

struct sv_route_backend_spec {
    enum sv_route_backend_kind kind;
    uint32_t set_id;   /* from sv_route_builder_add_backend_set; SET only */
    uint32_t weight;   /* the caller applies the default 1 */
    enum sv_route_app_proto app_proto;
    const struct sv_route_header_mods_spec *request_mods;  /* or NULL */
    const struct sv_route_header_mods_spec *response_mods; /* or NULL */
    const struct sv_route_redirect_spec *redirect;         /* backendRef filter, or NULL */
    const struct sv_route_rewrite_spec *rewrite;           /* backendRef filter, or NULL */
};

struct sv_route_mirror_spec {
    uint32_t set_id;
    uint32_t numerator;   /* percent: numerator = percent, denominator = 100 */
    uint32_t denominator; /* 0 = 100 */
};

struct sv_route_redirect_spec {
    struct sv_str scheme;   /* "", "http", "https" */
    struct sv_str hostname; /* "" = keep */
    uint16_t port;          /* 0 = not configured */
    struct sv_route_path_mod path;
    uint16_t status;        /* 0 = 302 */
};

struct sv_route_rewrite_spec {
    struct sv_str hostname;
    struct sv_route_path_mod path;
};

/* HTTPCORSFilter. Each list holds at most SV_ROUTE_CORS_MAX_ITEMS entries; "*" in
 * allow_methods / allow_headers must be the only entry; origins must pass
 * sv_route_cors_pattern_valid; methods and header names must be HTTP tokens. */
#define SV_ROUTE_CORS_MAX_ITEMS 64
struct sv_route_cors_spec {
    const struct sv_str *allow_origins;
    uint32_t n_allow_origins;
    const struct sv_str *allow_methods;
    uint32_t n_allow_methods;
    const struct sv_str *allow_headers;
    uint32_t n_allow_headers;
    const struct sv_str *expose_headers;
    uint32_t n_expose_headers;
    bool allow_credentials;
    uint32_t max_age; /* seconds; the caller applies the default 5 */
};

/* One HTTPRoute rule. n_matches == 0 means one match "PathPrefix /". */
struct sv_route_rule_spec {
    const struct sv_route_match_spec *matches;
    uint32_t n_matches;
    const struct sv_route_header_mods_spec *request_mods;  /* or NULL */
    const struct sv_route_header_mods_spec *response_mods; /* or NULL */
    const struct sv_route_redirect_spec *redirect;         /* or NULL */
    const struct sv_route_rewrite_spec *rewrite;           /* or NULL */
    const struct sv_route_cors_spec *cors;                 /* or NULL */
    const struct sv_route_mirror_spec *mirrors;
    uint32_t n_mirrors;
    const struct sv_route_backend_spec *backends;
    uint32_t n_backends;
    uint64_t request_timeout_ms; /* 0 = not set, SV_ROUTE_TIMEOUT_OFF = disabled ("0s") */
    uint64_t backend_timeout_ms; /* 0 = not set, SV_ROUTE_TIMEOUT_OFF = disabled ("0s") */
    const struct sv_route_retry *retry; /* or NULL; attempts 0 means no retries (dropped),
                                           above SV_ROUTE_RETRY_MAX_ATTEMPTS clamped */
    uint16_t fixed_status;       /* non-zero: answer it (e.g. 500, bad ExtensionRef) */
};

/* Precedence keys of an HTTPRoute (after match specificity): older creation first, then
 * "namespace/name" alphabetically, then the order routes were added. */
struct sv_route_route_spec {
    struct sv_str namespace_;
    struct sv_str name;
    int64_t creation_ts; /* metadata.creationTimestamp, any monotonic unit (e.g. unix seconds) */
};

/* ---- building ------------------------------------------------------------------------------- */

/* New empty builder. Control thread. Caller owns it: sv_route_builder_finish or _free.
 * Returns NULL on out of memory. */
struct sv_route_builder *sv_route_builder_new(void);

/* Discard a builder that will not be finished. NULL is a no-op. Control thread. */
void sv_route_builder_free(struct sv_route_builder *b);

/* Message of the last error ("" when none). Valid until the next builder call. */
const char *sv_route_builder_error(const struct sv_route_builder *b);

/* Declare a socket to listen on. The same address and protocol again returns the same index.
 * Returns the bind index, -EAFNOSUPPORT (not IPv4/IPv6), -EEXIST (same address, other
 * protocol) or -ENOMEM. */
int sv_route_builder_add_bind(struct sv_route_builder *b, const struct sockaddr *sa,
                              socklen_t salen, enum sv_route_proto proto);

/* Declare a listener on bind <bind> with an optional <hostname> ("" = any, exact, or
 * "*.suffix"; lower-cased on copy). Returns the listener index, -EINVAL (bad bind or hostname),
 * -EEXIST (same hostname on the same bind) or -ENOMEM. */
int sv_route_builder_add_listener(struct sv_route_builder *b, uint32_t bind, struct sv_str name,
                                  struct sv_str hostname);

/* Attach an opaque TLS context (the control thread's struct sv_tls_server; routing never looks
 * inside) to HTTPS bind <bind>. The route table owns it from now on: <release>(ctx) runs when
 * the table is freed (with its last generation), or when the builder is discarded, or when
 * another context replaces it. Returns 0, -EINVAL (no such bind, or not HTTPS; the caller
 * still owns ctx) or -ENOMEM (same). Control thread. */
int sv_route_builder_set_bind_tls(struct sv_route_builder *b, uint32_t bind, void *ctx,
                                  sv_route_release_fn release);

/* Attach an opaque upstream TLS context (the control thread's struct sv_tls_client for a
 * BackendTLSPolicy; routing never looks inside) to backend set <set_id>: connections to its
 * endpoints speak TLS with it. Ownership as for sv_route_builder_set_bind_tls: the route table
 * releases it with <release>(ctx) when it is freed (also when the generation is replaced by an
 * endpoint-only update: the table, and the context, are shared), when the builder is discarded,
 * or when another context replaces it. Returns 0, -EINVAL (no such set; the caller still owns
 * ctx) or -ENOMEM (same). Control thread. */
int sv_route_builder_set_backend_tls(struct sv_route_builder *b, uint32_t set_id, void *ctx,
                                     sv_route_release_fn release);

/* Declare a backend set (e.g. "ns/svc:port"); the same name again returns the same id.
 * Returns the set id or -ENOMEM / -EINVAL (empty name). */
int sv_route_builder_add_backend_set(struct sv_route_builder *b, struct sv_str name);

/* Add an endpoint (IPv4/IPv6 address with port) to set <set_id>. Duplicates are ignored.
 * Returns 0, -EINVAL or -ENOMEM. */
int sv_route_builder_add_endpoint(struct sv_route_builder *b, uint32_t set_id,
                                  const struct sockaddr *sa, socklen_t salen);

/* Optional: make room for about <routes> routes (and as many attachments), <rules> rules and
 * <matches> matches before adding them, so that a large build does not grow (copy) its arrays
 * step by step. Counts may be estimates; more still works. Control thread. Returns 0 or
 * -ENOMEM (nothing is lost: the builder stays usable). */
int sv_route_builder_reserve(struct sv_route_builder *b, uint32_t routes, uint32_t rules,
                             uint32_t matches);

/* Declare an HTTPRoute. Returns the route index or -ENOMEM. */
int sv_route_builder_add_route(struct sv_route_builder *b, const struct sv_route_route_spec *spec);

/* Serve route <route> on listener <listener> under <hostname> (the route hostname that applies
 * there after intersection with the listener hostname — exact, "*.suffix", or "" for none).
 * Call once per (listener, hostname). Returns 0, -EINVAL or -ENOMEM. */
int sv_route_builder_attach(struct sv_route_builder *b, uint32_t route, uint32_t listener,
                            struct sv_str hostname);

/* Like sv_route_builder_attach, and rank the route among the others of that host bucket by
 * <original>: the route's own hostname that produced <hostname> by intersection ("" when the
 * route has none). Routes of one bucket are ordered by their original hostname first (more
 * characters of non-wildcard hostname, then more characters), then by match specificity
 * (GATEWAY_API_RULES.md §3 step 2; sv_route_builder_attach uses <hostname> itself, the same for
 * every route of the bucket). Attaching a route twice to one bucket keeps its best original.
 * Control thread. Returns 0, -EINVAL or -ENOMEM. */
int sv_route_builder_attach_original(struct sv_route_builder *b, uint32_t route, uint32_t listener,
                                     struct sv_str hostname, struct sv_str original);

/* Add the next rule of route <route>. Validates and compiles it (paths must start with '/';
 * regexes must compile; ReplacePrefixMatch needs every match of the rule to be PathPrefix
 * (the default match counts); redirect excludes rewrite
 * and backends; weights/limits). Returns the rule index within the route, or -EINVAL (message
 * in sv_route_builder_error; the rule is not added) or -ENOMEM. */
int sv_route_builder_add_rule(struct sv_route_builder *b, uint32_t route,
                              const struct sv_route_rule_spec *spec);

/* Compile everything into a new unpublished generation and free the builder (always, also on
 * failure). Returns the generation (owned by the caller until sv_generation_publish; or
 * sv_generation_free_unpublished) or NULL with a message in err[errlen]. Control thread. */
struct sv_generation *sv_route_builder_finish(struct sv_route_builder *b, char *err, size_t errlen);

/* ---- endpoint-only update ---------------------------------------------------------------- */

struct sv_route_endpoint_update {
    uint32_t set_id;
    const struct sv_route_endpoint *endpoints; /* copied */
    size_t n_endpoints;                        /* 0 = no ready endpoints (503) */
};

/* A new unpublished generation sharing <base>'s route table (refcounted, not copied) with
 * <base>'s endpoints except the sets listed in <updates>, whose endpoints are replaced.
 * <base> must be alive (e.g. sv_generation_current on the control thread). Control thread.
 * Returns the generation or NULL with a message in err[errlen] (unknown set id, bad address,
 * out of memory). */
struct sv_generation *sv_generation_new_with_endpoints(const struct sv_generation *base,
                                                       const struct sv_route_endpoint_update *updates,
                                                       size_t n_updates, char *err, size_t errlen);

/* True when <a> and <b> share one route table (for tests and logs). Any thread holding both. */
int sv_generation_same_routes(const struct sv_generation *a, const struct sv_generation *b);

#endif

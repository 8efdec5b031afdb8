/* The compiled route table as the data plane sees it: binds, listeners, rule actions (filters as
 * data, weighted backends, timeouts), endpoints; the request lookup; and the helpers a worker
 * calls after the lookup (pick a backend by weight, pick an endpoint round robin, compute a
 * redirect Location or a rewritten path). Everything here is read-only, allocation-free and safe
 * on any thread that holds a valid generation pointer (generation.h).
 *
 * Everything returned points into the generation and is valid exactly as long as the
 * generation pointer it came from (one loop iteration, or while a reference is held).
 */
#ifndef SERVAL_ROUTING_TABLE_H
#define SERVAL_ROUTING_TABLE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "serval/base/str.h"

struct sv_generation;
struct sv_http_header_mods; /* serval/http/serialize.h; NULL pointer = no modification */
struct sv_http_header;      /* serval/http/message.h */

/* ---- binds and listeners ------------------------------------------------------------------ */

enum sv_route_proto {
    SV_ROUTE_PROTO_HTTP = 0,
    SV_ROUTE_PROTO_HTTPS = 1,
    /* TLS passthrough (TLSRoute): the ClientHello's SNI is the host routed on (path "/"), the
     * connection is relayed to the picked backend untouched; no TLS context, no HTTP */
    SV_ROUTE_PROTO_TLS_PASSTHROUGH = 2,
};

/* An IPv4 or IPv6 socket address. */
union sv_route_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* One socket the data plane must listen on. Several listeners may share it. */
struct sv_route_bind {
    union sv_route_sockaddr addr;
    socklen_t addrlen;
    uint16_t port; /* host byte order, same as in addr */
    enum sv_route_proto proto;
};

/* A Gateway listener on one bind. */
struct sv_route_listener {
    struct sv_str name;     /* e.g. "ns/gateway/listener"; for logs and /config */
    struct sv_str hostname; /* "" = any host; "a.example.com" or "*.example.com" */
    uint32_t bind;          /* index in sv_generation_binds() */
    uint16_t port;          /* = the bind's port (redirect default port) */
    enum sv_route_proto proto;
};

/* Releases an opaque object the route table owns (see sv_route_builder_set_bind_tls). */
typedef void (*sv_route_release_fn)(void *ctx);

/* The TLS context attached to bind <bind> (a struct sv_tls_server * for HTTPS binds, see
 * serval/tls/tls.h), or NULL when none (plain HTTP, or an HTTPS bind without any valid
 * certificate: refuse its connections). Valid as long as <gen>; a connection that keeps it
 * takes its own reference (sv_tls_conn_open does). Any thread holding <gen>; no allocation. */
void *sv_generation_bind_tls(const struct sv_generation *gen, uint32_t bind);

/* The upstream TLS context of backend set <set_id> (a struct sv_tls_client *, see
 * serval/tls/tls.h; attached with sv_route_builder_set_backend_tls), or NULL when its endpoints
 * speak cleartext. Valid as long as <gen>; an upstream connection that keeps it takes its own
 * reference (sv_tls_conn_open_client does). Any thread holding <gen>; no allocation. */
void *sv_generation_backend_tls(const struct sv_generation *gen, uint32_t set_id);

/* The binds of <gen> (count in *n). Any thread holding <gen>. */
const struct sv_route_bind *sv_generation_binds(const struct sv_generation *gen, size_t *n);

/* The listeners of <gen> (count in *n). Any thread holding <gen>. */
const struct sv_route_listener *sv_generation_listeners(const struct sv_generation *gen, size_t *n);

/* Index of the bind whose address equals <sa> exactly; failing that, a bind with the same family
 * and port on the wildcard address (0.0.0.0 / ::). -1 when none. Any thread holding <gen>. */
int sv_generation_find_bind(const struct sv_generation *gen, const struct sockaddr *sa);

/* ---- actions -------------------------------------------------------------------------------- */

enum sv_route_app_proto {
    SV_ROUTE_APP_HTTP1 = 0, /* plain HTTP/1.1 (default; upgrades still allowed) */
    SV_ROUTE_APP_H2C = 1,   /* kubernetes.io/h2c: HTTP/2 prior knowledge */
    SV_ROUTE_APP_WS = 2,    /* kubernetes.io/ws: WebSocket */
};

enum sv_route_backend_kind {
    SV_ROUTE_BACKEND_SET = 0,     /* forward to an endpoint of backend set <set_id>; a set with no
                                     endpoints answers 503 */
    SV_ROUTE_BACKEND_INVALID = 1, /* invalid backendRef: this share of traffic answers 500 */
};

/* One weighted backendRef of a rule. */
struct sv_route_backend {
    enum sv_route_backend_kind kind;
    uint32_t set_id; /* SV_ROUTE_BACKEND_SET only */
    uint32_t weight; /* 0 = never picked */
    enum sv_route_app_proto app_proto;
    const struct sv_http_header_mods *request_mods;  /* backendRef-level filters, or NULL */
    const struct sv_http_header_mods *response_mods; /* backendRef-level filters, or NULL */
    /* What to hand to the serializer when this backend is picked: the rule's modifiers followed
     * by this backendRef's, merged at build time into one set with the same effect as applying
     * the two in turn (one of them when the other is absent; NULL when both are). */
    const struct sv_http_header_mods *combined_request_mods;
    const struct sv_http_header_mods *combined_response_mods;
    /* backendRef-level RequestRedirect: when this backend is picked, answer the redirect
     * instead of forwarding (NULL = none; never together with <rewrite>). */
    const struct sv_route_redirect *redirect;
    /* URLRewrite to apply when this backend is picked, or NULL to use the rule's: the
     * backendRef's own URLRewrite with the fields it leaves unset (hostname, path) taken from
     * the rule's, merged at build time. */
    const struct sv_route_rewrite *rewrite;
};

enum sv_route_path_mod_type {
    SV_ROUTE_PATH_MOD_NONE = 0,
    SV_ROUTE_PATH_MOD_FULL = 1,   /* ReplaceFullPath */
    SV_ROUTE_PATH_MOD_PREFIX = 2, /* ReplacePrefixMatch */
};

struct sv_route_path_mod {
    enum sv_route_path_mod_type type;
    struct sv_str value;
};

/* RequestRedirect. Empty strings / 0 mean "not configured". */
struct sv_route_redirect {
    struct sv_str scheme;   /* "http" or "https" */
    struct sv_str hostname;
    uint16_t port;
    struct sv_route_path_mod path;
    uint16_t status;        /* 301 302 303 307 308 (302 when not configured) */
};

/* URLRewrite. */
struct sv_route_rewrite {
    struct sv_str hostname; /* "" = keep Host */
    struct sv_route_path_mod path;
};

/* RequestMirror: copy the request to one endpoint of <set_id> with probability
 * numerator/denominator; ignore the response. */
struct sv_route_mirror {
    uint32_t set_id;
    uint32_t numerator;
    uint32_t denominator; /* > 0 */
};

/* CORS filter, compiled. Origin patterns are lower-cased: "*" (any origin) or
 * "scheme://host[:port]" where host may be "*" or start with "*." (any labels on its left).
 * The list values are ready to send ("GET, OPTIONS"; "" = none configured). */
struct sv_route_cors {
    const struct sv_str *origins;
    uint32_t n_origins;
    struct sv_str allow_methods;  /* configured list; unused when any_method */
    struct sv_str allow_headers;  /* configured list; unused when any_header */
    struct sv_str expose_headers; /* "" = none */
    struct sv_str max_age;        /* seconds, decimal */
    bool any_method;              /* allowMethods ["*"]: echo the requested method */
    bool any_header;              /* allowHeaders ["*"]: echo the requested headers */
    bool allow_credentials;
};

/* HTTPRouteRetry of a rule: retry a failed try (a listed status, a connection error or reset
 * before the response head, or a backendRequest timeout) up to <attempts> more times, waiting at
 * least <backoff_ms> before each retry. */
#define SV_ROUTE_RETRY_MAX_ATTEMPTS 16u /* more are clamped to this (bounded work per request) */
struct sv_route_retry {
    uint32_t attempts;   /* retries after the first try, 1..SV_ROUTE_RETRY_MAX_ATTEMPTS */
    uint32_t backoff_ms; /* minimum wait before each retry; 0 = retry at once */
    uint64_t codes[4];   /* bit (status - 400): retry on that response status (400..599) */
};

/* Whether <status> is one of the retry codes of <r>. Any thread. */
static inline bool sv_route_retry_on_status(const struct sv_route_retry *r, int status)
{
    if (status < 400 || status > 599)
        return false;
    unsigned i = (unsigned)(status - 400);
    return (r->codes[i / 64] >> (i % 64)) & 1u;
}

/* A route timeout given as zero ("0s"): the Gateway API says it disables the timeout. */
#define SV_ROUTE_TIMEOUT_OFF UINT64_MAX

/* The filters, timeouts and retry policy of a rule: everything of an action but its backends.
 * Most rules have none of them, so one block is shared by every action whose block has the same
 * content (the builder interns them; all-empty for most rules). Filters apply in this order:
 * fixed_status, cors (answers preflights, decorates responses for allowed origins), redirect
 * (answers), request_mods, rewrite, mirrors, then forward to a picked backend (whose own
 * request_mods apply after the rule's), response_mods on the way back. */
struct sv_route_action_ext {
    const struct sv_http_header_mods *request_mods;  /* or NULL */
    const struct sv_http_header_mods *response_mods; /* or NULL */
    const struct sv_route_redirect *redirect;        /* or NULL; then no backends */
    const struct sv_route_rewrite *rewrite;          /* or NULL */
    const struct sv_route_cors *cors;                /* or NULL */
    const struct sv_route_mirror *mirrors;
    const struct sv_route_retry *retry; /* or NULL: no retry policy */
    /* 0 = not set; SV_ROUTE_TIMEOUT_OFF = set to "0s" (disabled). When neither is set the
     * gateway's --upstream-timeout applies; when either is set, the route's own replace it. */
    uint64_t request_timeout_ms;
    uint64_t backend_timeout_ms;
    uint32_t n_mirrors;
    uint16_t fixed_status; /* non-zero: answer this status at once (e.g. 500 for an
                              unresolvable ExtensionRef filter) */
};

/* What to do with a request that matched one rule (56 bytes: one per rule of every route). */
struct sv_route_action {
    const struct sv_route_action_ext *ext;    /* never NULL (shared, see above) */
    const struct sv_route_backend *backends;  /* interned: shared by rules with equal arrays */
    const uint64_t *_cum_weight; /* private: prefix sums of weights for the picker; NULL when
                                    n_backends < 2 */
    struct sv_str route_name;    /* "namespace/name" of the HTTPRoute (or "quick"); one copy
                                    per route */
    uint32_t id;                 /* unique within the route table */
    uint32_t rule_index;         /* position of the rule in its route */
    uint32_t n_backends;
};

/* ---- lookup ------------------------------------------------------------------------------- */

/* Join every request header named <name> (ASCII case-insensitive) with "," into out[cap].
 * Returns the length, -ENOENT when absent, -ENOSPC when it does not fit. Same contract as
 * sv_http_head_join (serval/http/message.h); the data plane passes a two-line wrapper. */
typedef ssize_t (*sv_route_header_fn)(const void *ctx, struct sv_str name, char *out, size_t cap);

/* The request facts the lookup needs. All strings are borrowed for the call only. */
struct sv_route_request {
    const struct sockaddr *local; /* address of the listening socket that accepted the
                                     connection (or the connection's local address) */
    struct sv_str host;           /* Host header value; ":port" is stripped, case ignored */
    struct sv_str path;           /* path only, no query; "" is treated as "/" */
    struct sv_str query;          /* after '?', without it; "" = none */
    struct sv_str method;         /* method token, e.g. "GET" */
    sv_route_header_fn header;    /* may be NULL when the request has no headers to match */
    const void *header_ctx;
};

enum sv_route_path_type {
    SV_ROUTE_PATH_PREFIX = 0, /* Gateway API default */
    SV_ROUTE_PATH_EXACT = 1,
    SV_ROUTE_PATH_REGEX = 2,
};

/* Result of a lookup. */
struct sv_route_result {
    const struct sv_route_action *action;     /* NULL when nothing matched (404) */
    const struct sv_route_listener *listener; /* the request's listener, NULL if none */
    enum sv_route_path_type path_type;        /* of the match that won */
    size_t prefix_len; /* PathPrefix winner: length of its value without a trailing '/'
                          (input of ReplacePrefixMatch); 0 otherwise */
};

/* Route one request: bind (by req->local) -> listener (by host: exact, then the wildcard with
 * the most labels, then the hostname-less one; never another) -> host buckets of that listener
 * in precedence order -> the first rule match in Gateway API precedence order. Never allocates;
 * cost grows with the host and path length (and, within one host bucket, with the log of the
 * number of sibling path segments), never with the routes on other hostnames (regex matches
 * excepted: those of a bucket are tried in order). Any thread holding <gen>.
 * Returns 0 with res->action set, or -ENOENT (404: no bind, no listener or no matching rule;
 * res->listener tells which). */
int sv_route_lookup(const struct sv_generation *gen, const struct sv_route_request *req,
                    struct sv_route_result *res);

/* The listener a request for <host> (Host header or TLS SNI; ":port" stripped, case ignored)
 * arriving on <local> belongs to: exact hostname, then the wildcard with the most labels, then
 * the hostname-less listener. Returns its index in sv_generation_listeners(), or -1. For TLS:
 * select the certificate by SNI, and answer 421 when the Host selects another listener.
 * Any thread holding <gen>; no allocation. */
int sv_generation_select_listener(const struct sv_generation *gen, const struct sockaddr *local,
                                  struct sv_str host);

/* ---- after the lookup ---------------------------------------------------------------------- */

/* Pick a backend by weight: backend i is chosen when <rnd> % (sum of the weights) falls in its
 * share, so a uniformly random <rnd> (the caller's per-worker PRNG) gives share = weight / sum.
 * Weight 0 is never picked. Returns NULL when the action has no backends or every weight is 0
 * (answer 500). A returned SV_ROUTE_BACKEND_INVALID backend answers 500. Any thread. */
const struct sv_route_backend *sv_route_pick_backend(const struct sv_route_action *a, uint64_t rnd);

/* Whether this request is mirrored by <m>: true with probability numerator/denominator for a
 * uniformly random <rnd>. Any thread. */
bool sv_route_mirror_pick(const struct sv_route_mirror *m, uint64_t rnd);

/* An endpoint of the generation's backend set. */
struct sv_route_endpoint {
    union sv_route_sockaddr addr;
    socklen_t addrlen;
};

/* Pick the next endpoint of backend set <set_id> round robin. <cursor> is caller-owned state
 * (one per worker and set, or per worker hashed by set id; any value is valid). <avoid>, if not
 * NULL, is skipped (compared by address, so it may come from an older generation) — used to
 * retry on another endpoint. Returns NULL when the set has no endpoints (answer 503) or when
 * <avoid> is the only one. Any thread holding <gen>. */
const struct sv_route_endpoint *sv_generation_pick_endpoint(const struct sv_generation *gen,
                                                            uint32_t set_id, uint32_t *cursor,
                                                            const struct sv_route_endpoint *avoid);

/* Number of backend sets, the name given to set <set_id> ("" if out of range) and its
 * endpoints (count in *n, NULL if out of range). For /config and the endpoint-only update.
 * Any thread holding <gen>. */
uint32_t sv_generation_n_backend_sets(const struct sv_generation *gen);
struct sv_str sv_generation_backend_set_name(const struct sv_generation *gen, uint32_t set_id);
const struct sv_route_endpoint *sv_generation_endpoints(const struct sv_generation *gen,
                                                        uint32_t set_id, size_t *n);

/* Describe <gen> as one JSON object (for GET /config and logs): id, binds, listeners with their
 * host buckets, actions (route, rule, filters, weighted backends, timeouts) and backend sets
 * with endpoints. Writes at most cap bytes into out (NUL-terminated when cap > 0) and returns
 * the full length like snprintf: a result >= cap means "retry with a buffer of result + 1".
 * Any thread holding <gen>; no allocation. */
size_t sv_generation_write_json(const struct sv_generation *gen, char *out, size_t cap);

/* Id of the backend set named <name>, or -1. Any thread holding <gen> (hash lookup). */
int64_t sv_generation_find_backend_set(const struct sv_generation *gen, struct sv_str name);

/* Replace the matched prefix of <path> (its first <prefix_len> bytes, as reported in
 * sv_route_result.prefix_len) with <replacement> (GATEWAY_API_RULES.md §4: result =
 * replacement + rest, a "//" at the seam collapsed, empty result -> "/"). Writes into out[cap]
 * (not NUL-terminated). Returns the length or -ENOSPC. Any thread; no allocation. */
ssize_t sv_route_replace_prefix(struct sv_str path, size_t prefix_len, struct sv_str replacement,
                                char *out, size_t cap);

/* The path to send upstream (or to redirect to) after a path modifier: NONE -> <path>,
 * FULL -> the value, PREFIX -> sv_route_replace_prefix with res->prefix_len. Writes into
 * out[cap]. Returns the length or -ENOSPC. Any thread. */
ssize_t sv_route_apply_path_mod(const struct sv_route_path_mod *mod,
                                const struct sv_route_result *res, struct sv_str path, char *out,
                                size_t cap);

/* The Location of a RequestRedirect: scheme://host[:port]path[?query] with the Gateway API
 * defaults: scheme = configured or <req_scheme>; host = configured or <req_host> without its
 * port; port = configured, else the well-known port of a configured scheme, else the listener's
 * port; the port is left out when it is 80 with http or 443 with https; path per the path
 * modifier; the query string is kept. Writes out[cap] (not NUL-terminated). Returns the length,
 * -EINVAL when res has no redirect, or -ENOSPC. Any thread; no allocation. */
ssize_t sv_route_redirect_location(const struct sv_route_result *res, struct sv_str req_scheme,
                                   struct sv_str req_host, struct sv_str path, struct sv_str query,
                                   char *out, size_t cap);

/* The redirect status to answer (res->action->redirect->status, 302 by default). */
int sv_route_redirect_status(const struct sv_route_result *res);

/* ---- CORS (routing/cors.c) ----------------------------------------------------------------- */

/* True when <pattern> is a valid allowOrigins entry: "*", or scheme "://" host [":" port] with
 * host "*", "*.labels", "labels" or "[ipv6]", port 1..65535, nothing after. Any thread. */
bool sv_route_cors_pattern_valid(struct sv_str pattern);

/* True when request header Origin <origin> matches one of c's patterns: "*" matches anything;
 * otherwise scheme and host compare ASCII case-insensitively, "*." matches one or more labels,
 * and the ports must be equal, an absent port counting as the scheme's default (http 80,
 * https 443). Any thread; no allocation. */
bool sv_route_cors_origin_allowed(const struct sv_route_cors *c, struct sv_str origin);

/* Most headers sv_route_cors_headers writes. */
#define SV_ROUTE_CORS_MAX_HEADERS 6

/* The CORS response headers for an allowed <origin> (the caller checked it with
 * sv_route_cors_origin_allowed): Access-Control-Allow-Origin (the origin echoed, also for "*",
 * so credentials work), -Allow-Credentials "true" when configured, -Expose-Headers when
 * configured; for a preflight (<preflight>) also -Allow-Methods (the configured list, or
 * <req_method> for "*"), -Allow-Headers when the request asked (<req_headers> ptr not NULL: the
 * configured list, or <req_headers> echoed for "*") and -Max-Age. Vary is the caller's. Fills
 * out[cap] (cap >= SV_ROUTE_CORS_MAX_HEADERS); values point into <c> or the arguments. Returns
 * the number of headers. Any thread; no allocation. */
uint32_t sv_route_cors_headers(const struct sv_route_cors *c, struct sv_str origin, bool preflight,
                               struct sv_str req_method, struct sv_str req_headers,
                               struct sv_http_header *out, uint32_t cap);

#endif

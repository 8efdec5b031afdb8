/* CORS filter in the data plane (worker threads only): preflights answered by the gateway, the
 * Access-Control-* headers added to upstream responses for allowed origins. The pure parts
 * (origin matching, which headers) live in routing (serval/routing/table.h, routing/cors.c). */
#ifndef SERVAL_DATAPLANE_CORS_H
#define SERVAL_DATAPLANE_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "dataplane/dp_int.h"

/* Apply action <a>'s CORS filter (a->cors not NULL) to the request parsed in c->req. A preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) is answered here: the whole response
 * (200 with the Access-Control-* headers for an allowed origin, 403 without them otherwise;
 * empty body; "Connection: close" unless <keep>) is written into out[cap], *answer points at it
 * and the status is returned. Any other request returns 0 after recording an allowed Origin in
 * c (for sv_dp_cors_response_mods; an Origin longer than SV_CORS_ORIGIN_MAX counts as not
 * allowed). Returns -ENOSPC when the answer does not fit in <cap>. Worker thread; no allocation.
 */
int sv_dp_cors_request(struct sv_conn *c, const struct sv_route_action *a, bool keep, char *out,
                       size_t cap, struct sv_str *answer);

/* The response header modifiers for c's upstream response: <rm> (may be NULL) when c recorded no
 * allowed origin, else <rm> with the CORS headers set (replacing the upstream's) and
 * "Vary: Origin" added, in w's scratch (valid until the next call; use it at once). Falls back to
 * <rm> when the merge does not fit. Worker thread; no allocation. */
const struct sv_http_header_mods *sv_dp_cors_response_mods(struct sv_worker *w,
                                                           const struct sv_conn *c,
                                                           const struct sv_http_header_mods *rm);

#endif

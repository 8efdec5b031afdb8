/* Status writeback helpers (pure): merge the translator's desired status into the status an
 * object has on the API server, the way a well-behaved Gateway API controller must:
 *  - GatewayClass / Gateway: we own the status; conditions, listeners and addresses are replaced.
 *  - HTTPRoute: status.parents is an atomic list shared with other controllers; only entries whose
 *    controllerName is ours are replaced, added or dropped; others stay as they are, in place.
 *  - BackendTLSPolicy: status.ancestors, the same way (keyed by ancestorRef).
 *  - a condition keeps its lastTransitionTime when its status did not flip.
 * Control thread only (any single thread).
 */
#ifndef SERVAL_CONTROL_K8S_STATUS_H
#define SERVAL_CONTROL_K8S_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/model.h"

struct cJSON;

/* Merge <desired> (one object's entry of sv_status_to_json: {"conditions":..} / {"parents":..})
 * into <current> (the object's "status", NULL if none) for an object of <kind>.
 * <controller> is our controllerName; <now> the RFC 3339 time for flipped conditions.
 * Returns a new status tree (caller frees with cJSON_Delete) and *changed = whether it differs
 * from <current>; NULL when out of memory. */
struct cJSON *sv_k8s_status_merge(enum sv_kind kind, const struct cJSON *current,
                                  const struct cJSON *desired, const char *controller,
                                  const char *now, bool *changed);

/* RFC 3339 UTC with exactly six fraction digits ("2026-11-27T08:00:00.123456Z", a Kubernetes
 * MicroTime) for <realtime_ns>, into out (>= 32 bytes). <micro> false prints whole seconds
 * ("...:00Z", metav1.Time). */
void sv_k8s_format_time(int64_t realtime_ns, bool micro, char *out, size_t outlen);

#endif

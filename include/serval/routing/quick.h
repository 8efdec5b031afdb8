/* Quick mode: a generation from command-line flags, no manifests.
 *
 *   --listen ADDR:PORT                          (repeatable; IPv6 as [ADDR]:PORT)
 *   --listen tls-passthrough:ADDR:PORT          (TLS passthrough: HOST is the ClientHello SNI,
 *                                                the connection is relayed untouched; PREFIX
 *                                                must be "/")
 *   --route [HOST]/PREFIX=IP:PORT[,IP:PORT...]  (repeatable; longest prefix wins; round robin;
 *                                                HOST empty = any host; applies to every --listen)
 *
 * HOST may be exact or "*.suffix". PREFIX is element-wise (Gateway API PathPrefix).
 */
#ifndef SERVAL_ROUTING_QUICK_H
#define SERVAL_ROUTING_QUICK_H

#include <stddef.h>

struct sv_generation;

/* Build a generation from the values of <n_listens> --listen flags and <n_routes> --route flags
 * (the flag values only, without the flag names). Control thread (or main before threads start).
 * Returns an unpublished generation owned by the caller, or NULL with a one-line message in
 * err[errlen] that names the bad flag and value, e.g.
 *   --route "/api=10.0.0.1": missing port in "10.0.0.1" */
struct sv_generation *sv_quick_build(const char *const *listens, size_t n_listens,
                                     const char *const *routes, size_t n_routes, char *err,
                                     size_t errlen);

#endif

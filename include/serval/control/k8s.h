/* The Kubernetes controller (--kubeconfig FILE | --in-cluster): reflectors (LIST + WATCH of the
 * eleven kinds) fill one object store; bursts of changes are debounced into one translation and
 * one published generation; the leader (Lease election) writes status back. Every replica
 * serves traffic.
 *
 * The control thread owns it: each loop iteration asks sv_k8s_pollfds / sv_k8s_timeout_ms, polls,
 * then calls sv_k8s_process. Nothing blocks except sv_k8s_close (bounded Lease release). The admin
 * thread may call sv_k8s_ready and sv_k8s_config_json at any time.
 *
 * Test knobs (environment, milliseconds; defaults in brackets): SERVAL_K8S_LEASE_DURATION_MS
 * [15000], SERVAL_K8S_RENEW_DEADLINE_MS [10000], SERVAL_K8S_RETRY_PERIOD_MS [2000],
 * SERVAL_K8S_WATCH_IDLE_MS [timeoutSeconds + 30 s], SERVAL_K8S_BACKOFF_CAP_MS [30000];
 * SERVAL_K8S_SA_DIR replaces the ServiceAccount folder of --in-cluster (tests).
 * Identity: POD_NAME (else the host name) + "_" + random; namespace of the Lease: POD_NAMESPACE,
 * else the kubeconfig context's / ServiceAccount namespace, else "default".
 */
#ifndef SERVAL_CONTROL_K8S_H
#define SERVAL_CONTROL_K8S_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/translate.h"

struct sv_generation_domain;
struct sv_k8s;

struct sv_k8s_opts {
    const char *kubeconfig;        /* --kubeconfig FILE, or NULL */
    bool in_cluster;               /* --in-cluster */
    bool insecure_skip_tls_verify; /* --insecure-skip-tls-verify */
    const char *sa_dir;            /* ServiceAccount folder (NULL = the standard path) */
    struct sv_translate_opts translate;
};

/* Read the connection settings, build the TLS context, start the reflectors and publish an
 * empty first generation into <dom> (nothing is routed until every reflector synced). Control
 * thread. Returns 0 and *out (sv_k8s_close), or -errno with a message in err[errlen] (bad
 * kubeconfig, not in a cluster, bad CA, out of memory). */
int sv_k8s_open(const struct sv_k8s_opts *o, struct sv_generation_domain *dom,
                struct sv_k8s **out, char *err, size_t errlen);

/* Stop writing status, release the Lease if we hold it (blocks at most the renew deadline),
 * close every connection and free. Control thread, after the admin thread stopped calling
 * sv_k8s_config_json. NULL is fine. */
void sv_k8s_close(struct sv_k8s *k);

/* Shutdown has begun: stop writing status and release the Lease now if we hold it (so another
 * replica takes over at once, as client-go's ReleaseOnCancel does); blocks at most 2 s. The
 * reflectors keep running. Control thread. Idempotent. */
void sv_k8s_shutdown(struct sv_k8s *k);

/* Fill up to <max> pollfds for the open connections. Returns how many. Control thread. */
int sv_k8s_pollfds(struct sv_k8s *k, struct pollfd *pfd, int max);

/* Milliseconds until sv_k8s_process has timed work (backoff, debounce, Lease), -1 if none. */
int sv_k8s_timeout_ms(struct sv_k8s *k);

/* Advance every connection and timer without blocking; translate and publish when the store
 * changed and the debounce expired. Returns 1 when a generation was published, 0 otherwise, or a
 * negative errno when translation failed (the last good generation keeps serving). */
int sv_k8s_process(struct sv_k8s *k);

/* True once every reflector finished its first LIST and a generation built from it is live; stays
 * true through watch reconnects. Any thread. */
bool sv_k8s_ready(struct sv_k8s *k);

/* True while this replica holds the Lease. Control thread. */
bool sv_k8s_leader(const struct sv_k8s *k);

/* The /config document (JSON): provider, server, per-kind sync state and resourceVersion,
 * counters, leadership, the published generation and the computed status. Any thread. Returns a
 * malloc'd string (caller frees) or NULL when out of memory. */
char *sv_k8s_config_json(struct sv_k8s *k);

#endif

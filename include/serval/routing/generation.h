/* Routing generations and their RCU-style publication.
 *
 * A generation is the immutable compiled routing state the data plane reads: a route table
 * (listeners -> host buckets -> rules -> actions; shared and refcounted between generations) plus
 * an endpoint table (backend sets indexed by id; owned by one generation). The control thread
 * builds one (builder.h, quick.h), then publishes it by swapping ONE atomic pointer in a domain.
 *
 * Reclamation is a hand-rolled per-worker epoch (IO_URING.md §5.2), not liburcu QSBR, because:
 * the control thread must poll for finished grace periods without blocking
 * (sv_generation_reclaim), which liburcu 0.13 cannot do without call_rcu's extra thread; the
 * per-worker reference counters must be checked in the same pass as the grace period; the code
 * is ~100 lines with plain C11 atomics that ThreadSanitizer understands; and it adds no header
 * dependency.
 *
 * Worker loop contract (worker <w> in 0..n_workers-1, on its own thread):
 *
 *   sv_generation_reader_register(d, w);
 *   for (;;) {
 *       const struct sv_generation *g = sv_generation_acquire(d, w);   // once per iteration
 *       ... route NEW requests with g; a request that outlives this iteration calls
 *           sv_generation_ref(g, w) and later sv_generation_unref(g, w) (same worker) ...
 *       sv_generation_quiescent(d, w);        // no raw generation pointer survives this point
 *       sv_generation_offline(d, w);          // before a blocking io_uring_enter
 *       wait();
 *       sv_generation_online(d, w);           // full fence inside; then acquire again
 *   }
 *   sv_generation_reader_unregister(d, w);
 *
 * Control thread:
 *
 *   sv_generation_publish(d, gen);   // swaps, retires the old one, calls the wake callback
 *   sv_generation_reclaim(d);        // periodically: frees retired generations that are done
 */
#ifndef SERVAL_ROUTING_GENERATION_H
#define SERVAL_ROUTING_GENERATION_H

#include <stddef.h>
#include <stdint.h>

#include "serval/base/limits.h"

struct sv_generation;
struct sv_generation_domain;

/* Called by sv_generation_publish after the swap so sleeping workers adopt the new generation
 * (the data plane writes each worker's eventfd). Runs on the control thread; must not block. */
typedef void (*sv_generation_wake_fn)(void *arg);

/* ---- domain (control thread) ------------------------------------------------------------ */

/* Create a publication domain for up to <n_workers> readers (1..SV_MAX_WORKERS). The current
 * generation starts as NULL. Control thread. Caller owns the result (sv_generation_domain_free).
 * Returns NULL on bad n_workers or out of memory. */
struct sv_generation_domain *sv_generation_domain_new(unsigned n_workers);

/* Free the domain, its current generation and every retired one. Only after every worker has
 * stopped (no reader may use any generation any more). Control thread. NULL is a no-op. */
void sv_generation_domain_free(struct sv_generation_domain *d);

/* Register the wake callback (NULL to remove). Call before workers start. Control thread. */
void sv_generation_domain_set_wake(struct sv_generation_domain *d, sv_generation_wake_fn fn,
                                   void *arg);

/* Make <gen> the current generation: assigns it the next id (ids start at 1 and increase),
 * swaps the pointer (release), retires the previous generation, then calls the wake callback.
 * Takes ownership of <gen> (it must not be published twice or freed by the caller). Control
 * thread only (one publisher). Returns the new id. */
uint64_t sv_generation_publish(struct sv_generation_domain *d, struct sv_generation *gen);

/* Free every retired generation whose grace period has passed (each registered worker has
 * announced a quiescent state or gone offline since it was retired) and whose per-worker
 * reference counters are all zero. A route table shared by several generations is freed with
 * the last of them. Never blocks. Control thread. Returns the number of generations freed. */
size_t sv_generation_reclaim(struct sv_generation_domain *d);

/* Number of retired generations not yet freed (for tests and /metrics). Control thread. */
size_t sv_generation_retired_count(const struct sv_generation_domain *d);

/* Process-wide numbers of generations and of route tables allocated and not yet freed (for
 * leak checks in tests). Any thread. */
size_t sv_generation_live_count(void);
size_t sv_route_table_live_count(void);

/* The current generation as seen by the control thread (for /config, building the next one,
 * endpoint-only updates). Valid until the control thread publishes again. NULL before the first
 * publish. Control thread. */
const struct sv_generation *sv_generation_current(const struct sv_generation_domain *d);

/* ---- readers (worker threads; <w> is the worker's own index) ---------------------------- */

/* Register worker <w> and put it online. On the worker's own thread, once, before the first
 * acquire. Returns 0, or -EINVAL if <w> is out of range, -EBUSY if already registered. */
int sv_generation_reader_register(struct sv_generation_domain *d, unsigned w);

/* Go offline for good (thread exit). Worker <w>'s thread. Its references must be dropped. */
void sv_generation_reader_unregister(struct sv_generation_domain *d, unsigned w);

/* The current generation (acquire load), or NULL if none was published yet. Use one value for
 * all new requests of a loop iteration; the pointer is valid until this worker's next
 * sv_generation_quiescent or sv_generation_offline, or longer while it holds a reference.
 * Worker <w>'s thread, while online. Never blocks, never allocates. */
const struct sv_generation *sv_generation_acquire(struct sv_generation_domain *d, unsigned w);

/* Announce a quiescent state: worker <w> holds no raw generation pointer obtained before this
 * call except through references. End of each loop iteration. Worker <w>'s thread, online. */
void sv_generation_quiescent(struct sv_generation_domain *d, unsigned w);

/* Go offline before a blocking wait (counts as quiescent for as long as it lasts). No raw
 * generation pointer may be used until sv_generation_online. Worker <w>'s thread. */
void sv_generation_offline(struct sv_generation_domain *d, unsigned w);

/* Come back online after a blocking wait; includes the full (seq_cst) fence so the next
 * acquire cannot see a generation the control thread already considers unreachable.
 * Worker <w>'s thread. */
void sv_generation_online(struct sv_generation_domain *d, unsigned w);

/* Take / drop a reference for a request that outlives one loop iteration. Per-worker counter on
 * its own cache line (no shared atomic increment). unref must happen on the same worker <w>;
 * after the last unref the worker must not touch <gen> (nor anything inside it) again.
 * Worker <w>'s thread (online or offline). */
void sv_generation_ref(const struct sv_generation *gen, unsigned w);
void sv_generation_unref(const struct sv_generation *gen, unsigned w);

/* ---- generation accessors (any thread holding a valid pointer) -------------------------- */

/* The id given by sv_generation_publish (0 before publication). Asserts the generation is alive
 * (magic number check), so it doubles as a use-after-free trap in tests. */
uint64_t sv_generation_id(const struct sv_generation *gen);

/* Abort (SV_ASSERT) unless <gen> is a live generation (magic number intact). */
void sv_generation_check(const struct sv_generation *gen);

/* Free a generation that was never published (e.g. a build the control thread discarded).
 * Drops its route-table reference. Control thread. NULL is a no-op. */
void sv_generation_free_unpublished(struct sv_generation *gen);

#endif

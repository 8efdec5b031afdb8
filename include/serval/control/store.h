/* Object store: the current set of model objects, keyed by kind/namespace/name.
 *
 * The folder provider fills a fresh store on every reload; the Kubernetes reflectors (issue 4)
 * keep one store up to date with upsert/delete. The translator reads a store through sorted
 * snapshots. A store owns its objects. Not synchronised: one thread (the control thread) uses a
 * store at a time.
 */
#ifndef SERVAL_CONTROL_STORE_H
#define SERVAL_CONTROL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "serval/control/model.h"

struct sv_store;

/* New empty store, or NULL when out of memory. Caller owns it (sv_store_free). */
struct sv_store *sv_store_new(void);

/* Free the store and every object in it. NULL is fine. */
void sv_store_free(struct sv_store *s);

/* Insert or replace the object with obj's kind/namespace/name; the store takes ownership of <obj>
 * in every case (on error it is freed). If an object with the same key and the same non-NULL
 * resourceVersion is present, <obj> is dropped and nothing changes (a watch replay).
 * Returns 1 when the store changed, 0 when not, -ENOMEM. */
int sv_store_upsert(struct sv_store *s, struct sv_object *obj);

/* Remove and free the object with this key. <ns> is "" for cluster-scoped kinds.
 * Returns 1 if it was present, 0 if not. */
int sv_store_delete(struct sv_store *s, enum sv_kind kind, const char *ns, const char *name);

/* The object with this key, or NULL. Borrowed: valid until the store changes. */
const struct sv_object *sv_store_get(const struct sv_store *s, enum sv_kind kind, const char *ns,
                                     const char *name);

/* Number of objects of <kind>. */
size_t sv_store_count(const struct sv_store *s, enum sv_kind kind);

/* Every object of <kind>, sorted by namespace then name; *n gets the count. The array is
 * borrowed: valid until the store changes (upsert/delete/free). Returns NULL (with *n = 0) when
 * there is none, or when out of memory (then *n = 0 too and sv_store_list_failed() says so). */
const struct sv_object *const *sv_store_list(struct sv_store *s, enum sv_kind kind, size_t *n);

/* True if the last sv_store_list call failed for lack of memory. */
int sv_store_list_failed(const struct sv_store *s);

/* Change counter: incremented by every upsert/delete that changed the store. */
uint64_t sv_store_changes(const struct sv_store *s);

/* Order-independent digest of the keys and content hashes (sv_object.content_hash: status and
 * resourceVersion excluded) of every object of <kind>, kept up to date by upsert/delete in O(1).
 * Equal digests = the same objects with the same content (64-bit hash: collisions negligible);
 * e.g. "only EndpointSlices changed since the last build". 0 for an empty kind. */
uint64_t sv_store_digest(const struct sv_store *s, enum sv_kind kind);

#endif

/* The publishing half shared by the folder and Kubernetes controllers (src/control/file/folder.c,
 * src/control/k8s/controller.c): translate a store, publish the generation into the domain and
 * count it, and keep the rendered /config JSON document that the admin thread copies.
 * Control-module internal. */
#ifndef SERVAL_CONTROL_PUBLISH_H
#define SERVAL_CONTROL_PUBLISH_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/control/translate.h"

struct sv_generation;
struct sv_generation_domain;

struct sv_publisher {
    struct sv_generation_domain *dom; /* borrowed */
    uint64_t generation_id;           /* id of the last generation published (0 = none) */
    uint64_t published;               /* generations published */
    uint64_t overlays;                /* of them, overlays (sv_publisher_translate_routes) */
    bool compact_pending;             /* the current generation is an overlay: a full
                                         translation (sv_publisher_translate) should follow */
    pthread_mutex_t _mu;              /* guards _json */
    char *_json;                      /* the /config document (malloc'ed), NULL before the first */
    struct sv_tx_index *_idx;         /* index of the last full translation, or NULL */
    bool _idx_current;                /* the current generation is _idx's (or an endpoint-only
                                         update of it): a valid base for an overlay */
};

/* Set up <p> for publishing into <dom>. Control thread, before any other call. */
void sv_publisher_init(struct sv_publisher *p, struct sv_generation_domain *dom);

/* Free the document. Control thread, after the admin thread no longer calls sv_publisher_doc. */
void sv_publisher_fini(struct sv_publisher *p);

/* Publish <gen> (ownership passes to the domain), remember its id and count it. Control thread.
 * Returns the new generation id. */
uint64_t sv_publisher_publish(struct sv_publisher *p, struct sv_generation *gen);

/* Publish <gen>, an endpoint-only update (sv_translate_endpoints) of the current generation made
 * from <store>, like sv_publisher_publish, keeping the incremental index valid. Control thread.
 * Returns the new generation id. */
uint64_t sv_publisher_publish_endpoints(struct sv_publisher *p, struct sv_generation *gen,
                                        const struct sv_store *store);

/* sv_translate <store> with <opts> (recording the index sv_publisher_translate_routes needs),
 * then sv_publisher_publish the generation; clears compact_pending. Control thread.
 * Returns 0 and hands the status (which borrows from <store>; the caller frees it) to *status,
 * or sv_translate's -errno with <err> filled and nothing published. */
int sv_publisher_translate(struct sv_publisher *p, struct sv_store *store,
                           const struct sv_translate_opts *opts, struct sv_status **status,
                           char *err, size_t errlen);

/* The fast path for HTTPRoute edits: when <store> differs from the last fully translated store
 * in HTTPRoutes alone and the current generation is that translation's, publish an overlay
 * (sv_translate_routes: only the touched host names rebuilt) and set compact_pending; the caller
 * should then run sv_publisher_translate on the same store soon (status, /config, compaction).
 * Control thread. Returns 0 when published (*info says what was rebuilt), -EAGAIN when not
 * applicable (translate in full), or -ENOMEM / -EINVAL with <err> filled. */
int sv_publisher_translate_routes(struct sv_publisher *p, struct sv_store *store,
                                  const struct sv_translate_opts *opts,
                                  struct sv_translate_routes_info *info, char *err,
                                  size_t errlen);

/* Print <root> and make the text the /config document; consumes <root>. When <root> is NULL or
 * printing fails the previous document stays. Control thread. */
void sv_publisher_set_doc(struct sv_publisher *p, cJSON *root);

/* A malloc'ed copy of the /config document (the caller frees it), or NULL when there is none or
 * out of memory. Any thread. */
char *sv_publisher_doc(struct sv_publisher *p);

#endif

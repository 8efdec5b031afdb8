/* Internal decoding helpers shared by the per-kind decoders of src/control/model/.
 *
 * A struct sv_dec carries the object's arena, the current field path and the first error. Every
 * getter returns 1 when the field is present and decoded, 0 when it is absent (or JSON null), and
 * -1 after recording "<path>: <problem>" in the error buffer; callers propagate -1 upward.
 * Control thread only. */
#ifndef SERVAL_CONTROL_MODEL_INT_H
#define SERVAL_CONTROL_MODEL_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/base/compiler.h"
#include "serval/control/model.h"

/* Upper bound on the items of any one array or map in an object (external input). */
#define SV_MODEL_MAX_ITEMS 100000u

#define SV_DEC_MAX_SEGS 48

/* One step of the field path: a key (borrowed: a literal or a cJSON key, alive during decoding)
 * or an array index. The path is only formatted when an error is reported. */
struct sv_dec_seg {
    const char *key; /* NULL = index */
    size_t index;
};

struct sv_dec {
    struct sv_arena *arena;
    char *err;
    size_t errlen;
    struct sv_dec_seg segs[SV_DEC_MAX_SEGS];
    size_t nsegs; /* may exceed SV_DEC_MAX_SEGS: deeper steps are not recorded */
    bool failed;
    bool nomem;
};

/* Path stack: push returns the previous depth to hand back to pop. */
size_t sv_dec_push(struct sv_dec *d, const char *key);
size_t sv_dec_push_index(struct sv_dec *d, size_t i);
void sv_dec_pop(struct sv_dec *d, size_t mark);

/* Record an error at the current path (plus optional <key>); always returns -1. */
int sv_dec_fail(struct sv_dec *d, const char *key, const char *fmt, ...) SV_PRINTF(3, 4);
int sv_dec_nomem(struct sv_dec *d);

void *sv_dec_alloc(struct sv_dec *d, size_t n);          /* zeroed; NULL after nomem */
const char *sv_dec_strdup(struct sv_dec *d, const char *s); /* NULL after nomem */

/* The text of a scalar where a string is expected: a JSON string, or a YAML plain scalar that
 * resolved to a number/bool (its source text is kept in valuestring). NULL otherwise. */
const char *sv_dec_scalar_text(const cJSON *v);

/* Field getters on object <o> (which may be NULL = everything absent). */
int sv_dec_obj(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out);
/* sv_dec_obj for a required object: absent (or null) fails with "<key>: required field missing".
 * Returns 1 or -1. */
int sv_dec_req_obj(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out);
int sv_dec_arr(struct sv_dec *d, const cJSON *o, const char *key, const cJSON **out, size_t *n);
int sv_dec_str(struct sv_dec *d, const cJSON *o, const char *key, const char **out);
int sv_dec_req_str(struct sv_dec *d, const cJSON *o, const char *key, const char **out);
int sv_dec_int(struct sv_dec *d, const cJSON *o, const char *key, int64_t min, int64_t max,
               int64_t *out);
int sv_dec_i32(struct sv_dec *d, const cJSON *o, const char *key, int32_t min, int32_t max,
               int32_t *out);
int sv_dec_bool(struct sv_dec *d, const cJSON *o, const char *key, bool *out);
/* Array of strings. */
int sv_dec_strs(struct sv_dec *d, const cJSON *o, const char *key, const char ***out, size_t *n);
/* map[string]string. */
int sv_dec_map(struct sv_dec *d, const cJSON *o, const char *key, struct sv_kv **out, size_t *n);
/* A duration field (GEP-2257) into ms; *out untouched when absent. */
int sv_dec_duration(struct sv_dec *d, const cJSON *o, const char *key, int64_t *out);
/* Array of {name, value} objects (HTTPHeader) into kv pairs. */
int sv_dec_name_values(struct sv_dec *d, const cJSON *o, const char *key, struct sv_kv **out,
                       size_t *n);

/* Element decoder for sv_dec_each_obj: fill the zeroed element <elem> from the JSON object <it>
 * (the path already ends with the element's index). Returns 0, or -1 after recording an error. */
typedef int (*sv_dec_elem_fn)(struct sv_dec *d, const cJSON *it, void *elem);

/* Array of objects under <key> of <o>: allocates n zeroed elements of <elem_size> bytes from the
 * arena (before the path steps into <key>), then for each item i pushes "<key>[i]", fails with
 * "expected object" if the item is not an object, and calls <fn>. Returns 1 and sets *out (arena
 * owned) and *n when the array has items; 0 with *out and *n untouched when it is absent, null or
 * empty; -1 after recording an error. Use SV_DEC_EACH_OBJ for a typed *out. */
int sv_dec_each_obj(struct sv_dec *d, const cJSON *o, const char *key, size_t elem_size,
                    void **out, size_t *n, sv_dec_elem_fn fn);

/* sv_dec_each_obj into a typed array pointer <out> (T **), with elem_size = sizeof(T). */
#define SV_DEC_EACH_OBJ(d, o, key, out, n, fn)                                                    \
    __extension__({                                                                              \
        void *sv_each_p_ = NULL;                                                                 \
        int sv_each_rc_ = sv_dec_each_obj((d), (o), (key), sizeof(**(out)), &sv_each_p_, (n),    \
                                          (fn));                                                 \
        if (sv_each_rc_ > 0)                                                                     \
            *(out) = sv_each_p_;                                                                 \
        sv_each_rc_;                                                                             \
    })

/* Map a string to an enum index among <names> (NULL-terminated); returns <unsupported> if not
 * found. */
int sv_dec_enum(const char *s, const char *const *names, int unsupported);

/* Per-kind decoders: fill obj->u from the whole JSON object <j>. Return 0 or -1. */
int sv_dec_gatewayclass(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_gateway(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_referencegrant(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_httproute(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_tlsroute(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_service(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_endpointslice(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_secret(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_listenerset(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_configmap(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
int sv_dec_backendtlspolicy(struct sv_dec *d, const cJSON *j, struct sv_object *obj);
/* Gateway spec.tls.backend (policy.c). */
int sv_dec_gateway_backend_tls(struct sv_dec *d, const cJSON *spec, struct sv_gateway *gw);
int sv_dec_label_selector(struct sv_dec *d, const cJSON *o, struct sv_label_selector *out);

#endif

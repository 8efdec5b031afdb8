/* Helpers for the control-plane unit tests: read fixtures, decode YAML into objects. */
#ifndef SERVAL_TESTS_CONTROL_SUPPORT_H
#define SERVAL_TESTS_CONTROL_SUPPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serval/control/model.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/control/yaml.h"
#include "serval/routing/generation.h"

/* Read a whole file (NUL-terminated). Caller frees. NULL if unreadable. */
static inline char *sv_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

/* The conformance corpus folder (next to the repository), or NULL when absent. */
static inline const char *sv_test_conformance_dir(void)
{
    static const char *const candidates[] = {"../shared/conformance", "../../shared/conformance"};
    const char *env = getenv("SV_CONFORMANCE_DIR");
    struct stat st;
    if (env && stat(env, &st) == 0 && S_ISDIR(st.st_mode))
        return env;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode))
            return candidates[i];
    }
    return NULL;
}

/* Decode every document of a YAML text into objects (ignored kinds skipped). Returns the count
 * or -1 on the first error (message in err). */
static inline int sv_test_decode_yaml(const char *text, struct sv_object **objs, int max, char *err,
                                      size_t errlen)
{
    cJSON *docs = NULL;
    if (sv_yaml_parse(text, strlen(text), &docs, err, errlen) != 0)
        return -1;
    int n = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        if (cJSON_IsNull(d))
            continue;
        struct sv_object *o = NULL;
        int rc = sv_model_decode(d, "test", &o, err, errlen);
        if (rc < 0) {
            for (int i = 0; i < n; i++)
                sv_object_free(objs[i]);
            cJSON_Delete(docs);
            return -1;
        }
        if (o && n < max)
            objs[n++] = o;
        else
            sv_object_free(o);
    }
    cJSON_Delete(docs);
    return n;
}

/* Decode exactly one object from YAML; NULL (and err) on failure. */
static inline struct sv_object *sv_test_decode_one(const char *text, char *err, size_t errlen)
{
    struct sv_object *o[1];
    int n = sv_test_decode_yaml(text, o, 1, err, errlen);
    return n == 1 ? o[0] : NULL;
}

/* A translation fixture: the objects of a YAML text in a store, and what sv_translate made of
 * them. */
struct sv_test_tx {
    struct sv_store *store;
    struct sv_generation *gen;
    struct sv_status *st;
    int n_objects; /* decoded (ignored kinds skipped) */
};

/* Decode <text> into a new store and translate it with <opts>. Returns 0, or -1 with err set
 * and nothing to free. */
static inline int sv_test_tx_text(struct sv_test_tx *t, const char *text,
                                  const struct sv_translate_opts *opts, char *err, size_t errlen)
{
    struct sv_object *objs[128];
    memset(t, 0, sizeof(*t));
    int n = sv_test_decode_yaml(text, objs, 128, err, errlen);
    if (n < 0)
        return -1;
    t->n_objects = n;
    t->store = sv_store_new();
    for (int i = 0; t->store && i < n; i++)
        sv_store_upsert(t->store, objs[i]);
    if (!t->store) {
        for (int i = 0; i < n; i++)
            sv_object_free(objs[i]);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = sv_translate(t->store, opts, &t->gen, &t->st, err, errlen);
    if (rc != 0) {
        sv_store_free(t->store);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    return 0;
}

/* sv_test_tx_text on the file tests/data/translate/<name> (run from the repository root). */
static inline int sv_test_tx_file(struct sv_test_tx *t, const char *name,
                                  const struct sv_translate_opts *opts, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/data/translate/%s", name);
    char *text = sv_test_read_file(path, NULL);
    if (!text) {
        memset(t, 0, sizeof(*t));
        snprintf(err, errlen, "cannot read %s (run from the repository root)", path);
        return -1;
    }
    int rc = sv_test_tx_text(t, text, opts, err, errlen);
    free(text);
    return rc;
}

static inline void sv_test_tx_free(struct sv_test_tx *t)
{
    sv_generation_free_unpublished(t->gen);
    sv_status_free(t->st);
    sv_store_free(t->store);
    memset(t, 0, sizeof(*t));
}

#endif

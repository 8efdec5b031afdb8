/* Helpers for the control-plane unit tests: read fixtures, decode YAML into objects. */
#ifndef SERVAL_TESTS_CONTROL_SUPPORT_H
#define SERVAL_TESTS_CONTROL_SUPPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serval/control/model.h"
#include "serval/control/yaml.h"

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

#endif

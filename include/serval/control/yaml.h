/* YAML (1.1, multi-document) to cJSON, with libyaml. Control thread only (any single thread). */
#ifndef SERVAL_CONTROL_YAML_H
#define SERVAL_CONTROL_YAML_H

#include <stddef.h>

struct cJSON;

/* Nesting limit of one document and the limit of JSON nodes produced per stream (aliases are
 * expanded, so this bounds "billion laughs" inputs). */
#define SV_YAML_MAX_DEPTH 64
#define SV_YAML_MAX_NODES 2000000u

/* Parse the YAML stream <buf>/<len> into a new cJSON array with one element per document, in
 * order (an empty document becomes JSON null so indexes match the file, 0-based). Mappings become
 * objects (keys must be scalars, no duplicates), sequences arrays, plain scalars are resolved by
 * the YAML 1.1 rules (null ~ ""; true/false/yes/no/on/off/y/n in their three casings; decimal,
 * 0x, 0o/leading-0 octal and 0b integers with '_' separators; floats; .inf/.nan), quoted and block
 * scalars stay strings. Known limit: libyaml's loader gives an untagged plain scalar the !!str tag,
 * so an explicit "!!str" on a plain scalar is not seen; quote such values. Anchors and aliases
 * are resolved.
 * Returns 0 with *out owned by the caller (cJSON_Delete), or -EINVAL with "document N, line L:
 * problem" in <err> (always NUL-terminated), or -ENOMEM. */
int sv_yaml_parse(const char *buf, size_t len, struct cJSON **out, char *err, size_t errlen);

#endif

/* YAML stream -> cJSON array of documents (libyaml document loader). */
#include "serval/control/yaml.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "serval/base/compiler.h"

struct conv {
    yaml_document_t *doc;
    size_t nodes;
    size_t doc_index;
    char *err;
    size_t errlen;
    bool nomem;
};

static cJSON *conv_fail(struct conv *c, const yaml_node_t *n, const char *msg)
{
    if (c->err && c->errlen && !c->err[0])
        snprintf(c->err, c->errlen, "document %zu, line %zu: %s", c->doc_index,
                 n ? (size_t)n->start_mark.line + 1 : 0, msg);
    return NULL;
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(s, list[i]) == 0)
            return true;
    }
    return false;
}

/* Integer per YAML 1.1 (sign, then 0b / 0x / 0o / leading-0 octal / decimal; '_' allowed). */
static bool parse_int(const char *s, double *out)
{
    int sign = 1, base = 10;
    if (*s == '-' || *s == '+')
        sign = *s++ == '-' ? -1 : 1;
    if (!*s)
        return false;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8;
        s += 2;
    } else if (s[0] == '0' && s[1]) {
        base = 8;
        s += 1;
    }
    if (!*s)
        return false;
    double v = 0;
    int digits = 0;
    for (; *s; s++) {
        int dv;
        if (*s == '_')
            continue;
        if (*s >= '0' && *s <= '9')
            dv = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            dv = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            dv = *s - 'A' + 10;
        else
            return false;
        if (dv >= base)
            return false;
        v = v * base + dv;
        digits++;
    }
    if (!digits)
        return false;
    *out = sign * v;
    return true;
}

/* Float per YAML 1.1: [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?, plus .inf/.nan. */
static bool parse_float(const char *s, double *out)
{
    static const char *const inf[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nan_[] = {".nan", ".NaN", ".NAN", NULL};
    const char *p = s;
    int sign = 1;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    if (is_one_of(p, inf)) {
        *out = sign * HUGE_VAL;
        return true;
    }
    if (p == s && is_one_of(p, nan_)) {
        *out = NAN;
        return true;
    }
    char buf[128];
    size_t n = 0;
    bool dot = false, digit = false, exp = false;
    for (const char *q = s; *q; q++) {
        if (*q == '_')
            continue;
        if (n + 1 >= sizeof(buf))
            return false;
        buf[n++] = *q;
    }
    buf[n] = '\0';
    p = buf;
    if (*p == '-' || *p == '+')
        p++;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digit = true;
        } else if (*p == '.' && !dot && !exp) {
            dot = true;
        } else if ((*p == 'e' || *p == 'E') && digit && !exp) {
            exp = true;
            if (p[1] == '-' || p[1] == '+')
                p++;
            if (!(p[1] >= '0' && p[1] <= '9'))
                return false;
        } else {
            return false;
        }
    }
    if (!digit || (!dot && !exp))
        return false;
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0';
}

/* A resolved non-string scalar keeps its source text in valuestring (cJSON frees it with the
 * node): the model decoder then accepts it where a string is expected, as sigs.k8s.io/yaml does
 * when the target field is a string (label "on", port name 8080). */
static cJSON *keep_text(cJSON *j, const char *s)
{
    if (j) {
        j->valuestring = strdup(s);
        if (!j->valuestring) {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

static cJSON *plain_scalar(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on",
                                        "On",   "ON",   "y",    "Y",   NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off",
                                         "Off",   "OFF",   "n",     "N",  NULL};
    double v;
    if (is_one_of(s, nulls))
        return cJSON_CreateNull();
    if (is_one_of(s, trues))
        return keep_text(cJSON_CreateTrue(), s);
    if (is_one_of(s, falses))
        return keep_text(cJSON_CreateFalse(), s);
    if (parse_int(s, &v) || parse_float(s, &v))
        return keep_text(cJSON_CreateNumber(v), s);
    return cJSON_CreateString(s);
}

static cJSON *convert(struct conv *c, yaml_node_t *n, int depth)
{
    if (!n)
        return conv_fail(c, NULL, "dangling node");
    if (depth > SV_YAML_MAX_DEPTH)
        return conv_fail(c, n, "nesting too deep (or a recursive alias)");
    if (++c->nodes > SV_YAML_MAX_NODES)
        return conv_fail(c, n, "too many nodes after alias expansion");
    cJSON *out = NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)n->data.scalar.value;
        const char *tag = (const char *)n->tag;
        bool plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (tag && strcmp(tag, YAML_DEFAULT_SCALAR_TAG) != 0 && strcmp(tag, YAML_NULL_TAG) != 0 &&
            strcmp(tag, YAML_BOOL_TAG) != 0 && strcmp(tag, YAML_INT_TAG) != 0 &&
            strcmp(tag, YAML_FLOAT_TAG) != 0)
            plain = false; /* unknown local tags: keep the text */
        out = plain ? plain_scalar(s) : cJSON_CreateString(s);
        break;
    }
    case YAML_SEQUENCE_NODE:
        out = cJSON_CreateArray();
        if (!out)
            break;
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++) {
            cJSON *child = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (!child) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_AddItemToArray(out, child);
        }
        break;
    case YAML_MAPPING_NODE:
        out = cJSON_CreateObject();
        if (!out)
            break;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                cJSON_Delete(out);
                return conv_fail(c, k ? k : n, "mapping key must be a scalar");
            }
            const char *key = (const char *)k->data.scalar.value;
            if (cJSON_GetObjectItemCaseSensitive(out, key)) {
                char msg[160];
                snprintf(msg, sizeof(msg), "duplicate key \"%.100s\"", key);
                cJSON_Delete(out);
                return conv_fail(c, k, msg);
            }
            cJSON *child = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
            if (!child) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_AddItemToObject(out, key, child);
        }
        break;
    default:
        return conv_fail(c, n, "empty node");
    }
    if (!out) {
        c->nomem = true;
        return conv_fail(c, n, "out of memory");
    }
    return out;
}

int sv_yaml_parse(const char *buf, size_t len, struct cJSON **out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    struct conv c = {.err = err, .errlen = errlen};
    cJSON *docs = cJSON_CreateArray();
    if (!docs)
        return -ENOMEM;
    if (!yaml_parser_initialize(&parser)) {
        cJSON_Delete(docs);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = 0;
    /* Bounded by SV_YAML_MAX_NODES: every document costs at least one node. */
    for (size_t i = 0;; i++) {
        yaml_document_t doc;
        c.doc_index = i;
        if (!yaml_parser_load(&parser, &doc)) {
            if (err && errlen)
                snprintf(err, errlen, "document %zu, line %zu: %s%s%s", i,
                         (size_t)parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "syntax error",
                         parser.context ? " " : "", parser.context ? parser.context : "");
            rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            /* End of stream, unless an explicit empty document ("---" alone) came first: libyaml
             * reports those as a document without a root too, and ends the stream the same
             * way; stop either way. */
            yaml_document_delete(&doc);
            break;
        }
        c.doc = &doc;
        cJSON *j;
        if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0 &&
            root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            j = cJSON_CreateNull();
        else
            j = convert(&c, root, 0);
        yaml_document_delete(&doc);
        if (!j) {
            rc = c.nomem ? -ENOMEM : -EINVAL;
            break;
        }
        cJSON_AddItemToArray(docs, j);
        if (++c.nodes > SV_YAML_MAX_NODES) {
            conv_fail(&c, NULL, "too many documents");
            rc = -EINVAL;
            break;
        }
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        cJSON_Delete(docs);
        return rc;
    }
    *out = docs;
    return 0;
}

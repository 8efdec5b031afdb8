/* Status merge for the writeback (pure; see k8s_status.h). */
#include "serval/control/k8s_status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sv_k8s_format_time(int64_t ns, bool micro, char *out, size_t outlen)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (micro)
        snprintf(out, outlen, "%s.%06ldZ", base, (long)((ns % 1000000000) / 1000));
    else
        snprintf(out, outlen, "%sZ", base);
}

static const char *sget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Conditions of <desired> with lastTransitionTime kept from <current> (matched by type) when the
 * status is unchanged, <now> otherwise. */
static cJSON *merge_conditions(const cJSON *current, const cJSON *desired, const char *now)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, desired)
    {
        cJSON *c = cJSON_Duplicate(d, 1);
        if (!c) {
            cJSON_Delete(out);
            return NULL;
        }
        const char *ltt = now;
        const cJSON *cur;
        cJSON_ArrayForEach(cur, current)
        {
            if (same_str(sget(cur, "type"), sget(d, "type"))) {
                if (same_str(sget(cur, "status"), sget(d, "status")) &&
                    sget(cur, "lastTransitionTime"))
                    ltt = sget(cur, "lastTransitionTime");
                break;
            }
        }
        cJSON_DeleteItemFromObjectCaseSensitive(c, "lastTransitionTime");
        cJSON_AddStringToObject(c, "lastTransitionTime", ltt);
        cJSON_AddItemToArray(out, c);
    }
    return out;
}

static void set_item(cJSON *obj, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
    else
        cJSON_AddItemToObject(obj, key, v);
}

/* A copy of one desired entry (listener or route parent) with merged conditions. */
static cJSON *merge_entry(const cJSON *cur, const cJSON *want, const char *now)
{
    cJSON *e = cJSON_Duplicate(want, 1);
    if (!e)
        return NULL;
    cJSON *conds = merge_conditions(cJSON_GetObjectItemCaseSensitive(cur, "conditions"),
                                    cJSON_GetObjectItemCaseSensitive(want, "conditions"), now);
    if (!conds) {
        cJSON_Delete(e);
        return NULL;
    }
    set_item(e, "conditions", conds);
    return e;
}

static const char *ref_field(const cJSON *ref, const char *k, const char *dflt)
{
    const char *v = sget(ref, k);
    return v ? v : dflt;
}

static bool same_parent_ref(const cJSON *a, const cJSON *b, const char *route_ns)
{
    if (!same_str(ref_field(a, "group", SV_GATEWAY_API_GROUP),
                  ref_field(b, "group", SV_GATEWAY_API_GROUP)) ||
        !same_str(ref_field(a, "kind", "Gateway"), ref_field(b, "kind", "Gateway")) ||
        !same_str(ref_field(a, "namespace", route_ns), ref_field(b, "namespace", route_ns)) ||
        !same_str(sget(a, "name"), sget(b, "name")) ||
        !same_str(sget(a, "sectionName"), sget(b, "sectionName")))
        return false;
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(a, "port");
    const cJSON *pb = cJSON_GetObjectItemCaseSensitive(b, "port");
    double va = cJSON_IsNumber(pa) ? pa->valuedouble : 0, vb = cJSON_IsNumber(pb) ? pb->valuedouble : 0;
    return va == vb;
}

/* HTTPRoute status.parents (keyed by parentRef) or BackendTLSPolicy status.ancestors (keyed by
 * ancestorRef, <ref_key>): entries of other controllers stay in place, ours are replaced. */
static cJSON *merge_parents(const cJSON *current, const cJSON *desired, const char *controller,
                            const char *now, const char *ref_key)
{
    cJSON *out = cJSON_CreateArray();
    if (!out)
        return NULL;
    size_t nd = (size_t)cJSON_GetArraySize(desired);
    bool used[64] = {0};
    if (nd > 64)
        nd = 64; /* the API caps parents at 32 */
    const cJSON *cur;
    cJSON_ArrayForEach(cur, current)
    {
        if (!same_str(sget(cur, "controllerName"), controller)) {
            cJSON *keep = cJSON_Duplicate(cur, 1);
            if (!keep)
                goto fail;
            cJSON_AddItemToArray(out, keep);
            continue;
        }
        const cJSON *cref = cJSON_GetObjectItemCaseSensitive(cur, ref_key);
        for (size_t i = 0; i < nd; i++) {
            const cJSON *d = cJSON_GetArrayItem(desired, (int)i);
            if (used[i] ||
                !same_parent_ref(cref, cJSON_GetObjectItemCaseSensitive(d, ref_key), NULL))
                continue;
            used[i] = true;
            cJSON *e = merge_entry(cur, d, now);
            if (!e)
                goto fail;
            cJSON_AddItemToArray(out, e);
            break;
        }
        /* an entry of ours that is no longer wanted is dropped */
    }
    for (size_t i = 0; i < nd; i++) {
        if (used[i])
            continue;
        cJSON *e = merge_entry(NULL, cJSON_GetArrayItem(desired, (int)i), now);
        if (!e)
            goto fail;
        cJSON_AddItemToArray(out, e);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

static cJSON *merge_listeners(const cJSON *current, const cJSON *desired, const char *now)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, desired)
    {
        const cJSON *match = NULL, *cur;
        cJSON_ArrayForEach(cur, current)
        {
            if (same_str(sget(cur, "name"), sget(d, "name"))) {
                match = cur;
                break;
            }
        }
        cJSON *e = merge_entry(match, d, now);
        if (!e) {
            cJSON_Delete(out);
            return NULL;
        }
        cJSON_AddItemToArray(out, e);
    }
    return out;
}

cJSON *sv_k8s_status_merge(enum sv_kind kind, const cJSON *current, const cJSON *desired,
                           const char *controller, const char *now, bool *changed)
{
    cJSON *out = cJSON_IsObject(current) ? cJSON_Duplicate(current, 1) : cJSON_CreateObject();
    if (!out)
        return NULL;
    const cJSON *cur_of = cJSON_IsObject(current) ? current : NULL;
    if (kind == SV_KIND_HTTPROUTE || kind == SV_KIND_TLSROUTE ||
        kind == SV_KIND_BACKENDTLSPOLICY) {
        bool policy = kind == SV_KIND_BACKENDTLSPOLICY;
        const char *list = policy ? "ancestors" : "parents";
        cJSON *p = merge_parents(cJSON_GetObjectItemCaseSensitive(cur_of, list),
                                 cJSON_GetObjectItemCaseSensitive(desired, list), controller,
                                 now, policy ? "ancestorRef" : "parentRef");
        if (!p)
            goto fail;
        set_item(out, list, p);
    } else {
        cJSON *c = merge_conditions(cJSON_GetObjectItemCaseSensitive(cur_of, "conditions"),
                                    cJSON_GetObjectItemCaseSensitive(desired, "conditions"), now);
        if (!c)
            goto fail;
        set_item(out, "conditions", c);
        if (kind == SV_KIND_GATEWAY || kind == SV_KIND_LISTENERSET) {
            cJSON *l = merge_listeners(cJSON_GetObjectItemCaseSensitive(cur_of, "listeners"),
                                       cJSON_GetObjectItemCaseSensitive(desired, "listeners"), now);
            if (!l)
                goto fail;
            set_item(out, "listeners", l);
        }
        const cJSON *als = cJSON_GetObjectItemCaseSensitive(desired, "attachedListenerSets");
        if (kind == SV_KIND_GATEWAY && cJSON_IsNumber(als)) {
            cJSON *n = cJSON_CreateNumber(als->valuedouble);
            if (!n)
                goto fail;
            set_item(out, "attachedListenerSets", n);
        }
        if (kind == SV_KIND_GATEWAY) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(desired, "addresses");
            if (cJSON_GetArraySize(a) > 0) {
                cJSON *ac = cJSON_Duplicate(a, 1);
                if (!ac)
                    goto fail;
                set_item(out, "addresses", ac);
            } else {
                cJSON_DeleteItemFromObjectCaseSensitive(out, "addresses");
            }
        }
    }
    *changed = !cur_of || !cJSON_Compare(cur_of, out, 1);
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

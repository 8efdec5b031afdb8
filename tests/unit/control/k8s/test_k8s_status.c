/* Status merge for the writeback: other controllers' HTTPRoute parents untouched, our entries
 * replaced/added/dropped, lastTransitionTime kept unless the status flipped, change detection. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../harness.h"
#include "serval/control/k8s_status.h"

#define OURS "serval.dev/gateway-controller"

static const char *cond_ltt(const cJSON *entry, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(entry, "conditions"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0) {
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime");
            return cJSON_IsString(l) ? l->valuestring : NULL;
        }
    }
    return NULL;
}

TEST(k8s_status_merge_route_parents_keeps_others)
{
    cJSON *cur = cJSON_Parse(
        "{\"parents\":["
        "{\"parentRef\":{\"name\":\"gw\"},\"controllerName\":\"example.com/other\","
        "\"conditions\":[{\"type\":\"Accepted\",\"status\":\"False\",\"lastTransitionTime\":\"X\"}]},"
        "{\"parentRef\":{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\",\"name\":\"gw\"},"
        "\"controllerName\":\"" OURS "\",\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\","
        "\"reason\":\"Accepted\",\"lastTransitionTime\":\"T0\"}]},"
        "{\"parentRef\":{\"name\":\"old\"},\"controllerName\":\"" OURS "\",\"conditions\":[]}"
        "]}");
    cJSON *want = cJSON_Parse(
        "{\"parents\":["
        "{\"parentRef\":{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\",\"name\":\"gw\"},"
        "\"controllerName\":\"" OURS "\",\"conditions\":["
        "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\"},"
        "{\"type\":\"ResolvedRefs\",\"status\":\"True\",\"reason\":\"ResolvedRefs\"}]},"
        "{\"parentRef\":{\"name\":\"gw2\"},\"controllerName\":\"" OURS "\",\"conditions\":[]}]}");
    REQUIRE(cur && want);
    char *other_before = cJSON_PrintUnformatted(cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cur, "parents"), 0));
    bool changed = false;
    cJSON *m = sv_k8s_status_merge(SV_KIND_HTTPROUTE, cur, want, OURS, "T1", &changed);
    REQUIRE(m);
    CHECK(changed);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(m, "parents");
    CHECK_EQ_INT(cJSON_GetArraySize(ps), 3); /* other, ours (gw), ours (gw2); "old" dropped */
    char *other_after = cJSON_PrintUnformatted(cJSON_GetArrayItem(ps, 0));
    CHECK_EQ_STR(other_after, other_before);
    const cJSON *gw = cJSON_GetArrayItem(ps, 1);
    CHECK_EQ_STR(cond_ltt(gw, "Accepted"), "T0");     /* unchanged status keeps its time */
    CHECK_EQ_STR(cond_ltt(gw, "ResolvedRefs"), "T1"); /* new condition */
    const cJSON *n2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ps, 2), "parentRef");
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(n2, "name")->valuestring, "gw2");

    /* the same desired status again: nothing to write */
    cJSON *m2 = sv_k8s_status_merge(SV_KIND_HTTPROUTE, m, want, OURS, "T2", &changed);
    REQUIRE(m2);
    CHECK(!changed);

    /* a flip moves lastTransitionTime */
    cJSON *flip = cJSON_Duplicate(want, 1);
    cJSON *acc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(flip, "parents"), 0),
                                        "conditions"),
                                    0);
    cJSON_ReplaceItemInObjectCaseSensitive(acc, "status", cJSON_CreateString("False"));
    cJSON *m3 = sv_k8s_status_merge(SV_KIND_HTTPROUTE, m, flip, OURS, "T3", &changed);
    REQUIRE(m3);
    CHECK(changed);
    CHECK_EQ_STR(cond_ltt(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m3, "parents"), 1),
                          "Accepted"),
                 "T3");

    /* nothing of ours wanted any more: only the other controller's entry stays */
    cJSON *none = cJSON_Parse("{\"parents\":[]}");
    cJSON *m4 = sv_k8s_status_merge(SV_KIND_HTTPROUTE, m, none, OURS, "T4", &changed);
    REQUIRE(m4);
    CHECK(changed);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m4, "parents")), 1);
    char *only = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m4, "parents"), 0));
    CHECK_EQ_STR(only, other_before);
    free(only);
    free(other_before);
    free(other_after);
    cJSON_Delete(none);
    cJSON_Delete(m4);
    cJSON_Delete(m3);
    cJSON_Delete(flip);
    cJSON_Delete(m2);
    cJSON_Delete(m);
    cJSON_Delete(want);
    cJSON_Delete(cur);
}

TEST(k8s_status_merge_gateway_listeners)
{
    cJSON *cur = cJSON_Parse(
        "{\"conditions\":[{\"type\":\"Accepted\",\"status\":\"Unknown\",\"reason\":\"Pending\","
        "\"lastTransitionTime\":\"T0\"}],\"listeners\":[{\"name\":\"http\",\"attachedRoutes\":0,"
        "\"conditions\":[{\"type\":\"Programmed\",\"status\":\"True\",\"lastTransitionTime\":\"L0\"}]}]}");
    cJSON *want = cJSON_Parse(
        "{\"addresses\":[],\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\","
        "\"observedGeneration\":3}],\"listeners\":[{\"name\":\"http\",\"attachedRoutes\":2,"
        "\"conditions\":[{\"type\":\"Programmed\",\"status\":\"True\"}]}]}");
    REQUIRE(cur && want);
    bool changed;
    cJSON *m = sv_k8s_status_merge(SV_KIND_GATEWAY, cur, want, OURS, "T1", &changed);
    REQUIRE(m);
    CHECK(changed);
    CHECK_EQ_STR(cond_ltt(m, "Accepted"), "T1"); /* Unknown -> True flipped */
    const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "listeners"), 0);
    CHECK_EQ_STR(cond_ltt(l, "Programmed"), "L0");
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(l, "attachedRoutes")->valueint, 2);
    CHECK(cJSON_GetObjectItemCaseSensitive(m, "addresses") == NULL);
    cJSON *m2 = sv_k8s_status_merge(SV_KIND_GATEWAY, m, want, OURS, "T2", &changed);
    REQUIRE(m2);
    CHECK(!changed);
    /* no status yet at all */
    cJSON *m3 = sv_k8s_status_merge(SV_KIND_GATEWAYCLASS, NULL, want, OURS, "T5", &changed);
    REQUIRE(m3);
    CHECK(changed);
    CHECK_EQ_STR(cond_ltt(m3, "Accepted"), "T5");
    cJSON_Delete(m3);
    cJSON_Delete(m2);
    cJSON_Delete(m);
    cJSON_Delete(want);
    cJSON_Delete(cur);
}

TEST(k8s_microtime_six_digits)
{
    char buf[40];
    sv_k8s_format_time(1795766400123456789LL, true, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "2026-11-27T08:00:00.123456Z");
    sv_k8s_format_time(1795766400000001000LL, true, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "2026-11-27T08:00:00.000001Z");
    sv_k8s_format_time(1795766400999999999LL, false, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "2026-11-27T08:00:00Z");
}

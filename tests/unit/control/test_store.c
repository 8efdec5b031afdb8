/* Object store: upsert/replace/delete by key, resourceVersion replays, sorted snapshots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/store.h"
#include "support.h"

static struct sv_object *svc(const char *ns, const char *name, const char *rv)
{
    char text[512], err[256];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Service\nmetadata: {name: '%s', namespace: '%s'%s%s%s}\n", name,
             ns, rv ? ", resourceVersion: '" : "", rv ? rv : "", rv ? "'" : "");
    struct sv_object *o = sv_test_decode_one(text, err, sizeof(err));
    if (!o)
        FAIL("decode: %s", err);
    return o;
}

TEST(store_upsert_get_delete)
{
    struct sv_store *s = sv_store_new();
    REQUIRE(s);
    CHECK_EQ_INT(sv_store_upsert(s, svc("a", "one", "1")), 1);
    CHECK_EQ_INT(sv_store_upsert(s, svc("b", "one", NULL)), 1);
    CHECK_EQ_INT(sv_store_count(s, SV_KIND_SERVICE), 2);
    CHECK_EQ_INT(sv_store_changes(s), 2);
    const struct sv_object *o = sv_store_get(s, SV_KIND_SERVICE, "a", "one");
    REQUIRE(o);
    CHECK_EQ_STR(o->meta.resource_version, "1");
    CHECK(sv_store_get(s, SV_KIND_GATEWAY, "a", "one") == NULL);
    CHECK(sv_store_get(s, SV_KIND_SERVICE, "c", "one") == NULL);

    /* Same resourceVersion: a replay, nothing changes. */
    CHECK_EQ_INT(sv_store_upsert(s, svc("a", "one", "1")), 0);
    CHECK_EQ_INT(sv_store_changes(s), 2);
    /* New resourceVersion replaces. */
    CHECK_EQ_INT(sv_store_upsert(s, svc("a", "one", "2")), 1);
    CHECK_EQ_STR(sv_store_get(s, SV_KIND_SERVICE, "a", "one")->meta.resource_version, "2");
    CHECK_EQ_INT(sv_store_count(s, SV_KIND_SERVICE), 2);

    CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, "a", "one"), 1);
    CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, "a", "one"), 0);
    CHECK(sv_store_get(s, SV_KIND_SERVICE, "a", "one") == NULL);
    CHECK(sv_store_get(s, SV_KIND_SERVICE, "b", "one") != NULL);
    CHECK_EQ_INT(sv_store_count(s, SV_KIND_SERVICE), 1);
    CHECK_EQ_INT(sv_store_changes(s), 4);
    sv_store_free(s);
}

TEST(store_many_objects_with_deletes_and_sorted_list)
{
    struct sv_store *s = sv_store_new();
    REQUIRE(s);
    char ns[32], name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(ns, sizeof(ns), "ns%d", i % 7);
        snprintf(name, sizeof(name), "svc-%04d", i);
        REQUIRE(sv_store_upsert(s, svc(ns, name, NULL)) == 1);
    }
    /* Delete every third: exercises backward-shift deletion in long probe runs. */
    for (int i = 0; i < 2000; i += 3) {
        snprintf(ns, sizeof(ns), "ns%d", i % 7);
        snprintf(name, sizeof(name), "svc-%04d", i);
        CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, ns, name), 1);
    }
    int missing = 0, wrong = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(ns, sizeof(ns), "ns%d", i % 7);
        snprintf(name, sizeof(name), "svc-%04d", i);
        const struct sv_object *o = sv_store_get(s, SV_KIND_SERVICE, ns, name);
        if (i % 3 == 0)
            wrong += o != NULL;
        else
            missing += o == NULL;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(wrong, 0);
    size_t n;
    const struct sv_object *const *v = sv_store_list(s, SV_KIND_SERVICE, &n);
    REQUIRE(v);
    CHECK_EQ_INT(n, 1333);
    int unsorted = 0;
    for (size_t i = 1; i < n; i++) {
        int c = strcmp(v[i - 1]->meta.ns, v[i]->meta.ns);
        if (c > 0 || (c == 0 && strcmp(v[i - 1]->meta.name, v[i]->meta.name) >= 0))
            unsorted++;
    }
    CHECK_EQ_INT(unsorted, 0);
    CHECK_EQ_STR(v[0]->meta.ns, "ns0");
    CHECK(sv_store_list(s, SV_KIND_GATEWAY, &n) == NULL && n == 0);
    CHECK(!sv_store_list_failed(s));
    sv_store_free(s);
}

static struct sv_object *svc_port(const char *name, int port, const char *rv)
{
    char text[512], err[256];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Service\nmetadata: {name: '%s', namespace: d, "
             "resourceVersion: '%s'}\nspec: {ports: [{port: %d}]}\n",
             name, rv, port);
    struct sv_object *o = sv_test_decode_one(text, err, sizeof(err));
    if (!o)
        FAIL("decode: %s", err);
    return o;
}

TEST(store_digest_follows_content_not_resource_version)
{
    struct sv_store *s = sv_store_new();
    REQUIRE(s);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) == 0);
    REQUIRE(sv_store_upsert(s, svc_port("a", 80, "1")) == 1);
    uint64_t d1 = sv_store_digest(s, SV_KIND_SERVICE);
    CHECK(d1 != 0);
    CHECK(sv_store_digest(s, SV_KIND_GATEWAY) == 0);
    /* a new resourceVersion with the same content (e.g. a status write): same digest */
    REQUIRE(sv_store_upsert(s, svc_port("a", 80, "2")) == 1);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) == d1);
    /* other content: another digest; back to the old content: the old digest */
    REQUIRE(sv_store_upsert(s, svc_port("a", 81, "3")) == 1);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) != d1);
    REQUIRE(sv_store_upsert(s, svc_port("a", 80, "4")) == 1);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) == d1);
    /* same content under another name differs; order of insertion does not matter */
    REQUIRE(sv_store_upsert(s, svc_port("b", 80, "5")) == 1);
    uint64_t d2 = sv_store_digest(s, SV_KIND_SERVICE);
    CHECK(d2 != d1);
    struct sv_store *t = sv_store_new();
    REQUIRE(t);
    REQUIRE(sv_store_upsert(t, svc_port("b", 80, "9")) == 1);
    REQUIRE(sv_store_upsert(t, svc_port("a", 80, "8")) == 1);
    CHECK(sv_store_digest(t, SV_KIND_SERVICE) == d2);
    /* delete takes its share out */
    CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, "d", "b"), 1);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) == d1);
    CHECK_EQ_INT(sv_store_delete(s, SV_KIND_SERVICE, "d", "a"), 1);
    CHECK(sv_store_digest(s, SV_KIND_SERVICE) == 0);
    sv_store_free(t);
    sv_store_free(s);
}

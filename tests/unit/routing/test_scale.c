/* Lookup cost vs table size: the work of a lookup (hash lookups, trie children compared, rule
 * entries tried; counted by the routing module in test builds) does not grow with the routes on
 * other hostnames, hash probe chains stay short on average, and within one hostname the work
 * grows only logarithmically with the number of sibling path segments. Counts work, never time. */
#include "../harness.h"
#include "routing/table_int.h"
#include "rt_helpers.h"

#define S(x) sv_str_cstr(x)

static int add_rule(struct sv_route_builder *b, int route, int set, enum sv_route_path_type pt,
                    const char *path)
{
    struct sv_route_match_spec m = {.path_type = pt, .path = S(path)};
    struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET, .set_id = (uint32_t)set,
                                       .weight = 1};
    struct sv_route_rule_spec r = {.matches = &m, .n_matches = 1, .backends = &be, .n_backends = 1};
    return sv_route_builder_add_rule(b, (uint32_t)route, &r);
}

/* One wildcard listener "*.scale.test"; route "ns/target" on target.scale.test and on
 * *.wild.scale.test; <n_other> routes "ns/o<i>" on o<i>.scale.test with the same paths as the
 * target plus one of their own. */
static struct sv_generation *make_gen(int n_other)
{
    struct sv_route_builder *b = sv_route_builder_new();
    if (!b)
        return NULL;
    int set = sv_route_builder_add_backend_set(b, S("ns/svc:80"));
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80), ep = rt_sa("127.0.0.10", 8080);
    sv_route_builder_add_endpoint(b, (uint32_t)set, &ep.sa, rt_salen(&ep));
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("ns/gw/http"), S("*.scale.test"));
    int ok = set >= 0 && bind >= 0 && l >= 0;
    char name[32], host[64], path[64];
    for (int i = -1; i < n_other && ok; i++) {
        snprintf(name, sizeof(name), i < 0 ? "target" : "o%d", i);
        struct sv_route_route_spec rs = {S("ns"), S(name), 1};
        int r = sv_route_builder_add_route(b, &rs);
        snprintf(host, sizeof(host), "%s.scale.test", name);
        snprintf(path, sizeof(path), "/%s/x", name);
        ok = r >= 0 && sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S(host)) == 0 &&
             (i >= 0 || sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l,
                                                S("*.wild.scale.test")) == 0) &&
             add_rule(b, r, set, SV_ROUTE_PATH_EXACT, "/api/v1/items") >= 0 &&
             add_rule(b, r, set, SV_ROUTE_PATH_PREFIX, "/api") >= 0 &&
             add_rule(b, r, set, SV_ROUTE_PATH_PREFIX, "/api/v2") >= 0 &&
             add_rule(b, r, set, SV_ROUTE_PATH_PREFIX, path) >= 0;
    }
    if (!ok) {
        sv_route_builder_free(b);
        return NULL;
    }
    char err[256];
    return sv_route_builder_finish(b, err, sizeof(err));
}

static const struct {
    const char *host, *target, *want; /* want "route#rule" or "404" */
} probes[] = {
    {"target.scale.test", "/api/v1/items", "ns/target#0"},
    {"TARGET.scale.test:80", "/api/v2/a/b/c", "ns/target#2"},
    {"target.scale.test", "/api/v1/items/42", "ns/target#1"},
    {"target.scale.test", "/target/x/y", "ns/target#3"},
    {"target.scale.test", "/nope", "404"},
    {"a.b.wild.scale.test", "/api/v9", "ns/target#1"},
    {"missing.scale.test", "/api", "404"},
};

/* Work of each probe in <g>; also checks the winners. */
static void probe_work(struct sv_generation *g, uint64_t *work)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(probes); i++) {
        uint64_t w0 = sv_route_work_;
        const char *got = rt_who(g, "127.0.0.1", 80, "GET", probes[i].host, probes[i].target,
                                 NULL, 0);
        work[i] = sv_route_work_ - w0;
        if (strcmp(got, probes[i].want) != 0)
            FAIL("%s%s: got %s want %s", probes[i].host, probes[i].target, got, probes[i].want);
        CHECK(work[i] > 0);
    }
}

TEST(routing_lookup_work_independent_of_other_hostnames)
{
#if !(defined(SV_DEBUG) && SV_DEBUG)
    SKIP("work counter only in test (SV_DEBUG) builds");
#else
    static const int sizes[] = {0, 10, 3000};
    uint64_t work[SV_ARRAY_SIZE(sizes)][SV_ARRAY_SIZE(probes)];
    for (size_t k = 0; k < SV_ARRAY_SIZE(sizes); k++) {
        struct sv_generation *g = make_gen(sizes[k]);
        REQUIRE(g);
        probe_work(g, work[k]);
        if (sizes[k] == 3000) { /* every other route still routes where it should */
            char host[64], target[64], want[64];
            for (int i = 0; i < sizes[k]; i += 97) {
                snprintf(host, sizeof(host), "o%d.scale.test", i);
                snprintf(target, sizeof(target), "/o%d/x/1", i);
                snprintf(want, sizeof(want), "ns/o%d#3", i);
                CHECK_EQ_STR(rt_who(g, "127.0.0.1", 80, "GET", host, target, NULL, 0), want);
            }
        }
        sv_generation_free_unpublished(g);
    }
    /* Hash lookups, the trie walk and the rule entries tried are identical whatever the number
     * of other hostnames (a scan over the other routes would add thousands). */
    for (size_t i = 0; i < SV_ARRAY_SIZE(probes); i++)
        for (size_t k = 1; k < SV_ARRAY_SIZE(sizes); k++)
            if (work[k][i] != work[0][i])
                FAIL("%s%s: work %llu with %d other routes, %llu with none", probes[i].host,
                     probes[i].target, (unsigned long long)work[k][i], sizes[k],
                     (unsigned long long)work[0][i]);
#endif
}

TEST(routing_hash_probe_chains_stay_short)
{
#if !(defined(SV_DEBUG) && SV_DEBUG)
    SKIP("work counter only in test (SV_DEBUG) builds");
#else
    /* Open addressing at most half full: on average under 3 slots per lookup of the host
     * bucket hash, hits (o<i>.scale.test) and misses (n<i>.scale.test) alike. */
    struct sv_generation *g = make_gen(3000);
    REQUIRE(g);
    for (int miss = 0; miss < 2; miss++) {
        uint64_t p0 = sv_route_probes_;
        int found = 0;
        char host[64];
        for (int i = 0; i < 3000; i++) {
            snprintf(host, sizeof(host), "%c%d.scale.test", miss ? 'n' : 'o', i);
            found += sv_route_hfind_(&g->table->hash, 0, SV_HK_BUCKET_EXACT, S(host)) >= 0;
        }
        uint64_t slots = sv_route_probes_ - p0;
        CHECK_EQ_INT(found, miss ? 0 : 3000);
        CHECK(slots >= 3000);
        if (slots > 3 * 3000)
            FAIL("%llu slots probed for 3000 %s", (unsigned long long)slots,
                 miss ? "misses" : "hits");
    }
    sv_generation_free_unpublished(g);
#endif
}

TEST(routing_lookup_work_logarithmic_in_sibling_segments)
{
#if !(defined(SV_DEBUG) && SV_DEBUG)
    SKIP("work counter only in test (SV_DEBUG) builds");
#else
    /* One hostname with 4096 sibling prefixes /p0 .. /p4095: finding one child costs a binary
     * search (about 12 steps), not a scan of 4096. */
    struct sv_route_builder *b = sv_route_builder_new();
    REQUIRE(b);
    int set = sv_route_builder_add_backend_set(b, S("ns/svc:80"));
    union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80);
    int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
    int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("ns/gw/http"), S(""));
    struct sv_route_route_spec rs = {S("ns"), S("wide"), 1};
    int r = sv_route_builder_add_route(b, &rs);
    REQUIRE(set >= 0 && bind >= 0 && l >= 0 && r >= 0);
    REQUIRE(sv_route_builder_attach(b, (uint32_t)r, (uint32_t)l, S("")) == 0);
    char path[32];
    for (int i = 0; i < 4096; i++) {
        snprintf(path, sizeof(path), "/p%d", i);
        REQUIRE(add_rule(b, r, set, SV_ROUTE_PATH_PREFIX, path) == i);
    }
    char err[256];
    struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
    REQUIRE(g);
    uint64_t max_work = 0;
    for (int i = 0; i < 4096; i += 31) {
        char target[40], want[40];
        snprintf(target, sizeof(target), "/p%d/x", i);
        snprintf(want, sizeof(want), "ns/wide#%d", i);
        uint64_t w0 = sv_route_work_;
        CHECK_EQ_STR(rt_who(g, "127.0.0.1", 80, "GET", "any.host", target, NULL, 0), want);
        uint64_t w = sv_route_work_ - w0;
        max_work = w > max_work ? w : max_work;
    }
    /* bind/listener/bucket lookups, ~12 search steps + a short equal-hash scan, one entry */
    CHECK(max_work > 0);
    if (max_work > 32)
        FAIL("lookup among 4096 siblings did %llu units of work", (unsigned long long)max_work);
    sv_generation_free_unpublished(g);
#endif
}

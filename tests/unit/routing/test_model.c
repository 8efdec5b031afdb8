/* Randomised cross-check: the indexed lookup (host hash, segment trie, pre-sorted lists) must
 * pick the same rule as a brute-force reading of the Gateway API precedence rules over every
 * (route, rule, match) of the listener. Seeds are fixed, so a failure is reproducible. */
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../harness.h"
#include "rt_helpers.h"

#define S(x) sv_str_cstr(x)

#define M_ROUTES 40
#define M_RULES 3
#define M_MATCHES 2
#define M_REQUESTS 3000

static const char *const host_pool[] = {"a.example.com", "b.example.com", "*.example.com",
                                        "*.a.example.com", "x.a.example.com", ""};
static const char *const path_pool[] = {"/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/b",
                                        "/b/a", "/a/b/", "/c/d/e"};
/* regexes whose POSIX ERE reading equals the PCRE2 one */
static const char *const regex_pool[] = {"/a/.*", "/a/b.*", "/[ab]", "/b/[a-z]+", "/.*/c",
                                         "/a(/b)?"};
static const char *const req_path_pool[] = {"/", "/a", "/a/", "/a/b", "/a/b/c", "/a/b/c/d",
                                            "/ab", "/abc", "/b", "/b/a", "/b/a/x", "/a/b/",
                                            "/c/d/e", "/c/d", "/zz", "/a//b"};
static const char *const req_host_pool[] = {"a.example.com", "b.example.com", "c.example.com",
                                            "x.a.example.com", "y.a.example.com", "example.com",
                                            "other.org", "A.EXAMPLE.COM:8080"};

struct m_match {
    enum sv_route_path_type type;
    const char *path;
    const char *method; /* "" = any */
    int n_headers;      /* headers x-h0.. with value "1" */
};

struct m_rule {
    int n_matches;
    struct m_match m[M_MATCHES];
};

struct m_route {
    char ns[16], name[16];
    int64_t created;
    const char *host;
    int n_rules;
    struct m_rule rules[M_RULES];
};

static uint32_t rnd32(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static bool prefix_ok(const char *prefix, const char *path)
{
    size_t pl = strlen(prefix);
    if (pl && prefix[pl - 1] == '/')
        pl--;
    if (strncmp(prefix, path, pl) != 0)
        return false;
    return path[pl] == '\0' || path[pl] == '/';
}

static bool host_in_bucket(const char *bucket, const char *host)
{
    if (!*bucket)
        return true;
    if (bucket[0] == '*') {
        size_t bl = strlen(bucket + 1), hl = strlen(host); /* ".example.com" */
        return hl > bl && strcmp(host + hl - bl, bucket + 1) == 0;
    }
    return strcmp(bucket, host) == 0;
}

/* Bucket rank for a host: exact 0, wildcards by suffix length (longer first), none last. */
static long bucket_rank(const char *bucket)
{
    if (!*bucket)
        return 1000000;
    if (bucket[0] == '*')
        return 1000 - (long)strlen(bucket);
    return 0;
}

struct cand {
    const struct m_route *r;
    int route_idx, rule, match;
};

static const struct m_route *g_routes;

static bool regex_ok(const char *pattern, const char *path)
{
    static regex_t re[SV_ARRAY_SIZE(regex_pool)];
    static bool ready[SV_ARRAY_SIZE(regex_pool)];
    for (size_t i = 0; i < SV_ARRAY_SIZE(regex_pool); i++) {
        if (regex_pool[i] != pattern)
            continue;
        if (!ready[i]) {
            char anchored[64];
            snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
            if (regcomp(&re[i], anchored, REG_EXTENDED | REG_NOSUB) != 0)
                return false;
            ready[i] = true; /* kept for the life of the test binary */
        }
        return regexec(&re[i], path, 0, NULL, 0) == 0;
    }
    return false;
}

/* Exact < regex (longer pattern first) < PathPrefix (longer prefix first). */
static long path_key(const struct m_match *m)
{
    if (m->type == SV_ROUTE_PATH_EXACT)
        return 0;
    if (m->type == SV_ROUTE_PATH_REGEX)
        return 1000 - (long)strlen(m->path);
    size_t pl = strlen(m->path);
    if (pl && m->path[pl - 1] == '/')
        pl--;
    return 100000 - (long)pl;
}

static int cmp_cand(const void *pa, const void *pb)
{
    const struct cand *x = pa, *y = pb;
    long bx = bucket_rank(x->r->host), by = bucket_rank(y->r->host);
    if (bx != by)
        return bx < by ? -1 : 1;
    const struct m_match *mx = &x->r->rules[x->rule].m[x->match];
    const struct m_match *my = &y->r->rules[y->rule].m[y->match];
    long px = path_key(mx), py = path_key(my);
    if (px != py)
        return px < py ? -1 : 1;
    bool hx = *mx->method, hy = *my->method;
    if (hx != hy)
        return hx ? -1 : 1;
    if (mx->n_headers != my->n_headers)
        return mx->n_headers > my->n_headers ? -1 : 1;
    if (x->r->created != y->r->created)
        return x->r->created < y->r->created ? -1 : 1;
    char kx[40], ky[40];
    snprintf(kx, sizeof(kx), "%s/%s", x->r->ns, x->r->name);
    snprintf(ky, sizeof(ky), "%s/%s", y->r->ns, y->r->name);
    int c = strcmp(kx, ky);
    if (c)
        return c;
    if (x->route_idx != y->route_idx)
        return x->route_idx < y->route_idx ? -1 : 1;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    return x->match - y->match;
}

static void expect(const struct m_route *routes, int n, const char *host_in, const char *path,
                   const char *method, int n_hdr, char *out, size_t outlen)
{
    char host[64];
    size_t k = 0;
    for (; host_in[k] && host_in[k] != ':' && k < sizeof(host) - 1; k++)
        host[k] = sv_ascii_lower(host_in[k]);
    host[k] = '\0';
    static struct cand c[M_ROUTES * M_RULES * M_MATCHES];
    size_t nc = 0;
    g_routes = routes;
    for (int i = 0; i < n; i++) {
        if (!host_in_bucket(routes[i].host, host))
            continue;
        for (int r = 0; r < routes[i].n_rules; r++)
            for (int m = 0; m < routes[i].rules[r].n_matches; m++) {
                const struct m_match *mm = &routes[i].rules[r].m[m];
                bool ok = mm->type == SV_ROUTE_PATH_EXACT   ? strcmp(mm->path, path) == 0
                          : mm->type == SV_ROUTE_PATH_REGEX ? regex_ok(mm->path, path)
                                                            : prefix_ok(mm->path, path);
                ok = ok && (!*mm->method || strcmp(mm->method, method) == 0);
                ok = ok && mm->n_headers <= n_hdr;
                if (ok)
                    c[nc++] = (struct cand){&routes[i], i, r, m};
            }
    }
    if (nc == 0) {
        snprintf(out, outlen, "404");
        return;
    }
    qsort(c, nc, sizeof(c[0]), cmp_cand);
    snprintf(out, outlen, "%s/%s#%d", c[0].r->ns, c[0].r->name, c[0].rule);
}

TEST(routing_lookup_matches_reference_model)
{
    static const char *const hdr_lines[] = {"x-h0: 1", "x-h1: 1", "x-h2: 1"};
    int mismatches = 0;
    for (uint64_t seed = 1; seed <= 6 && mismatches < 5; seed++) {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull;
        static struct m_route routes[M_ROUTES];
        memset(routes, 0, sizeof(routes));
        struct sv_route_builder *b = sv_route_builder_new();
        union sv_route_sockaddr sa = rt_sa("127.0.0.1", 80);
        int bind = sv_route_builder_add_bind(b, &sa.sa, rt_salen(&sa), SV_ROUTE_PROTO_HTTP);
        int l = sv_route_builder_add_listener(b, (uint32_t)bind, S("L"), S(""));
        int set = sv_route_builder_add_backend_set(b, S("s"));
        for (int i = 0; i < M_ROUTES; i++) {
            struct m_route *r = &routes[i];
            snprintf(r->ns, sizeof(r->ns), "n%u", rnd32(&s) % 3);
            snprintf(r->name, sizeof(r->name), "r%d", i);
            r->created = rnd32(&s) % 4;
            r->host = host_pool[rnd32(&s) % SV_ARRAY_SIZE(host_pool)];
            r->n_rules = 1 + (int)(rnd32(&s) % M_RULES);
            struct sv_route_route_spec rs = {S(r->ns), S(r->name), r->created};
            int ri = sv_route_builder_add_route(b, &rs);
            REQUIRE(ri == i);
            REQUIRE(sv_route_builder_attach(b, (uint32_t)ri, (uint32_t)l, S(r->host)) == 0);
            for (int k = 0; k < r->n_rules; k++) {
                struct m_rule *ru = &r->rules[k];
                ru->n_matches = 1 + (int)(rnd32(&s) % M_MATCHES);
                struct sv_route_match_spec ms[M_MATCHES];
                struct sv_route_kv_match hk[3] = {{SV_ROUTE_VALUE_EXACT, S("X-H0"), S("1")},
                                                  {SV_ROUTE_VALUE_EXACT, S("X-H1"), S("1")},
                                                  {SV_ROUTE_VALUE_EXACT, S("X-H2"), S("1")}};
                for (int m = 0; m < ru->n_matches; m++) {
                    struct m_match *mm = &ru->m[m];
                    uint32_t kind = rnd32(&s) % 6;
                    mm->type = kind < 2   ? SV_ROUTE_PATH_EXACT
                               : kind < 3 ? SV_ROUTE_PATH_REGEX
                                          : SV_ROUTE_PATH_PREFIX;
                    mm->path = mm->type == SV_ROUTE_PATH_REGEX
                                   ? regex_pool[rnd32(&s) % SV_ARRAY_SIZE(regex_pool)]
                                   : path_pool[rnd32(&s) % SV_ARRAY_SIZE(path_pool)];
                    mm->method = rnd32(&s) % 4 == 0 ? "POST" : "";
                    mm->n_headers = (int)(rnd32(&s) % 4) == 3 ? 2 : (int)(rnd32(&s) % 2);
                    ms[m] = (struct sv_route_match_spec){mm->type, S(mm->path), hk,
                                                         (uint32_t)mm->n_headers, NULL, 0,
                                                         S(mm->method)};
                }
                struct sv_route_backend_spec be = {.kind = SV_ROUTE_BACKEND_SET,
                                                   .set_id = (uint32_t)set, .weight = 1};
                struct sv_route_rule_spec spec = {.matches = ms,
                                                  .n_matches = (uint32_t)ru->n_matches,
                                                  .backends = &be, .n_backends = 1};
                REQUIRE(sv_route_builder_add_rule(b, (uint32_t)ri, &spec) == k);
            }
        }
        char err[256];
        struct sv_generation *g = sv_route_builder_finish(b, err, sizeof(err));
        REQUIRE(g);
        for (int q = 0; q < M_REQUESTS && mismatches < 5; q++) {
            const char *host = req_host_pool[rnd32(&s) % SV_ARRAY_SIZE(req_host_pool)];
            const char *path = req_path_pool[rnd32(&s) % SV_ARRAY_SIZE(req_path_pool)];
            const char *method = rnd32(&s) % 3 == 0 ? "POST" : "GET";
            int nh = (int)(rnd32(&s) % 4);
            char want[64];
            expect(routes, M_ROUTES, host, path, method, nh, want, sizeof(want));
            const char *got = rt_who(g, "127.0.0.1", 80, method, host, path, hdr_lines,
                                     (size_t)nh);
            if (strcmp(got, want) != 0) {
                FAIL("seed %llu: %s %s%s with %d headers: got %s want %s",
                     (unsigned long long)seed, method, host, path, nh, got, want);
                mismatches++;
            }
        }
        sv_generation_free_unpublished(g);
    }
}

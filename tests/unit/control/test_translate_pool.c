/* Translation with --gateway-address-pool: every Gateway gets its own address (status and binds),
 * Gateways on one port no longer merge, spec.addresses inside the pool are honoured, outside it
 * they are AddressNotUsable; without the pool every Gateway shares --bind as before. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "serval/control/status.h"
#include "serval/control/store.h"
#include "serval/control/translate.h"
#include "serval/routing/generation.h"
#include "serval/routing/table.h"
#include "support.h"

static int pool_load(struct sv_test_tx *f, const char *bind, const char *pool)
{
    char err[512];
    struct sv_translate_opts o = {.bind_addr = bind, .address_pool = pool};
    if (sv_test_tx_file(f, "pool.yaml", &o, err, sizeof(err)) != 0) {
        FAIL("pool.yaml: %s", err);
        return -1;
    }
    return 0;
}

static const char *addr_of(const struct sv_test_tx *f, const char *name)
{
    const struct sv_status_gateway *g = sv_status_gateway(f->st, "pool", name);
    if (!g || g->n_addresses != 1)
        return NULL;
    return g->addresses[0].value;
}

static bool cond_is(const struct sv_test_tx *f, const char *name, const char *type,
                    const char *status, const char *reason)
{
    const struct sv_status_gateway *g = sv_status_gateway(f->st, "pool", name);
    const struct sv_condition *c = g ? sv_condition_find(&g->conds, type) : NULL;
    return c && strcmp(c->status, status) == 0 && (!reason || strcmp(c->reason, reason) == 0);
}

/* Number of binds on port 80 whose address is <text>. */
static int binds_at(const struct sv_test_tx *f, const char *text)
{
    size_t n;
    const struct sv_route_bind *b = sv_generation_binds(f->gen, &n);
    struct in_addr want;
    if (inet_pton(AF_INET, text, &want) != 1)
        return -1;
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += b[i].port == 80 && b[i].addr.sa.sa_family == AF_INET &&
             b[i].addr.in.sin_addr.s_addr == want.s_addr;
    return c;
}

static bool in_pool(const char *text)
{
    struct in_addr a;
    return text && inet_pton(AF_INET, text, &a) == 1 &&
           (ntohl(a.s_addr) >> 16) == ((127u << 8) | 64u);
}

TEST(translate_address_pool_gives_each_gateway_its_address)
{
    struct sv_test_tx f;
    if (pool_load(&f, "127.0.0.1", "127.64.0.0/16") != 0)
        return;
    const char *one = addr_of(&f, "one"), *two = addr_of(&f, "two"), *fixed = addr_of(&f, "fixed");
    REQUIRE(one && two && fixed);
    CHECK(in_pool(one));
    CHECK(in_pool(two));
    CHECK(strcmp(one, two) != 0);
    CHECK_EQ_STR(fixed, "127.64.3.7");
    CHECK(strcmp(one, fixed) != 0 && strcmp(two, fixed) != 0);
    CHECK(cond_is(&f, "one", "Programmed", "True", "Programmed"));
    CHECK(cond_is(&f, "two", "Programmed", "True", "Programmed"));
    CHECK(cond_is(&f, "fixed", "Programmed", "True", "Programmed"));
    CHECK(cond_is(&f, "outside", "Programmed", "False", "AddressNotUsable"));
    /* one bind per Gateway address, none on --bind */
    CHECK_EQ_INT(binds_at(&f, one), 1);
    CHECK_EQ_INT(binds_at(&f, two), 1);
    CHECK_EQ_INT(binds_at(&f, fixed), 1);
    CHECK_EQ_INT(binds_at(&f, "127.0.0.1"), 0);
    /* the same input gives the same addresses (stable across generations) */
    char keep1[64], keep2[64];
    snprintf(keep1, sizeof(keep1), "%s", one);
    snprintf(keep2, sizeof(keep2), "%s", two);
    sv_test_tx_free(&f);
    if (pool_load(&f, "127.0.0.1", "127.64.0.0/16") != 0)
        return;
    CHECK_EQ_STR(addr_of(&f, "one"), keep1);
    CHECK_EQ_STR(addr_of(&f, "two"), keep2);
    sv_test_tx_free(&f);
}

TEST(translate_address_pool_tiny_pool_probes_free_addresses)
{
    /* /30: two usable addresses for four Gateways. The two oldest get distinct ones; the others
     * find nothing free (probing is bounded by the pool) and share one; "fixed" asked for an
     * address outside this pool -> AddressNotUsable. */
    struct sv_test_tx f;
    if (pool_load(&f, "127.0.0.1", "127.64.3.4/30") != 0)
        return;
    const char *one = addr_of(&f, "one"), *two = addr_of(&f, "two");
    REQUIRE(one && two);
    CHECK(strcmp(one, "127.64.3.5") == 0 || strcmp(one, "127.64.3.6") == 0);
    CHECK(strcmp(two, "127.64.3.5") == 0 || strcmp(two, "127.64.3.6") == 0);
    CHECK(strcmp(one, two) != 0);
    CHECK(cond_is(&f, "fixed", "Programmed", "False", "AddressNotUsable"));
    sv_test_tx_free(&f);
}

TEST(translate_without_pool_gateways_share_bind)
{
    struct sv_test_tx f;
    if (pool_load(&f, "127.0.0.1", NULL) != 0)
        return;
    CHECK_EQ_STR(addr_of(&f, "one"), "127.0.0.1");
    CHECK_EQ_STR(addr_of(&f, "two"), "127.0.0.1");
    CHECK_EQ_INT(binds_at(&f, "127.0.0.1"), 1); /* merged listener */
    CHECK(cond_is(&f, "fixed", "Programmed", "False", "AddressNotUsable"));
    sv_test_tx_free(&f);
}

TEST(translate_address_pool_rejects_bad_cidr)
{
    static const char *const bad[] = {"127.64.0.0", "127.64.0.0/40", "x/16", "127.64.0.0/",
                                      "127.64.0.0/7", "::1/64", "127.64.0.0/16x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sv_store *s = sv_store_new();
        struct sv_generation *gen = (struct sv_generation *)1;
        struct sv_status *st = (struct sv_status *)1;
        char err[160];
        struct sv_translate_opts o = {.bind_addr = "127.0.0.1", .address_pool = bad[i]};
        CHECK_EQ_INT(sv_translate(s, &o, &gen, &st, err, sizeof(err)), -EINVAL);
        CHECK(gen == NULL && st == NULL);
        CHECK(strstr(err, bad[i]) != NULL);
        sv_store_free(s);
    }
}

/* Publication: domain basics, reclaim rules, and a multi-threaded stress test. ASan catches a
 * use-after-free; each reader access also asserts the generation's magic number (poisoned on
 * free) through sv_generation_id(). */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../harness.h"
#include "rt_helpers.h"
#include "serval/routing/quick.h"

static struct sv_generation *quick_gen(const char *prefix)
{
    char route[64], err[256];
    snprintf(route, sizeof(route), "%s=127.0.0.2:9000,127.0.0.3:9000", prefix);
    const char *l[] = {"127.0.0.1:80"};
    const char *r[] = {route};
    struct sv_generation *g = sv_quick_build(l, 1, r, 1, err, sizeof(err));
    if (!g)
        FAIL("quick: %s", err);
    return g;
}

TEST(routing_generation_basics)
{
    size_t live0 = sv_generation_live_count(), tables0 = sv_route_table_live_count();
    CHECK(sv_generation_domain_new(0) == NULL);
    CHECK(sv_generation_domain_new(SV_MAX_WORKERS + 1) == NULL);
    struct sv_generation_domain *d = sv_generation_domain_new(2);
    REQUIRE(d);
    CHECK(sv_generation_current(d) == NULL);
    CHECK_EQ_INT(sv_generation_reader_register(d, 2), -EINVAL);
    CHECK_EQ_INT(sv_generation_reader_register(d, 0), 0);
    CHECK_EQ_INT(sv_generation_reader_register(d, 0), -EBUSY);
    CHECK(sv_generation_acquire(d, 0) == NULL);

    struct sv_generation *g1 = quick_gen("/a");
    REQUIRE(g1);
    CHECK_EQ_INT(sv_generation_id(g1), 0);
    CHECK_EQ_INT(sv_generation_publish(d, g1), 1);
    CHECK(sv_generation_current(d) == g1);
    CHECK(sv_generation_acquire(d, 0) == g1);
    CHECK_EQ_INT(sv_generation_retired_count(d), 0);

    /* worker 0 keeps a reference on g1 across the publication of g2 */
    sv_generation_ref(g1, 0);
    struct sv_generation *g2 = quick_gen("/b");
    CHECK_EQ_INT(sv_generation_publish(d, g2), 2);
    CHECK_EQ_INT(sv_generation_id(g2), 2);
    CHECK_EQ_INT(sv_generation_retired_count(d), 1);
    /* worker 0 has not passed a quiescent state yet: nothing can be freed */
    CHECK_EQ_INT(sv_generation_reclaim(d), 0);
    sv_generation_quiescent(d, 0);
    CHECK(sv_generation_acquire(d, 0) == g2);
    /* grace period over, but the reference holds it */
    CHECK_EQ_INT(sv_generation_reclaim(d), 0);
    CHECK_EQ_INT(sv_generation_retired_count(d), 1);
    sv_generation_unref(g1, 0);
    CHECK_EQ_INT(sv_generation_reclaim(d), 1);
    CHECK_EQ_INT(sv_generation_retired_count(d), 0);

    /* an offline worker does not hold grace periods back */
    sv_generation_offline(d, 0);
    struct sv_generation *g3 = quick_gen("/c");
    sv_generation_publish(d, g3);
    CHECK_EQ_INT(sv_generation_reclaim(d), 1);
    sv_generation_online(d, 0);
    CHECK(sv_generation_acquire(d, 0) == g3);

    /* an online worker that never reports blocks reclamation */
    struct sv_generation *g4 = quick_gen("/d");
    sv_generation_publish(d, g4);
    CHECK_EQ_INT(sv_generation_reclaim(d), 0);
    sv_generation_quiescent(d, 0);
    CHECK_EQ_INT(sv_generation_reclaim(d), 1);

    /* endpoint-only generations share the table; it goes with the last of them */
    char err[128];
    struct sv_route_endpoint_update up = {0, NULL, 0};
    struct sv_generation *g5 = sv_generation_new_with_endpoints(g4, &up, 1, err, sizeof(err));
    REQUIRE(g5);
    CHECK(sv_generation_same_routes(g4, g5));
    size_t tables_before = sv_route_table_live_count();
    sv_generation_publish(d, g5);
    sv_generation_quiescent(d, 0);
    CHECK_EQ_INT(sv_generation_reclaim(d), 1); /* g4 freed, its table lives on in g5 */
    CHECK_EQ_INT(sv_route_table_live_count(), tables_before);
    struct sv_route_result res;
    CHECK_EQ_INT(rt_lookup(sv_generation_acquire(d, 0), "127.0.0.1", 80, "GET", "h", "/d", NULL,
                           0, &res),
                 0);

    /* domain_free frees the current and every retired generation */
    sv_generation_publish(d, quick_gen("/e"));
    CHECK_EQ_INT(sv_generation_retired_count(d), 1);
    sv_generation_reader_unregister(d, 0);
    sv_generation_domain_free(d);
    CHECK_EQ_INT(sv_generation_live_count(), live0);
    CHECK_EQ_INT(sv_route_table_live_count(), tables0);
}

static void count_wake(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

TEST(routing_generation_wake_callback)
{
    struct sv_generation_domain *d = sv_generation_domain_new(1);
    REQUIRE(d);
    _Atomic int wakes = 0;
    sv_generation_domain_set_wake(d, count_wake, (void *)&wakes);
    sv_generation_publish(d, quick_gen("/a"));
    sv_generation_publish(d, quick_gen("/b"));
    CHECK_EQ_INT(atomic_load(&wakes), 2);
    CHECK_EQ_INT(sv_generation_reclaim(d), 1); /* nobody registered: no grace to wait for */
    sv_generation_domain_free(d);
}

/* ---- stress ------------------------------------------------------------------------------ */

#define STRESS_READERS 4
#define STRESS_PUBLISH 3000
#define STRESS_HELD 8

struct stress {
    struct sv_generation_domain *d;
    int efd[STRESS_READERS];
    _Atomic int stop;
    _Atomic int errors;
    _Atomic uint64_t lookups;
    _Atomic uint64_t refs_taken;
};

struct reader_arg {
    struct stress *s;
    unsigned w;
};

static void stress_wake(void *arg)
{
    struct stress *s = arg;
    uint64_t one = 1;
    for (int i = 0; i < STRESS_READERS; i++)
        if (write(s->efd[i], &one, sizeof(one)) != sizeof(one))
            atomic_fetch_add(&s->errors, 1);
}

static void touch(struct stress *s, const struct sv_generation *g)
{
    struct sv_route_result res;
    sv_generation_check(g);
    if (rt_lookup(g, "127.0.0.1", 80, "GET", "h", "/p/x", NULL, 0, &res) != 0 ||
        !res.action || res.action->n_backends != 1)
        atomic_fetch_add(&s->errors, 1);
    uint32_t cur = 0;
    if (!sv_generation_pick_endpoint(g, res.action ? res.action->backends[0].set_id : 0, &cur,
                                     NULL))
        atomic_fetch_add(&s->errors, 1);
    atomic_fetch_add_explicit(&s->lookups, 1, memory_order_relaxed);
}

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct stress *s = a->s;
    unsigned w = a->w;
    struct {
        const struct sv_generation *g;
        uint64_t id;
        int ttl;
    } held[STRESS_HELD];
    int n_held = 0;
    uint64_t last_id = 0, iter = 0, rnd = 0x12345u + w;
    if (sv_generation_reader_register(s->d, w) != 0) {
        atomic_fetch_add(&s->errors, 1);
        return NULL;
    }
    /* bounded: stops when asked, or after a generous iteration cap */
    while (!atomic_load_explicit(&s->stop, memory_order_acquire) && iter < 50000000) {
        iter++;
        const struct sv_generation *g = sv_generation_acquire(s->d, w);
        if (g) {
            uint64_t id = sv_generation_id(g); /* asserts the magic */
            if (id < last_id)
                atomic_fetch_add(&s->errors, 1); /* ids never go backwards */
            last_id = id;
            touch(s, g);
            rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
            if (n_held < STRESS_HELD && (rnd >> 60) == 0) {
                sv_generation_ref(g, w);
                held[n_held++] = (typeof(held[0])){g, id, (int)((rnd >> 40) % 2000) + 1};
                atomic_fetch_add_explicit(&s->refs_taken, 1, memory_order_relaxed);
            }
        }
        /* requests that outlive the iteration keep using their generation */
        for (int i = 0; i < n_held;) {
            if (sv_generation_id(held[i].g) != held[i].id)
                atomic_fetch_add(&s->errors, 1);
            if (--held[i].ttl == 0 || (iter & 63) == 0) {
                touch(s, held[i].g);
            }
            if (held[i].ttl <= 0) {
                sv_generation_unref(held[i].g, w);
                held[i] = held[--n_held];
                continue;
            }
            i++;
        }
        sv_generation_quiescent(s->d, w);
        if ((iter % 97) == 0) {
            /* a blocking wait, woken by a publication or a 1 ms timeout */
            sv_generation_offline(s->d, w);
            struct pollfd pfd = {s->efd[w], POLLIN, 0};
            if (poll(&pfd, 1, 1) > 0) {
                uint64_t v;
                if (read(s->efd[w], &v, sizeof(v)) != sizeof(v))
                    atomic_fetch_add(&s->errors, 1);
            }
            /* held references stay valid while offline */
            for (int i = 0; i < n_held; i++)
                touch(s, held[i].g);
            sv_generation_online(s->d, w);
        }
    }
    for (int i = 0; i < n_held; i++)
        sv_generation_unref(held[i].g, w);
    sv_generation_reader_unregister(s->d, w);
    return NULL;
}

TEST(routing_generation_stress)
{
    size_t live0 = sv_generation_live_count(), tables0 = sv_route_table_live_count();
    struct stress s;
    memset(&s, 0, sizeof(s));
    s.d = sv_generation_domain_new(STRESS_READERS);
    REQUIRE(s.d);
    for (int i = 0; i < STRESS_READERS; i++) {
        s.efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        REQUIRE(s.efd[i] >= 0);
    }
    sv_generation_domain_set_wake(s.d, stress_wake, &s);
    sv_generation_publish(s.d, quick_gen("/p"));

    pthread_t th[STRESS_READERS];
    struct reader_arg args[STRESS_READERS];
    for (unsigned i = 0; i < STRESS_READERS; i++) {
        args[i] = (struct reader_arg){&s, i};
        REQUIRE(pthread_create(&th[i], NULL, reader, &args[i]) == 0);
    }
    size_t max_retired = 0, freed = 0;
    char err[256];
    for (int i = 0; i < STRESS_PUBLISH; i++) {
        struct sv_generation *g;
        if (i % 10 == 0) {
            g = quick_gen("/p"); /* full rebuild: a new route table */
        } else {
            /* endpoint-only update: shares the current table */
            const struct sv_generation *cur = sv_generation_current(s.d);
            union sv_route_sockaddr sa = rt_sa("127.0.0.9", (uint16_t)(1000 + i));
            struct sv_route_endpoint ep = {sa, rt_salen(&sa)};
            struct sv_route_endpoint_update up = {0, &ep, 1};
            g = sv_generation_new_with_endpoints(cur, &up, 1, err, sizeof(err));
        }
        REQUIRE(g);
        uint64_t id = sv_generation_publish(s.d, g);
        CHECK_EQ_INT(id, (uint64_t)i + 2);
        freed += sv_generation_reclaim(s.d);
        size_t r = sv_generation_retired_count(s.d);
        if (r > max_retired)
            max_retired = r;
        if ((i & 15) == 0)
            sched_yield();
    }
    atomic_store_explicit(&s.stop, 1, memory_order_release);
    for (int i = 0; i < STRESS_READERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 1000 && sv_generation_retired_count(s.d) > 0; i++)
        freed += sv_generation_reclaim(s.d);
    CHECK_EQ_INT(sv_generation_retired_count(s.d), 0);
    CHECK_EQ_INT(freed, STRESS_PUBLISH); /* every retired generation was freed */
    CHECK_EQ_INT(atomic_load(&s.errors), 0);
    CHECK(atomic_load(&s.lookups) > 0);
    CHECK(atomic_load(&s.refs_taken) > 0);
    CHECK(max_retired > 0); /* readers really did hold generations back at times */
    sv_generation_domain_free(s.d);
    for (int i = 0; i < STRESS_READERS; i++)
        close(s.efd[i]);
    CHECK_EQ_INT(sv_generation_live_count(), live0);
    CHECK_EQ_INT(sv_route_table_live_count(), tables0);
    printf("   stress: %d publications, %llu lookups, %llu refs, max %zu retired at once\n",
           STRESS_PUBLISH, (unsigned long long)atomic_load(&s.lookups),
           (unsigned long long)atomic_load(&s.refs_taken), max_retired);
}

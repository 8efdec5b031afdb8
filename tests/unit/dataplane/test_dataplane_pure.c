/* Unit tests for the pure data-plane pieces: user_data codec, slab, timer wheel. */
#include "dataplane/slab.h"
#include "dataplane/timer.h"
#include "dataplane/ud.h"
#include "../harness.h"

TEST(ud_roundtrip)
{
    uint64_t ud = sv_ud_make(7, 0xabcdef, 0xdeadbeef);
    CHECK_EQ_INT(sv_ud_op(ud), 7);
    CHECK_EQ_INT(sv_ud_slot(ud), 0xabcdef);
    CHECK_EQ_INT(sv_ud_gen(ud), 0xdeadbeefu);
    ud = sv_ud_make(255, SV_UD_MAX_SLOTS - 1, 0);
    CHECK_EQ_INT(sv_ud_op(ud), 255);
    CHECK_EQ_INT(sv_ud_slot(ud), SV_UD_MAX_SLOTS - 1);
    CHECK_EQ_INT(sv_ud_gen(ud), 0);
    /* fields do not bleed into each other */
    CHECK(sv_ud_make(1, 2, 3) != sv_ud_make(1, 2, 4));
    CHECK(sv_ud_make(1, 2, 3) != sv_ud_make(2, 2, 3));
}

TEST(slab_alloc_free_gen)
{
    struct sv_slab s;
    REQUIRE(sv_slab_init(&s, 40, 3) == 0);
    int64_t a = sv_slab_alloc(&s), b = sv_slab_alloc(&s), c = sv_slab_alloc(&s);
    CHECK(a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c);
    CHECK_EQ_INT(sv_slab_alloc(&s), -1);
    CHECK_EQ_INT(sv_slab_used(&s), 3);
    uint32_t g = sv_slab_gen(&s, (uint32_t)b);
    memset(sv_slab_get(&s, (uint32_t)b), 0x5a, 40);
    sv_slab_free(&s, (uint32_t)b);
    CHECK_EQ_INT(sv_slab_gen(&s, (uint32_t)b), g + 1);
    int64_t d = sv_slab_alloc(&s);
    CHECK_EQ_INT(d, b); /* LIFO reuse */
    CHECK_EQ_INT(((unsigned char *)sv_slab_get(&s, (uint32_t)d))[39], 0); /* zeroed */
    CHECK(sv_ud_gen(sv_ud_make(1, (uint32_t)b, g)) != sv_slab_gen(&s, (uint32_t)d));
    sv_slab_destroy(&s);
    CHECK(sv_slab_init(&s, 8, 0) < 0);
}

struct fired {
    struct sv_timer t;
    int count;
    uint64_t at;
};

static uint64_t g_now;

static void on_fire(struct sv_timer *t, void *ctx)
{
    struct fired *f = sv_container_of(t, struct fired, t);
    f->count++;
    f->at = g_now;
    (*(int *)ctx)++;
}

TEST(timer_wheel_fires_in_order_and_cancels)
{
    static struct sv_wheel w;
    int total = 0;
    sv_wheel_init(&w, 1000, 10);
    struct fired a = {0}, b = {0}, c = {0}, far = {0};
    sv_timer_arm(&w, &a.t, 1050);
    sv_timer_arm(&w, &b.t, 1200);
    sv_timer_arm(&w, &c.t, 1100);
    sv_timer_arm(&w, &far.t, 1000 + 10 * SV_WHEEL_SLOTS + 500); /* beyond one revolution */
    CHECK_EQ_INT(sv_wheel_armed(&w), 4);
    sv_timer_cancel(&w, &c.t);
    CHECK(!sv_timer_armed(&c.t));
    g_now = 1040;
    CHECK_EQ_INT(sv_wheel_advance(&w, g_now, on_fire, &total), 0);
    g_now = 1055;
    CHECK_EQ_INT(sv_wheel_advance(&w, g_now, on_fire, &total), 1);
    CHECK_EQ_INT(a.count, 1);
    CHECK_EQ_INT(b.count, 0);
    /* re-arm b earlier */
    sv_timer_arm(&w, &b.t, 1070);
    g_now = 1080;
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(b.count, 1);
    g_now = 1000 + 10 * SV_WHEEL_SLOTS; /* one revolution later: far must not fire yet */
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(far.count, 0);
    g_now = 1000 + 10 * SV_WHEEL_SLOTS + 600;
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(far.count, 1);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(total, 3);
    CHECK_EQ_INT(sv_wheel_armed(&w), 0);
    /* past deadline fires on next advance; big jump visits everything once */
    sv_timer_arm(&w, &a.t, 5);
    sv_timer_arm(&w, &c.t, g_now + 100000);
    g_now += 20;
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(a.count, 2);
    g_now += 200000;
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(c.count, 1);
}

/* A callback re-arming its timer for a deadline inside the tick being processed. */
struct rearm {
    struct sv_wheel *w;
    struct fired f;
    int times;
};

static void on_fire_rearm(struct sv_timer *t, void *ctx)
{
    struct rearm *r = ctx;
    r->f.count++;
    r->f.at = g_now;
    if (r->times-- > 0)
        sv_timer_arm(r->w, t, g_now + 1); /* same 10 ms tick as now */
}

TEST(timer_wheel_rearm_from_callback_within_the_current_tick)
{
    static struct sv_wheel w;
    sv_wheel_init(&w, 2000, 10);
    struct rearm r = {.w = &w, .times = 1};
    sv_timer_arm(&w, &r.f.t, 2050);
    g_now = 2051; /* fires at 2051 and re-arms for 2052: same tick */
    CHECK_EQ_INT(sv_wheel_advance(&w, g_now, on_fire_rearm, &r), 1);
    CHECK_EQ_INT(r.f.count, 1);
    CHECK(sv_timer_armed(&r.f.t));
    g_now = 2062; /* the next tick: it must fire now, not a revolution later */
    sv_wheel_advance(&w, g_now, on_fire_rearm, &r);
    CHECK_EQ_INT(r.f.count, 2);
    CHECK_EQ_INT(sv_wheel_armed(&w), 0);
}

TEST(timer_wheel_next_deadline)
{
    static struct sv_wheel w;
    sv_wheel_init(&w, 5000, 10);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5000, 1000), 1000); /* nothing armed */
    struct fired a = {0}, b = {0};
    sv_timer_arm(&w, &a.t, 5300);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5000, 1000), 300);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5000, 100), 100); /* capped */
    sv_timer_arm(&w, &b.t, 5050);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5000, 1000), 50);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5060, 1000), 0); /* overdue */
    int total = 0;
    g_now = 5060;
    sv_wheel_advance(&w, g_now, on_fire, &total);
    CHECK_EQ_INT(b.count, 1);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5060, 1000), 240);
    sv_timer_cancel(&w, &a.t);
    CHECK_EQ_INT(sv_wheel_next_ms(&w, 5060, 1000), 1000);
}

#include <string.h>

#include "../harness.h"
#include "serval/base/arena.h"
#include "serval/base/log.h"
#include "serval/base/str.h"

TEST(arena_alloc_aligned_and_grows)
{
    struct sv_arena a;
    REQUIRE(sv_arena_init(&a, 64, false) == 0);
    char *p = sv_arena_alloc(&a, 10);
    char *q = sv_arena_alloc(&a, 100); /* larger than a block: a new block */
    CHECK(p != NULL && q != NULL);
    CHECK(((uintptr_t)p & 15u) == 0);
    CHECK(((uintptr_t)q & 15u) == 0);
    memset(q, 'x', 100);
    CHECK(a.total >= 164);
    sv_arena_reset(&a);
    CHECK_EQ_INT(a.total, 64);
    sv_arena_destroy(&a);
}

TEST(arena_fixed_refuses_growth)
{
    struct sv_arena a;
    REQUIRE(sv_arena_init(&a, 64, true) == 0);
    CHECK(sv_arena_alloc(&a, 48) != NULL);
    CHECK(sv_arena_alloc(&a, 32) == NULL);
    sv_arena_reset(&a);
    CHECK(sv_arena_alloc(&a, 64) != NULL);
    sv_arena_destroy(&a);
}

TEST(arena_strndup)
{
    struct sv_arena a;
    REQUIRE(sv_arena_init(&a, 256, false) == 0);
    struct sv_str s = sv_arena_str(&a, SV_STR_LIT("hello"));
    CHECK_EQ_STR(s.ptr, "hello");
    CHECK_EQ_INT(s.len, 5);
    sv_arena_destroy(&a);
}

TEST(str_helpers)
{
    CHECK(sv_str_eq_nocase(SV_STR_LIT("Content-Length"), SV_STR_LIT("content-length")));
    CHECK(!sv_str_eq_nocase(SV_STR_LIT("abc"), SV_STR_LIT("abd")));
    struct sv_str t = sv_str_trim(SV_STR_LIT(" \t x y \t"));
    CHECK_EQ_MEM(t.ptr, t.len, "x y");
    uint64_t v = 0;
    CHECK(sv_str_to_u64(SV_STR_LIT("12345"), 99999, &v) == 0 && v == 12345);
    CHECK(sv_str_to_u64(SV_STR_LIT("123456"), 99999, &v) == -1);
    CHECK(sv_str_to_u64(SV_STR_LIT("12a"), 99999, &v) == -1);
    CHECK(sv_str_to_u64(SV_STR_LIT(""), 99999, &v) == -1);
    CHECK(sv_str_to_u64(SV_STR_LIT("99999999999999999999999"), UINT64_MAX, &v) == -1);
}

TEST(log_levels_parse)
{
    enum sv_log_level l;
    CHECK(sv_log_parse_level("WARN", &l) == 0 && l == SV_LOG_WARN);
    CHECK(sv_log_parse_level("verbose", &l) == -1);
}

/* A tiny in-tree unit-test runner (picotest/libuv style).
 *
 *   TEST(arena_grows) { CHECK(x); CHECK_EQ_INT(a, b); CHECK_EQ_STR(s, "x"); }
 *
 * Tests register themselves at load time (constructor), so a new tests/unit/<module>/test_*.c file
 * needs no registry edit: the Makefile compiles every .c under tests/unit/. A test fails when any
 * CHECK fails (the test goes on, to report every failed check) or with FAIL("why"); SKIP("why")
 * marks it skipped, which is never counted as passed. main.c ends with "N passed, N failed".
 */
#ifndef SERVAL_TESTS_HARNESS_H
#define SERVAL_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef void (*sv_test_fn)(void);

void sv_test_register(const char *name, const char *file, sv_test_fn fn);
void sv_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sv_test_skip(const char *why);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        sv_test_register(#name, __FILE__, test_##name);                                            \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            sv_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
    } while (0)

/* Like CHECK, but returns from the test on failure (use when later lines depend on it). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            sv_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long sv_a_ = (long long)(a), sv_b_ = (long long)(b);                                  \
        if (sv_a_ != sv_b_)                                                                        \
            sv_test_fail(__FILE__, __LINE__, "CHECK_EQ_INT(%s, %s): %lld != %lld", #a, #b, sv_a_,  \
                         sv_b_);                                                                   \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *sv_a_ = (a), *sv_b_ = (b);                                                     \
        if (!sv_a_ || !sv_b_ || strcmp(sv_a_, sv_b_) != 0)                                         \
            sv_test_fail(__FILE__, __LINE__, "CHECK_EQ_STR(%s, %s): \"%s\" != \"%s\"", #a, #b,     \
                         sv_a_ ? sv_a_ : "(null)", sv_b_ ? sv_b_ : "(null)");                      \
    } while (0)

/* Compare <len> bytes at <a> with the NUL-terminated string <b>. */
#define CHECK_EQ_MEM(a, len, b)                                                                    \
    do {                                                                                           \
        const char *sv_a_ = (const char *)(a), *sv_b_ = (b);                                       \
        size_t sv_l_ = (size_t)(len);                                                              \
        if (sv_l_ != strlen(sv_b_) || memcmp(sv_a_, sv_b_, sv_l_) != 0)                            \
            sv_test_fail(__FILE__, __LINE__, "CHECK_EQ_MEM(%s): \"%.*s\" != \"%s\"", #a,           \
                         (int)sv_l_, sv_a_, sv_b_);                                                \
    } while (0)

#define FAIL(...) sv_test_fail(__FILE__, __LINE__, __VA_ARGS__)

#define SKIP(why)                                                                                  \
    do {                                                                                           \
        sv_test_skip(why);                                                                         \
        return;                                                                                    \
    } while (0)

#endif

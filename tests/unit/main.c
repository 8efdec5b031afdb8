/* Unit-test runner: runs every registered test (or those whose name contains argv[1]) and ends
 * with "N passed, N failed[, N skipped]". Exit status 1 if any test failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_TESTS 4096

struct test_entry {
    const char *name;
    const char *file;
    sv_test_fn fn;
};

static struct test_entry tests[MAX_TESTS];
static size_t n_tests;
static int current_failed;
static int current_skipped;

void sv_test_register(const char *name, const char *file, sv_test_fn fn)
{
    if (n_tests >= MAX_TESTS) {
        fprintf(stderr, "harness: too many tests (raise MAX_TESTS)\n");
        abort();
    }
    tests[n_tests++] = (struct test_entry){name, file, fn};
}

void sv_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    current_failed++;
}

void sv_test_skip(const char *why)
{
    fprintf(stdout, "    skipped: %s\n", why);
    current_skipped = 1;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct test_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(tests, n_tests, sizeof(tests[0]), cmp_entry);
    for (size_t i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        current_failed = 0;
        current_skipped = 0;
        tests[i].fn();
        if (current_failed) {
            printf("not ok - %s\n", tests[i].name);
            failed++;
        } else if (current_skipped) {
            printf("skip - %s\n", tests[i].name);
            skipped++;
        } else {
            printf("ok - %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

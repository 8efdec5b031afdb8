#include "serval/base/assert.h"

#include <stdio.h>
#include <stdlib.h>

void sv_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "serval: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

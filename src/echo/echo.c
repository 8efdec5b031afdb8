/* serval-echo: a test backend. Filled in by the echo work. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "serval-echo: not built yet\n");
    return 1;
}

/* serval-gateway entry point: flags, wiring, signals. Filled in by the data-plane work. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "serval-gateway: not built yet\n");
    return 1;
}

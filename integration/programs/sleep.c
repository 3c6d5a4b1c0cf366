// sleep: `sleep N` sleeps N seconds in short (100 ms) sleeps, as a long-running service would idle;
// `sleep spin` busy-loops forever without any WASI call. Used for `ctr run -d` + `ctr task kill`:
// the shim must stop a guest both while it waits in the host and while it computes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        volatile unsigned long n = 0;
        for (;;) n++;
    }
    long seconds = argc > 1 ? atol(argv[1]) : 1;
    printf("sleeping %ld s\n", seconds);
    fflush(stdout);
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (long i = 0; i < seconds * 10; i++)
        nanosleep(&tick, NULL);
    return 0;
}

// alloc: `alloc N [S]` allocates N MiB in 1 MiB blocks, touching every page, prints "allocated N MiB",
// then stays S seconds (default 0) holding it — what `ctr task metrics` should see. `alloc forever`
// allocates until malloc fails, printing the running total every 8 MiB; under a memory limit the
// runtime should kill it (exit 137) as the kernel's OOM killer kills a native program. If it survives
// the failure it says so and exits 3.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Every block is chained from here, so the compiler cannot drop the allocations.
static char *volatile head;

static void hold(long seconds) {
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (long i = 0; i < seconds * 10; i++)
        nanosleep(&tick, NULL);
}

int main(int argc, char **argv) {
    int forever = argc > 1 && strcmp(argv[1], "forever") == 0;
    long mib = forever ? -1 : (argc > 1 ? atol(argv[1]) : 1);
    long seconds = argc > 2 ? atol(argv[2]) : 0;
    long done = 0;
    while (forever || done < mib) {
        char *block = malloc(1 << 20);
        if (block == NULL) {
            printf("malloc failed after %ld MiB\n", done);
            fflush(stdout);
            return 3;
        }
        memset(block, 0x5a, 1 << 20);
        *(char **)block = head;
        head = block;
        done++;
        if (forever && done % 8 == 0) {
            printf("%ld MiB\n", done);
            fflush(stdout);
        }
    }
    printf("allocated %ld MiB\n", done);
    fflush(stdout);
    hold(seconds);
    return 0;
}

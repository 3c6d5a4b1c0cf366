// output: numbered lines on stdout and stderr, interleaved (argv[1] lines each, default 3), so a
// test can check that every line of each stream arrives, in order.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i <= n; i++) {
        printf("out %d\n", i);
        fprintf(stderr, "err %d\n", i);
    }
    return 0;
}

// tick PATH: forever writes an increasing counter into PATH (rewritten each time) every 50 ms.
// Used to see whether a guest is running: while paused the counter must not move.
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    for (unsigned long i = 0;; i++) {
        FILE *f = fopen(argv[1], "w");
        if (!f) return 1;
        fprintf(f, "%lu\n", i);
        fclose(f);
        usleep(50 * 1000);
    }
}

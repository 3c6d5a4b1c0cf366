// compute [REPS]: a fixed, CPU-bound kernel for the compute benchmark (the same source built to wasm32-wasi and
// natively): REPS (default 10) rounds of a 200x200 double matrix product, an integer sieve of the primes below
// 2,000,000 and an FNV-1a hash over the results. Prints "checksum HEX in MS ms": the checksum must be the same
// on both sides (the work was done), the time is the kernel's own (start-up excluded).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 200
#define SIEVE 2000000

static double a[N][N], b[N][N], c[N][N];
static unsigned char composite[SIEVE];

static uint64_t fnv(uint64_t h, const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t h = 14695981039346656037ULL;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                a[i][j] = (double)((i * 31 + j * 17 + r) % 97) / 97.0;
                b[i][j] = (double)((i * 13 + j * 7 + r) % 89) / 89.0;
            }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double sum = 0;
                for (int k = 0; k < N; k++) sum += a[i][k] * b[k][j];
                c[i][j] = sum;
            }
        h = fnv(h, c, sizeof c);
        memset(composite, 0, sizeof composite);
        uint32_t primes = 0;
        for (uint32_t i = 2; i < SIEVE; i++) {
            if (composite[i]) continue;
            primes++;
            for (uint64_t m = (uint64_t)i * i; m < SIEVE; m += i) composite[m] = 1;
        }
        h = fnv(h, &primes, sizeof primes);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ms = (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6;
    printf("checksum %016llx in %.1f ms\n", (unsigned long long)h, ms);
    return 0;
}

// trap: executes `unreachable` — a Wasm trap, which the shim reports like a native abort() (134).
#include <stdio.h>

int main(void) {
    printf("about to trap\n");
    fflush(stdout);
    __builtin_trap();
}

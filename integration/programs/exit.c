// exit: exits with atoi(argv[1]) — the guest's exit code must become the task's exit status.
#include <stdlib.h>

int main(int argc, char **argv) {
    return argc > 1 ? atoi(argv[1]) : 0;
}

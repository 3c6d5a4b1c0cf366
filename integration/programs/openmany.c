// openmany PATH [hold]: opens PATH (read-only) again and again, keeping every descriptor, until an open fails;
// prints "opened N, then errno E (message)" with " EMFILE" when E is EMFILE. With `hold` it then sleeps for
// ever holding them (a container can be exec'd into and its metrics read meanwhile). Used to check that a guest's
// descriptors are capped at its limit and the shim keeps descriptors for its own work.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: openmany PATH [hold]\n");
        return 2;
    }
    long opened = 0;
    int err = 0;
    for (;;) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        opened++;
    }
    printf("opened %ld, then errno %d (%s)%s\n", opened, err, strerror(err), err == EMFILE ? " EMFILE" : "");
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "hold") == 0)
        for (;;) sleep(1000);
    return err == EMFILE ? 0 : 1;
}

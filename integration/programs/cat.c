// cat: copies stdin to stdout until end-of-file; `cat count` prints only the number of bytes read; `cat lines`
// passes on each read at once (unbuffered), for a client that answers what it reads, as a shell would.
// Used to check that `ctr run` and CRI's exec/attach feed the guest's stdin and that end-of-file reaches it.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int count_only = argc > 1 && strcmp(argv[1], "count") == 0;
    char buf[4096];
    if (argc > 1 && strcmp(argv[1], "lines") == 0) {
        ssize_t got;
        while ((got = read(0, buf, sizeof buf)) > 0)
            if (write(1, buf, (size_t)got) != got) return 1;
        return got < 0 ? 1 : 0;
    }
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        total += n;
        if (!count_only) fwrite(buf, 1, n, stdout);
    }
    if (count_only) printf("%zu\n", total);
    return 0;
}

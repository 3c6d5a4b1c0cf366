// cat: copies stdin to stdout until end-of-file; `cat count` prints only the number of bytes read.
// Used to check that `ctr run` feeds the guest's stdin and that end-of-file reaches it.
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    int count_only = argc > 1 && strcmp(argv[1], "count") == 0;
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        total += n;
        if (!count_only) fwrite(buf, 1, n, stdout);
    }
    if (count_only) printf("%zu\n", total);
    return 0;
}

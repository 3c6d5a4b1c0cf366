// fs: `write PATH TEXT` creates/overwrites PATH with TEXT; `read PATH` prints PATH's content.
// Exit 0 on success; on failure prints strerror(errno) to stderr and exits 1. Used to check that
// read-write bind mounts are writable, read-only ones are not, and the rootfs is visible.
// A leading `pwd` first changes to $PWD, as a WASI program that honours the working directory does
// (wasi-libc starts every program in "/"). `cwdread NAME` prints NAME read relative to fd 3, which is the
// working directory's own preopen (".") when the spec's cwd is not "/", as toolchains that take fd 3 for the
// working directory (Zig) read it. `ls DIR` prints DIR's entries (less . and ..), sorted, one a line.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, const char *path) {
    fprintf(stderr, "%s %s: %s\n", what, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "pwd") == 0) {
        const char *pwd = getenv("PWD");
        if (!pwd || chdir(pwd) != 0) return fail("chdir", pwd ? pwd : "$PWD (unset)");
        argc--, argv++;
    }
    if (argc == 4 && strcmp(argv[1], "write") == 0) {
        FILE *f = fopen(argv[2], "w");
        if (!f) return fail("open", argv[2]);
        if (fputs(argv[3], f) < 0) return fail("write", argv[2]);
        if (fclose(f) != 0) return fail("close", argv[2]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "read") == 0) {
        FILE *f = fopen(argv[2], "r");
        if (!f) return fail("open", argv[2]);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        if (ferror(f)) return fail("read", argv[2]);
        fclose(f);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "cwdread") == 0) {
        int fd = openat(3, argv[2], O_RDONLY);
        if (fd < 0) return fail("open (at fd 3)", argv[2]);
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)n, stdout);
        close(fd);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "ls") == 0) {
        struct dirent **names;
        int n = scandir(argv[2], &names, NULL, alphasort);
        if (n < 0) return fail("scandir", argv[2]);
        for (int i = 0; i < n; i++)
            if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0)
                printf("%s\n", names[i]->d_name);
        return 0;
    }
    fprintf(stderr, "usage: fs write PATH TEXT | fs read PATH | fs cwdread NAME | fs ls DIR\n");
    return 2;
}

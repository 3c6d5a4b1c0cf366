// tty: reports whether stdin, stdout and stderr are terminals (wasi-libc's isatty: the fd's filestat
// type is character_device and it has no seek/tell rights), then echoes one line of stdin if asked
// ("echo"), or ("files") shows that files are no terminal wherever they are renumbered to and the
// terminal stays one at another number.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int seek_rights(int fd) {
    __wasi_fdstat_t st;
    if (__wasi_fd_fdstat_get(fd, &st) != 0)
        return -1;
    return (st.fs_rights_base & (__WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL)) != 0;
}

int main(int argc, char **argv) {
    printf("stdin tty=%d stdout tty=%d stderr tty=%d\n", isatty(0), isatty(1), isatty(2));
    if (argc > 1 && strcmp(argv[1], "echo") == 0) {
        char line[256];
        if (fgets(line, sizeof line, stdin))
            printf("got: %s", line);
        else
            printf("got: EOF\n");
    } else if (argc > 1 && strcmp(argv[1], "files") == 0) {
        int file = open("/tty-file.txt", O_CREAT | O_RDWR, 0644);
        int spare = open("/tty-spare.txt", O_CREAT | O_RDWR, 0644);
        printf("stdout seek/tell=%d file tty=%d seek/tell=%d\n", seek_rights(1), isatty(file), seek_rights(file));
        int moved = __wasi_fd_renumber(0, spare);
        printf("stdin renumbered rc=%d tty=%d\n", moved, isatty(spare));
        moved = __wasi_fd_renumber(file, 2); // onto 2: the renumber above closed 0
        printf("file renumbered onto 2 rc=%d tty=%d seek/tell=%d\n", moved, isatty(2), seek_rights(2));
    }
    fflush(stdout);
    return 0;
}

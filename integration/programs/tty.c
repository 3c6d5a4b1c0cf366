// tty: reports whether stdin, stdout and stderr are terminals (wasi-libc's isatty: the fd's filestat
// type is character_device and it has no seek/tell rights), then echoes one line of stdin if asked.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("stdin tty=%d stdout tty=%d stderr tty=%d\n", isatty(0), isatty(1), isatty(2));
    if (argc > 1 && strcmp(argv[1], "echo") == 0) {
        char line[256];
        if (fgets(line, sizeof line, stdin))
            printf("got: %s", line);
        else
            printf("got: EOF\n");
    }
    fflush(stdout);
    return 0;
}

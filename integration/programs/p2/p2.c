// p2: one WASI preview 2 component (wasi:cli/run) with a command per run (argv[1]), so that jco (about a
// second) runs once per test run. Built by WasmComponents (clang-16 + Debian 13's wasm32-wasip2 wasi-libc
// + jco), not by WasmPrograms: this folder is not one of its wasip1 sources.
//   pwd CMD ...         first changes to $PWD (the working directory, as fs.c's pwd), then runs CMD
//   hello [args]        argc, argv and environ, one per line
//   tty [echo]          isatty() of stdin, stdout, stderr; with echo, then reads one line: "got: LINE"
//   return N / exit N   main returns N / exit(N) (jco's adapter reports any exit(N != 0) as 1)
//   trap                prints "about to trap", then traps
//   sleep MS            prints "sleeping", sleeps MS ms in one p2 call, prints "woke"
//   tick MS [PATH]      prints 0, 1, 2, ... every MS ms for ever (or writes the count to PATH)
//   stdin               counts stdin to end-of-file: "read N bytes"; catin copies stdin to stdout
//   cat PATH / create PATH   reads / creates a file through the preopens
//   alloc N [S]         allocates N MiB, prints "allocated N MiB", holds it S seconds (100 ms sleeps); alloc forever
//                       allocates until malloc fails (a memory limit's kill comes first)
//   serve PORT          TCP on 127.0.0.1:PORT (no sockets for p2 guests with Wasmtime 50's C API)
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
extern char **environ;
// Every block is chained from here, so the compiler cannot drop the allocations.
char *volatile head;
__attribute__((noinline)) void crash_here(void) { __builtin_trap(); }

static int alloc(const char *what, long seconds) {
    int forever = !strcmp(what, "forever");
    long n = forever ? -1 : atol(what), done = 0;
    while (forever || done < n) {
        char *p = malloc(1 << 20);
        if (!p) { printf("malloc failed after %ld MiB\n", done); fflush(stdout); return 3; }
        memset(p, 1, 1 << 20);
        *(char **)p = head; head = p;
        done++;
        if (forever && done % 8 == 0) { printf("%ld MiB\n", done); fflush(stdout); }
    }
    printf("allocated %ld MiB\n", done);
    fflush(stdout);
    // Held in short sleeps: a kill then lands within one (a kill during one long p2 sleep is reported after
    // the host's grace while the guest thread lingers; see CriComponentTests).
    for (long t = 0; t < seconds * 10; t++) usleep(100000);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "pwd")) {
        const char *pwd = getenv("PWD");
        if (!pwd || chdir(pwd) != 0) { printf("chdir %s failed: %s\n", pwd ? pwd : "$PWD (unset)", strerror(errno)); return 2; }
        argc--; argv++;
    }
    const char *cmd = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(cmd, "hello")) {
        printf("argc=%d\n", argc);
        for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
        for (char **e = environ; *e; e++) printf("env:%s\n", *e);
        return 0;
    }
    if (!strcmp(cmd, "tty")) {
        printf("stdin tty=%d stdout tty=%d stderr tty=%d\n", isatty(0), isatty(1), isatty(2));
        if (argc > 2 && !strcmp(argv[2], "echo")) {
            char line[256];
            printf("got: %s", fgets(line, sizeof line, stdin) ? line : "EOF\n");
        }
        return 0;
    }
    if (!strcmp(cmd, "cat")) {
        FILE *f = fopen(argv[2], "r");
        if (!f) { printf("open failed: %s\n", strerror(errno)); return 2; }
        char buf[256]; size_t got = fread(buf, 1, sizeof buf, f);
        fwrite(buf, 1, got, stdout);
        return 0;
    }
    if (!strcmp(cmd, "create")) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) { printf("create failed: %s\n", strerror(errno)); return 0; }
        write(fd, "made\n", 5); close(fd);
        puts("created");
        return 0;
    }
    if (!strcmp(cmd, "return")) return (int)n;
    if (!strcmp(cmd, "exit")) exit((int)n);
    if (!strcmp(cmd, "trap")) { puts("about to trap"); fflush(stdout); crash_here(); }
    if (!strcmp(cmd, "sleep")) {
        puts("sleeping"); fflush(stdout);
        usleep(n * 1000);
        puts("woke");
        return 0;
    }
    if (!strcmp(cmd, "tick")) {
        for (long i = 0;; i++) {
            if (argc > 3) {
                // The count in a file, rewritten: `ctr run -d` keeps no stdout to watch.
                FILE *f = fopen(argv[3], "w");
                if (f) { fprintf(f, "%ld\n", i); fclose(f); }
            } else {
                printf("%ld\n", i); fflush(stdout);
            }
            usleep(n * 1000);
        }
    }
    if (!strcmp(cmd, "stdin") || !strcmp(cmd, "catin")) {
        int copy = !strcmp(cmd, "catin");
        if (!copy) { puts("reading"); fflush(stdout); }
        char buf[4096]; long total = 0; ssize_t r;
        while ((r = read(0, buf, sizeof buf)) > 0) {
            total += r;
            if (copy) fwrite(buf, 1, (size_t)r, stdout);
        }
        if (!copy) printf("read %ld bytes\n", total);
        return 0;
    }
    if (!strcmp(cmd, "alloc")) return alloc(argc > 2 ? argv[2] : "1", argc > 3 ? atol(argv[3]) : 0);
    if (!strcmp(cmd, "serve")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) { printf("socket failed: %s\n", strerror(errno)); return 4; }
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)n), .sin_addr.s_addr = htonl(0x7f000001) };
        if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) { printf("bind failed: %s\n", strerror(errno)); return 5; }
        if (listen(s, 8) != 0) { printf("listen failed: %s\n", strerror(errno)); return 6; }
        puts("listening"); fflush(stdout);
        int c = accept(s, NULL, NULL);
        if (c < 0) { printf("accept failed: %s\n", strerror(errno)); return 7; }
        const char *msg = "hello from a p2 component\n";
        write(c, msg, strlen(msg));
        close(c); close(s);
        puts("served");
        return 0;
    }
    printf("unknown command %s\n", cmd);
    return 9;
}

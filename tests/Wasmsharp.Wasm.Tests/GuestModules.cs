using System.Diagnostics;

namespace Wasmsharp.Wasm.Tests;

/// <summary>Builds the test guests (C with clang-16 for wasm32-wasi, .wat with wat2wasm) once per test run.</summary>
public sealed class GuestModules : IDisposable
{
    private static readonly Dictionary<string, string> CSources = new()
    {
        ["wasi_rules"] = WasiRulesGuest.Source,
        ["wasi_rules_sock"] = "#define SOCKETS 1\n" + WasiRulesGuest.Source,
        ["big"] = BigSource(),
        ["hello"] = """
            #include <stdio.h>
            int main(void) {
                fputs("hello stdout\n", stdout);
                fputs("hello stderr\n", stderr);
                return 0;
            }
            """,
        ["args_env"] = """
            #include <stdio.h>
            extern char **environ;
            int main(int argc, char **argv) {
                printf("argc=%d\n", argc);
                for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
                for (char **e = environ; *e; e++) printf("env:%s\n", *e);
                return 0;
            }
            """,
        ["alloc"] = """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            /* argv[1]: MiB to allocate (and touch) in 1 MiB blocks, kept in a chain so the compiler cannot drop
               them. Prints the count; exit 3 if malloc fails. */
            char *volatile head;
            int main(int argc, char **argv) {
                long mib = atol(argv[1]);
                for (long i = 0; i < mib; i++) {
                    char *p = malloc(1 << 20);
                    if (!p) { printf("malloc failed after %ld MiB\n", i); return 3; }
                    memset(p, 1, 1 << 20);
                    *(char **)p = head;
                    head = p;
                }
                printf("allocated %ld MiB\n", mib);
                return 0;
            }
            """,
        ["exit"] = """
            #include <stdlib.h>
            int main(int argc, char **argv) { exit(argc > 1 ? atoi(argv[1]) : 0); }
            """,
        ["trap"] = """
            #include <stdio.h>
            __attribute__((noinline)) void crash_here(void) { __builtin_trap(); }
            int main(void) { puts("about to trap"); fflush(stdout); crash_here(); return 0; }
            """,
        ["flood"] = """
            #include <stdio.h>
            #include <string.h>
            /* Writes to stdout forever, in 64 KiB writes: blocks in fd_write once nobody reads. */
            static char block[65536];
            int main(void) {
                memset(block, 'x', sizeof block);
                for (;;) fwrite(block, 1, sizeof block, stdout);
            }
            """,
        ["loop"] = """
            #include <stdio.h>
            volatile unsigned long counter;
            int main(void) {
                puts("looping"); fflush(stdout);
                for (;;) counter++;
            }
            """,
        ["create_file"] = """
            #include <errno.h>
            #include <stdio.h>
            #include <string.h>
            /* argv[1]: file to create. Exit code: 0 or the (WASI) errno of the failure. */
            int main(int argc, char **argv) {
                FILE *f = fopen(argv[1], "w");
                if (!f) { int e = errno; fprintf(stderr, "fopen %s: %s\n", argv[1], strerror(e)); return e; }
                fputs("written by guest\n", f);
                return fclose(f) == 0 ? 0 : errno;
            }
            """,
        ["cat"] = """
            #include <stdio.h>
            int main(void) {
                int c; while ((c = getchar()) != EOF) putchar(c);
                return 0;
            }
            """,
        ["cwd"] = """
            #include <stdio.h>
            #include <string.h>
            #include <wasi/api.h>
            /* 1. absolute path /etc/marker; 2. fd 3 (the "." preopen) name and file inapp.txt under it;
               3. relative path rel.txt created. */
            int main(void) {
                char line[128] = {0};
                FILE *f = fopen("/etc/marker", "r");
                if (!f) { puts("abs:missing"); } else { fgets(line, sizeof line, f); fclose(f); printf("abs:%s", line); }

                __wasi_prestat_t pre;
                if (__wasi_fd_prestat_get(3, &pre) == 0) {
                    char name[64] = {0};
                    __wasi_fd_prestat_dir_name(3, (uint8_t *)name, pre.u.dir.pr_name_len);
                    printf("fd3:%s\n", name);
                }
                __wasi_fd_t fd;
                if (__wasi_path_open(3, 0, "inapp.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd) == 0) {
                    char buf[64] = {0}; __wasi_size_t n = 0;
                    __wasi_iovec_t iov = { (uint8_t *)buf, sizeof buf - 1 };
                    __wasi_fd_read(fd, &iov, 1, &n);
                    printf("fd3file:%s", buf);
                } else {
                    puts("fd3file:missing");
                }
                FILE *r = fopen("rel.txt", "w");
                if (r) { fputs("rel\n", r); fclose(r); puts("rel:ok"); } else { puts("rel:failed"); }
                return 0;
            }
            """,
        ["sleeper"] = """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <time.h>
            #include <unistd.h>
            static long long now_ns(clockid_t clock) {
                struct timespec t; clock_gettime(clock, &t);
                return t.tv_sec * 1000000000LL + t.tv_nsec;
            }
            /* sleep S | nanosleep MS | abs MS | realabs MS | usleep_loop US | busy LINES INTERVAL_MS */
            int main(int argc, char **argv) {
                const char *mode = argv[1];
                long n = atol(argv[2]);
                if (!strcmp(mode, "sleep")) {
                    puts("sleeping"); fflush(stdout);
                    unsigned left = sleep((unsigned)n);
                    printf("woke %u\n", left);
                    return 0;
                }
                if (!strcmp(mode, "nanosleep")) {
                    puts("sleeping"); fflush(stdout);
                    long long start = now_ns(CLOCK_MONOTONIC);
                    struct timespec d = { n / 1000, (n % 1000) * 1000000L };
                    int rc = nanosleep(&d, NULL);
                    long long elapsed = now_ns(CLOCK_MONOTONIC) - start;
                    printf("slept %lld rc=%d\n", elapsed / 1000000, rc);
                    return rc == 0 && elapsed >= n * 1000000LL ? 0 : 1;
                }
                if (!strcmp(mode, "abs") || !strcmp(mode, "realabs")) {
                    clockid_t clock = mode[0] == 'a' ? CLOCK_MONOTONIC : CLOCK_REALTIME;
                    long long target = now_ns(clock) + n * 1000000LL;
                    struct timespec t = { target / 1000000000LL, target % 1000000000LL };
                    int rc = clock_nanosleep(clock, TIMER_ABSTIME, &t, NULL);
                    long long late = now_ns(clock) - target;
                    printf("rc=%d late_us=%lld\n", rc, late / 1000);
                    return rc == 0 && late >= 0 ? 0 : 1;
                }
                if (!strcmp(mode, "usleep_loop")) {
                    puts("looping"); fflush(stdout);
                    for (;;) usleep((useconds_t)n);
                }
                if (!strcmp(mode, "busy")) {
                    long interval = atol(argv[3]) * 1000000L;
                    long long next = now_ns(CLOCK_MONOTONIC);
                    for (long line = 0; line < n; line++) {
                        while (now_ns(CLOCK_MONOTONIC) < next) { }
                        printf("%ld\n", line); fflush(stdout);
                        next += interval;
                    }
                    return 0;
                }
                return 99;
            }
            """,
        ["poll_raw"] = """
            #include <stdio.h>
            #include <string.h>
            #include <wasi/api.h>
            /* Calls poll_oneoff directly; prints everything observable. Run under our host and Wasmtime's own
               poll_oneoff: the outputs must be equal. argv[1]: "cases", "oob_subs", "misaligned_subs",
               "oob_events", "oob_nevents". */
            static __wasi_subscription_t subs[4] __attribute__((aligned(8)));
            static __wasi_event_t events[4] __attribute__((aligned(8)));
            static void clock_sub(int i, __wasi_userdata_t ud, __wasi_clockid_t id, __wasi_timestamp_t timeout, __wasi_subclockflags_t flags) {
                memset(&subs[i], 0, sizeof subs[i]);
                subs[i].userdata = ud;
                subs[i].u.tag = __WASI_EVENTTYPE_CLOCK;
                subs[i].u.u.clock.id = id;
                subs[i].u.u.clock.timeout = timeout;
                subs[i].u.u.clock.precision = 0;
                subs[i].u.u.clock.flags = flags;
            }
            static void fd_sub(int i, __wasi_userdata_t ud, __wasi_eventtype_t type, __wasi_fd_t fd) {
                memset(&subs[i], 0, sizeof subs[i]);
                subs[i].userdata = ud;
                subs[i].u.tag = type;
                subs[i].u.u.fd_read.file_descriptor = fd;
            }
            static void run(const char *name, int n) {
                memset(events, 0xAA, sizeof events);
                __wasi_size_t nevents = 0xDEAD;
                __wasi_errno_t err = __wasi_poll_oneoff(subs, events, (__wasi_size_t)n, &nevents);
                printf("%s: errno=%u nevents=%u\n", name, err, nevents);
                for (int i = 0; i < 4; i++) {
                    const unsigned char *b = (const unsigned char *)&events[i];
                    printf("  ev%d ud=%llu err=%u type=%u nbytes=%llu flags=%u raw=", i,
                           (unsigned long long)events[i].userdata, events[i].error, events[i].type,
                           (unsigned long long)events[i].fd_readwrite.nbytes, events[i].fd_readwrite.flags);
                    for (int j = 0; j < 32; j++) printf("%02x", b[j]);
                    printf("\n");
                }
            }
            static __wasi_timestamp_t now(__wasi_clockid_t id) {
                __wasi_timestamp_t t = 0; __wasi_clock_time_get(id, 1, &t); return t;
            }
            int main(int argc, char **argv) {
                const char *mode = argc > 1 ? argv[1] : "cases";
                if (!strcmp(mode, "cases")) {
                    clock_sub(0, 1, __WASI_CLOCKID_MONOTONIC, 1000000, 0); run("zero_subscriptions", 0);
                    clock_sub(0, 7, __WASI_CLOCKID_MONOTONIC, 1000000, 0); run("mono_rel_1ms", 1);
                    clock_sub(0, 8, __WASI_CLOCKID_REALTIME, 1000000, 0); run("real_rel_1ms", 1);
                    clock_sub(0, 9, __WASI_CLOCKID_REALTIME, 1, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME); run("real_abs_past", 1);
                    clock_sub(0, 10, __WASI_CLOCKID_REALTIME, now(__WASI_CLOCKID_REALTIME) + 3000000, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME); run("real_abs_3ms", 1);
                    clock_sub(0, 11, __WASI_CLOCKID_MONOTONIC, now(__WASI_CLOCKID_MONOTONIC) + 3000000, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME); run("mono_abs_3ms", 1);
                    clock_sub(0, 12, __WASI_CLOCKID_MONOTONIC, 0, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME); run("mono_abs_zero", 1);
                    clock_sub(0, 21, __WASI_CLOCKID_MONOTONIC, 10000000000ULL, 0);
                    clock_sub(1, 22, __WASI_CLOCKID_REALTIME, 2000000, 0); run("first_of_two", 2);
                    clock_sub(0, 31, __WASI_CLOCKID_MONOTONIC, 0, 0);
                    clock_sub(1, 32, __WASI_CLOCKID_MONOTONIC, 10000000000ULL, 0);
                    clock_sub(2, 33, __WASI_CLOCKID_REALTIME, 0, 0); run("two_of_three_ready", 3);
                    clock_sub(0, 41, __WASI_CLOCKID_PROCESS_CPUTIME_ID, 1000, 0); run("process_cputime", 1);
                    clock_sub(0, 42, __WASI_CLOCKID_THREAD_CPUTIME_ID, 1000, 0); run("thread_cputime", 1);
                    clock_sub(0, 43, 7, 1000, 0); run("bad_clock_id", 1);
                    clock_sub(0, 44, __WASI_CLOCKID_MONOTONIC, 1000, 2); run("bad_flags", 1);
                    clock_sub(0, 45, __WASI_CLOCKID_MONOTONIC, 1000, 0); subs[0].u.tag = 5; run("bad_tag", 1);
                    clock_sub(0, 46, __WASI_CLOCKID_MONOTONIC, 0, 0);
                    clock_sub(1, 47, 9, 0, 0); run("bad_second", 2);
                    fd_sub(0, 51, __WASI_EVENTTYPE_FD_WRITE, 1); run("fd_write_stdout", 1);
                    fd_sub(0, 52, __WASI_EVENTTYPE_FD_READ, 0);
                    clock_sub(1, 53, __WASI_CLOCKID_MONOTONIC, 10000000000ULL, 0); run("fd_read_stdin_and_clock", 2);
                    clock_sub(0, 54, __WASI_CLOCKID_MONOTONIC, 0, 0);
                    fd_sub(1, 55, __WASI_EVENTTYPE_FD_WRITE, 2); run("clock_zero_and_fd_write", 2);
                    fd_sub(0, 56, __WASI_EVENTTYPE_FD_READ, 99); run("bad_fd", 1);
                    fd_sub(0, 57, __WASI_EVENTTYPE_FD_READ, 3); run("dir_fd", 1);
                    __wasi_fd_t f;
                    if (__wasi_path_open(3, 0, "f.txt", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_POLL_FD_READWRITE, 0, 0, &f) == 0) {
                        fd_sub(0, 58, __WASI_EVENTTYPE_FD_READ, f); run("file_unread", 1);
                        char buf[16]; __wasi_size_t got; __wasi_iovec_t iov = { (uint8_t *)buf, sizeof buf };
                        __wasi_fd_read(f, &iov, 1, &got);
                        fd_sub(0, 59, __WASI_EVENTTYPE_FD_READ, f); run("file_at_eof", 1);
                    } else {
                        puts("cannot open f.txt");
                    }
                    return 0;
                }
                __wasi_size_t nevents;
                clock_sub(0, 1, __WASI_CLOCKID_MONOTONIC, 0, 0);
                if (!strcmp(mode, "oob_subs"))
                    return __wasi_poll_oneoff((const __wasi_subscription_t *)0xFFFFFFF0u, events, 1, &nevents);
                if (!strcmp(mode, "misaligned_subs"))
                    return __wasi_poll_oneoff((const __wasi_subscription_t *)((char *)subs + 4), events, 1, &nevents);
                if (!strcmp(mode, "oob_events"))
                    return __wasi_poll_oneoff(subs, (__wasi_event_t *)0xFFFFFFF0u, 1, &nevents);
                if (!strcmp(mode, "oob_nevents"))
                    return __wasi_poll_oneoff(subs, events, 1, (__wasi_size_t *)0xFFFFFFFEu);
                return 99;
            }
            """,
    };

    /// <summary>A ~100 KB guest (many distinct functions) for compile-time measurements; prints "big &lt;n&gt;".</summary>
    private static string BigSource()
    {
        const int count = 150;
        var c = new System.Text.StringBuilder("#include <stdio.h>\n");
        for (var i = 0; i < count; i++)
            c.AppendLine($"__attribute__((noinline)) unsigned f{i}(unsigned x) {{ for (int k = 0; k < (int)(x & 7); k++) x = x * {i * 2 + 3}u + (x >> {i % 13 + 1}) ^ {i * 7919}u; return x; }}");
        c.AppendLine("unsigned (*tab[])(unsigned) = {" + string.Join(',', Enumerable.Range(0, count).Select(i => $"f{i}")) + "};");
        c.AppendLine($"int main(void) {{ unsigned acc = 1; for (int i = 0; i < {count}; i++) acc = tab[i](acc); printf(\"big %u\\n\", acc); return 0; }}");
        return c.ToString();
    }

    private static readonly Dictionary<string, string> WatSources = new()
    {
        // Its start function traps: instantiation (at Create) fails with Wasmtime's multi-line trap text.
        ["start_traps"] = """
            (module
              (memory (export "memory") 1)
              (func $boom unreachable)
              (start $boom)
              (func (export "_start")))
            """,
        // Its start function never returns (a hostile module, or a program whose top level runs there).
        ["start_loops"] = """
            (module
              (memory (export "memory") 1)
              (func $spin (loop $l (br $l)))
              (start $spin)
              (func (export "_start")))
            """,
        ["unknown_import"] = """
            (module
              (import "env" "no_such_function" (func $f))
              (func (export "_start") (call $f)))
            """,
        ["no_start"] = """
            (module
              (memory (export "memory") 1)
              (func (export "something_else")))
            """,
        ["recurse"] = """
            (module
              (memory (export "memory") 1)
              (func $down (param i32) (call $down (i32.add (local.get 0) (i32.const 1))))
              (func (export "_start") (call $down (i32.const 0))))
            """,
        // A reactor built for a JavaScript host (as npm's ruby.wasm is): it cannot be linked here.
        ["needs_js"] = """
            (module
              (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
              (import "env" "js_call" (func (param i32) (result i32)))
              (import "env" "memory" (memory 1))
              (import "wasi_snapshot_preview1" "not_a_wasi_call" (func))
              (func (export "_start")))
            """,
        ["wat_loop"] = """
            (module
              (memory (export "memory") 1)
              (func (export "_start") (loop $l (br $l))))
            """,
    };

    public string Directory { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "wasmsharp-wasm-tests-" + Guid.NewGuid().ToString("N"));
    public WasmHost Host { get; } = new();

    public GuestModules()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var builds = new List<Task>();
        foreach (var (name, source) in CSources)
        {
            var c = Path(name + ".c");
            File.WriteAllText(c, source);
            builds.Add(RunTool("clang-16", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", c, "-o", Path(name + ".wasm")));
        }
        foreach (var (name, source) in WatSources)
        {
            var wat = Path(name + ".wat");
            File.WriteAllText(wat, source);
            builds.Add(RunTool("wat2wasm", wat, "-o", Path(name + ".wasm")));
        }
        Task.WaitAll(builds.ToArray());
    }

    public string Path(string fileName) => System.IO.Path.Combine(Directory, fileName);

    public string Wasm(string name) => Path(name + ".wasm");

    public WasmModule Load(string name) => Host.LoadModule(Wasm(name));

    internal static async Task RunTool(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}{await stdout}");
    }

    public void Dispose() => DisposeHostAndDirectory(Host, Directory);

    internal static void DisposeHostAndDirectory(WasmHost host, string directory)
    {
        host.Dispose();
        try
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class GuestCollection : ICollectionFixture<GuestModules>
{
    public const string Name = "guests";
}

namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// Builds the WASI preview 2 test component once per test run: C compiled by clang-16 against Debian 13's
/// wasm32-wasip2 wasi-libc, linked by wasm-ld-16 into a core module, made a component exporting wasi:cli/run by
/// jco (its preview 1 command adapter). The sysroot and jco come from integration/scripts/fetch-wasip2.sh
/// (`make wasip2`, part of `make test`) in out/wasip2.
/// </summary>
public sealed class GuestComponents : IDisposable
{
    // One program, one command per run (argv[1]), so that jco (about a second) runs once.
    private const string Source = """
        #include <errno.h>
        #include <fcntl.h>
        #include <netinet/in.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <unistd.h>
        extern char **environ;
        char *volatile head;
        __attribute__((noinline)) void crash_here(void) { __builtin_trap(); }
        int main(int argc, char **argv) {
            const char *cmd = argc > 1 ? argv[1] : "";
            long n = argc > 2 ? atol(argv[2]) : 0;
            if (!strcmp(cmd, "hello")) {
                printf("argc=%d\n", argc);
                for (int i = 0; i < argc; i++) printf("arg[%d]=%s\n", i, argv[i]);
                for (char **e = environ; *e; e++) printf("env:%s\n", *e);
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
                for (long i = 0;; i++) { printf("%ld\n", i); fflush(stdout); usleep(n * 1000); }
            }
            if (!strcmp(cmd, "stdin")) {
                puts("reading"); fflush(stdout);
                char buf[4096]; long total = 0; ssize_t r;
                while ((r = read(0, buf, sizeof buf)) > 0) total += r;
                printf("read %ld bytes\n", total);
                return 0;
            }
            if (!strcmp(cmd, "alloc")) {
                for (long i = 0; i < n; i++) {
                    char *p = malloc(1 << 20);
                    if (!p) { printf("malloc failed after %ld MiB\n", i); return 3; }
                    memset(p, 1, 1 << 20);
                    *(char **)p = head; head = p;
                }
                printf("allocated %ld MiB\n", n);
                return 0;
            }
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
        """;

    public string Directory { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "wasmsharp-p2-tests-" + Guid.NewGuid().ToString("N"));
    public WasmHost Host { get; } = new();

    /// <summary>The component (a file in <see cref="Directory"/>).</summary>
    public string Component { get; }

    public GuestComponents()
    {
        var wasip2 = Path.Combine(RepoRoot(), "out", "wasip2");
        var sysroot = Path.Combine(wasip2, "sysroot", "usr");
        var jco = Path.Combine(wasip2, "jco", "node_modules", ".bin", "jco");
        if (!File.Exists(Path.Combine(sysroot, "lib", "wasm32-wasip2", "crt1-command.o")) || !File.Exists(jco))
            throw new InvalidOperationException($"no wasip2 sysroot or jco in {wasip2}: run `make wasip2` (integration/scripts/fetch-wasip2.sh)");
        System.IO.Directory.CreateDirectory(Directory);
        var c = Path.Combine(Directory, "p2guest.c");
        File.WriteAllText(c, Source);
        var resources = Run("clang-16", "-print-resource-dir").Trim();
        var obj = Path.Combine(Directory, "p2guest.o");
        var core = Path.Combine(Directory, "p2guest.core.wasm");
        Component = Path.Combine(Directory, "p2guest.wasm");
        // Debian 12's clang-16 knows no wasip2 target: compile for wasm32-wasi against the p2 headers.
        Run("clang-16", "--target=wasm32-wasi", "-O2", "-nostdinc", "-isystem", Path.Combine(sysroot, "include", "wasm32-wasip2"),
            "-isystem", Path.Combine(resources, "include"), "-D__wasilibc_use_wasip2", "-c", c, "-o", obj);
        var lib = Path.Combine(sysroot, "lib", "wasm32-wasip2");
        Run("wasm-ld-16", Path.Combine(lib, "crt1-command.o"), obj, "-L" + lib, "-lc",
            Path.Combine(resources, "lib", "wasi", "libclang_rt.builtins-wasm32.a"), "-o", core);
        Run(jco, "new", core, "--wasi-command", "-o", Component);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Makefile")) && System.IO.Directory.Exists(Path.Combine(dir.FullName, "src")))
                return dir.FullName;
        throw new InvalidOperationException($"no repository above {AppContext.BaseDirectory}");
    }

    private static string Run(string tool, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}{stdout}");
        return stdout;
    }

    public WasmModule Load() => Host.LoadModule(Component);

    public void Dispose() => GuestModules.DisposeHostAndDirectory(Host, Directory);
}

[CollectionDefinition(Name)]
public sealed class ComponentCollection : ICollectionFixture<GuestComponents>
{
    public const string Name = "components";
}

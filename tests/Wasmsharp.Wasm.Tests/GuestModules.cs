using System.Diagnostics;

namespace Wasmsharp.Wasm.Tests;

/// <summary>Builds the test guests (C with clang-16 for wasm32-wasi, .wat with wat2wasm) once per test run.</summary>
public sealed class GuestModules : IDisposable
{
    private static readonly Dictionary<string, string> CSources = new()
    {
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
        ["exit"] = """
            #include <stdlib.h>
            int main(int argc, char **argv) { exit(argc > 1 ? atoi(argv[1]) : 0); }
            """,
        ["trap"] = """
            #include <stdio.h>
            __attribute__((noinline)) void crash_here(void) { __builtin_trap(); }
            int main(void) { puts("about to trap"); fflush(stdout); crash_here(); return 0; }
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
    };

    private static readonly Dictionary<string, string> WatSources = new()
    {
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

    private static async Task RunTool(string tool, params string[] args)
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

    public void Dispose()
    {
        Host.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
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

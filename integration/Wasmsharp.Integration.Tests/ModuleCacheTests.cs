using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The shim keeps compiled modules on disk (here $WASMSHARP_CACHE_DIR under the private base dir): the
// second container of a module does not compile it, and a damaged entry is recompiled, never trusted.
[Collection(ContainerdCollection.Name)]
public sealed class ModuleCacheTests(ContainerdFixture f)
{
    private string CacheDir => Path.Combine(f.Containerd.BaseDir, "cache");

    private string HelloSha => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f.Programs.Path("hello"))));

    // hello's entries: optimised ones are SHA.DIGEST.cwasm, a first run's baseline ones SHA.DIGEST.baseline.cwasm.
    private string[] HelloEntries(bool baseline) => Directory.Exists(CacheDir)
        ? Directory.GetFiles(CacheDir, HelloSha + ".*.cwasm", SearchOption.AllDirectories)
            .Where(e => e.EndsWith(".baseline.cwasm", StringComparison.Ordinal) == baseline).ToArray()
        : [];

    // A first run compiles quickly for itself and writes the optimised code in the background: wait for it.
    private void WaitForHelloEntry()
    {
        ContainerdFixture.Eventually(() => HelloEntries(baseline: false).Length > 0, TimeSpan.FromSeconds(60));
        Assert.True(HelloEntries(baseline: false).Length > 0, $"no cache entry for hello ({HelloSha}) in {CacheDir}");
    }

    // hello as never seen on this host: after a run that makes the cache's directories, its entries (both kinds)
    // deleted. Returns where the log ends then.
    private long ForgetHello()
    {
        f.RunWasm(f.NewId("cache-seed"), "/hello.wasm");
        WaitForHelloEntry();
        foreach (var entry in HelloEntries(baseline: false).Concat(HelloEntries(baseline: true))) File.Delete(entry);
        return f.Containerd.LogLength;
    }

    // The engine's directory under the cache (one fingerprint: the shim's settings do not change here).
    private string EngineDir => Directory.GetDirectories(CacheDir).Single(d => Path.GetFileName(d) != "digests");

    // A start's module line says whether its shim took the module's compile lock and so compiles the optimised code
    // (the compile's own line comes after the container is gone, when containerd no longer reads the shim's log).
    private int OptimisingCompiles(long logFrom) => f.Containerd.LogSince(logFrom).Count(l =>
        l.Contains(": module /hello.wasm ", StringComparison.Ordinal) && l.Contains("the optimised code for the cache is compiled in the background", StringComparison.Ordinal));



    private string ModuleLogLine(string id) =>
        File.ReadLines(f.Containerd.LogPath).LastOrDefault(l => l.Contains($"{id}: module /hello.wasm", StringComparison.Ordinal)) ?? "(no line)";

    [Fact]
    public void Second_container_loads_the_compiled_module_from_the_cache()
    {
        var first = f.NewId("cache-first");
        var run1 = f.RunWasm(first, "/hello.wasm");
        WaitForHelloEntry();
        var second = f.NewId("cache-second");
        var run2 = f.RunWasm(second, "/hello.wasm");
        f.Check(run1.ExitCode == 0 && run2.ExitCode == 0, "both runs succeed", second, run1, run2);
        f.Check(ModuleLogLine(second).Contains("CacheHit", StringComparison.Ordinal), $"the second run should hit the cache: {ModuleLogLine(second)}", second, run2);
        var entries = Directory.GetFiles(CacheDir, "*.cwasm", SearchOption.AllDirectories);
        f.Check(entries.Length > 0, "compiled modules are stored in the cache directory", second, run2);
        f.Check((File.GetUnixFileMode(CacheDir) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) == 0, "the cache directory is root-only", second, run2);
    }

    [Fact]
    public void Damaged_entry_is_recompiled_and_the_container_still_runs()
    {
        var warm = f.NewId("cache-warm");
        f.RunWasm(warm, "/hello.wasm");
        WaitForHelloEntry();
        // hello's optimised entries, which the next start loads (the baseline one goes once they are written: it may
        // still be listed as it is removed). Only hello's: a damaged sleep.wasm would have the next test's shim
        // compile it again in the background and outlive its container.
        foreach (var entry in HelloEntries(baseline: false))
        {
            var bytes = File.ReadAllBytes(entry);
            for (var i = bytes.Length / 2; i < Math.Min(bytes.Length, bytes.Length / 2 + 64); i++) bytes[i] ^= 0xFF;
            File.WriteAllBytes(entry, bytes);
        }
        var id = f.NewId("cache-damaged");
        var run = f.RunWasm(id, "/hello.wasm", "still");
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("still", StringComparison.Ordinal), "the container runs despite the damaged entry", id, run);
        f.Check(ModuleLogLine(id).Contains("CacheReplaced", StringComparison.Ordinal), $"the damaged entry should be replaced: {ModuleLogLine(id)}", id, run);
    }

    // A fresh module started twice while its optimising compile is under way elsewhere on the host (here: its
    // lock held, as a compiling shim holds it): the second start runs the first one's baseline code from the cache.
    // Once the lock is free, the next start compiles the optimised code, which replaces the baseline entry.
    [Fact]
    public void Second_start_loads_the_first_ones_baseline_code_while_the_optimising_compile_is_elsewhere()
    {
        var from = ForgetHello();
        var first = f.NewId("cache-b1");
        var second = f.NewId("cache-b2");
        ProcessResult run1, run2;
        using (var holder = CompileLockHolder.Hold(Path.Combine(EngineDir, HelloSha + ".lock")))
        {
            run1 = f.RunWasm(first, "/hello.wasm");
            run2 = f.RunWasm(second, "/hello.wasm");
            f.Check(run1.ExitCode == 0 && run2.ExitCode == 0, "both runs succeed", second, run1, run2);
            f.Check(ModuleLogLine(first).Contains(" CacheMiss ", StringComparison.Ordinal) && ModuleLogLine(first).Contains("being compiled by another shim", StringComparison.Ordinal),
                $"the first run compiles baseline code, the optimised code being another's: {ModuleLogLine(first)}", first, run1);
            f.Check(ModuleLogLine(second).Contains(" CacheHit ", StringComparison.Ordinal) && ModuleLogLine(second).Contains("baseline", StringComparison.Ordinal),
                $"the second run should load the baseline entry: {ModuleLogLine(second)}", second, run2);
            f.Check(HelloEntries(baseline: false).Length == 0 && HelloEntries(baseline: true).Length == 1,
                "only the baseline entry exists while the optimising compile has not finished", second, run2);
        }
        var third = f.NewId("cache-b3");
        var run3 = f.RunWasm(third, "/hello.wasm");
        f.Check(run3.ExitCode == 0 && ModuleLogLine(third).Contains("compiled in the background", StringComparison.Ordinal),
            $"with the lock free, a start takes the optimising compile over: {ModuleLogLine(third)}", third, run3);
        WaitForHelloEntry();
        ContainerdFixture.Eventually(() => HelloEntries(baseline: true).Length == 0, TimeSpan.FromSeconds(30));
        f.Check(HelloEntries(baseline: true).Length == 0, "the optimised entry replaces the baseline one", third, run3);
        f.Check(OptimisingCompiles(from) == 1, $"one optimising compile, logged: {OptimisingCompiles(from)}", third, run3);
    }

    // Four first starts of one module at once, each in its own shim: one of them compiles the optimised code.
    [Fact]
    public void Four_simultaneous_first_starts_make_one_optimising_compile()
    {
        var from = ForgetHello();
        var ids = Enumerable.Range(0, 4).Select(i => f.NewId($"cache-four{i}")).ToArray();
        var runs = new ProcessResult[ids.Length];
        using (var barrier = new Barrier(ids.Length))
        {
            var threads = ids.Select((id, i) => new Thread(() => { barrier.SignalAndWait(); runs[i] = f.RunWasm(id, "/hello.wasm"); })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
        }
        f.Check(runs.All(r => r.ExitCode == 0 && r.Stdout.Contains("hello", StringComparison.Ordinal)), "all four run", ids[0], runs);
        WaitForHelloEntry();
        // Every shim has left (a shim that compiled, once it has written the entry): no late compile can follow.
        ContainerdFixture.Eventually(() => f.Containerd.Shims(RepoLayout.ShimBinary, ids).Count == 0, TimeSpan.FromSeconds(60));
        f.Check(f.Containerd.Shims(RepoLayout.ShimBinary, ids).Count == 0, "the shims leave", ids[0], runs);
        var compiles = OptimisingCompiles(from);
        f.Check(compiles == 1, $"one optimising compile for four first starts, not {compiles}:\n{string.Join('\n', f.Containerd.LogSince(from).Where(l => l.Contains("hello", StringComparison.Ordinal)))}", ids[0], runs);
    }

    // A shim whose container is gone stays only to finish its compile for the cache, and not beyond its
    // containerd: `start` told it containerd's pid, which it watches.
    [Fact]
    public void A_shim_left_compiling_for_the_cache_leaves_when_its_containerd_is_gone()
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-cache-gone");
        var (module, _) = LargeModule.Import(containerd, "example.local/large:1", "large", 16L * 1024 * 1024);
        var run = containerd.Ctr(TimeSpan.FromMinutes(5), ["run", "--rm", "--runtime", RepoLayout.Runtime, "example.local/large:1", "gone-compile", "/large.wasm"]);
        Assert.True(run.ExitCode == 0 && run.Stdout.Contains("hello", StringComparison.Ordinal), run.ToString());
        var shim = Assert.Single(containerd.Shims(RepoLayout.ShimBinary, ["gone-compile"])).Pid; // compiling (Cranelift: seconds)
        containerd.StopDaemon();
        ContainerdFixture.Eventually(() => !ProcFs.IsRunning(shim), TimeSpan.FromSeconds(30));
        Assert.False(ProcFs.IsRunning(shim), $"shim {shim} still compiles after its containerd exited");
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(module)));
        var cache = Path.Combine(containerd.BaseDir, "cache");
        Assert.DoesNotContain(Directory.GetFiles(cache, sha + ".*.cwasm", SearchOption.AllDirectories), e => !e.EndsWith(".baseline.cwasm", StringComparison.Ordinal));
    }

    // Holds a flock on a file in a process of its own (bash, then the sleep it becomes), as a compiling shim holds a
    // module's lock; disposing kills it, and the kernel releases the lock.
    private sealed class CompileLockHolder : IDisposable
    {
        private readonly System.Diagnostics.Process process;

        private CompileLockHolder(System.Diagnostics.Process process) => this.process = process;

        public static CompileLockHolder Hold(string path)
        {
            var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-c", $"exec 9>>'{path}' && flock 9 && echo locked && exec sleep 600"])
            {
                RedirectStandardOutput = true,
            })!;
            var holder = new CompileLockHolder(process);
            if (!process.StandardOutput.ReadLineAsync().Wait(TimeSpan.FromSeconds(30)))
            {
                holder.Dispose();
                throw new TimeoutException($"could not lock {path}");
            }
            return holder;
        }

        public void Dispose()
        {
            process.Kill();
            process.WaitForExit();
            process.Dispose();
        }
    }
}

using System.Diagnostics;
using Xunit.Abstractions;

namespace Wasmsharp.Wasm.Tests;

[Collection(GuestCollection.Name)]
public sealed class DiskCacheTests(GuestModules guests, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-cache-case-").FullName;
    private readonly List<WasmHost> hosts = [];

    private string CacheDir => Path.Combine(work, "cache");

    public void Dispose()
    {
        foreach (var h in hosts)
            h.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private WasmHost NewHost(long maxBytes = WasmHostOptions.DefaultCacheMaxBytes, int? maxWasmStack = null)
    {
        var host = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, CacheMaxBytes = maxBytes, MaxWasmStackBytes = maxWasmStack });
        hosts.Add(host);
        return host;
    }

    private async Task<string> RunToStdout(WasmHost host, WasmModule module, params string[] args)
    {
        var stdout = Path.Combine(work, Guid.NewGuid().ToString("N") + ".out");
        using var instance = host.Prepare(module, new WasiSpec { Args = ["guest", .. args], StdoutPath = stdout });
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(new WasmExit(0, null), exit);
        return File.ReadAllText(stdout);
    }

    private static string[] Entries(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, "*.cwasm", SearchOption.AllDirectories).Where(e => !IsBaseline(e)).ToArray() : [];

    private static string[] BaselineEntries(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, "*.cwasm", SearchOption.AllDirectories).Where(IsBaseline).ToArray() : [];

    private static bool IsBaseline(string entry) => entry.EndsWith(".baseline.cwasm", StringComparison.Ordinal);

    [Fact]
    public async Task AModuleThatCannotLinkIsRefusedBeforeAnyCompileNamingItAsTheUserDid()
    {
        var host = NewHost();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<WasmModuleException>(() => host.LoadModule(guests.Wasm("needs_js"), displayName: "/ruby.wasm"));
        Assert.StartsWith("/ruby.wasm cannot run here: it imports env.js_call (function), env.memory (memory), " +
            "wasi_snapshot_preview1.not_a_wasi_call (function), which this runtime does not provide", e.Message);
        Assert.DoesNotContain(guests.Directory, e.Message);
        Assert.Empty(Entries(CacheDir)); // nothing compiled, now or in the background
        await host.CacheWrites.WaitAsync(Timeout);
        Assert.Empty(Entries(CacheDir));
        output.WriteLine($"refused in {clock.Elapsed.TotalMilliseconds:0.0} ms");
        // WASI preview 1 and WasmEdge's socket calls are provided.
        Assert.NotNull(host.LoadModule(guests.Wasm("hello")));
    }

    [Fact]
    public async Task A_second_host_maps_its_own_modules_from_the_cache_instead_of_compiling_them()
    {
        // A spare shim warms up every engine (trampolines, the warm-up guest); the first host compiles and writes them.
        var first = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true });
        hosts.Add(first);
        first.BeginWarmUp();
        first.AwaitWarmUp();
        Assert.Equal(0, first.InternalModulesMapped);
        var written = Directory.GetFiles(Path.Combine(CacheDir, first.EngineFingerprint, "internal"), "*.cwasm");
        Assert.Equal(8, written.Length); // poll, fd and scratch trampolines and the warm-up guest, for Cranelift and Winch
        Assert.DoesNotContain(Entries(CacheDir), e => !e.Contains("/internal/", StringComparison.Ordinal)); // no guest's entry

        var second = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true });
        hosts.Add(second);
        second.BeginWarmUp();
        second.AwaitWarmUp();
        Assert.Equal(8, second.InternalModulesMapped);
        Assert.Equal(written.Order(), Directory.GetFiles(Path.Combine(CacheDir, second.EngineFingerprint, "internal"), "*.cwasm").Order());
        // What they were made for still works: a guest's poll_oneoff goes through the mapped poll trampoline.
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=mapped\n", await RunToStdout(second, second.LoadModule(guests.Wasm("args_env")), "mapped"));
    }

    [Fact]
    public async Task MissThenHit_AcrossHosts_RunsFromCachedModule()
    {
        var first = NewHost().LoadModule(guests.Wasm("args_env"));
        Assert.Equal(ModuleOrigin.CacheMiss, first.Origin);
        Assert.True(first.CompileTime > TimeSpan.Zero);
        Assert.NotNull(first.CacheEntryPath);
        Assert.True(File.Exists(first.CacheEntryPath));
        Assert.Null(first.CacheProblem);
        Assert.Single(Entries(CacheDir));

        var host2 = NewHost();
        var second = host2.LoadModule(guests.Wasm("args_env"));
        Assert.Equal(ModuleOrigin.CacheHit, second.Origin);
        Assert.Equal(TimeSpan.Zero, second.CompileTime);
        Assert.Equal(first.CacheEntryPath, second.CacheEntryPath);
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=cached\n", await RunToStdout(host2, second, "cached"));

        // The in-memory cache still answers within a host.
        Assert.Same(second, host2.LoadModule(guests.Wasm("args_env")));
    }

    // The SHA-256 of a module file is remembered by the file's identity (inode, size, times): a file left alone
    // is not hashed again; one changed in place, even to the same size, is.
    [Fact]
    public async Task ModuleDigest_RememberedForAnUnchangedFile_NeverForAChangedOne()
    {
        var path = Path.Combine(work, "module.wasm");
        File.Copy(guests.Wasm("args_env"), path);
        var memo = Path.Combine(CacheDir, "digests");
        NewHost().LoadModule(path);
        Assert.False(Directory.Exists(memo) && Directory.GetFiles(memo).Length > 0); // changed just now: not remembered

        await Task.Delay(TimeSpan.FromSeconds(2.2)); // the file settles (see ModuleDigestMemo)
        var first = NewHost().LoadModule(path);
        Assert.Single(Directory.GetFiles(memo));
        Assert.StartsWith(first.Sha256 + "\n", File.ReadAllText(Directory.GetFiles(memo)[0]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(CacheDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(memo));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Directory.GetFiles(memo)[0]));
        var again = NewHost().LoadModule(path);
        Assert.Equal((ModuleOrigin.CacheHit, first.Sha256), (again.Origin, again.Sha256));

        // Same size, same inode, one byte other (in the last custom section, a feature name: still a valid module):
        // a different module, never the remembered digest.
        var bytes = File.ReadAllBytes(path);
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            file.Seek(-1, SeekOrigin.End);
            file.WriteByte(bytes[^1] == (byte)'a' ? (byte)'b' : (byte)'a');
        }
        var changed = NewHost().LoadModule(path);
        Assert.NotEqual(first.Sha256, changed.Sha256);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))), changed.Sha256);
    }

    private WasmHost NewBaselineHost()
    {
        var host = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true });
        hosts.Add(host);
        return host;
    }

    // A module met for the first time runs on baseline (Winch) code at once; Cranelift's code reaches the disk
    // cache in the background, and every later load, in this host or another, gets it.
    [Fact]
    public async Task BaselineFirstRun_RunsAtOnce_ThenTheOptimisedCodeIsCachedAndUsed()
    {
        var host = NewBaselineHost();
        var first = host.LoadModule(guests.Wasm("args_env"));
        Assert.True(first.Baseline);
        Assert.True(first.OptimisingHere);
        Assert.Equal(ModuleOrigin.CacheMiss, first.Origin);
        Assert.EndsWith(".baseline.cwasm", first.CacheEntryPath);
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=quick\n", await RunToStdout(host, first, "quick"));

        await host.CacheWrites.WaitAsync(Timeout);
        Assert.Single(Entries(CacheDir));
        Assert.Empty(BaselineEntries(CacheDir)); // replaced by the optimised entry
        var again = host.LoadModule(guests.Wasm("args_env"));
        Assert.False(again.Baseline);
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=optimised\n", await RunToStdout(host, again, "optimised"));
        var elsewhere = NewBaselineHost().LoadModule(guests.Wasm("args_env"));
        Assert.Equal((ModuleOrigin.CacheHit, false), (elsewhere.Origin, elsewhere.Baseline));
    }

    // The optimised compile waits out the container's first moments: the guest has run, and nothing has been
    // written, before it starts.
    [Fact]
    public async Task BaselineFirstRun_TheOptimisedCompileWaitsForItsDelay()
    {
        var host = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.FromSeconds(3) });
        hosts.Add(host);
        var first = host.LoadModule(guests.Wasm("args_env"));
        Assert.True(first.Baseline);
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=early\n", await RunToStdout(host, first, "early"));
        Assert.False(host.CacheWrites.IsCompleted);
        Assert.Empty(Entries(CacheDir));
        Assert.Single(BaselineEntries(CacheDir));
        await host.CacheWrites.WaitAsync(Timeout);
        Assert.Single(Entries(CacheDir));
    }

    // Starts elsewhere (another host on the same cache loading modules) hold the optimised compile back until they
    // have been quiet for BackgroundCompileQuiet; it then compiles.
    [Fact]
    public async Task BaselineFirstRun_TheOptimisedCompileWaitsUntilStartsAreQuiet()
    {
        var options = new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.Zero, BackgroundCompileQuiet = TimeSpan.FromMilliseconds(600) };
        var host = new WasmHost(options);
        var other = new WasmHost(options);
        hosts.AddRange([host, other]);
        Assert.True(host.LoadModule(guests.Wasm("args_env")).Baseline);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            other.LoadModule(guests.Wasm("hello")); // a container starting on the node, every 200 ms
            Thread.Sleep(200);
            Assert.False(host.CacheWrites.IsCompleted);
        }
        Assert.DoesNotContain(Entries(CacheDir), e => Path.GetFileName(e).StartsWith(Sha("args_env"), StringComparison.Ordinal));
        await host.CacheWrites.WaitAsync(Timeout); // quiet now
        Assert.Contains(Entries(CacheDir), e => Path.GetFileName(e).StartsWith(Sha("args_env"), StringComparison.Ordinal));
    }

    // A start that needs the optimised code now (a memory-limited container's) does not wait for a background compile
    // that holds the module's lock while it waits for quiet: it compiles and writes the entry; the other then finds it.
    [Fact]
    public async Task A_start_that_needs_optimised_code_does_not_wait_for_a_compile_waiting_for_quiet()
    {
        var waiting = new WasmHost(new WasmHostOptions
        {
            CacheDirectory = CacheDir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.Zero,
            BackgroundCompileQuiet = TimeSpan.FromSeconds(4), BackgroundCompileMaxWait = TimeSpan.FromSeconds(4),
        });
        var limited = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true });
        hosts.AddRange([waiting, limited]);
        var compiles = CountCompiles(waiting);
        Assert.True(waiting.LoadModule(guests.Wasm("args_env")).Baseline);
        var now = limited.LoadModule(guests.Wasm("args_env"), baselineFirstRun: false);
        Assert.False(waiting.CacheWrites.IsCompleted); // it did not wait for the other's compile to begin
        Assert.Equal((ModuleOrigin.CacheMiss, false), (now.Origin, now.Baseline));
        Assert.Equal("argc=2\narg[0]=guest\narg[1]=now\n", await RunToStdout(limited, now, "now"));
        await waiting.CacheWrites.WaitAsync(Timeout);
        Assert.Empty(compiles); // the waiting compile found the entry
        Assert.Empty(BaselineEntries(CacheDir));
    }

    // ... but not for ever: on a node that never stops starting containers it compiles after BackgroundCompileMaxWait.
    [Fact]
    public async Task BaselineFirstRun_TheOptimisedCompileWaitsForQuietAtMostItsMaximum()
    {
        var host = new WasmHost(new WasmHostOptions
        {
            CacheDirectory = CacheDir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.Zero,
            BackgroundCompileQuiet = TimeSpan.FromMinutes(10), BackgroundCompileMaxWait = TimeSpan.FromMilliseconds(500),
        });
        hosts.Add(host);
        Assert.True(host.LoadModule(guests.Wasm("args_env")).Baseline);
        using var busy = new CancellationTokenSource();
        var starts = Task.Run(() =>
        {
            while (!busy.IsCancellationRequested) { host.DiskCache!.MarkLoad(); Thread.Sleep(50); }
        });
        await host.CacheWrites.WaitAsync(Timeout);
        busy.Cancel();
        await starts;
        Assert.Contains(Entries(CacheDir), e => Path.GetFileName(e).StartsWith(Sha("args_env"), StringComparison.Ordinal));
    }

    private string Sha(string guest) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(guests.Wasm(guest))));

    // Holds a module's optimising-compile lock as another process compiling it would.
    private Microsoft.Win32.SafeHandles.SafeFileHandle HoldCompileLock(WasmHost host, string guest)
    {
        Directory.CreateDirectory(host.DiskCache!.Directory);
        return Native.LockFile(host.DiskCache.CompileLockPath(Sha(guest)), TimeSpan.Zero) ?? throw new InvalidOperationException("lock busy");
    }

    private static List<OptimisedCompile> CountCompiles(WasmHost host)
    {
        var compiles = new List<OptimisedCompile>();
        host.OptimisedCompiled += c => { lock (compiles) compiles.Add(c); };
        return compiles;
    }

    // The first run's baseline code is written to the cache at once: a start while the optimised code is still being
    // compiled elsewhere runs on it without compiling; once the lock is free a start compiles the optimised code,
    // whose entry replaces the baseline one.
    [Fact]
    public async Task BaselineEntry_WrittenAtOnce_UsedByLaterStarts_ThenReplacedByTheOptimisedOne()
    {
        var a = NewBaselineHost();
        var aCompiles = CountCompiles(a);
        using (HoldCompileLock(a, "args_env"))
        {
            var first = a.LoadModule(guests.Wasm("args_env"));
            Assert.Equal((ModuleOrigin.CacheMiss, true, false), (first.Origin, first.Baseline, first.OptimisingHere));
            Assert.Equal([first.CacheEntryPath!], BaselineEntries(CacheDir));
            Assert.Empty(Entries(CacheDir));

            var b = NewBaselineHost();
            var second = b.LoadModule(guests.Wasm("args_env"));
            Assert.Equal((ModuleOrigin.CacheHit, true, false), (second.Origin, second.Baseline, second.OptimisingHere));
            Assert.Equal(first.CacheEntryPath, second.CacheEntryPath);
            Assert.Equal(TimeSpan.Zero, second.CompileTime);
            Assert.Equal("argc=2\narg[0]=guest\narg[1]=again\n", await RunToStdout(b, second, "again"));
            await Task.WhenAll(a.CacheWrites, b.CacheWrites).WaitAsync(Timeout);
            Assert.Empty(aCompiles);
            Assert.Empty(Entries(CacheDir)); // nobody compiled while the lock was held
        }
        await NextStartTakesTheCompileOver("args_env");
        var optimised = NewBaselineHost().LoadModule(guests.Wasm("args_env"));
        Assert.Equal((ModuleOrigin.CacheHit, false), (optimised.Origin, optimised.Baseline));
    }

    // A damaged baseline entry is checked like any other: discarded, compiled again, rewritten.
    [Fact]
    public async Task BaselineEntry_Damaged_IsDiscardedAndRewritten()
    {
        var a = NewBaselineHost();
        using (HoldCompileLock(a, "args_env"))
        {
            var entry = a.LoadModule(guests.Wasm("args_env")).CacheEntryPath!;
            var bytes = File.ReadAllBytes(entry);
            File.WriteAllBytes(entry, Flip(bytes, bytes.Length / 2));
            var b = NewBaselineHost();
            var module = b.LoadModule(guests.Wasm("args_env"));
            Assert.Equal((ModuleOrigin.CacheReplaced, true), (module.Origin, module.Baseline));
            Assert.Contains("discarded", module.CacheProblem);
            Assert.Contains("does not match its digest", module.CacheProblem);
            Assert.Single(BaselineEntries(CacheDir));
            Assert.Equal("argc=1\narg[0]=guest\n", await RunToStdout(b, module));
            Assert.Equal((ModuleOrigin.CacheHit, true), NewBaselineHost().LoadModule(guests.Wasm("args_env")) is var c ? (c.Origin, c.Baseline) : default);
        }
    }

    // Two hosts (two shims) meeting a module at once: one optimising compile between them.
    [Fact]
    public async Task HostWideLock_TwoHostsAtOnce_CompileTheOptimisedCodeOnce()
    {
        for (var round = 0; round < 3; round++)
        {
            var dir = Path.Combine(work, $"lock{round}");
            var hostA = new WasmHost(new WasmHostOptions { CacheDirectory = dir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.Zero });
            var hostB = new WasmHost(new WasmHostOptions { CacheDirectory = dir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.Zero });
            hosts.Add(hostA);
            hosts.Add(hostB);
            var compiles = CountCompiles(hostA);
            hostB.OptimisedCompiled += c => { lock (compiles) compiles.Add(c); };
            var (ma, mb) = LoadAtOnce(hostA, hostB, "big");
            await Task.WhenAll(hostA.CacheWrites, hostB.CacheWrites).WaitAsync(Timeout);
            Assert.Single(compiles);
            Assert.Single(Entries(dir));
            Assert.Empty(BaselineEntries(dir));
            Assert.True(ma.Baseline || mb.Baseline);
            Assert.StartsWith("big ", await RunToStdout(hostA, ma));
            Assert.StartsWith("big ", await RunToStdout(hostB, mb));
        }
    }

    // The lock is the kernel's: a compiler that dies (here a process holding it, killed) lets the next start take over.
    [Fact]
    public async Task HostWideLock_HolderDies_TheNextStartCompiles()
    {
        var host = NewBaselineHost();
        Directory.CreateDirectory(host.DiskCache!.Directory);
        var lockPath = host.DiskCache.CompileLockPath(Sha("args_env"));
        using var holder = Process.Start(new ProcessStartInfo("bash", ["-c", $"exec 9>>'{lockPath}' && flock 9 && echo locked && exec sleep 600"])
        {
            RedirectStandardOutput = true,
        })!;
        try
        {
            Assert.Equal("locked", await holder.StandardOutput.ReadLineAsync().WaitAsync(Timeout));
            var first = host.LoadModule(guests.Wasm("args_env"));
            Assert.Equal((true, false), (first.Baseline, first.OptimisingHere));
            await host.CacheWrites.WaitAsync(Timeout);
            Assert.Empty(Entries(CacheDir));
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync();
        }
        await NextStartTakesTheCompileOver("args_env");
    }

    // With the module's lock free, a start finds the baseline entry, runs on it and compiles the optimised code,
    // whose entry replaces the baseline one.
    private async Task NextStartTakesTheCompileOver(string guest)
    {
        var next = NewBaselineHost();
        var compiles = CountCompiles(next);
        var module = next.LoadModule(guests.Wasm(guest));
        Assert.Equal((ModuleOrigin.CacheHit, true, true), (module.Origin, module.Baseline, module.OptimisingHere));
        await next.CacheWrites.WaitAsync(Timeout);
        Assert.Single(compiles);
        Assert.Equal([compiles[0].EntryPath!], Entries(CacheDir));
        Assert.Empty(BaselineEntries(CacheDir));
    }

    // A host shutting down finishes the compile under way and gives up those not begun (their locks go with them).
    [Fact]
    public async Task FinishCacheWrites_GivesUpCompilesNotBegun()
    {
        var host = new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, BaselineFirstRun = true, BackgroundCompileDelay = TimeSpan.FromSeconds(1) });
        var compiles = CountCompiles(host);
        host.LoadModule(guests.Wasm("args_env"));
        host.LoadModule(guests.Wasm("hello"));
        Assert.True(host.FinishCacheWrites(Task.Delay(Timeout)));
        Assert.Single(compiles);
        Assert.Single(Entries(CacheDir));
        host.Dispose();
        // The module given up was left to the next start, which takes its lock and compiles it.
        var next = NewBaselineHost();
        Assert.Single(BaselineEntries(CacheDir));
        var module = next.LoadModule(compiles[0].Path.EndsWith("hello.wasm", StringComparison.Ordinal) ? guests.Wasm("args_env") : guests.Wasm("hello"));
        Assert.Equal((ModuleOrigin.CacheHit, true, true), (module.Origin, module.Baseline, module.OptimisingHere));
        await next.CacheWrites.WaitAsync(Timeout);
        Assert.Equal(2, Entries(CacheDir).Length);
    }

    // Baseline code is interrupted, traps and reports exits as optimised code does.
    [Fact]
    public async Task BaselineFirstRun_GuestsAreKilledTrapAndExitAsUsual()
    {
        var host = NewBaselineHost();
        var loop = host.LoadModule(guests.Wasm("loop"));
        Assert.True(loop.Baseline);
        using (var instance = host.Prepare(loop, new WasiSpec { Args = ["loop"] }))
        {
            instance.Start();
            await Task.Delay(100);
            Assert.True(instance.Kill(15));
            Assert.Equal(143, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        }
        var trap = host.LoadModule(guests.Wasm("trap"));
        Assert.True(trap.Baseline);
        using (var instance = host.Prepare(trap, new WasiSpec { Args = ["trap"] }))
        {
            instance.Start();
            Assert.Equal(134, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        }
        var exit = host.LoadModule(guests.Wasm("exit"));
        using (var instance = host.Prepare(exit, new WasiSpec { Args = ["exit", "42"] }))
        {
            instance.Start();
            Assert.Equal(42, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        }
        await host.CacheWrites.WaitAsync(Timeout);
    }

    // What the baseline compiler cannot take is compiled (and its errors reported) as without it.
    [Fact]
    public void BaselineFirstRun_AnInvalidModuleFailsWithTheUsualError()
    {
        var bad = Path.Combine(work, "bad.wasm");
        File.WriteAllBytes(bad, [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff]);
        var e = Assert.Throws<WasmModuleException>(() => NewBaselineHost().LoadModule(bad));
        Assert.Contains("failed to compile WebAssembly module", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoCacheDirectory_CompilesAndWritesNothing()
    {
        using var host = new WasmHost();
        var module = host.LoadModule(guests.Wasm("hello"));
        Assert.Equal(ModuleOrigin.Compiled, module.Origin);
        Assert.Null(module.CacheEntryPath);
        Assert.Null(new WasmHostOptions().CacheDirectory);
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("empty")]
    public async Task CorruptEntry_IsDiscardedRecompiledAndRewritten(string damage)
    {
        var entry = NewHost().LoadModule(guests.Wasm("args_env")).CacheEntryPath!;
        var bytes = File.ReadAllBytes(entry);
        // Written as a new file and renamed over, like a corruption on disk would look to a reader.
        var damaged = damage switch
        {
            "flip" => Flip(bytes, bytes.Length / 2),
            "truncate" => bytes[..(bytes.Length / 2)],
            _ => [],
        };
        File.WriteAllBytes(entry, damaged);

        var host = NewHost();
        var module = host.LoadModule(guests.Wasm("args_env"));
        Assert.Equal(ModuleOrigin.CacheReplaced, module.Origin);
        Assert.Contains("discarded", module.CacheProblem);
        Assert.Equal(bytes, File.ReadAllBytes(module.CacheEntryPath!));
        Assert.Single(Entries(CacheDir));
        Assert.Equal("argc=1\narg[0]=guest\n", await RunToStdout(host, module));

        Assert.Equal(ModuleOrigin.CacheHit, NewHost().LoadModule(guests.Wasm("args_env")).Origin);
    }

    // Module and entry are hashed as they are read, a chunk at a time: content past the first chunk must count.
    [Fact]
    public async Task ModuleLargerThanAReadChunk_KeyedByItsWholeContent_EntryCheckedToItsEnd()
    {
        var small = File.ReadAllBytes(guests.Wasm("args_env"));
        byte[] Padded(byte last)
        {
            // A custom section (id 0, name "pad") of 3 MiB appended: valid, ignored by the code.
            var pad = new byte[3 * ModuleDiskCache.ChunkBytes + 17];
            pad[^1] = last;
            byte[] name = [3, (byte)'p', (byte)'a', (byte)'d'];
            var size = name.Length + pad.Length;
            byte[] leb = [(byte)(size | 0x80), (byte)((size >> 7) | 0x80), (byte)((size >> 14) | 0x80), (byte)(size >> 21)];
            return [.. small, 0, .. leb, .. name, .. pad];
        }
        var path = Path.Combine(work, "big.wasm");
        File.WriteAllBytes(path, Padded(1));

        var first = NewHost().LoadModule(path);
        Assert.Equal(ModuleOrigin.CacheMiss, first.Origin);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))), first.Sha256);

        // Damage at the very end of the entry, far past its first chunk.
        var entry = first.CacheEntryPath!;
        var bytes = File.ReadAllBytes(entry);
        File.WriteAllBytes(entry, Flip(bytes, bytes.Length - 16));
        var host = NewHost();
        var replaced = host.LoadModule(path);
        Assert.Equal(ModuleOrigin.CacheReplaced, replaced.Origin);
        Assert.Contains("does not match its digest", replaced.CacheProblem);
        Assert.Equal("argc=1\narg[0]=guest\n", await RunToStdout(host, replaced));
        Assert.Equal(ModuleOrigin.CacheHit, NewHost().LoadModule(path).Origin);

        // The module's last byte changed: another module, not a hit on the first one's entry.
        File.WriteAllBytes(path, Padded(2));
        var changed = NewHost().LoadModule(path);
        Assert.Equal(ModuleOrigin.CacheMiss, changed.Origin);
        Assert.NotEqual(first.Sha256, changed.Sha256);
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        var copy = (byte[])bytes.Clone();
        for (var i = at; i < at + 16 && i < copy.Length; i++)
            copy[i] ^= 0xFF;
        return copy;
    }

    [Fact]
    public async Task IncompatibleEntry_WithValidDigest_IsDiscardedByWasmtime()
    {
        // An artifact of an engine with a different code-affecting setting (no epoch interruption) placed under
        // our fingerprint, with a correct content digest: only Wasmtime's own check can reject it.
        var host = NewHost();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(guests.Wasm("args_env"))));
        byte[] foreign;
        using (var config = new Wasmtime.Config())
        {
            config.WithEpochInterruption(false);
            using var engine = new Wasmtime.Engine(config);
            using var m = Wasmtime.Module.FromFile(engine, guests.Wasm("args_env"));
            foreign = m.Serialize();
        }
        Directory.CreateDirectory(host.DiskCache!.Directory);
        var planted = host.DiskCache.EntryPath(sha, ModuleDiskCache.Digest(foreign));
        File.WriteAllBytes(planted, foreign);

        var module = host.LoadModule(guests.Wasm("args_env"));
        Assert.Equal(ModuleOrigin.CacheReplaced, module.Origin);
        Assert.Contains("incompatible", module.CacheProblem);
        Assert.NotEqual(planted, module.CacheEntryPath);
        Assert.False(File.Exists(planted));
        Assert.Equal("argc=1\narg[0]=guest\n", await RunToStdout(host, module));
    }

    [Fact]
    public void DifferentEngineSettings_UseSeparateEntries()
    {
        var a = NewHost();
        var b = NewHost(maxWasmStack: 1024 * 1024);
        Assert.NotEqual(a.EngineFingerprint, b.EngineFingerprint);
        Assert.Equal(a.EngineFingerprint, NewHost().EngineFingerprint);

        var ma = a.LoadModule(guests.Wasm("hello"));
        var mb = b.LoadModule(guests.Wasm("hello"));
        Assert.Equal(ModuleOrigin.CacheMiss, ma.Origin);
        Assert.Equal(ModuleOrigin.CacheMiss, mb.Origin);
        Assert.NotEqual(Path.GetDirectoryName(ma.CacheEntryPath), Path.GetDirectoryName(mb.CacheEntryPath));
        Assert.Equal(2, Entries(CacheDir).Length);
        Assert.Equal(ModuleOrigin.CacheHit, NewHost(maxWasmStack: 1024 * 1024).LoadModule(guests.Wasm("hello")).Origin);
    }

    [Fact]
    public async Task EntryInAnotherFingerprintDirectory_IsNotUsed()
    {
        // B's engine settings differ: A's entry is neither used nor disturbed; B writes its own.
        var a = NewHost();
        var entry = a.LoadModule(guests.Wasm("hello")).CacheEntryPath!;
        var b = NewHost(maxWasmStack: 1024 * 1024);
        var module = b.LoadModule(guests.Wasm("hello"));
        Assert.Equal(ModuleOrigin.CacheMiss, module.Origin);
        Assert.StartsWith(b.DiskCache!.Directory, module.CacheEntryPath);
        Assert.True(File.Exists(entry));
        Assert.Equal("hello stdout\n", await RunToStdout(b, module));
    }

    // Two hosts (two shims) load a module at the same moment.
    private (WasmModule A, WasmModule B) LoadAtOnce(WasmHost hostA, WasmHost hostB, string guest)
    {
        using var barrier = new Barrier(2);
        WasmModule? ma = null, mb = null;
        var ta = new Thread(() => { barrier.SignalAndWait(); ma = hostA.LoadModule(guests.Wasm(guest)); });
        var tb = new Thread(() => { barrier.SignalAndWait(); mb = hostB.LoadModule(guests.Wasm(guest)); });
        ta.Start();
        tb.Start();
        ta.Join();
        tb.Join();
        return (ma!, mb!);
    }

    [Fact]
    public void ConcurrentLoads_FromTwoHosts_CompileOnce()
    {
        for (var round = 0; round < 3; round++)
        {
            var dir = Path.Combine(work, $"round{round}");
            var hostA = new WasmHost(new WasmHostOptions { CacheDirectory = dir });
            var hostB = new WasmHost(new WasmHostOptions { CacheDirectory = dir });
            hosts.Add(hostA);
            hosts.Add(hostB);
            var (ma, mb) = LoadAtOnce(hostA, hostB, "big");
            var origins = new[] { ma.Origin, mb.Origin }.Order().ToArray();
            Assert.Equal([ModuleOrigin.CacheMiss, ModuleOrigin.CacheHit], origins);
            Assert.Single(Entries(dir));
        }
    }

    [Fact]
    public void TinyBound_EvictsOlderEntries_KeepsNewest()
    {
        var host = NewHost(maxBytes: 1);
        var hello = host.LoadModule(guests.Wasm("hello"));
        Assert.True(File.Exists(hello.CacheEntryPath)); // over the bound, but never the entry just written
        var args = host.LoadModule(guests.Wasm("args_env"));
        Assert.False(File.Exists(hello.CacheEntryPath));
        Assert.Equal([args.CacheEntryPath!], Entries(CacheDir));
    }

    [Fact]
    public void Eviction_IsLeastRecentlyUsed_HitsRefreshTheClock()
    {
        var sizer = NewHost();
        var a = sizer.LoadModule(guests.Wasm("hello")).CacheEntryPath!;
        var b = sizer.LoadModule(guests.Wasm("args_env")).CacheEntryPath!;
        var c = sizer.LoadModule(guests.Wasm("exit")).CacheEntryPath!;
        var sizes = new[] { a, b, c }.Sum(p => new FileInfo(p).Length);
        File.Delete(c);
        File.SetLastWriteTimeUtc(a, DateTime.UtcNow.AddHours(-2)); // a older than b...
        File.SetLastWriteTimeUtc(b, DateTime.UtcNow.AddHours(-1));

        var host = NewHost(maxBytes: sizes - 1);
        Assert.Equal(ModuleOrigin.CacheHit, host.LoadModule(guests.Wasm("hello")).Origin); // ...until a is used
        Assert.True(File.GetLastWriteTimeUtc(a) > DateTime.UtcNow.AddMinutes(-1));

        Assert.Equal(ModuleOrigin.CacheMiss, host.LoadModule(guests.Wasm("exit")).Origin);
        Assert.True(File.Exists(a));
        Assert.False(File.Exists(b));
        Assert.True(File.Exists(c));
    }

    [Fact]
    public void Permissions_Directory0700_Files0600()
    {
        var host = NewHost();
        var entry = host.LoadModule(guests.Wasm("hello")).CacheEntryPath!;
        const UnixFileMode rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        const UnixFileMode rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(rwx, File.GetUnixFileMode(CacheDir));
        Assert.Equal(rwx, File.GetUnixFileMode(host.DiskCache!.Directory));
        Assert.Equal(rw, File.GetUnixFileMode(entry));
        foreach (var file in Directory.GetFiles(host.DiskCache.Directory))
            Assert.Equal(rw, File.GetUnixFileMode(file));
    }

    [Fact]
    public void UnusableCacheDirectory_FallsBackToCompiling()
    {
        File.WriteAllText(CacheDir, "not a directory");
        var module = NewHost().LoadModule(guests.Wasm("hello"));
        Assert.Equal(ModuleOrigin.Compiled, module.Origin);
        Assert.NotNull(module.CacheProblem);
    }

    [Fact]
    public void Options_Validated()
    {
        Assert.Throws<ArgumentException>(() => new WasmHost(new WasmHostOptions { CacheDirectory = "relative/dir" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { CacheDirectory = CacheDir, CacheMaxBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { BackgroundCompileDelay = TimeSpan.FromMilliseconds(-1) }));
    }

    [Fact]
    public async Task Measure_BigModule_MissVersusHit()
    {
        Assert.InRange(new FileInfo(guests.Wasm("big")).Length, 60_000, 200_000);
        var misses = new List<double>();
        var hits = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var dir = Path.Combine(work, $"measure{i}");
            foreach (var list in new[] { misses, hits })
            {
                using var host = new WasmHost(new WasmHostOptions { CacheDirectory = dir });
                var watch = Stopwatch.StartNew();
                var module = host.LoadModule(guests.Wasm("big"));
                list.Add(watch.Elapsed.TotalMilliseconds);
                Assert.Equal(list == misses ? ModuleOrigin.CacheMiss : ModuleOrigin.CacheHit, module.Origin);
                Assert.StartsWith("big ", await RunToStdout(host, module));
            }
        }
        output.WriteLine($"big.wasm {new FileInfo(guests.Wasm("big")).Length} bytes; LoadModule miss ms: {string.Join(", ", misses.Select(m => m.ToString("F1")))}; hit ms: {string.Join(", ", hits.Select(m => m.ToString("F1")))}");
    }
}

using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Owns the process's Wasmtime engine (create ONE per process), a linker with WASI preview1, and a cache of
/// compiled modules. Thread-safe.
/// </summary>
public sealed class WasmHost : IDisposable
{
    private readonly WasmHostOptions options;
    private readonly WasmEngine optimizing;
    private readonly Lazy<WasmEngine>? baseline; // Winch, for first runs of modules not in the disk cache
    // Cranelift on one thread, for the cache entries of first runs: an engine for each compile, dropped after it
    // with what its compiler keeps for reuse (tens of MB after a large module, for as long as the shim serves).
    private readonly Func<WasmEngine>? background;
    private readonly ConcurrentDictionary<string, Lazy<WasmModule>> modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<WasmInstance, byte> live = new();
    private readonly ModuleDiskCache? diskCache;
    private readonly ModuleDiskCache? internalCache; // the host's own modules (see WasmEngine.CompileText), beside the guests'
    private readonly ModuleDiskCache? quietCache; // the disk cache when background compiles wait for quiet (BackgroundCompileQuiet)
    private readonly ModuleDigestMemo? digestMemo; // with the disk cache: module files' SHA-256 by file identity
    private int disposed;

    public WasmHost(WasmHostOptions? options = null) : this(options, shadowPollOneoff: true)
    {
    }

    /// <param name="shadowPollOneoff">False only for tests comparing our poll_oneoff with Wasmtime's.</param>
    internal WasmHost(WasmHostOptions? options, bool shadowPollOneoff)
    {
        this.options = options ?? new WasmHostOptions();
        this.options.Validate();

        var config = this.options.CreateEngineConfig(out var fingerprint);
        EngineFingerprint = fingerprint;
        if (this.options.CacheDirectory is { } cacheDirectory)
        {
            diskCache = new ModuleDiskCache(cacheDirectory, fingerprint, this.options.CacheMaxBytes);
            internalCache = new ModuleDiskCache(cacheDirectory, Path.Combine(fingerprint, "internal"), this.options.CacheMaxBytes);
            digestMemo = new ModuleDigestMemo(cacheDirectory);
            if (this.options.BackgroundCompileQuiet > TimeSpan.Zero) quietCache = diskCache;
        }
        optimizing = new WasmEngine(config, shadowPollOneoff, internalCache);
        if (diskCache is not null)
        {
            if (this.options.BaselineFirstRun)
            {
                baseline = new Lazy<WasmEngine>(() => new WasmEngine(this.options.CreateBaselineEngineConfig(), shadowPollOneoff, internalCache, "winch"), LazyThreadSafetyMode.ExecutionAndPublication);
                background = () => new WasmEngine(this.options.CreateSingleThreadedEngineConfig(), shadowPollOneoff);
            }
        }
    }

    public WasmHostOptions Options => options;

    /// <summary>Digest of the Wasmtime version and every engine setting that affects compiled code; names the
    /// disk cache's subdirectory.</summary>
    public string EngineFingerprint { get; }

    internal ModuleDiskCache? DiskCache => diskCache;

    internal Engine Engine => optimizing.Engine;

    /// <summary>How many of the host's own modules its engines mapped from the disk cache rather than compiled.</summary>
    internal int InternalModulesMapped => optimizing.InternalModulesMapped + (baseline is { IsValueCreated: true } ? baseline.Value.InternalModulesMapped : 0);

    /// <summary>Instances prepared and not yet ended.</summary>
    public int LiveInstances => live.Count;

    /// <summary>True when the file exists and starts with a WebAssembly header (module or component, see <see cref="WasmBinary"/>).</summary>
    public static bool HasWasmMagic(string path) => WasmBinary.KindOf(path) != WasmBinaryKind.NotWasm;

    /// <summary>
    /// Loads a module or component file (<see cref="WasmModule.IsComponent"/> tells which). Compiled modules are cached by the SHA-256 of the bytes: loading the same bytes
    /// again returns the same <see cref="WasmModule"/> (a new wrapper sharing the compiled code when the path
    /// differs). With <see cref="WasmHostOptions.CacheDirectory"/>, the compiled code is also taken from (or
    /// written to) the disk cache; <see cref="WasmModule.Origin"/> tells which. The file is hashed as it is read,
    /// never held whole in memory unless it must be compiled.
    /// </summary>
    /// <exception cref="WasmModuleException">missing/unreadable file, not a core wasm module, compile error.</exception>
    /// <param name="baselineFirstRun">With <see cref="WasmHostOptions.BaselineFirstRun"/>: whether this load may run
    /// baseline code while the optimised code is compiled in the background (false: compile it now, as without).</param>
    /// <param name="displayName">How the user named the module (e.g. "/app.wasm" in its container), for every
    /// message and the module's <see cref="WasmModule.Path"/>; by default <paramref name="path"/> (which may be a
    /// /proc/self/fd path the user never saw).</param>
    public WasmModule LoadModule(string path, bool baselineFirstRun = true, string? displayName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        var fullPath = Path.GetFullPath(path);
        var shown = displayName ?? path;
        if (Directory.Exists(fullPath))
            throw new WasmModuleException($"{shown} is a directory, not a WebAssembly module");
        var hashing = System.Diagnostics.Stopwatch.StartNew();
        // The SHA-256 names the module; the XxHash128 of the same bytes (cheap, no OpenSSL) checks that a later
        // read for compiling still gets them.
        WasmBinaryKind kind = default;
        var (sha, checksum) = ReadModuleFile(shown, () =>
        {
            using var file = File.OpenHandle(fullPath);
            kind = CheckHeader(shown, WasmBinary.KindOf(file));
            var identity = digestMemo is null ? null : ModuleDigestMemo.Identity(file);
            if (identity is not null && digestMemo!.Lookup(identity) is { } known) return known;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var content = new System.IO.Hashing.XxHash128();
            ModuleDiskCache.ReadChunks(file, chunk =>
            {
                hash.AppendData(chunk);
                content.Append(chunk);
            });
            var digests = (Convert.ToHexStringLower(hash.GetHashAndReset()), Convert.ToHexStringLower(content.GetCurrentHash()));
            if (identity is not null) digestMemo!.Remember(identity, digests.Item1, digests.Item2);
            return digests;
        });
        // Read again only to compile (not in either cache); it must still be the content that was hashed.
        var hashTime = hashing.Elapsed;
        return Load(displayName ?? fullPath, sha, hashTime, baselineFirstRun, kind, () =>
        {
            var bytes = ReadModuleFile(shown, () => File.ReadAllBytes(fullPath));
            if (Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(bytes)) != checksum)
                throw new WasmModuleException($"{shown} changed while it was being loaded");
            return bytes;
        });
    }

    private static T ReadModuleFile<T>(string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new WasmModuleException($"{path}: no such file (cannot load WebAssembly module)", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WasmModuleException($"{path}: cannot read WebAssembly module: {e.Message}", e);
        }
    }

    /// <summary>
    /// Loads a module known by the SHA-256 of its bytes (e.g. an OCI layer digest), reading the bytes only when
    /// the compiled code is in neither the memory nor the disk cache. The bytes read are then verified against
    /// <paramref name="sha256"/> before compiling, so a cache entry always matches its name.
    /// </summary>
    /// <param name="name">For messages and the module's <see cref="WasmModule.Path"/>.</param>
    /// <param name="sha256">Lower-case hex SHA-256 of the module's bytes.</param>
    /// <exception cref="WasmModuleException">bytes that do not match, not a core wasm module, compile error.</exception>
    public WasmModule LoadModule(string name, string sha256, Func<byte[]> readBytes, bool baselineFirstRun = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(readBytes);
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
            throw new ArgumentException($"not a lower-case hex SHA-256: {sha256}", nameof(sha256));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        return Load(name, sha256, TimeSpan.Zero, baselineFirstRun, kind: null, () =>
        {
            var bytes = readBytes();
            if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != sha256)
                throw new WasmModuleException($"{name}: content does not match its digest sha256:{sha256}");
            CheckHeader(name, WasmBinary.KindOf(bytes));
            return bytes;
        });
    }

    /// <param name="hashTime">Time already spent reading and hashing the module, counted in its <see cref="WasmModule.LoadTime"/>.</param>
    /// <param name="kind">Module or component, when the header has been read; null when not (a digest-named load:
    /// a cache hit reads no byte of it).</param>
    private WasmModule Load(string name, string sha256, TimeSpan hashTime, bool baselineFirstRun, WasmBinaryKind? kind, Func<byte[]> readBytes)
    {
        var lazy = modules.GetOrAdd(sha256, key => new Lazy<WasmModule>(() => Compile(name, key, hashTime, baselineFirstRun, kind, readBytes), LazyThreadSafetyMode.ExecutionAndPublication));
        WasmModule module;
        try
        {
            module = lazy.Value;
        }
        catch
        {
            modules.TryRemove(new KeyValuePair<string, Lazy<WasmModule>>(sha256, lazy)); // let a later call retry
            throw;
        }
        finally
        {
            quietCache?.MarkLoad(); // a start: background compiles wait (a compile on the way marks too, see WhileMarking)
        }
        return module.Path == name ? module : module.WithPath(name);
    }

    private static WasmBinaryKind CheckHeader(string path, WasmBinaryKind kind) => kind switch
    {
        WasmBinaryKind.NotWasm => throw new WasmModuleException($"{path} is not a WebAssembly module (no \\0asm magic)"),
        WasmBinaryKind.Unknown => throw new WasmModuleException($"{path} is a WebAssembly binary of an unknown layer (neither a core module nor a component)"),
        _ => kind,
    };

    // The bytes are asked for only when there is something to compile (not on a disk cache hit).
    private WasmModule Compile(string fullPath, string sha, TimeSpan hashTime, bool baselineFirstRun, WasmBinaryKind? kind, Func<byte[]> bytes)
    {
        var read = bytes;
        bytes = () =>
        {
            var data = read();
            CheckLinkable(fullPath, data);
            return data;
        };
        var name = Path.GetFileName(fullPath);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        if (diskCache is not null && baseline is not null && baselineFirstRun)
        {
            if (diskCache.LoadCached(optimizing.Engine, name, sha, kind, baseline: false, out var problem) is { } cached)
                return new WasmModule(optimizing, fullPath, sha, cached.Code, cached.Origin, cached.CompileTime, hashTime + watch.Elapsed, cached.EntryPath, cached.Problem);
            // Whoever holds this lock compiles the optimised code for the whole host; we do if we get it.
            var compileLock = diskCache.TryLockCompile(sha);
            try
            {
                if (compileLock is not null && diskCache.LoadCached(optimizing.Engine, name, sha, kind, baseline: false, out _) is { } justWritten)
                    return new WasmModule(optimizing, fullPath, sha, justWritten.Code, justWritten.Origin, justWritten.CompileTime, hashTime + watch.Elapsed, justWritten.EntryPath, problem);
                byte[]? data = null;
                var quick = diskCache.LoadBaseline(baseline.Value.Engine, name, sha, kind, () => WhileMarking(() =>
                {
                    data = bytes();
                    kind = WasmBinary.KindOf(data);
                    return TryCompileBaseline(name, data, kind.Value);
                }));
                if (quick is not null)
                {
                    var optimising = compileLock is not null;
                    if (optimising)
                    {
                        data ??= bytes(); // the baseline code came from the cache; the bytes are still needed now
                        // Marked waiting from the moment the lock is ours, before the compile thread runs.
                        var waiting = quietCache?.HoldWaiting(sha);
                        OptimizeInBackground(fullPath, name, sha, data, WasmBinary.KindOf(data), compileLock!, waiting);
                        compileLock = null; // the background compile releases it
                    }
                    // A damaged optimised entry, discarded, counts as replaced as well.
                    var origin = quick.Origin == ModuleOrigin.CacheMiss && problem is not null ? ModuleOrigin.CacheReplaced : quick.Origin;
                    return new WasmModule(baseline.Value, fullPath, sha, quick.Code, origin, quick.CompileTime, hashTime + watch.Elapsed, quick.EntryPath,
                        problem ?? quick.Problem, baseline: true, optimisingHere: optimising);
                }
                if (data is not null)
                    bytes = () => data; // read once; the optimising compiler reports what the baseline one could not take
            }
            finally
            {
                compileLock?.Dispose();
            }
        }
        if (diskCache is not null)
        {
            var result = diskCache.Load(optimizing.Engine, name, sha, kind, () => WhileMarking(() => CompileBytes(optimizing, fullPath, name, bytes())));
            return new WasmModule(optimizing, fullPath, sha, result.Code, result.Origin, result.CompileTime, hashTime + watch.Elapsed, result.EntryPath, result.Problem);
        }
        var code = CompileBytes(optimizing, fullPath, name, bytes());
        return new WasmModule(optimizing, fullPath, sha, code, ModuleOrigin.Compiled, watch.Elapsed, hashTime + watch.Elapsed);
    }

    /// <summary>
    /// Refuses a core module whose imports this host cannot provide before anything compiles it: its compile can
    /// take seconds and gigabytes, and its instantiation would fail anyway. Malformed bytes pass (the compiler
    /// then says what is wrong); a component is left to its linker.
    /// </summary>
    private void CheckLinkable(string name, byte[] data)
    {
        if (WasmImports.Read(data) is not { } imports)
            return;
        var missing = optimizing.Unprovided(imports);
        if (missing.Count == 0)
            return;
        var first = string.Join(", ", missing.Take(5)) + (missing.Count > 5 ? $" and {missing.Count - 5} more" : "");
        throw new WasmModuleException($"{name} cannot run here: it imports {first}, which this runtime does not provide " +
            "(it provides WASI preview 1, wasi_snapshot_preview1, and WasmEdge's socket calls)");
    }

    // Null when Winch cannot take the module (invalid, or a feature it lacks): the optimising path then decides.
    private CompiledCode? TryCompileBaseline(string name, byte[] data, WasmBinaryKind kind)
    {
        try
        {
            return CompiledCode.Compile(baseline!.Value.Engine, name, data, kind);
        }
        catch (WasmtimeException)
        {
            return null;
        }
    }

    private readonly List<Task> cacheWrites = [];
    // One background compile at a time in a host (each takes hundreds of MB for a large module); on shutdown the
    // one holding the turn finishes and the others give up (see FinishCacheWrites).
    private readonly SemaphoreSlim compileTurn = new(1, 1);
    private readonly CancellationTokenSource stopping = new();

    /// <summary>Completes when the optimised compiles started for first runs (see
    /// <see cref="WasmHostOptions.BaselineFirstRun"/>) have written their cache entries (or failed to, or given up).</summary>
    public Task CacheWrites
    {
        get
        {
            lock (cacheWrites)
                return Task.WhenAll(cacheWrites);
        }
    }

    /// <summary>Raised on the compiling thread when a background compile has written (or failed to write) a module's
    /// optimised code: how many compiles a host made, and how long they took, is for the caller's log.</summary>
    public event Action<OptimisedCompile>? OptimisedCompiled;

    /// <summary>
    /// For a host whose guests are all gone: background compiles not yet begun give up (their modules' locks go
    /// with them, and the next start compiles), the one under way is waited for until <paramref name="giveUp"/>
    /// completes. True when no compile is left running (the host can then be disposed).
    /// </summary>
    public bool FinishCacheWrites(Task giveUp)
    {
        stopping.Cancel();
        var writes = CacheWrites;
        Task.WaitAny(writes, giveUp);
        return writes.IsCompleted;
    }

    // Cranelift compiles the module for the disk cache, holding its lock; later loads in this host get the optimised code too.
    private void OptimizeInBackground(string fullPath, string name, string sha, byte[] data, WasmBinaryKind kind, Microsoft.Win32.SafeHandles.SafeFileHandle compileLock,
        Microsoft.Win32.SafeHandles.SafeFileHandle? waiting)
    {
        var task = Task.Factory.StartNew(() =>
        {
            using var held = compileLock;
            using var stillWaiting = waiting; // released once the compile begins (or is given up)
            try
            {
                // A free turn is taken even when shutting down: a container may end before its compile begins.
                if (!compileTurn.Wait(0)) compileTurn.Wait(stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return; // shutting down, with another compile under way: the next start takes this one over
            }
            try
            {
                options.BackgroundThreadSetup?.Invoke();
                if (options.BackgroundCompileDelay > TimeSpan.Zero) Thread.Sleep(options.BackgroundCompileDelay);
                WaitForQuiet();
                stillWaiting?.Dispose();
                using var compiler = background!();
                var result = diskCache!.CompileLocked(compiler.Engine, name, sha, kind, () => CompileBytes(compiler, fullPath, name, data));
                result.Code.Dispose();
                data = null!; // the module's bytes, not to be kept through the collection below
                if (result.Origin != ModuleOrigin.CacheHit)
                    OptimisedCompiled?.Invoke(new OptimisedCompile(fullPath, sha, result.CompileTime, result.EntryPath, result.Problem));
                // Later loads in this host: the entry, in the engine the others run with.
                if (result.EntryPath is { } entry && Volatile.Read(ref disposed) == 0)
                    modules[sha] = new Lazy<WasmModule>(new WasmModule(optimizing, fullPath, sha, CompiledCode.DeserializeFile(optimizing.Engine, name, entry, kind),
                        result.Origin, result.CompileTime, result.CompileTime, entry, result.Problem));
            }
            catch (Exception e) when (e is WasmModuleException or WasmtimeException or IOException)
            {
                // The next start compiles again; this one runs the baseline code.
            }
            finally
            {
                compileTurn.Release();
                // What the compiler freed goes back to the system: the shim may serve its containers for days.
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                Wasmsharp.Linux.Processes.TrimNativeHeap();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        lock (cacheWrites)
        {
            cacheWrites.RemoveAll(t => t.IsCompleted);
            cacheWrites.Add(task);
        }
    }

    // Until no module has been loaded host-wide for BackgroundCompileQuiet (at most BackgroundCompileMaxWait). Not
    // cut short by shutting down: a shim whose container has ended still waits rather than compile during starts.
    private void WaitForQuiet()
    {
        if (quietCache is null) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < options.BackgroundCompileMaxWait)
        {
            var quietFor = quietCache.SinceLastLoad();
            if (quietFor >= options.BackgroundCompileQuiet) return;
            var left = options.BackgroundCompileQuiet - quietFor;
            Thread.Sleep(left < QuietPoll ? left : QuietPoll);
        }
    }

    private static readonly TimeSpan QuietPoll = TimeSpan.FromMilliseconds(100);

    // A compile in the foreground (a start's) takes seconds for a large module: the start goes on all that time, so
    // it marks at once and then every QuietMarkEvery. Not while it waits for a compile lock: the holder may be a
    // background compile waiting for quiet.
    private T WhileMarking<T>(Func<T> compile)
    {
        if (quietCache is null) return compile();
        using var marking = new Timer(static cache => ((ModuleDiskCache)cache!).MarkLoad(), quietCache, TimeSpan.Zero, QuietMarkEvery);
        return compile();
    }
    private static readonly TimeSpan QuietMarkEvery = TimeSpan.FromMilliseconds(250);

    private static CompiledCode CompileBytes(WasmEngine compiler, string fullPath, string name, byte[] bytes)
    {
        var kind = WasmBinary.KindOf(bytes);
        try
        {
            return CompiledCode.Compile(compiler.Engine, name, bytes, kind);
        }
        catch (WasmtimeException e)
        {
            throw new WasmModuleException($"{fullPath}: failed to compile WebAssembly {(kind == WasmBinaryKind.Component ? "component" : "module")}: {WasmErrorText.OneLine(e.Message)}", e);
        }
    }

    /// <summary>
    /// Creates an instance on its own thread and waits until it is instantiated; the guest runs only after
    /// <see cref="WasmInstance.Start"/>. Note: a module's wasm "start" function (rare in WASI programs; not
    /// <c>_start</c>) runs during instantiation: this call waits for it at most <see cref="WasmInstance.PrepareWait"/>,
    /// after which it runs on (killable) and its trap or kill is the instance's exit, not an exception here.
    /// </summary>
    /// <exception cref="WasmModuleException">WASI set-up (preopen, stdio) or instantiation failed
    /// (e.g. unknown import), or the entrypoint is not exported as a () → () function.</exception>
    public WasmInstance Prepare(WasmModule module, WasiSpec spec)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        var instance = new WasmInstance(this, module, spec);
        live.TryAdd(instance, 0);
        try
        {
            instance.Launch(options.GuestThreadStackBytes);
        }
        catch
        {
            live.TryRemove(instance, out _);
            throw;
        }
        return instance;
    }

    internal void Forget(WasmInstance instance) => live.TryRemove(instance, out _);

    // Writes one byte to stdout through WASI.
    private const string WarmUpWat = """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "\10\00\00\00\01\00\00\00")
          (data (i32.const 16) "\n")
          (func (export "_start") (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
        """;

    private Task warmUp = Task.CompletedTask;

    /// <summary>
    /// Starts, in the background, what the first guest would otherwise pay for on its own time: Wasmtime's WASI
    /// worker threads, by running a guest that writes a byte to /dev/null (and the compiler, by compiling it).
    /// Wasmtime starts those threads (a tokio runtime) at the first WASI call and keeps them; started here they
    /// also inherit the caller's cgroups, not those of the first real guest's thread.
    /// <see cref="WasmInstance.Start"/> waits for it to finish. OpenSSL is not loaded here: with the digest memo
    /// most starts hash nothing, and it costs a process about half a megabyte.
    /// </summary>
    public void BeginWarmUp()
    {
        var wasi = Task.Factory.StartNew(() =>
        {
            RunWarmUpGuest(optimizing);
            // A first run's compiler too: Winch's first compile in a process costs ~1.5 ms more than the next.
            if (baseline is not null) RunWarmUpGuest(baseline.Value);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        warmUp = wasi;
    }

    private void RunWarmUpGuest(WasmEngine engine)
    {
        // The trampolines a server's first socket or fd call, or a terminal's isatty, would otherwise compile (~20 ms).
        engine.Originals.Warm();
        var module = new WasmModule(engine, "wasmsharp-warm-up", "", new CompiledCode(engine.CompileText("wasmsharp-warm-up", WarmUpWat)));
        using var instance = Prepare(module, new WasiSpec { Args = ["warm-up"], StdoutPath = "/dev/null" });
        instance.StartNow();
        var exit = instance.Completion.GetAwaiter().GetResult();
        if (exit.ExitCode != 0) throw new InvalidOperationException($"the warm-up guest failed: {exit.Message}");
    }

    /// <summary>Waits for <see cref="BeginWarmUp"/>'s work; its failure only means the guest pays for it.</summary>
    internal void AwaitWarmUp()
    {
        try
        {
            warmUp.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
        }
    }

    /// <summary>
    /// Kills the instances still alive and waits up to 2 s for them. If one cannot be stopped (blocked in a
    /// WASI call), the native engine is deliberately leaked rather than freed under a running guest.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
            return;
        // A compile for the cache still running needs its engine: let it finish (a large module takes seconds);
        // one that does not is left its engines (the process is ending anyway).
        var compilesDone = FinishCacheWrites(Task.Delay(TimeSpan.FromMinutes(10)));
        var instances = live.Keys.ToArray();
        foreach (var instance in instances)
            instance.Kill(9);
        var all = Task.WhenAll(instances.Select(i => i.Completion));
        if (!all.Wait(TimeSpan.FromSeconds(2)) || !compilesDone)
            return;
        foreach (var lazy in modules.Values)
            if (lazy.IsValueCreated)
                lazy.Value.Code.Dispose();
        modules.Clear();
        if (baseline is { IsValueCreated: true }) baseline.Value.Dispose();
        optimizing.Dispose();
    }
}

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
    private static ReadOnlySpan<byte> WasmMagic => "\0asm"u8;

    private readonly WasmHostOptions options;
    private readonly Engine engine;
    private readonly Linker linker;
    private readonly ConcurrentDictionary<string, Lazy<WasmModule>> modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<WasmInstance, byte> live = new();
    private int disposed;

    public WasmHost(WasmHostOptions? options = null)
    {
        this.options = options ?? new WasmHostOptions();
        this.options.Validate();

        var config = new Config().WithEpochInterruption(true);
        if (this.options.MaxWasmStackBytes is int maxStack)
            config.WithMaximumStackSize(maxStack);
        engine = new Engine(config); // takes (and releases) the config

        linker = new Linker(engine);
        linker.DefineWasi();
        // Wasmtime's proc_exit reports statuses ≥ 126 without the number; ours keeps it (see ExitStatus).
        linker.AllowShadowing = true;
        linker.DefineFunction("wasi_snapshot_preview1", "proc_exit",
            static (Caller _, ReadOnlySpan<ValueBox> args, Span<ValueBox> _) => throw new ProcExitException(args[0].AsInt32()),
            [ValueKind.Int32], []);
        linker.AllowShadowing = false;
    }

    public WasmHostOptions Options => options;

    internal Engine Engine => engine;
    internal Linker Linker => linker;

    /// <summary>Instances prepared and not yet ended.</summary>
    public int LiveInstances => live.Count;

    /// <summary>True when the file exists and starts with the WebAssembly magic "\0asm".</summary>
    public static bool HasWasmMagic(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
            Span<byte> head = stackalloc byte[4];
            return file.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual(WasmMagic);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Reads and compiles a module file. Compiled modules are cached by the SHA-256 of the bytes: loading the
    /// same bytes again returns the same <see cref="WasmModule"/> (a new wrapper sharing the compiled code when
    /// the path differs).
    /// </summary>
    /// <exception cref="WasmModuleException">missing/unreadable file, not a core wasm module, compile error.</exception>
    public WasmModule LoadModule(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        var fullPath = Path.GetFullPath(path);
        byte[] bytes;
        try
        {
            if (Directory.Exists(fullPath))
                throw new WasmModuleException($"{path} is a directory, not a WebAssembly module");
            bytes = File.ReadAllBytes(fullPath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new WasmModuleException($"{path}: no such file (cannot load WebAssembly module)", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WasmModuleException($"{path}: cannot read WebAssembly module: {e.Message}", e);
        }

        CheckHeader(path, bytes);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));

        var lazy = modules.GetOrAdd(sha, key => new Lazy<WasmModule>(() => Compile(fullPath, key, bytes), LazyThreadSafetyMode.ExecutionAndPublication));
        WasmModule module;
        try
        {
            module = lazy.Value;
        }
        catch
        {
            modules.TryRemove(new KeyValuePair<string, Lazy<WasmModule>>(sha, lazy)); // let a later call retry
            throw;
        }
        return module.Path == fullPath ? module : new WasmModule(fullPath, sha, module.Inner);
    }

    private static void CheckHeader(string path, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4 || !bytes[..4].SequenceEqual(WasmMagic))
            throw new WasmModuleException($"{path} is not a WebAssembly module (no \\0asm magic)");
        // Core modules: version 1 (01 00 00 00). Components: version 0x0d, layer 1 (0d 00 01 00).
        if (bytes.Length >= 8 && BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..8]) == 1)
            throw new WasmModuleException($"{path} is a WebAssembly component; only core WASI (preview1) modules are supported");
    }

    private WasmModule Compile(string fullPath, string sha, byte[] bytes)
    {
        try
        {
            return new WasmModule(fullPath, sha, Module.FromBytes(engine, Path.GetFileName(fullPath), bytes));
        }
        catch (WasmtimeException e)
        {
            throw new WasmModuleException($"{fullPath}: failed to compile WebAssembly module: {e.Message}", e);
        }
    }

    /// <summary>
    /// Creates an instance on its own thread and waits until it is instantiated; the guest runs only after
    /// <see cref="WasmInstance.Start"/>. Note: a module's wasm "start" function (rare in WASI programs; not
    /// <c>_start</c>) runs during instantiation, i.e. inside this call.
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

    /// <summary>
    /// Kills the instances still alive and waits up to 2 s for them. If one cannot be stopped (blocked in a
    /// WASI call), the native engine is deliberately leaked rather than freed under a running guest.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
            return;
        var instances = live.Keys.ToArray();
        foreach (var instance in instances)
            instance.Kill(9);
        var all = Task.WhenAll(instances.Select(i => i.Completion));
        if (!all.Wait(TimeSpan.FromSeconds(2)))
            return;
        foreach (var lazy in modules.Values)
            if (lazy.IsValueCreated)
                lazy.Value.Inner.Dispose();
        modules.Clear();
        linker.Dispose();
        engine.Dispose();
    }
}

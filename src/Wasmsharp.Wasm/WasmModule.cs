namespace Wasmsharp.Wasm;

/// <summary>Where the compiled code of a <see cref="WasmModule"/> came from.</summary>
public enum ModuleOrigin
{
    /// <summary>Compiled; no disk cache configured, or the disk cache could not be used (see <see cref="WasmModule.CacheProblem"/>).</summary>
    Compiled,
    /// <summary>Not in the disk cache: compiled and written to it.</summary>
    CacheMiss,
    /// <summary>Deserialised from the disk cache; nothing compiled.</summary>
    CacheHit,
    /// <summary>The disk cache held a corrupt or incompatible entry: it was deleted, the module compiled and the entry rewritten.</summary>
    CacheReplaced,
}

/// <summary>A compiled WebAssembly core module or component (<see cref="IsComponent"/>). Owned by its <see cref="WasmHost"/>; shareable across instances and threads.</summary>
public sealed class WasmModule
{
    internal WasmModule(WasmEngine engine, string path, string sha256, CompiledCode code, ModuleOrigin origin = ModuleOrigin.Compiled,
        TimeSpan compileTime = default, TimeSpan loadTime = default, string? cacheEntryPath = null, string? cacheProblem = null, bool baseline = false, bool optimisingHere = false)
    {
        Engine = engine;
        Baseline = baseline;
        OptimisingHere = optimisingHere;
        Path = path;
        Sha256 = sha256;
        Code = code;
        Origin = origin;
        CompileTime = compileTime;
        LoadTime = loadTime;
        CacheEntryPath = cacheEntryPath;
        CacheProblem = cacheProblem;
    }

    /// <summary>Full path of the file the module was loaded from.</summary>
    public string Path { get; }

    /// <summary>SHA-256 of the file's bytes, lower-case hex.</summary>
    public string Sha256 { get; }

    /// <summary>Whether the code was compiled or deserialised from the disk cache (of the first load in this host).</summary>
    public ModuleOrigin Origin { get; }

    /// <summary>Time spent compiling (Cranelift, or Winch for <see cref="Baseline"/> code); zero on a <see cref="ModuleOrigin.CacheHit"/>.</summary>
    public TimeSpan CompileTime { get; }

    /// <summary>Time to obtain the compiled module: reading and hashing a module file (not an image layer, whose digest
    /// is known), then compile (+ cache write) or cache verification and deserialisation.</summary>
    public TimeSpan LoadTime { get; }

    /// <summary>The disk cache entry read or written, if any.</summary>
    public string? CacheEntryPath { get; }

    /// <summary>Why a cache entry was discarded or the disk cache could not be used; null when all went well. For logging.</summary>
    public string? CacheProblem { get; }

    /// <summary>
    /// Baseline code (Winch: quick to compile, slower code) of a first run, compiled here or loaded from the disk
    /// cache's baseline entry, while the optimised code is compiled in the background for the disk cache, by this
    /// host or another (see <see cref="WasmHostOptions.BaselineFirstRun"/>).
    /// </summary>
    public bool Baseline { get; }

    /// <summary>For <see cref="Baseline"/> code: this host compiles the optimised code (it holds the module's compile
    /// lock); false when another process on the host does.</summary>
    public bool OptimisingHere { get; }

    /// <summary>
    /// A WASI preview 2 component (run through its <c>wasi:cli/run</c> export) rather than a core WASI preview 1
    /// module (run through its entrypoint export).
    /// </summary>
    public bool IsComponent => Code.IsComponent;

    internal CompiledCode Code { get; }

    /// <summary>The core module; only for modules (see <see cref="IsComponent"/>).</summary>
    internal Wasmtime.Module Inner => Code.Module ?? throw new InvalidOperationException($"{Path} is a component, not a core module");

    /// <summary>The engine that compiled <see cref="Inner"/>: the only one it runs with.</summary>
    internal WasmEngine Engine { get; }

    internal WasmModule WithPath(string path) =>
        new(Engine, path, Sha256, Code, Origin, CompileTime, LoadTime, CacheEntryPath, CacheProblem, Baseline, OptimisingHere);

    public override string ToString() => $"{Path} (sha256:{Sha256})";
}

/// <summary>A background compile of a module's optimised code for the disk cache (see <see cref="WasmHost.OptimisedCompiled"/>).</summary>
/// <param name="EntryPath">The entry written; null when it could not be (<paramref name="Problem"/> says why).</param>
public sealed record OptimisedCompile(string Path, string Sha256, TimeSpan CompileTime, string? EntryPath, string? Problem);

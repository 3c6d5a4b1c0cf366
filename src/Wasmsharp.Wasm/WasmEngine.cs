using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Wasmtime;
using Wasmtime.Components;

namespace Wasmsharp.Wasm;

/// <summary>
/// A Wasmtime engine with what instances of its modules need: the WASI linker with our own proc_exit and
/// poll_oneoff, linkers that add WasmEdge's socket extension for modules importing it, and (made on first use)
/// Wasmtime's own WASI functions behind trampolines. A module runs only with the engine that compiled it; a host
/// has one for optimised code and, when it compiles a first run quickly, one for baseline code.
/// </summary>
internal sealed class WasmEngine : IDisposable
{
    private readonly Lazy<WasiOriginals> originals;
    private readonly Lazy<ComponentLinker> componentLinker;
    private readonly Lazy<Linker> terminalLinker;
    private readonly ConcurrentDictionary<string, Lazy<Linker>> socketLinkers = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<Module, SocketImports> socketImports = [];

    public Engine Engine { get; }

    /// <summary>The linker of modules that import no socket function.</summary>
    public Linker Linker { get; }

    private readonly ModuleDiskCache? cache;
    private readonly string compiler;

    /// <param name="config">Taken (and released) by the engine.</param>
    /// <param name="shadowPollOneoff">False only for tests comparing our poll_oneoff with Wasmtime's.</param>
    /// <param name="cache">Where the host's own modules (<see cref="CompileText"/>) are kept compiled, if anywhere.</param>
    /// <param name="compiler">Tells this engine's code apart from the other engines' under the same fingerprint.</param>
    public WasmEngine(Config config, bool shadowPollOneoff, ModuleDiskCache? cache = null, string compiler = "cranelift")
    {
        this.cache = cache;
        this.compiler = compiler;
        Engine = new Engine(config);
        var engine = Engine;
        Linker = new Linker(engine);
        Linker.DefineWasi();
        // Wasmtime's proc_exit reports statuses ≥ 126 without the number; ours keeps it (see ExitStatus).
        Linker.AllowShadowing = true;
        Linker.DefineFunction("wasi_snapshot_preview1", "proc_exit",
            static (Caller _, ReadOnlySpan<ValueBox> args, Span<ValueBox> _) => throw new ProcExitException(args[0].AsInt32()),
            [ValueKind.Int32], []);
        // Sleeps must end when the guest is killed and hold while it is paused (see WasiPoll).
        if (shadowPollOneoff)
            Linker.DefineFunction("wasi_snapshot_preview1", "poll_oneoff", WasiPoll.PollOneoff, WasiPoll.Parameters, WasiPoll.Results);
        // A guest's files count against its descriptor limit, as its sockets do (see GuestDescriptors).
        WasiDescriptors.Define(Linker);
        Linker.AllowShadowing = false;

        originals = new Lazy<WasiOriginals>(() => new WasiOriginals(this), LazyThreadSafetyMode.ExecutionAndPublication);
        componentLinker = new Lazy<ComponentLinker>(() => ComponentRun.CreateLinker(engine), LazyThreadSafetyMode.ExecutionAndPublication);
        // Only for guests on a terminal: the shadow calls Wasmtime's original through a trampoline whose first
        // compile in a process costs a start (~20 ms) that a guest without a terminal must not pay.
        terminalLinker = new Lazy<Linker>(() =>
        {
            var linker = Linker.Clone();
            linker.AllowShadowing = true;
            linker.DefineFunction("wasi_snapshot_preview1", "fd_fdstat_get", WasiTerminal.FdstatGet, WasiTerminal.Parameters, WasiTerminal.Results);
            linker.AllowShadowing = false;
            return linker;
        }, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>
    /// The imports of a core module this host cannot provide, read before compiling it: anything but a function of
    /// WASI preview 1 that Wasmtime's linker or ours (socket calls) defines. Types are left to instantiation.
    /// </summary>
    public List<WasmImport> Unprovided(IReadOnlyList<WasmImport> imports) =>
        imports.Where(i => !(i.Kind == WasmImportKind.Function && i.Module == WasiModule && provided.GetOrAdd(i.Name, Defines))).ToList();

    private const string WasiModule = "wasi_snapshot_preview1";
    private readonly ConcurrentDictionary<string, bool> provided = new(StringComparer.Ordinal);
    private readonly object probeGate = new();
    private Store? probe; // only ever used to ask the linker what it defines; runs nothing

    private bool Defines(string name)
    {
        if (SocketImports.Defines(name))
            return true;
        lock (probeGate)
        {
            probe ??= new Store(Engine);
            return Linker.GetFunction(probe, WasiModule, name) is not null;
        }
    }

    /// <summary>The linker of components: WASI preview 2 (see <see cref="ComponentRun"/>).</summary>
    public ComponentLinker ComponentLinker => componentLinker.Value;

    public WasiOriginals Originals => originals.Value;

    /// <summary>
    /// One of the host's own small modules (WASI trampolines, the warm-up guest), compiled from text, or mapped from
    /// the disk cache when it holds it: every spare shim needs them, and compiling them (~100 functions with their
    /// trampolines, in each engine) was most of a spare's CPU time. Keyed by the text and the compiler; the entries
    /// are checked and evicted as the guests' are.
    /// </summary>
    public Module CompileText(string name, string wat)
    {
        if (cache is null)
            return Module.FromText(Engine, name, wat);
        var key = Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(System.Text.Encoding.UTF8.GetBytes($"wasmsharp internal module\n{compiler}\n{wat}")));
        var result = cache.Load(Engine, name, key, WasmBinaryKind.Module, () => new CompiledCode(Module.FromText(Engine, name, wat)));
        if (result.Origin == ModuleOrigin.CacheHit)
            Interlocked.Increment(ref internalModulesMapped);
        return result.Code.Module!;
    }

    private int internalModulesMapped;

    /// <summary>How many <see cref="CompileText"/> calls were answered from the disk cache.</summary>
    public int InternalModulesMapped => Volatile.Read(ref internalModulesMapped);

    /// <summary>
    /// The socket imports of <paramref name="module"/> (computed once per compiled module).
    /// </summary>
    /// <exception cref="WasmModuleException">a socket import whose type matches no generation of WasmEdge's ABI.</exception>
    public SocketImports SocketImportsOf(WasmModule module) =>
        socketImports.GetValue(module.Inner, inner => SocketImports.Of(inner, module.Path));

    /// <summary>The linker for <paramref name="module"/>: <see cref="Linker"/>, or for a module importing WasmEdge's
    /// socket calls a clone with them (in the generations its imports ask for) and the socket-aware fd_* shadows.</summary>
    public Linker LinkerFor(SocketImports imports, bool terminal)
    {
        if (!imports.Any)
            return terminal ? terminalLinker.Value : Linker; // (the socket linker's fd shadows do the terminal's part)
        return socketLinkers.GetOrAdd(imports.Key, key => new Lazy<Linker>(() =>
        {
            var linker = Linker.Clone();
            linker.AllowShadowing = true;
            WasiSockets.Define(linker, imports);
            WasiSocketFds.Define(linker);
            linker.AllowShadowing = false;
            return linker;
        }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    /// <summary>
    /// Wasmtime's own poll_oneoff bound to <paramref name="store"/>, callable from a host function: through a
    /// trampoline instance that imports the guest's memory (and exports it as "memory", where WASI functions
    /// look for it) and the original function from an unshadowed linker.
    /// </summary>
    public Function MakeOriginalPollOneoff(Store store, Memory memory) => originals.Value.MakePollOneoff(store, memory);

    public void Dispose()
    {
        foreach (var linker in socketLinkers.Values)
            if (linker.IsValueCreated)
                linker.Value.Dispose();
        if (originals.IsValueCreated)
            originals.Value.Dispose();
        if (componentLinker.IsValueCreated)
            componentLinker.Value.Dispose();
        if (terminalLinker.IsValueCreated)
            terminalLinker.Value.Dispose();
        probe?.Dispose();
        Linker.Dispose();
        Engine.Dispose();
    }
}

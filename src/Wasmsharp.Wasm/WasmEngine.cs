using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// A Wasmtime engine with what instances of its modules need: the WASI linker with our own proc_exit and
/// poll_oneoff, and (made on first use) Wasmtime's own poll_oneoff behind a trampoline. A module runs only with
/// the engine that compiled it; a host has one for optimised code and, when it compiles a first run quickly, one
/// for baseline code.
/// </summary>
internal sealed class WasmEngine : IDisposable
{
    /// <summary>WAT of the trampoline through which our poll_oneoff calls Wasmtime's (see <see cref="WasiPoll"/>).</summary>
    private const string PollTrampolineWat = """
        (module
          (import "host" "memory" (memory 0))
          (import "host" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (export "memory" (memory 0))
          (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
            (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
        """;

    private readonly Lazy<OriginalWasi> originalWasi;

    private sealed record OriginalWasi(Linker Linker, Module Trampoline);

    public Engine Engine { get; }
    public Linker Linker { get; }

    /// <param name="config">Taken (and released) by the engine.</param>
    /// <param name="shadowPollOneoff">False only for tests comparing our poll_oneoff with Wasmtime's.</param>
    public WasmEngine(Config config, bool shadowPollOneoff)
    {
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
        Linker.AllowShadowing = false;

        originalWasi = new Lazy<OriginalWasi>(() =>
        {
            var original = new Linker(engine);
            original.DefineWasi();
            return new OriginalWasi(original, Module.FromText(engine, "wasmsharp-poll-trampoline", PollTrampolineWat));
        }, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>
    /// Wasmtime's own poll_oneoff bound to <paramref name="store"/>, callable from a host function: through a
    /// trampoline instance that imports the guest's memory (and exports it as "memory", where WASI functions
    /// look for it) and the original function from an unshadowed linker.
    /// </summary>
    public Function MakeOriginalPollOneoff(Store store, Memory memory)
    {
        var (original, trampoline) = originalWasi.Value;
        var poll = original.GetFunction(store, "wasi_snapshot_preview1", "poll_oneoff")
            ?? throw new InvalidOperationException("Wasmtime's WASI defines no poll_oneoff");
        var instance = new Instance(store, trampoline, memory, poll);
        return instance.GetFunction("poll_oneoff")
            ?? throw new InvalidOperationException("the poll_oneoff trampoline exports no poll_oneoff");
    }

    public void Dispose()
    {
        if (originalWasi.IsValueCreated)
        {
            originalWasi.Value.Trampoline.Dispose();
            originalWasi.Value.Linker.Dispose();
        }
        Linker.Dispose();
        Engine.Dispose();
    }
}

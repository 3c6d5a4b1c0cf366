using System.Text;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Wasmtime's own WASI functions, from a second, unshadowed linker, made callable from our host functions
/// through small trampoline instances bound to the same store (hence the same WASI context). A WASI function
/// finds memory through its caller's "memory" export and a host-to-host call has no caller instance, so each
/// trampoline exports a memory: the guest's (poll and fd delegates) or its own (scratch).
/// </summary>
internal sealed class WasiOriginals : IDisposable
{
    private const string Wasi = "wasi_snapshot_preview1";

    /// <summary>The fd-taking WASI functions our socket-aware linker shadows (see <see cref="WasiSocketFds"/>),
    /// with their parameter types (all return an errno).</summary>
    public static readonly (string Name, string Params)[] FdFunctions =
    [
        ("fd_advise", "i32 i64 i64 i32"), ("fd_allocate", "i32 i64 i64"), ("fd_close", "i32"), ("fd_datasync", "i32"),
        ("fd_fdstat_get", "i32 i32"), ("fd_fdstat_set_flags", "i32 i32"), ("fd_fdstat_set_rights", "i32 i64 i64"),
        ("fd_filestat_get", "i32 i32"), ("fd_filestat_set_size", "i32 i64"), ("fd_filestat_set_times", "i32 i64 i64 i32"),
        ("fd_pread", "i32 i32 i32 i64 i32"), ("fd_prestat_get", "i32 i32"), ("fd_prestat_dir_name", "i32 i32 i32"),
        ("fd_pwrite", "i32 i32 i32 i64 i32"), ("fd_read", "i32 i32 i32 i32"), ("fd_readdir", "i32 i32 i32 i64 i32"),
        ("fd_renumber", "i32 i32"), ("fd_seek", "i32 i64 i32 i32"), ("fd_sync", "i32"), ("fd_tell", "i32 i32"),
        ("fd_write", "i32 i32 i32 i32"), ("path_create_directory", "i32 i32 i32"),
        ("path_filestat_get", "i32 i32 i32 i32 i32"), ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32"),
        ("path_link", "i32 i32 i32 i32 i32 i32 i32"), ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
        ("path_readlink", "i32 i32 i32 i32 i32 i32"), ("path_remove_directory", "i32 i32 i32"),
        ("path_rename", "i32 i32 i32 i32 i32 i32"), ("path_symlink", "i32 i32 i32 i32 i32"), ("path_unlink_file", "i32 i32 i32"),
    ];

    private const string PollTrampolineWat = """
        (module
          (import "host" "memory" (memory 0))
          (import "host" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (export "memory" (memory 0))
          (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
            (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
        """;

    // Own memory: "." at 0 (the placeholder's path), the new fd at 8, an fdstat at 16, polls from 64.
    private const string ScratchWat = """
        (module
          (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $stat (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) ".")
          (func (export "reserve") (param $dir i32) (result i32)
            (call $open (local.get $dir) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 2)
                        (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8)))
          (func (export "fdstat") (param i32) (result i32) (call $stat (local.get 0) (i32.const 16)))
          (func (export "close") (param i32) (result i32) (call $close (local.get 0)))
          (func (export "poll_oneoff") (param i32 i32 i32 i32) (result i32)
            (call $poll (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
        """;

    private readonly Linker linker;
    private readonly Module poll;
    private readonly Lazy<Module> delegates;
    private readonly Lazy<Module> scratch;

    public WasiOriginals(WasmEngine engine)
    {
        linker = new Linker(engine.Engine);
        linker.DefineWasi();
        poll = engine.CompileText("wasmsharp-poll-trampoline", PollTrampolineWat);
        delegates = new(() => engine.CompileText("wasmsharp-fd-trampoline", DelegatesWat()), LazyThreadSafetyMode.ExecutionAndPublication);
        scratch = new(() => engine.CompileText("wasmsharp-scratch-trampoline", ScratchWat), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    private static string DelegatesWat()
    {
        var wat = new StringBuilder("(module\n  (import \"host\" \"memory\" (memory 0))\n  (export \"memory\" (memory 0))\n");
        for (int i = 0; i < FdFunctions.Length; i++)
            wat.Append($"  (import \"{Wasi}\" \"{FdFunctions[i].Name}\" (func $f{i} (param {FdFunctions[i].Params}) (result i32)))\n");
        for (int i = 0; i < FdFunctions.Length; i++)
        {
            var (name, parameters) = FdFunctions[i];
            var types = parameters.Split(' ');
            var gets = string.Join(' ', Enumerable.Range(0, types.Length).Select(p => $"(local.get {p})"));
            wat.Append($"  (func (export \"{name}\") (param {parameters}) (result i32) (call $f{i} {gets}))\n");
        }
        return wat.Append(')').ToString();
    }

    /// <summary>Compiles the trampolines now (a spare shim's warm-up), not in the first guest that needs them.</summary>
    public void Warm()
    {
        _ = delegates.Value;
        _ = scratch.Value;
    }

    /// <summary>Wasmtime's poll_oneoff bound to <paramref name="store"/>, on the guest's memory.</summary>
    public Function MakePollOneoff(Store store, Memory memory) =>
        Bind(store, poll, memory).GetFunction("poll_oneoff") ?? throw new InvalidOperationException("the poll trampoline exports no poll_oneoff");

    /// <summary>Wasmtime's <see cref="FdFunctions"/> bound to <paramref name="store"/>, on the guest's memory.</summary>
    public Instance MakeDelegates(Store store, Memory memory) => Bind(store, delegates.Value, memory);

    /// <summary>The scratch trampoline: placeholders, fd probes and polls on its own memory.</summary>
    public Instance MakeScratch(Store store) => linker.Instantiate(store, scratch.Value);

    private Instance Bind(Store store, Module trampoline, Memory memory)
    {
        var imports = new List<object>();
        foreach (var import in trampoline.Imports)
            imports.Add(import is MemoryImport
                ? memory
                : linker.GetFunction(store, Wasi, import.Name)
                    ?? throw new InvalidOperationException($"Wasmtime's WASI defines no {import.Name}"));
        return new Instance(store, trampoline, imports.ToArray());
    }

    public void Dispose()
    {
        poll.Dispose();
        if (delegates.IsValueCreated) delegates.Value.Dispose();
        if (scratch.IsValueCreated) scratch.Value.Dispose();
        linker.Dispose();
    }
}

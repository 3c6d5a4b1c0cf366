using Wasmtime;
using Wasmtime.Components;

namespace Wasmsharp.Wasm;

/// <summary>
/// Runs a WASI preview 2 component the way a core module's entrypoint runs: its <c>wasi:cli/run</c> export's
/// <c>run</c>, with Wasmtime's p2 implementation (<c>wasmtime_component_linker_add_wasip2</c>, the synchronous one)
/// fed from the same <see cref="WasiSpec"/>.
/// </summary>
/// <remarks>
/// Exit statuses: <c>run</c> returning ok → 0, err → 1; <c>wasi:cli/exit.exit</c> ok → 0, err → 1 and
/// <c>exit-with-code(n)</c> (WASI 0.2.12, in Wasmtime's linker) → n, both reported by Wasmtime as an exit error
/// carrying the status. What a C program's <c>exit(n)</c> becomes depends on its toolchain: wasi-libc through the
/// preview 1 adapter calls <c>exit</c>, so any n ≠ 0 is 1. Traps → 134.
/// <para><b>Blocking calls.</b> Every p2 wait (<c>wasi:io/poll</c>'s poll and pollable.block, the streams'
/// blocking-read/-write, hence a sleep, a stdin read, an accept) is a tokio <c>block_on</c> on the guest thread
/// (wasmtime-wasi's <c>in_tokio</c>), which neither epochs nor signals end. A kill is then reported after
/// <see cref="WasmInstance.KillGrace"/> (<see cref="WasmInstance.Abandoned"/>), the thread ending when the call
/// returns; pause holds the guest at its first epoch check after it. Shadowing <c>wasi:io/poll</c> would need
/// the original functions (a trampoline component) and resource values, which the binding does not marshal.</para>
/// <para><b>Sockets.</b> Wasmtime ≥ 46 creates no TCP/UDP socket unless the embedder allows TCP/UDP, and the
/// C API of 50.0.1 cannot (no allow_tcp/allow_udp; inherit_network only opens the address check): p2 guests get
/// access-denied from create-tcp-socket even with <see cref="WasiSpec.NetworkAccess"/>.</para>
/// </remarks>
internal static class ComponentRun
{
    /// <summary>Looked up semver-compatibly: any 0.2.x export of the interface matches.</summary>
    private const string RunInterface = "wasi:cli/run@0.2.0";

    public static ComponentLinker CreateLinker(Engine engine)
    {
        var linker = new ComponentLinker(engine);
        linker.AddWasiPreview2();
        return linker;
    }

    /// <summary>Instantiates the component in <paramref name="store"/> and returns what runs it.</summary>
    /// <exception cref="WasmModuleException">the component does not export <c>wasi:cli/run</c>.</exception>
    public static Action Instantiate(ComponentLinker linker, Store store, WasmModule component, string entrypoint)
    {
        if (entrypoint != WasiSpec.DefaultEntrypoint)
            throw new WasmModuleException($"{component.Path} is a component: it runs its wasi:cli/run export, not an entrypoint '{entrypoint}'");
        var instance = linker.Instantiate(store, component.Code.Component!);
        var run = instance.GetFunction(RunInterface, "run")
            ?? throw new WasmModuleException($"{component.Path} is a component that does not export wasi:cli/run (0.2.x): only commands can be run");
        return () =>
        {
            if (run.Call() is { IsOk: false })
                throw new ProcExitException(1);
        };
    }
}

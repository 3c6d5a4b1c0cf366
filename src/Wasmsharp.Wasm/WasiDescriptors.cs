using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Our <c>path_open</c>, <c>fd_close</c> and <c>fd_renumber</c>: Wasmtime's, with the guest's descriptors counted
/// (<see cref="GuestDescriptors"/>), so a guest opening files in a loop gets EMFILE at its limit as a native process
/// would, instead of taking every descriptor of the shared host process. A file opened past the limit is closed again
/// at once. Socket-using modules get the same through <see cref="WasiSocketFds"/>, whose shadows call
/// <see cref="After"/>.
/// </summary>
internal static class WasiDescriptors
{
    public static readonly string[] Names = ["path_open", "fd_close", "fd_renumber"];

    public static void Define(Linker linker)
    {
        foreach (var name in Names)
        {
            var parameters = WasiOriginals.FdFunctions.First(f => f.Name == name).Params.Split(' ')
                .Select(p => p == "i64" ? ValueKind.Int64 : ValueKind.Int32).ToArray();
            linker.DefineFunction("wasi_snapshot_preview1", name, (caller, args, results) =>
            {
                var instance = caller.GetData() as WasmInstance
                    ?? throw new InvalidOperationException($"{name}: the store belongs to no WasmInstance");
                var memory = caller.GetMemory("memory")
                    ?? throw new WasiTrapException($"{name}: the module exports no memory named \"memory\"");
                var store = caller.Store;
                var original = instance.Original(store, memory, name);
                int errno = original.Invoke(args) is int e ? e
                    : throw new InvalidOperationException($"{name}: unexpected result from Wasmtime's implementation");
                results[0] = After(instance, name, args, errno, memory, fd => instance.Original(store, memory, "fd_close").Invoke([(int)fd]));
            }, parameters, [ValueKind.Int32]);
        }
    }

    /// <summary>
    /// Bookkeeping after Wasmtime's <paramref name="name"/> returned <paramref name="errno"/>; returns the errno the
    /// guest gets (EMFILE for a file opened past the limit, which <paramref name="close"/> has closed again).
    /// </summary>
    public static int After(WasmInstance instance, string name, ReadOnlySpan<ValueBox> args, int errno, Memory memory, Action<uint> close)
    {
        if (errno != WasmEdgeAbi.Success)
            return errno;
        var descriptors = instance.Descriptors;
        switch (name)
        {
            case "path_open":
                // path_open(dirfd, dirflags, path, path_len, oflags, rights, inheriting, fdflags, *fd): Wasmtime
                // wrote the new number, so the address is in bounds.
                uint fd = (uint)memory.ReadInt32((uint)args[8].AsInt32());
                if (descriptors.Admit(fd, 1) is var refused and not WasmEdgeAbi.Success)
                {
                    close(fd);
                    return refused;
                }
                descriptors.FileOpened(fd);
                return errno;
            case "fd_close":
                descriptors.Closed((uint)args[0].AsInt32());
                return errno;
            case "fd_renumber":
                descriptors.Renumbered((uint)args[0].AsInt32(), (uint)args[1].AsInt32());
                return errno;
            default:
                return errno;
        }
    }
}

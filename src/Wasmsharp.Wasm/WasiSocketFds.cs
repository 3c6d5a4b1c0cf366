using System.Buffers.Binary;
using Wasmtime;
using static Wasmsharp.Wasm.WasmEdgeAbi;

namespace Wasmsharp.Wasm;

/// <summary>
/// Shadows of Wasmtime's fd-taking WASI functions for modules that use sockets: a socket descriptor is
/// handled here (fd_read/fd_write as recv/send, fd_close, fd_fdstat_get/set_flags, fd_filestat_get,
/// fd_renumber; fd_fdstat_set_rights is ENOTSUP as Wasmtime answers it for files and directories; the rest answer as
/// Linux would for a socket: ESPIPE, ENOTDIR, EINVAL, EBADF), any other is
/// passed unchanged to Wasmtime's original (<see cref="WasiOriginals"/>), so files behave exactly as without
/// sockets. Only socket-using modules get these shadows; the others keep Wasmtime's functions, at no cost.
/// </summary>
internal static class WasiSocketFds
{
    private delegate int OnSocket(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args);

    public static void Define(Linker linker)
    {
        foreach (var (name, parameters) in WasiOriginals.FdFunctions)
        {
            var kinds = parameters.Split(' ').Select(p => p == "i64" ? ValueKind.Int64 : ValueKind.Int32).ToArray();
            var (fdArgs, handler) = Handler(name);
            linker.DefineFunction("wasi_snapshot_preview1", name, (caller, args, results) =>
            {
                var (table, guest) = WasiSockets.Enter(caller, name);
                if (name == "fd_renumber")
                {
                    uint from = (uint)args[0].AsInt32(), to = (uint)args[1].AsInt32();
                    if (table.Get(from) is null && table.Get(to) is null)
                    {
                        results[0] = Original(table, caller, name, args);
                        return;
                    }
                    var renumber = table.Original(table.GuestMemory(caller, name), name);
                    results[0] = table.Renumber(from, to, (a, b) => renumber.Invoke([(int)a, (int)b]) is int e ? e : Io);
                    return;
                }
                foreach (int index in fdArgs)
                {
                    if (table.Get((uint)args[index].AsInt32()) is { } socket)
                    {
                        results[0] = handler(table, guest, socket, args);
                        return;
                    }
                }
                results[0] = Original(table, caller, name, args);
            }, kinds, [ValueKind.Int32]);
        }
    }

    private static int Original(SocketTable table, Caller caller, string name, ReadOnlySpan<ValueBox> args)
    {
        var memory = table.GuestMemory(caller, name);
        int errno = table.Original(memory, name).Invoke(args) is int e ? e : throw new InvalidOperationException($"{name}: unexpected result from Wasmtime's implementation");
        if (name == "fd_fdstat_get")
            WasiTerminal.Patch(table.Instance, errno, (uint)args[1].AsInt32(), memory);
        else if (WasiDescriptors.Names.Contains(name))
            errno = WasiDescriptors.After(table.Instance, name, args, errno, memory, fd => table.Original(memory, "fd_close").Invoke([(int)fd]));
        return errno;
    }

    /// <summary>Which arguments are descriptors, and what a socket there gets.</summary>
    private static (int[] FdArgs, OnSocket Handler) Handler(string name) => name switch
    {
        "fd_read" => ([0], Read),
        "fd_write" => ([0], Write),
        "fd_close" => ([0], (t, _, _, a) => t.Close((uint)a[0].AsInt32())),
        "fd_fdstat_get" => ([0], FdstatGet),
        "fd_fdstat_set_flags" => ([0], FdstatSetFlags),
        "fd_filestat_get" => ([0], FilestatGet),
        "fd_renumber" => ([], (_, _, _, _) => Badf),
        "fd_prestat_get" or "fd_prestat_dir_name" => ([0], (_, _, _, _) => Badf),
        "fd_seek" or "fd_tell" or "fd_pread" or "fd_pwrite" or "fd_advise" or "fd_allocate" => ([0], (_, _, _, _) => SPipe),
        "fd_datasync" or "fd_sync" or "fd_filestat_set_size" or "fd_filestat_set_times" => ([0], (_, _, _, _) => Inval),
        "fd_fdstat_set_rights" => ([0], (_, _, _, _) => NotSup), // Wasmtime's answer for files and directories: rights are not kept
        "path_link" => ([0, 4], (_, _, _, _) => NotDir),
        "path_rename" => ([0, 3], (_, _, _, _) => NotDir),
        "path_symlink" => ([2], (_, _, _, _) => NotDir),
        _ => ([0], (_, _, _, _) => NotDir), // fd_readdir, path_*
    };

    // fd_read / fd_write: (fd, iovs, iovs_len, *n) as recv / send without flags
    private static int Read(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args) =>
        Transfer(table, guest, socket, args, write: false);

    private static int Write(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args) =>
        Transfer(table, guest, socket, args, write: true);

    private static unsafe int Transfer(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args, bool write)
    {
        uint result = (uint)args[3].AsInt32();
        int count = WasiSockets.Gather(table, guest, (uint)args[1].AsInt32(), (uint)args[2].AsInt32(), out ulong wanted);
        if (count < 0)
            return -count;
        guest.Span(result, 4, 4);
        uint done;
        int errno = write
            ? WasiSockets.Transmit(table, socket, count, wanted, null, 0, out done)
            : WasiSockets.Receive(table, socket, count, wanted, 0, null, out done, out _);
        if (errno == Success)
            guest.SetU32(result, done);
        return errno;
    }

    private static byte FileType(GuestSocket socket) => socket.Stream ? FileTypeSocketStream : FileTypeSocketDgram;

    // fdstat (24 bytes, align 8): u8 filetype @0, u16 flags @2, u64 rights_base @8, u64 rights_inheriting @16
    private static int FdstatGet(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args)
    {
        var stat = guest.Span((uint)args[1].AsInt32(), 24, 8);
        stat.Clear();
        stat[0] = FileType(socket);
        BinaryPrimitives.WriteUInt16LittleEndian(stat[2..], (ushort)(socket.NonBlocking ? FdFlagNonBlock : 0));
        BinaryPrimitives.WriteUInt64LittleEndian(stat[8..], SocketRights);
        BinaryPrimitives.WriteUInt64LittleEndian(stat[16..], SocketRights);
        return Success;
    }

    private static int FdstatSetFlags(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args)
    {
        uint flags = (uint)args[1].AsInt32();
        if ((flags & ~(uint)FdFlagsAll) != 0)
            return Inval;
        socket.NonBlocking = (flags & FdFlagNonBlock) != 0; // the other flags mean nothing on a socket (Linux ignores them too)
        return Success;
    }

    // filestat (64 bytes, align 8): dev, ino, u8 filetype @16, nlink @24, size @32, atim, mtim, ctim — all 0 but the type
    private static int FilestatGet(SocketTable table, GuestView guest, GuestSocket socket, ReadOnlySpan<ValueBox> args)
    {
        var stat = guest.Span((uint)args[1].AsInt32(), 64, 8);
        stat.Clear();
        stat[16] = FileType(socket);
        return Success;
    }
}

using System.Buffers.Binary;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Our <c>fd_fdstat_get</c>: Wasmtime's, except that a guest whose stdio is a terminal
/// (<see cref="WasiSpec.StdioIsTerminal"/>) sees its stdio as a native process on a tty does — a character device
/// without seek/tell rights — which is what wasi-libc's <c>isatty()</c> asks. Wasmtime reports stdio opened from
/// a path as no terminal whatever the path is (our pty's slave), so without this a guest under <c>-t</c> would
/// believe it writes to a file (no line buffering, no prompts). Linked only for such guests (and in the socket
/// linker's fd shadows), see <see cref="WasmEngine.LinkerFor"/>.
/// </summary>
/// <remarks>
/// What is patched is the stdio stream, not a number: Wasmtime reports its stdio streams (and nothing it opens from
/// a path: files and directories have their type and seek rights) as filetype unknown without seek/tell rights.
/// So stdin renumbered to fd 7 is still the terminal, and a file renumbered onto fd 1 is a regular file.
/// </remarks>
internal static class WasiTerminal
{
    private const byte FileTypeUnknown = 0, FileTypeCharacterDevice = 2;
    private const ulong RightFdSeek = 1 << 2, RightFdTell = 1 << 5;

    internal static readonly ValueKind[] Parameters = [ValueKind.Int32, ValueKind.Int32];
    internal static readonly ValueKind[] Results = [ValueKind.Int32];

    /// <summary>Host function: (fd, *fdstat) → errno.</summary>
    public static void FdstatGet(Caller caller, ReadOnlySpan<ValueBox> args, Span<ValueBox> results)
    {
        var instance = caller.GetData() as WasmInstance
            ?? throw new InvalidOperationException("fd_fdstat_get: the store belongs to no WasmInstance");
        var memory = caller.GetMemory("memory")
            ?? throw new WasiTrapException("fd_fdstat_get: the module exports no memory named \"memory\"");
        int errno = instance.OriginalFdstat(caller.Store, memory).Invoke(args) is int e ? e
            : throw new InvalidOperationException("fd_fdstat_get: unexpected result from Wasmtime's implementation");
        Patch(instance, errno, (uint)args[1].AsInt32(), memory);
        results[0] = errno;
    }

    /// <summary>After Wasmtime's fd_fdstat_get wrote <paramref name="stat"/>: a terminal's stdio stream as a tty.</summary>
    public static void Patch(WasmInstance instance, int errno, uint stat, Memory memory)
    {
        if (errno != 0 || !instance.Spec.StdioIsTerminal)
            return;
        // fdstat (24 bytes): u8 filetype @0, u16 flags @2, u64 rights_base @8, u64 rights_inheriting @16.
        // Wasmtime wrote it, so it is in bounds.
        var span = memory.GetSpan<byte>(checked((int)stat), 24);
        var rights = BinaryPrimitives.ReadUInt64LittleEndian(span[8..]);
        if (span[0] != FileTypeUnknown || (rights & (RightFdSeek | RightFdTell)) != 0)
            return; // not one of Wasmtime's stdio streams
        span[0] = FileTypeCharacterDevice;
    }
}

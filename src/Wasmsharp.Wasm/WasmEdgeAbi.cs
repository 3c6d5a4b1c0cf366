namespace Wasmsharp.Wasm;

/// <summary>
/// Numbers of WasmEdge's WASI preview 1 socket extension (WasmEdge thirdparty/wasi/api.hpp, lib/host/wasi):
/// WASI errnos, flags, socket option names and the layouts guests pass. Values, not behaviour.
/// </summary>
internal static class WasmEdgeAbi
{
    // __wasi_errno_t (u16). 77–87 are WasmEdge's getaddrinfo codes.
    public const int Success = 0, TooBig = 1, Acces = 2, AddrInUse = 3, AddrNotAvail = 4, AfNoSupport = 5, Again = 6,
        Already = 7, Badf = 8, ConnAborted = 13, ConnRefused = 14, ConnReset = 15, Fault = 21, InProgress = 26,
        Intr = 27, Inval = 28, Io = 29, IsConn = 30, Loop = 32, MFile = 33, NoMem = 48, NoSys = 52, NotConn = 53,
        NotDir = 54, NotSock = 57, NotSup = 58, Pipe = 64, SPipe = 70, TimedOut = 73;
    public const int AiBadFlag = 79, AiFamily = 81, AiMemory = 82, AiNoName = 84, AiService = 85;

    // __wasi_address_family_t (u8)
    public const byte FamilyUnspec = 0, FamilyInet4 = 1, FamilyInet6 = 2, FamilyUnix = 3;

    // __wasi_sock_type_t (u8)
    public const byte SockAny = 0, SockDgram = 1, SockStream = 2;

    // __wasi_protocol_t (u8)
    public const byte ProtoIp = 0, ProtoTcp = 1, ProtoUdp = 2;

    // __wasi_aiflags_t (u16)
    public const ushort AiPassive = 1, AiCanonName = 2, AiNumericHost = 4, AiNumericServ = 8, AiAllFlags = 0x7f;

    // __wasi_riflags_t (u16), __wasi_roflags_t (u16), __wasi_sdflags_t (u8)
    public const int RecvPeek = 1, RecvWaitAll = 2, RecvDataTruncated = 1;
    public const int ShutRd = 1, ShutWr = 2;

    // __wasi_fdflags_t (u16); only NONBLOCK means something on a socket
    public const int FdFlagAppend = 1, FdFlagNonBlock = 4, FdFlagsAll = 0x1f;

    // __wasi_filetype_t (u8)
    public const byte FileTypeDirectory = 3, FileTypeSocketDgram = 5, FileTypeSocketStream = 6;

    public const ushort EventRwHangup = 1;

    /// <summary>WasmEdge's rights for a socket descriptor (VINode::sockOpen): sock_* bits 28–35, poll,
    /// fdstat_set_flags, read, write.</summary>
    public const ulong SocketRights = (0xffUL << 28) | (1UL << 27) | (1UL << 3) | (1UL << 1) | (1UL << 6);

    /// <summary>Most iovecs one call takes (WasmEdge's kIOVMax, Linux's IOV_MAX); more → EINVAL.</summary>
    public const int IovMax = 1024;

    /// <summary>Size of WasmEdge's address storage (u16 family, then the address) used by the V2 calls.</summary>
    public const int AddrStorageSize = 128;

    // WasmEdge's sock_opt_so_t (u32) → Linux SO_* (SOL_SOCKET); index = WasmEdge value.
    private static readonly int[] SocketOptions = [2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 18, 20, 21, 30, 25];
    public const int SoType = 1, SoError = 2, SoRcvTimeo = 11, SoSndTimeo = 12;

    /// <summary>Linux SO_* for WasmEdge's option number; false → EINVAL.</summary>
    public static bool TryLinuxOption(uint name, out int option)
    {
        option = name < SocketOptions.Length ? SocketOptions[name] : 0;
        return name < SocketOptions.Length;
    }

    /// <summary>WASI errno for a Linux errno (x86_64/aarch64 numbering).</summary>
    public static int FromLinux(int errno) => errno switch
    {
        1 => 63, 2 => 44, 3 => 71, 4 => Intr, 5 => Io, 6 => 60, 7 => TooBig, 8 => 45, 9 => Badf, 10 => 12,
        11 => Again, 12 => NoMem, 13 => Acces, 14 => Fault, 16 => 10, 17 => 20, 18 => 75, 19 => 43, 20 => NotDir,
        21 => 31, 22 => Inval, 23 => 41, 24 => MFile, 25 => 59, 26 => 74, 27 => 22, 28 => 51, 29 => SPipe,
        30 => 69, 31 => 34, 32 => Pipe, 33 => 18, 34 => 68, 35 => 16, 36 => 37, 37 => 46, 38 => NoSys, 39 => 55,
        40 => Loop, 42 => 49, 43 => 24, 67 => 47, 71 => 65, 72 => 36, 74 => 9, 75 => 61, 84 => 25,
        88 => NotSock, 89 => 17, 90 => 35, 91 => 67, 92 => 50, 93 => 66, 95 => NotSup, 97 => AfNoSupport,
        98 => AddrInUse, 99 => AddrNotAvail, 100 => 38, 101 => 40, 102 => 39, 103 => ConnAborted,
        104 => ConnReset, 105 => 42, 106 => IsConn, 107 => NotConn, 110 => TimedOut, 111 => ConnRefused,
        113 => 23, 114 => Already, 115 => InProgress, 116 => 72, 122 => 19, 125 => 11, 130 => 62, 131 => 56,
        _ => Io,
    };
}

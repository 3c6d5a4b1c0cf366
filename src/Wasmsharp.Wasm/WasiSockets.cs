using System.Buffers.Binary;
using System.Text;
using Wasmtime;
using static Wasmsharp.Wasm.LinuxSockets;
using static Wasmsharp.Wasm.WasmEdgeAbi;

namespace Wasmsharp.Wasm;

/// <summary>
/// WasmEdge's WASI preview 1 socket extension (<c>wasi_snapshot_preview1.sock_*</c>), with WasmEdge's
/// signatures, layouts and error codes (lib/host/wasi/wasifunc.cpp, inode-linux.cpp), on host sockets owned by
/// the instance's <see cref="SocketTable"/>.
/// </summary>
/// <remarks>
/// <para>Differences from WasmEdge, on purpose: a pointer out of bounds or misaligned traps (as Wasmtime's own
/// WASI functions do) where WasmEdge returns EFAULT/EADDRNOTAVAIL; sockets are refused (EACCES) unless
/// <see cref="WasiSpec.NetworkAccess"/>; AF_UNIX is refused (ENOSYS, as WasmEdge without --allow-af-unix);
/// name resolution never uses the host's resolver (see <see cref="NameResolver"/>). Kept from WasmEdge, quirks
/// included: V1 <c>sock_getlocaladdr/getpeeraddr</c> report the address type as 4 or 6, V2
/// <c>sock_recv_from</c> stores the peer's port as the network-order u16.</para>
/// <para>Every call runs on the guest thread and blocks it (poll(2), interruptible by Kill and Pause) unless the
/// guest made the socket non-blocking (then EAGAIN / EINPROGRESS).</para>
/// </remarks>
internal static unsafe class WasiSockets
{
    private delegate int SocketCall(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args);

    private static readonly Dictionary<(string Name, int Generation), SocketCall> Calls = new()
    {
        [("sock_open", 1)] = Open,
        [("sock_bind", 1)] = Bind,
        [("sock_connect", 1)] = Connect,
        [("sock_listen", 1)] = Listen,
        [("sock_accept", 1)] = (t, g, a) => Accept(t, g, U(a[0]), 0, U(a[1])),
        [("sock_accept", 2)] = (t, g, a) => Accept(t, g, U(a[0]), U(a[1]), U(a[2])),
        [("sock_recv", 1)] = Recv,
        [("sock_recv_from", 1)] = (t, g, a) => RecvFrom(t, g, a, v2: false),
        [("sock_recv_from", 2)] = (t, g, a) => RecvFrom(t, g, a, v2: true),
        [("sock_send", 1)] = Send,
        [("sock_send_to", 1)] = SendTo,
        [("sock_shutdown", 1)] = Shutdown,
        [("sock_getsockopt", 1)] = GetOption,
        [("sock_setsockopt", 1)] = SetOption,
        [("sock_getlocaladdr", 1)] = (t, g, a) => Name(t, g, U(a[0]), U(a[1]), U(a[2]), U(a[3]), peer: false),
        [("sock_getlocaladdr", 2)] = (t, g, a) => Name(t, g, U(a[0]), U(a[1]), null, U(a[2]), peer: false),
        [("sock_getpeeraddr", 1)] = (t, g, a) => Name(t, g, U(a[0]), U(a[1]), U(a[2]), U(a[3]), peer: true),
        [("sock_getpeeraddr", 2)] = (t, g, a) => Name(t, g, U(a[0]), U(a[1]), null, U(a[2]), peer: true),
        [("sock_getaddrinfo", 1)] = GetAddrInfo,
    };

    /// <summary>Names WasmEdge also exports with a "_v2" suffix (its newer generation).</summary>
    internal static readonly string[] V2Names =
        ["sock_open", "sock_bind", "sock_connect", "sock_listen", "sock_accept", "sock_recv", "sock_recv_from",
         "sock_send", "sock_send_to", "sock_getlocaladdr", "sock_getpeeraddr"];

    /// <summary>Defines every socket call in <paramref name="linker"/>, in the generations <paramref name="imports"/> chose.</summary>
    public static void Define(Linker linker, SocketImports imports)
    {
        foreach (var name in SocketImports.Signatures.Select(s => s.Name).Distinct())
        {
            DefineCall(linker, name, name, imports.GenerationOf(name));
            if (V2Names.Contains(name))
                DefineCall(linker, name + "_v2", name, Calls.ContainsKey((name, 2)) ? 2 : 1);
        }
    }

    private static void DefineCall(Linker linker, string exportName, string name, int generation)
    {
        var call = Calls[(name, generation)];
        int count = SocketImports.Signatures.First(s => s.Name == name && s.Generation == generation).Params;
        linker.DefineFunction("wasi_snapshot_preview1", exportName, (caller, args, results) =>
        {
            var (table, guest) = Enter(caller, exportName);
            results[0] = call(table, guest, args);
        }, Enumerable.Repeat(ValueKind.Int32, count).ToArray(), [ValueKind.Int32]);
    }

    internal static (SocketTable Table, GuestView Guest) Enter(Caller caller, string function)
    {
        var instance = caller.GetData() as WasmInstance
            ?? throw new InvalidOperationException($"{function}: the store belongs to no WasmInstance");
        var table = instance.Sockets ?? throw new InvalidOperationException($"{function}: the instance has no socket table");
        return (table, new GuestView(table.GuestMemory(caller, function), function));
    }

    private static uint U(ValueBox value) => (uint)value.AsInt32();

    private static int Lookup(SocketTable table, uint fd, out GuestSocket socket)
    {
        socket = table.Get(fd)!;
        return socket is null ? table.NotASocket(fd) : Success;
    }

    private static int Open(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        uint family = U(args[0]), type = U(args[1]), result = U(args[2]);
        guest.Span(result, 4, 4);
        if (family is not (FamilyInet4 or FamilyInet6 or FamilyUnix) || type is not (SockDgram or SockStream))
            return Inval;
        if (family == FamilyUnix)
            return NoSys;
        if (!table.Spec.NetworkAccess)
            return Acces;
        int errno = table.Reserve(out uint fd, out bool placeholder);
        if (errno != Success)
            return errno;
        int host = Socket(family == FamilyInet4 ? AF_INET : AF_INET6,
            (type == SockStream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (host < 0)
        {
            errno = LastError;
            table.Release(fd, placeholder);
            return FromLinux(errno);
        }
        table.Add(fd, new GuestSocket(host, type == SockStream) { Placeholder = placeholder });
        guest.SetU32(result, fd);
        return Success;
    }

    /// <summary>The guest address at <paramref name="pointer"/> as a native sockaddr in <paramref name="native"/>; its length, or −errno.</summary>
    private static int NativeAddress(GuestView guest, uint pointer, uint port, Span<byte> native)
    {
        if (!SocketAddress.TryParse(SocketAddress.Buffer(guest, pointer), out byte family, out var address))
            return -Inval;
        return SocketAddress.ToNative(family, address, (ushort)port, native);
    }

    /// <summary>Resolves (fd, *address, port) arguments: the socket and the native sockaddr; its length, or −errno.</summary>
    private static int Addressed(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args, Span<byte> native, out GuestSocket socket)
    {
        socket = null!;
        int length = NativeAddress(guest, U(args[1]), U(args[2]), native);
        if (length < 0)
            return length;
        int errno = Lookup(table, U(args[0]), out socket);
        return errno != Success ? -errno : length;
    }

    private static int Bind(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        Span<byte> native = stackalloc byte[SocketAddress.NativeSize];
        int length = Addressed(table, guest, args, native, out var socket);
        if (length < 0)
            return -length;
        fixed (byte* p = native)
            return LinuxSockets.Bind(socket.HostFd, p, (uint)length) == 0 ? Success : FromLinux(LastError);
    }

    private static int Listen(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        int errno = Lookup(table, U(args[0]), out var socket);
        if (errno != Success)
            return errno;
        return LinuxSockets.Listen(socket.HostFd, args[1].AsInt32()) == 0 ? Success : FromLinux(LastError);
    }

    private static int Connect(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        Span<byte> native = stackalloc byte[SocketAddress.NativeSize];
        int length = Addressed(table, guest, args, native, out var socket);
        if (length < 0)
            return -length;
        int errno;
        fixed (byte* p = native)
            if (LinuxSockets.Connect(socket.HostFd, p, (uint)length) == 0)
                return Success;
        errno = LastError;
        if (errno != EINPROGRESS || socket.NonBlocking)
            return FromLinux(errno);
        if (!table.WaitFor(socket, POLLOUT, socket.SendTimeout))
            return InProgress; // SO_SNDTIMEO passed, as Linux reports it
        errno = PendingError(socket.HostFd);
        return errno == 0 ? Success : FromLinux(errno);
    }

    private static int Accept(SocketTable table, GuestView guest, uint fd, uint flags, uint result)
    {
        guest.Span(result, 4, 4);
        if ((flags & ~FdFlagsAll) != 0)
            return Inval;
        int errno = Lookup(table, fd, out var listener);
        if (errno != Success)
            return errno;
        // The number first: at the limit the connection stays queued, as with accept(2) and EMFILE.
        errno = table.Reserve(out uint accepted, out bool placeholder);
        if (errno != Success)
            return errno;
        while (true)
        {
            int host = Accept4(listener.HostFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (host >= 0)
            {
                table.Add(accepted, new GuestSocket(host, stream: true)
                {
                    Placeholder = placeholder,
                    NonBlocking = (flags & FdFlagNonBlock) != 0,
                });
                guest.SetU32(result, accepted);
                return Success;
            }
            errno = LastError;
            if (errno == EINTR || (errno == EAGAIN && !listener.NonBlocking && table.WaitFor(listener, POLLIN, listener.ReceiveTimeout)))
                continue;
            table.Release(accepted, placeholder);
            return FromLinux(errno);
        }
    }

    /// <summary>Reads the guest's iovec array (u32 buf, u32 len; ≤ IovMax) into the table's scratch iovecs;
    /// total length capped at 2³²−1 as WasmEdge does. Returns the count, or −errno.</summary>
    internal static int Gather(SocketTable table, GuestView guest, uint iovs, uint count, out ulong total)
    {
        total = 0;
        if (count > IovMax)
            return -Inval;
        var array = guest.Span(iovs, count * 8L, 4);
        for (int i = 0; i < (int)count; i++)
        {
            uint buffer = BinaryPrimitives.ReadUInt32LittleEndian(array[(i * 8)..]);
            ulong length = Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(array[(i * 8 + 4)..]), uint.MaxValue - total);
            total += length;
            table.IoVecs[i] = new IoVec { Base = guest.Pointer(buffer, length), Length = (nuint)length };
        }
        return (int)count;
    }

    private static void Advance(IoVec[] iovs, ref int first, int count, ulong bytes)
    {
        while (bytes > 0 && first < count)
        {
            if ((ulong)iovs[first].Length <= bytes)
            {
                bytes -= iovs[first].Length;
                first++;
            }
            else
            {
                iovs[first].Base += bytes;
                iovs[first].Length -= (nuint)bytes;
                bytes = 0;
            }
        }
    }

    /// <summary>recvmsg into the gathered iovecs, waiting while the guest's socket is blocking.
    /// <paramref name="name"/>: where the peer's sockaddr goes (or null).</summary>
    internal static int Receive(SocketTable table, GuestSocket socket, int count, ulong wanted, int flags, byte* name,
        out uint received, out bool truncated)
    {
        received = 0;
        truncated = false;
        bool waitAll = (flags & MSG_WAITALL) != 0 && socket.Stream && !socket.NonBlocking;
        int first = 0;
        fixed (IoVec* iovs = table.IoVecs)
        {
            while (true)
            {
                var message = new MsgHdr
                {
                    Name = name,
                    NameLength = name is null ? 0u : 128u,
                    Iov = iovs + first,
                    IovLength = (nuint)(count - first),
                };
                nint n = RecvMsg(socket.HostFd, &message, flags & ~MSG_WAITALL);
                if (n >= 0)
                {
                    received += (uint)n;
                    truncated |= (message.Flags & MSG_TRUNC) != 0;
                    if (n == 0 || !waitAll || received >= wanted)
                        return Success;
                    Advance(table.IoVecs, ref first, count, (ulong)n);
                    continue;
                }
                int errno = LastError;
                if (errno == EINTR || (errno == EAGAIN && !socket.NonBlocking && table.WaitFor(socket, POLLIN, socket.ReceiveTimeout)))
                    continue;
                return received > 0 ? Success : FromLinux(errno);
            }
        }
    }

    /// <summary>sendmsg of the gathered iovecs; on a blocking stream socket, until all is sent.</summary>
    internal static int Transmit(SocketTable table, GuestSocket socket, int count, ulong wanted, byte* name, uint nameLength, out uint sent)
    {
        sent = 0;
        int first = 0;
        fixed (IoVec* iovs = table.IoVecs)
        {
            while (true)
            {
                var message = new MsgHdr { Name = name, NameLength = nameLength, Iov = iovs + first, IovLength = (nuint)(count - first) };
                nint n = SendMsg(socket.HostFd, &message, MSG_NOSIGNAL);
                if (n >= 0)
                {
                    sent += (uint)n;
                    if (!socket.Stream || sent >= wanted)
                        return Success;
                    Advance(table.IoVecs, ref first, count, (ulong)n);
                    continue;
                }
                int errno = LastError;
                if (errno == EINTR || (errno == EAGAIN && !socket.NonBlocking && table.WaitFor(socket, POLLOUT, socket.SendTimeout)))
                    continue;
                return sent > 0 ? Success : FromLinux(errno);
            }
        }
    }

    private static int RecvFlags(uint flags) => ((flags & RecvPeek) != 0 ? MSG_PEEK : 0) | ((flags & RecvWaitAll) != 0 ? MSG_WAITALL : 0);

    private static int Recv(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        uint fd = U(args[0]), flags = U(args[3]), length = U(args[4]), outFlags = U(args[5]);
        guest.Span(length, 4, 4);
        guest.Span(outFlags, 2, 2);
        if ((flags & ~(uint)(RecvPeek | RecvWaitAll)) != 0)
            return Inval;
        int count = Gather(table, guest, U(args[1]), U(args[2]), out ulong wanted);
        if (count < 0)
            return -count;
        int errno = Lookup(table, fd, out var socket);
        if (errno != Success)
            return errno;
        errno = Receive(table, socket, count, wanted, RecvFlags(flags), null, out uint received, out bool truncated);
        if (errno == Success)
        {
            guest.SetU32(length, received);
            guest.SetU16(outFlags, (ushort)(truncated ? RecvDataTruncated : 0));
        }
        return errno;
    }

    // V1: (fd, iovs, n, addr, flags, *len, *oflags); V2: (fd, iovs, n, addr, flags, *port, *len, *oflags).
    private static int RecvFrom(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args, bool v2)
    {
        uint fd = U(args[0]), flags = U(args[4]);
        uint length = U(args[v2 ? 6 : 5]), outFlags = U(args[v2 ? 7 : 6]);
        var buffer = SocketAddress.Buffer(guest, U(args[3]));
        if (v2 && buffer.Length is not (4 or 16 or AddrStorageSize))
            return Inval;
        if ((flags & ~(uint)(RecvPeek | RecvWaitAll)) != 0)
            return Inval;
        int count = Gather(table, guest, U(args[1]), U(args[2]), out ulong wanted);
        if (count < 0)
            return -count;
        var port = v2 ? guest.Span(U(args[5]), 2, 2) : default;
        guest.Span(length, 4, 4);
        guest.Span(outFlags, 2, 2);
        int errno = Lookup(table, fd, out var socket);
        if (errno != Success)
            return errno;
        byte* peer = stackalloc byte[128];
        new Span<byte>(peer, 128).Clear();
        errno = Receive(table, socket, count, wanted, RecvFlags(flags), peer, out uint received, out bool truncated);
        if (errno != Success)
            return errno;
        if (SocketAddress.FromNative(new ReadOnlySpan<byte>(peer, 128), out byte family, out var address, out ushort peerPort))
        {
            var target = v2 && buffer.Length == AddrStorageSize ? buffer[2..] : buffer;
            if (target.Length >= address.Length)
                address.CopyTo(target);
            if (v2 && buffer.Length == AddrStorageSize)
                BinaryPrimitives.WriteUInt16LittleEndian(buffer, family);
            if (v2)
                BinaryPrimitives.WriteUInt16BigEndian(port, peerPort); // WasmEdge stores sin_port as is
        }
        guest.SetU32(length, received);
        guest.SetU16(outFlags, (ushort)(truncated ? RecvDataTruncated : 0));
        return Success;
    }

    // (fd, iovs, n, flags, *len)
    private static int Send(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args) =>
        SendMessage(table, guest, U(args[0]), U(args[1]), U(args[2]), U(args[3]), U(args[4]), default);

    // (fd, iovs, n, addr, port, flags, *len)
    private static int SendTo(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        Span<byte> native = stackalloc byte[SocketAddress.NativeSize];
        int nameLength = NativeAddress(guest, U(args[3]), U(args[4]), native);
        if (nameLength < 0)
            return -nameLength;
        return SendMessage(table, guest, U(args[0]), U(args[1]), U(args[2]), U(args[5]), U(args[6]), native[..nameLength]);
    }

    private static int SendMessage(SocketTable table, GuestView guest, uint fd, uint iovs, uint iovCount, uint flags, uint length, ReadOnlySpan<byte> name)
    {
        if (flags != 0)
            return Inval;
        int count = Gather(table, guest, iovs, iovCount, out ulong wanted);
        if (count < 0)
            return -count;
        guest.Span(length, 4, 4);
        int errno = Lookup(table, fd, out var socket);
        if (errno != Success)
            return errno;
        uint sent;
        fixed (byte* p = name) // null when empty: no destination
            errno = Transmit(table, socket, count, wanted, p, (uint)name.Length, out sent);
        if (errno == Success)
            guest.SetU32(length, sent);
        return errno;
    }

    private static int Shutdown(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        uint how = U(args[1]);
        if ((how & ~(uint)(ShutRd | ShutWr)) != 0)
            return Inval;
        int errno = Lookup(table, U(args[0]), out var socket);
        if (errno != Success)
            return errno;
        int linux = how switch { ShutWr => 1, ShutRd | ShutWr => 2, _ => 0 }; // 0 → SHUT_RD, as WasmEdge
        return LinuxSockets.Shutdown(socket.HostFd, linux) == 0 ? Success : FromLinux(LastError);
    }

    // (fd, level, name, *value, *size)
    private static int GetOption(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        uint sizePointer = U(args[4]);
        guest.Span(sizePointer, 4, 4);
        if (U(args[1]) != 0 || !TryLinuxOption(U(args[2]), out int option))
            return Inval;
        uint size = guest.U32(sizePointer);
        var value = guest.Span(U(args[3]), size);
        int errno = Lookup(table, U(args[0]), out var socket);
        if (errno != Success)
            return errno;
        fixed (byte* p = value)
            if (GetSockOpt(socket.HostFd, SOL_SOCKET, option, p, &size) != 0)
                return FromLinux(LastError);
        if (U(args[2]) is SoError or SoType && size == 4)
        {
            int raw = BinaryPrimitives.ReadInt32LittleEndian(value);
            int converted = U(args[2]) == SoError ? (raw == 0 ? 0 : FromLinux(raw))
                : raw switch { SOCK_STREAM => SockStream, SOCK_DGRAM => SockDgram, _ => SockAny };
            BinaryPrimitives.WriteInt32LittleEndian(value, converted);
        }
        guest.SetU32(sizePointer, size);
        return Success;
    }

    // (fd, level, name, *value, size)
    private static int SetOption(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        uint name = U(args[2]);
        if (U(args[1]) != 0 || !TryLinuxOption(name, out int option))
            return Inval;
        var value = guest.Span(U(args[3]), U(args[4]));
        int errno = Lookup(table, U(args[0]), out var socket);
        if (errno != Success)
            return errno;
        fixed (byte* p = value)
            if (SetSockOpt(socket.HostFd, SOL_SOCKET, option, p, (uint)value.Length) != 0)
                return FromLinux(LastError);
        // The host socket never blocks: timeouts are kept here and applied to our waits.
        if (name is SoRcvTimeo or SoSndTimeo && value.Length >= 12)
        {
            long seconds = BinaryPrimitives.ReadInt64LittleEndian(value);
            long micros = BinaryPrimitives.ReadInt32LittleEndian(value[8..]);
            long ticks = (long)Math.Min(long.MaxValue / 2.0, (seconds * 1_000_000.0 + micros) * System.Diagnostics.Stopwatch.Frequency / 1e6);
            if (name == SoRcvTimeo)
                socket.ReceiveTimeout = Math.Max(0, ticks);
            else
                socket.SendTimeout = Math.Max(0, ticks);
        }
        return Success;
    }

    /// <summary>sock_getlocaladdr / sock_getpeeraddr. V1 (<paramref name="typePointer"/> given): a 4- or 16-byte
    /// buffer, type 4 or 6. V2: 128-byte storage with the WASI family. Port: u32, host order.</summary>
    private static int Name(SocketTable table, GuestView guest, uint fd, uint addressPointer, uint? typePointer, uint portPointer, bool peer)
    {
        var buffer = SocketAddress.Buffer(guest, addressPointer);
        if (typePointer is { } t)
            guest.Span(t, 4, 4);
        guest.Span(portPointer, 4, 4);
        if (typePointer is null ? buffer.Length != AddrStorageSize : buffer.Length is not (4 or 16))
            return Inval;
        int errno = Lookup(table, fd, out var socket);
        if (errno != Success)
            return errno;
        byte* native = stackalloc byte[128];
        uint length = 128;
        int result = peer ? GetPeerName(socket.HostFd, native, &length) : GetSockName(socket.HostFd, native, &length);
        if (result != 0)
            return FromLinux(LastError);
        if (!SocketAddress.FromNative(new ReadOnlySpan<byte>(native, 128), out byte family, out var address, out ushort port))
            return NoSys;
        var target = typePointer is null ? buffer[2..] : buffer;
        if (target.Length < address.Length)
            return NoMem;
        address.CopyTo(target);
        if (typePointer is { } type)
            guest.SetU32(type, family == FamilyInet4 ? 4u : 6u);
        else
            BinaryPrimitives.WriteUInt16LittleEndian(buffer, family);
        guest.SetU32(portPointer, port);
        return Success;
    }

    private static string GuestString(GuestView guest, uint pointer, uint length)
    {
        var bytes = guest.Span(pointer, length);
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? bytes[..end] : bytes);
    }

    // (node, node_len, service, service_len, *hints, *res (→ first addrinfo), max, *res_len)
    private static int GetAddrInfo(SocketTable table, GuestView guest, ReadOnlySpan<ValueBox> args)
    {
        string node = GuestString(guest, U(args[0]), U(args[1]));
        string service = GuestString(guest, U(args[2]), U(args[3]));
        var hints = guest.Span(U(args[4]), 28, 4);
        uint first = guest.U32(U(args[5]));
        uint max = U(args[6]), resultLength = U(args[7]);
        guest.Span(resultLength, 4, 4);
        if (node.Length == 0 && service.Length == 0)
            return AiNoName;
        if (max < 1)
            return AiMemory;
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(hints);
        byte family = hints[2], socketType = hints[3], protocol = hints[4];
        if ((flags & ~AiAllFlags) != 0 || ((flags & AiCanonName) != 0 && node.Length == 0))
            return AiBadFlag;
        if (family > FamilyInet6)
            return AiFamily;
        if (protocol > ProtoUdp || socketType > SockStream)
            return NoSys;
        int errno = NameResolver.Resolve(node, service, flags, family, table.Spec.HostsFile, table.Dns, out var addresses, out ushort port);
        if (errno != Success)
            return errno;

        byte[] types = socketType != SockAny ? [socketType]
            : protocol == ProtoTcp ? [SockStream] : protocol == ProtoUdp ? [SockDgram] : [SockStream, SockDgram];
        uint written = 0, next = first;
        foreach (var (addressFamily, address) in addresses)
        {
            foreach (var type in types)
            {
                if (written == max)
                    break;
                WriteAddrInfo(guest, next, flags, addressFamily, address, type, port);
                next = guest.U32(next + 24);
                written++;
            }
        }
        guest.SetU32(resultLength, written);
        return Success;
    }

    // __wasi_addrinfo_t (28 bytes): u16 flags @0, u8 family @2, u8 socktype @3, u8 protocol @4, u32 addrlen @8,
    // u32 *addr @12, u32 *canonname @16, u32 canonname_len @20, u32 *next @24. __wasi_sockaddr_t (12): u8 family @0,
    // u32 sa_data_len @4, u32 *sa_data @8; sa_data = the Linux sockaddr from sin_port on (14 or 26 bytes).
    private static void WriteAddrInfo(GuestView guest, uint pointer, ushort flags, byte family, byte[] address, byte type, ushort port)
    {
        var info = guest.Span(pointer, 28, 4);
        BinaryPrimitives.WriteUInt16LittleEndian(info, flags);
        info[2] = family;
        info[3] = type;
        info[4] = type == SockStream ? ProtoTcp : ProtoUdp;
        BinaryPrimitives.WriteUInt32LittleEndian(info[8..], family == FamilyInet4 ? 16u : 28u);
        BinaryPrimitives.WriteUInt32LittleEndian(info[20..], 0);
        var sockaddr = guest.Span(BinaryPrimitives.ReadUInt32LittleEndian(info[12..]), 12, 4);
        int dataLength = family == FamilyInet4 ? 14 : 26;
        sockaddr[0] = family;
        BinaryPrimitives.WriteUInt32LittleEndian(sockaddr[4..], (uint)dataLength);
        var data = guest.Span(BinaryPrimitives.ReadUInt32LittleEndian(sockaddr[8..]), dataLength);
        Span<byte> native = stackalloc byte[SocketAddress.NativeSize];
        SocketAddress.ToNative(family, address, port, native);
        native.Slice(2, dataLength).CopyTo(data);
    }
}

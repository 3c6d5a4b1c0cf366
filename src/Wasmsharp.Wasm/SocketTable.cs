using System.Buffers.Binary;
using System.Diagnostics;
using Wasmtime;
using static Wasmsharp.Wasm.LinuxSockets;

namespace Wasmsharp.Wasm;

/// <summary>One guest socket: a non-blocking host socket plus what the guest asked for.</summary>
internal sealed class GuestSocket(int hostFd, bool stream)
{
    public int HostFd { get; } = hostFd;
    public bool Stream { get; } = stream;

    /// <summary>The guest's O_NONBLOCK (the host socket is always non-blocking).</summary>
    public bool NonBlocking { get; set; }

    /// <summary>SO_RCVTIMEO / SO_SNDTIMEO as Stopwatch ticks; 0 = none.</summary>
    public long ReceiveTimeout { get; set; }
    public long SendTimeout { get; set; }

    /// <summary>Whether the number is held in Wasmtime's table by a placeholder directory (see <see cref="SocketTable"/>).</summary>
    public bool Placeholder { get; set; }
}

/// <summary>
/// A guest's sockets, by WASI descriptor number, and the means to wait on them on the guest thread.
/// </summary>
/// <remarks>
/// <para><b>Numbers.</b> A socket's number is reserved in Wasmtime's own descriptor table, so numbers never
/// collide and interleave with files as a POSIX program expects (lowest-ish, under FD_SETSIZE): Wasmtime's
/// original <c>path_open</c> opens "." as a directory relative to any directory descriptor the guest holds
/// (a preopen, usually), through a scratch trampoline with its own memory; the number it returns is the
/// socket's, and that placeholder directory is closed with the socket. Our shadows of the fd_* functions look
/// here first, so the guest never sees the placeholder. With no directory descriptor at all (no preopens, or
/// the guest closed them), Wasmtime can create no descriptor any more, so we number the socket ourselves:
/// the lowest number ≥ 3 that neither Wasmtime nor we use (no placeholder; <c>fd_renumber</c> between such a
/// socket and a Wasmtime descriptor then fails with ENOTSUP).</para>
/// <para><b>Limit.</b> <see cref="WasiSpec.DescriptorLimit"/> acts like RLIMIT_NOFILE, for files and sockets
/// together (<see cref="GuestDescriptors"/>): a socket whose number would be ≥ the limit is not created (EMFILE).</para>
/// <para><b>Waiting.</b> Blocking guest calls wait with poll(2) on the socket(s) and an eventfd that
/// <see cref="WasmInstance"/> signals on Kill, Pause and Resume: a kill ends the wait at once, a pause holds the
/// guest in <see cref="WasmInstance.WaitUntil"/> until resumed. Everything runs on the guest thread, so every
/// socket is created in that thread's network namespace.</para>
/// </remarks>
internal sealed class SocketTable : IDisposable
{
    private const int ScratchFd = 8, ScratchFdstat = 16, ScratchPoll = 64;

    private readonly WasmInstance instance;
    private readonly WasiOriginals originals;
    private readonly Store store;
    private readonly Dictionary<int, GuestSocket> sockets = [];
    private readonly int wakeFd = NewEventFd();
    private Instance? scratch;
    private Instance? delegates;
    private readonly Dictionary<string, Function> originalFunctions = new(StringComparer.Ordinal);
    private int directoryFd = -1; // last directory descriptor a placeholder was opened under
    private bool disposed;

    public SocketTable(WasmInstance instance, WasiOriginals originals, Store store, WasiSpec spec)
    {
        this.instance = instance;
        this.originals = originals;
        this.store = store;
        Spec = spec;
    }

    public WasiSpec Spec { get; }

    public WasmInstance Instance => instance;

    /// <summary>The container's DNS servers (its resolv.conf, read at the first lookup); null = none.</summary>
    public DnsClient? Dns
    {
        get
        {
            if (!dnsRead)
            {
                dns = DnsClient.Read(Spec.ResolvConf) is { } config ? new DnsClient(this, config) : null;
                dnsRead = true;
            }
            return dns;
        }
    }
    private DnsClient? dns;
    private bool dnsRead;

    /// <summary>Scratch iovec array for one call (≤ <see cref="WasmEdgeAbi.IovMax"/> entries).</summary>
    public IoVec[] IoVecs { get; } = new IoVec[WasmEdgeAbi.IovMax];

    public int Count => sockets.Count;

    public GuestSocket? Get(uint fd) => fd <= int.MaxValue && sockets.TryGetValue((int)fd, out var s) ? s : null;

    /// <summary>The guest's "memory" export, looked up at its first host call (it stays the same object).</summary>
    public Memory GuestMemory(Caller caller, string function) =>
        guestMemory ??= caller.GetMemory("memory") ?? throw new WasiTrapException($"{function}: the module exports no memory named \"memory\"");
    private Memory? guestMemory;

    /// <summary>Wasmtime's own <paramref name="name"/> acting on the guest memory (for the fd_* shadows).</summary>
    public Function Original(Memory memory, string name)
    {
        if (!originalFunctions.TryGetValue(name, out var function))
        {
            delegates ??= originals.MakeDelegates(store, memory);
            function = delegates.GetFunction(name) ?? throw new InvalidOperationException($"the fd trampoline exports no {name}");
            originalFunctions[name] = function;
        }
        return function;
    }

    private Instance Scratch => scratch ??= originals.MakeScratch(store);

    // The scratch trampoline's exports, looked up once: a lookup by name costs more than the call on a busy
    // server's accept path (a reserve and a close per connection).
    private Function ScratchFunction(ref Function? cached, string name) =>
        cached ??= Scratch.GetFunction(name) ?? throw new InvalidOperationException($"the scratch trampoline exports no {name}");
    private Function? reserveFunction, closeFunction, fdstatFunction, pollFunction;
    private Memory ScratchMemoryExport => scratchMemory ??= Scratch.GetMemory("memory") ?? throw new InvalidOperationException("scratch trampoline without memory");
    private Memory? scratchMemory;

    /// <summary>The scratch trampoline's own memory (subscriptions and events of delegated polls).</summary>
    public Memory ScratchMemory(ulong bytes)
    {
        var memory = ScratchMemoryExport;
        ulong need = ScratchPoll + bytes;
        long length = memory.GetLength();
        if ((ulong)length < need)
            memory.Grow((long)((need - (ulong)length + 65535) / 65536));
        return memory;
    }

    public static int ScratchPollOffset => ScratchPoll;

    /// <summary>Wasmtime's original poll_oneoff on subscriptions written in the scratch memory.</summary>
    public int ScratchPollOneoff(uint subscriptions, uint events, uint count, uint nevents) =>
        (int)ScratchFunction(ref pollFunction, "poll_oneoff").Invoke([(int)subscriptions, (int)events, (int)count, (int)nevents])!;

    /// <summary>Wasmtime's fd_fdstat_get on <paramref name="fd"/>: its errno, and the filetype when it succeeds.</summary>
    public int WasmtimeFdstat(uint fd, out byte filetype)
    {
        int errno = (int)ScratchFunction(ref fdstatFunction, "fdstat").Invoke([(int)fd])!;
        filetype = errno == 0 ? ScratchMemoryExport.GetSpan(ScratchFdstat, 1)[0] : (byte)0;
        return errno;
    }

    /// <summary>Errno for a socket call on <paramref name="fd"/>, which is not a socket: EBADF or ENOTSOCK.</summary>
    public int NotASocket(uint fd) => WasmtimeFdstat(fd, out _) == WasmEdgeAbi.Badf ? WasmEdgeAbi.Badf : WasmEdgeAbi.NotSock;

    /// <summary>Reserves a descriptor number for a socket about to be made; errno (EMFILE at the limit) or 0.</summary>
    public int Reserve(out uint fd, out bool placeholder)
    {
        fd = 0;
        placeholder = false;
        int errno = ReservePlaceholder(out fd);
        if (errno == WasmEdgeAbi.Badf)
            errno = ReserveOwn(out fd); // no directory descriptor left: Wasmtime cannot allocate any more
        else
            placeholder = errno == 0;
        if (errno != 0)
            return errno;
        if (instance.Descriptors.AdmitSocket(fd) is var refused and not 0)
        {
            ReleaseNumber(fd, placeholder);
            return refused;
        }
        return 0;
    }

    private int ReservePlaceholder(out uint fd)
    {
        fd = 0;
        var reserve = ScratchFunction(ref reserveFunction, "reserve");
        for (int attempt = 0; attempt < 2; attempt++)
        {
            if (directoryFd < 0 && !FindDirectory())
                return WasmEdgeAbi.Badf;
            int errno = (int)reserve.Invoke([directoryFd])!;
            if (errno == 0)
            {
                fd = BinaryPrimitives.ReadUInt32LittleEndian(ScratchMemoryExport.GetSpan(ScratchFd, 4));
                return 0;
            }
            if (errno != WasmEdgeAbi.Badf && errno != WasmEdgeAbi.NotDir)
                return errno;
            directoryFd = -1; // the guest closed or replaced it: look again
        }
        return WasmEdgeAbi.Badf;
    }

    // Wasmtime numbers densely, so the first gap of a few numbers ends the search.
    private bool FindDirectory()
    {
        int misses = 0;
        for (uint fd = 3; fd < 1 << 20 && misses < 64; fd++)
        {
            if (sockets.ContainsKey((int)fd))
                continue;
            int errno = WasmtimeFdstat(fd, out byte type);
            if (errno == WasmEdgeAbi.Badf)
            {
                misses++;
                continue;
            }
            misses = 0;
            if (errno == 0 && type == WasmEdgeAbi.FileTypeDirectory)
            {
                directoryFd = (int)fd;
                return true;
            }
        }
        return false;
    }

    private int ReserveOwn(out uint fd)
    {
        for (fd = 3; fd < int.MaxValue; fd++)
            if (!sockets.ContainsKey((int)fd) && WasmtimeFdstat(fd, out _) == WasmEdgeAbi.Badf)
                return 0;
        return WasmEdgeAbi.MFile;
    }

    /// <summary>Gives back a number reserved and not used.</summary>
    public void Release(uint fd, bool placeholder)
    {
        ReleaseNumber(fd, placeholder);
        instance.Descriptors.SocketGone();
    }

    private void ReleaseNumber(uint fd, bool placeholder)
    {
        if (placeholder)
            _ = ScratchFunction(ref closeFunction, "close").Invoke([(int)fd]);
    }

    public void Add(uint fd, GuestSocket socket) => sockets[(int)fd] = socket;

    /// <summary>Closes the socket and releases its number (fd_close).</summary>
    public int Close(uint fd)
    {
        if (!sockets.Remove((int)fd, out var socket))
            return WasmEdgeAbi.Badf;
        LinuxSockets.Close(socket.HostFd);
        Release(fd, socket.Placeholder);
        return 0;
    }

    /// <summary>fd_renumber where at least one side is a socket (Wasmtime's rules: both must be open).</summary>
    public int Renumber(uint from, uint to, Func<uint, uint, int> wasmtimeRenumber)
    {
        var moving = Get(from);
        var target = Get(to);
        if (from == to)
            return 0;
        if ((moving?.Placeholder ?? true) && (target?.Placeholder ?? true))
        {
            int errno = wasmtimeRenumber(from, to); // moves the placeholder or file, closing what was at `to`
            if (errno != 0)
                return errno;
            instance.Descriptors.Renumbered(from, to);
        }
        else if (moving is null || target is null)
        {
            // A self-numbered socket has no entry in Wasmtime's table for a file to be moved over or onto.
            uint other = moving is null ? from : to;
            return WasmtimeFdstat(other, out _) == WasmEdgeAbi.Badf ? WasmEdgeAbi.Badf : WasmEdgeAbi.NotSup;
        }
        else
        {
            // Two sockets, one self-numbered: `to` keeps its kind of number, `from`'s is given back.
            ReleaseNumber(from, moving.Placeholder);
            moving.Placeholder = target.Placeholder;
        }
        if (target is not null)
        {
            sockets.Remove((int)to);
            LinuxSockets.Close(target.HostFd);
            instance.Descriptors.SocketGone();
        }
        if (moving is not null)
        {
            sockets.Remove((int)from);
            sockets[(int)to] = moving;
        }
        return 0;
    }

    /// <summary>Wakes a wait in <see cref="Wait"/>. Called under the instance's lock (as is Dispose).</summary>
    public void Wake()
    {
        if (!disposed)
            Signal(wakeFd);
    }

    /// <summary>Waits for <paramref name="events"/> on one socket; false when <paramref name="timeoutTicks"/> (0 = none) passed.</summary>
    public unsafe bool WaitFor(GuestSocket socket, short events, long timeoutTicks)
    {
        long deadline = timeoutTicks > 0 ? Stopwatch.GetTimestamp() + timeoutTicks : long.MaxValue;
        Span<PollFd> fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = socket.HostFd, Events = events };
        return Wait(fds, deadline);
    }

    /// <summary>
    /// Waits until some of <paramref name="fds"/> (all but the last entry, which is ours) has events, or the
    /// Stopwatch <paramref name="deadline"/> passes (false). Throws <see cref="GuestKilledException"/> when the
    /// guest is killed; holds while it is paused.
    /// </summary>
    public unsafe bool Wait(Span<PollFd> fds, long deadline)
    {
        fds[^1] = new PollFd { Fd = wakeFd, Events = POLLIN };
        while (true)
        {
            Drain(wakeFd);
            instance.WaitUntil(long.MinValue); // killed → throws; paused → holds until resumed
            long now = Stopwatch.GetTimestamp();
            int timeout = deadline == long.MaxValue ? -1
                : deadline <= now ? 0 : (int)Math.Min(int.MaxValue, GuestClock.CeilMilliseconds(deadline - now));
            for (int i = 0; i < fds.Length; i++)
                fds[i].Revents = 0;
            int n;
            fixed (PollFd* p = fds)
                n = LinuxSockets.Poll(p, (nuint)fds.Length, timeout);
            if (n < 0)
            {
                if (LastError == EINTR)
                    continue;
                throw new IOException($"poll failed: errno {LastError}");
            }
            for (int i = 0; i < fds.Length - 1; i++)
                if (fds[i].Revents != 0)
                    return true;
            if (fds[^1].Revents != 0)
                continue;
            if (timeout >= 0 && Stopwatch.GetTimestamp() >= deadline)
                return false;
        }
    }

    /// <summary>Closes every host socket and the wake-up descriptor (the instance has ended). Placeholders go with the store.</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        foreach (var socket in sockets.Values)
            LinuxSockets.Close(socket.HostFd);
        sockets.Clear();
        LinuxSockets.Close(wakeFd);
    }
}

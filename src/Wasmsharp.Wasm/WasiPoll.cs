using System.Buffers.Binary;
using System.Diagnostics;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Our <c>wasi_snapshot_preview1.poll_oneoff</c>, shadowing Wasmtime's so that sleeps can be cut short by
/// <see cref="WasmInstance.Kill"/> and held by <see cref="WasmInstance.Pause"/>.
/// </summary>
/// <remarks>
/// <para><b>Clock-only subscriptions</b> (every sleep: wasi-libc nanosleep/sleep/usleep/clock_nanosleep,
/// Rust, Go, …) are handled here exactly as Wasmtime 50's preview1 implementation does
/// (crates/wasi/src/p1.rs): nsubscriptions == 0 → EINVAL; an unknown event type, clock id or flag bit →
/// EINVAL; PROCESS/THREAD_CPUTIME → EINVAL; REALTIME relative = relative, REALTIME absolute = "timeout −
/// wall-clock now" (saturating) as a relative wait; MONOTONIC absolute is against the guest's monotonic
/// clock (ns since its WASI context was made); timeouts too large to represent wait forever. The call waits
/// for the earliest deadline on the instance's lock (<see cref="WasmInstance.WaitUntil"/>), then reports one
/// event per subscription whose deadline has passed, in subscription order: userdata, errno 0, type clock,
/// fd_readwrite nbytes 0 and flags 0 (padding bytes are not written), and stores their count in
/// <c>nevents</c>. A subscription or event pointer that is misaligned or out of bounds traps, as in Wasmtime.
/// Killed while waiting → throws <see cref="GuestKilledException"/> (exit 128+signal); paused → stays in the
/// call until resumed, the sleep still counting wall-clock time.</para>
/// <para><b>Subscriptions with fd_read/fd_write</b> (alone or mixed with clocks: wasi-libc poll()/select(),
/// Go's netpoll) are delegated unchanged to Wasmtime's own poll_oneoff, so fd readiness, EBADF, the HANGUP
/// flag and nbytes stay exactly Wasmtime's. A host function cannot call it directly (WASI functions find
/// the guest memory through the caller's "memory" export, and a host-to-host call has no caller instance),
/// so each store gets, on first use, a tiny trampoline instance that imports the guest's memory and the
/// original function from a second, unshadowed linker and re-exports both. Wasmtime reports files and
/// stdout/stderr ready at once; only stdin that is a pipe/terminal waits for data. Such a call is not
/// interrupted by a kill or pause while it waits (closing the stdin pipe releases it); both take effect
/// as soon as it returns, before any guest code runs.</para>
/// <para><b>Subscriptions on sockets</b> (WasmEdge's socket extension) go to <see cref="SocketPoll"/>.</para>
/// </remarks>
internal static class WasiPoll
{
    internal const int SubscriptionSize = 48;
    internal const int EventSize = 32;

    private const int ErrnoSuccess = 0;
    private const int ErrnoInval = 28;

    private const byte EventTypeClock = 0;
    private const byte EventTypeFdWrite = 2;

    private const uint ClockRealtime = 0;
    private const uint ClockMonotonic = 1;
    private const uint ClockThreadCputime = 3;
    private const ushort SubclockAbstime = 1;

    // subscription: u64 userdata @0, u8 tag @8, payload @16 (union aligned to 8):
    //   clock: u32 id @16, u64 timeout @24, u64 precision @32, u16 flags @40; fd: u32 fd @16.
    // event: u64 userdata @0, u16 errno @8, u8 type @10, fd_readwrite { u64 nbytes @16, u16 flags @24 }.
    private const int SubTag = 8, SubClockId = 16, SubClockTimeout = 24, SubClockFlags = 40;
    private const int EvErrno = 8, EvType = 10, EvNbytes = 16, EvFlags = 24;

    internal static readonly ValueKind[] Parameters = [ValueKind.Int32, ValueKind.Int32, ValueKind.Int32, ValueKind.Int32];
    internal static readonly ValueKind[] Results = [ValueKind.Int32];

    /// <summary>Host function: (subscriptions, events, nsubscriptions, nevents*) → errno.</summary>
    public static void PollOneoff(Caller caller, ReadOnlySpan<ValueBox> args, Span<ValueBox> results)
    {
        var instance = caller.GetData() as WasmInstance
            ?? throw new InvalidOperationException("poll_oneoff: the store belongs to no WasmInstance");
        var memory = caller.GetMemory("memory")
            ?? throw new WasiTrapException("poll_oneoff: the module exports no memory named \"memory\"");
        results[0] = Poll(instance, caller.Store, memory,
            (uint)args[0].AsInt32(), (uint)args[1].AsInt32(), (uint)args[2].AsInt32(), (uint)args[3].AsInt32());
    }

    private static int Poll(WasmInstance instance, Store store, Memory memory, uint subscriptions, uint events, uint count, uint neventsPtr)
    {
        if (count == 0)
            return ErrnoInval; // "indefinite sleeping is not supported in p1"

        var guest = new GuestView(memory, "poll_oneoff");
        if (instance.Sockets is { } sockets && SocketPoll.Involves(sockets, guest, subscriptions, count))
            return SocketPoll.Poll(instance, sockets, guest, subscriptions, events, count, neventsPtr);
        var clocks = new ClockSnapshot(instance);
        long earliest = long.MaxValue;
        for (uint i = 0; i < count; i++)
        {
            var sub = guest.Span((ulong)subscriptions + (ulong)i * SubscriptionSize, SubscriptionSize, 8);
            byte tag = sub[SubTag];
            if (tag > EventTypeFdWrite)
                return ErrnoInval;
            if (tag != EventTypeClock)
                return Delegate(instance, store, memory, subscriptions, events, count, neventsPtr);
            if (!TryDeadline(sub, ref clocks, out long deadline))
                return ErrnoInval;
            earliest = Math.Min(earliest, deadline);
        }

        instance.WaitUntil(earliest); // throws when killed; holds while paused

        // Memory cannot have changed or grown: the (single-threaded) guest is blocked in this call.
        long now = Stopwatch.GetTimestamp();
        uint ready = 0;
        for (uint i = 0; i < count; i++)
        {
            var sub = guest.Span((ulong)subscriptions + (ulong)i * SubscriptionSize, SubscriptionSize, 8);
            TryDeadline(sub, ref clocks, out long deadline); // same snapshot → same deadline as above
            if (deadline > now)
                continue;
            var ev = guest.Span((ulong)events + (ulong)ready * EventSize, EventSize, 8);
            BinaryPrimitives.WriteUInt64LittleEndian(ev, BinaryPrimitives.ReadUInt64LittleEndian(sub));
            BinaryPrimitives.WriteUInt16LittleEndian(ev[EvErrno..], ErrnoSuccess);
            ev[EvType] = EventTypeClock;
            BinaryPrimitives.WriteUInt64LittleEndian(ev[EvNbytes..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(ev[EvFlags..], 0);
            ready++;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(guest.Span(neventsPtr, 4, 4), ready);
        return ErrnoSuccess;
    }

    /// <summary>Stopwatch timestamp at which a clock subscription fires; false → EINVAL.</summary>
    internal static bool TryDeadline(ReadOnlySpan<byte> sub, ref ClockSnapshot clocks, out long deadline)
    {
        deadline = 0;
        uint id = BinaryPrimitives.ReadUInt32LittleEndian(sub[SubClockId..]);
        ulong timeout = BinaryPrimitives.ReadUInt64LittleEndian(sub[SubClockTimeout..]);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(sub[SubClockFlags..]);
        if (id > ClockThreadCputime || (flags & ~SubclockAbstime) != 0)
            return false; // not a clockid / unknown flag bits
        bool absolute = (flags & SubclockAbstime) != 0;
        ulong wait;
        switch (id)
        {
            case ClockMonotonic:
                wait = absolute ? SaturatingSub(timeout, clocks.Monotonic) : timeout;
                break;
            case ClockRealtime when absolute:
                // Like Wasmtime: a relative wait of "timeout − wall-clock now", from the moment it was read.
                deadline = GuestClock.AddNanoseconds(clocks.RealtimeRead, SaturatingSub(timeout, clocks.Realtime));
                return true;
            case ClockRealtime:
                wait = timeout;
                break;
            default:
                return false; // CPU-time clocks cannot be waited on
        }
        deadline = GuestClock.AddNanoseconds(clocks.Start, wait);
        return true;
    }

    private static ulong SaturatingSub(ulong a, ulong b) => a > b ? a - b : 0;

    private static int Delegate(WasmInstance instance, Store store, Memory memory, uint subscriptions, uint events, uint count, uint neventsPtr)
    {
        var original = instance.OriginalPollOneoff(store, memory);
        var result = original.Invoke([(int)subscriptions, (int)events, (int)count, (int)neventsPtr]);
        instance.WaitUntil(long.MinValue); // killed or paused meanwhile: act before returning to guest code
        return result is int errno ? errno : throw new InvalidOperationException("poll_oneoff: unexpected result from Wasmtime's implementation");
    }

    /// <summary>The clocks as of one call (the wall clock read lazily, once, with the moment it was read).</summary>
    internal struct ClockSnapshot(WasmInstance instance)
    {
        private ulong? realtime;
        private long realtimeRead;

        /// <summary>Stopwatch timestamp of the call: relative timeouts count from here.</summary>
        public long Start { get; } = Stopwatch.GetTimestamp();

        /// <summary>The guest's monotonic clock at <see cref="Start"/>.</summary>
        public readonly ulong Monotonic => instance.GuestMonotonicNow(Start);

        /// <summary>The wall clock (ns since the epoch) at <see cref="RealtimeRead"/>.</summary>
        public ulong Realtime
        {
            get
            {
                if (realtime is null)
                {
                    realtimeRead = Stopwatch.GetTimestamp(); // before reading the wall clock: never wakes early
                    realtime = GuestClock.RealtimeNow();
                }
                return realtime.Value;
            }
        }

        public long RealtimeRead
        {
            get
            {
                _ = Realtime;
                return realtimeRead;
            }
        }
    }
}

/// <summary>Conversions between guest clock values (ns) and Stopwatch timestamps.</summary>
internal static class GuestClock
{
    private static readonly ulong Frequency = (ulong)Stopwatch.Frequency;

    public static ulong TicksToNanoseconds(ulong ticks) =>
        Frequency == 1_000_000_000 ? ticks : (ulong)UInt128.Min((UInt128)ticks * 1_000_000_000 / Frequency, ulong.MaxValue);

    /// <summary><paramref name="timestamp"/> + <paramref name="nanoseconds"/>, saturating at long.MaxValue ("never").</summary>
    public static long AddNanoseconds(long timestamp, ulong nanoseconds)
    {
        UInt128 ticks = Frequency == 1_000_000_000 ? nanoseconds : ((UInt128)nanoseconds * Frequency + 999_999_999) / 1_000_000_000;
        UInt128 sum = (UInt128)(ulong)Math.Max(timestamp, 0) + ticks;
        return sum >= long.MaxValue ? long.MaxValue : (long)(ulong)sum;
    }

    /// <summary>Stopwatch ticks rounded up to whole milliseconds.</summary>
    public static long CeilMilliseconds(long ticks)
    {
        long perMs = Math.Max(1, Stopwatch.Frequency / 1000);
        return ticks / perMs + (ticks % perMs != 0 ? 1 : 0);
    }

    /// <summary>Wall-clock now in ns since the Unix epoch (100 ns resolution, truncated: never ahead).</summary>
    public static ulong RealtimeNow() => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
}

/// <summary>A host function met an invalid guest pointer: the guest traps (as Wasmtime's WASI does).</summary>
internal sealed class WasiTrapException(string message) : Exception(message);

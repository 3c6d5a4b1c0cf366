using System.Buffers.Binary;
using System.Diagnostics;
using static Wasmsharp.Wasm.LinuxSockets;
using static Wasmsharp.Wasm.WasmEdgeAbi;

namespace Wasmsharp.Wasm;

/// <summary>
/// <c>poll_oneoff</c> when some subscription names a socket (see <see cref="WasiPoll"/> for the others).
/// </summary>
/// <remarks>
/// Clock subscriptions count as in <see cref="WasiPoll"/>; socket subscriptions wait with poll(2) (read: data,
/// a pending connection, EOF or an error; write: room to send), woken by Kill and Pause like every socket wait;
/// subscriptions on Wasmtime's descriptors (stdin, files, …) are checked with Wasmtime's own poll_oneoff and a
/// zero timeout, on the scratch trampoline's memory, every 10 ms while nothing else is ready (files are ready at
/// once; only a stdin pipe can make that slice matter). Events come out in subscription order: read nbytes =
/// FIONREAD (1 for a listening socket), write nbytes = free send buffer, flag HANGUP when the peer hung up.
/// </remarks>
internal static class SocketPoll
{
    private const uint MaxSubscriptions = 1 << 16;
    private const byte TagClock = 0, TagRead = 1, TagWrite = 2;
    private static readonly long Slice = Stopwatch.Frequency / 100;

    public static bool Involves(SocketTable table, GuestView guest, uint subscriptions, uint count)
    {
        for (uint i = 0; i < count; i++)
        {
            var sub = guest.Span(subscriptions + (ulong)i * WasiPoll.SubscriptionSize, WasiPoll.SubscriptionSize, 8);
            if (sub[8] is TagRead or TagWrite && table.Get(BinaryPrimitives.ReadUInt32LittleEndian(sub[16..])) is not null)
                return true;
        }
        return false;
    }

    public static int Poll(WasmInstance instance, SocketTable table, GuestView guest, uint subscriptions, uint events, uint count, uint neventsPointer)
    {
        if (count > MaxSubscriptions)
            return Inval;
        var clocks = new WasiPoll.ClockSnapshot(instance);
        var deadlines = new long[count];
        var sockets = new List<(uint Index, GuestSocket Socket, bool Write)>();
        var others = new List<uint>();
        long earliest = long.MaxValue;
        for (uint i = 0; i < count; i++)
        {
            var sub = Subscription(guest, subscriptions, i);
            deadlines[i] = long.MaxValue;
            switch (sub[8])
            {
                case TagClock:
                    if (!WasiPoll.TryDeadline(sub, ref clocks, out deadlines[i]))
                        return Inval;
                    earliest = Math.Min(earliest, deadlines[i]);
                    break;
                case TagRead or TagWrite:
                    if (table.Get(BinaryPrimitives.ReadUInt32LittleEndian(sub[16..])) is { } socket)
                        sockets.Add((i, socket, sub[8] == TagWrite));
                    else
                        others.Add(i);
                    break;
                default:
                    return Inval;
            }
        }
        guest.Span(events, count * (long)WasiPoll.EventSize, 8);
        guest.Span(neventsPointer, 4, 4);

        var fds = new PollFd[sockets.Count + 1];
        var otherEvents = new Dictionary<uint, byte[]>();
        while (true)
        {
            otherEvents.Clear();
            if (others.Count > 0)
                PollOthers(table, guest, subscriptions, others, otherEvents);
            for (int s = 0; s < sockets.Count; s++)
                fds[s] = new PollFd { Fd = sockets[s].Socket.HostFd, Events = sockets[s].Write ? POLLOUT : (short)(POLLIN | POLLRDHUP) };
            long now = Stopwatch.GetTimestamp();
            long until = otherEvents.Count > 0 ? now : others.Count > 0 ? Math.Min(earliest, now + Slice) : earliest;
            table.Wait(fds, until);
            now = Stopwatch.GetTimestamp();

            uint ready = 0;
            int next = 0;
            for (uint i = 0; i < count; i++)
            {
                var sub = Subscription(guest, subscriptions, i);
                var ev = guest.Span(events + (ulong)ready * WasiPoll.EventSize, WasiPoll.EventSize, 8);
                if (next < sockets.Count && sockets[next].Index == i)
                {
                    var (_, socket, write) = sockets[next];
                    short revents = fds[next++].Revents;
                    if (revents == 0)
                        continue;
                    long nbytes = write ? Writable(socket.HostFd) ?? 0 : Readable(socket.HostFd) ?? 1;
                    bool hangup = (revents & (POLLHUP | (write ? 0 : POLLRDHUP))) != 0;
                    WriteEvent(ev, sub, write ? TagWrite : TagRead, (ulong)nbytes, hangup);
                }
                else if (otherEvents.TryGetValue(i, out var other))
                {
                    other.CopyTo(ev);
                    sub[..8].CopyTo(ev); // the guest's userdata (we sent the index)
                }
                else if (sub[8] == TagClock && deadlines[i] <= now)
                {
                    WriteEvent(ev, sub, TagClock, 0, false);
                }
                else
                {
                    continue;
                }
                ready++;
            }
            if (ready > 0)
            {
                guest.SetU32(neventsPointer, ready);
                return Success;
            }
        }
    }

    private static Span<byte> Subscription(GuestView guest, uint subscriptions, uint index) =>
        guest.Span(subscriptions + (ulong)index * WasiPoll.SubscriptionSize, WasiPoll.SubscriptionSize, 8);

    private static void WriteEvent(Span<byte> ev, ReadOnlySpan<byte> sub, byte type, ulong nbytes, bool hangup)
    {
        ev.Clear();
        sub[..8].CopyTo(ev);
        ev[10] = type;
        BinaryPrimitives.WriteUInt64LittleEndian(ev[16..], nbytes);
        BinaryPrimitives.WriteUInt16LittleEndian(ev[24..], hangup ? EventRwHangup : (ushort)0);
    }

    /// <summary>Wasmtime's readiness of its own descriptors, now: their subscriptions (userdata = index) plus a
    /// zero-timeout clock, through Wasmtime's poll_oneoff on the scratch memory.</summary>
    private static void PollOthers(SocketTable table, GuestView guest, uint subscriptions, List<uint> others, Dictionary<uint, byte[]> found)
    {
        uint n = (uint)others.Count + 1;
        uint subs = (uint)SocketTable.ScratchPollOffset, evs = subs + n * WasiPoll.SubscriptionSize, nevents = evs + n * WasiPoll.EventSize;
        var memory = table.ScratchMemory(n * (ulong)(WasiPoll.SubscriptionSize + WasiPoll.EventSize) + 8);
        var scratch = memory.GetSpan(subs, (int)(nevents + 4 - subs));
        for (int k = 0; k < others.Count; k++)
        {
            var sub = scratch.Slice(k * WasiPoll.SubscriptionSize, WasiPoll.SubscriptionSize);
            Subscription(guest, subscriptions, others[k]).CopyTo(sub);
            BinaryPrimitives.WriteUInt64LittleEndian(sub, others[k]);
        }
        var clock = scratch.Slice(others.Count * WasiPoll.SubscriptionSize, WasiPoll.SubscriptionSize);
        clock.Clear(); // relative MONOTONIC, timeout 0
        clock[8] = TagClock;
        BinaryPrimitives.WriteUInt32LittleEndian(clock[16..], 1);
        if (table.ScratchPollOneoff(subs, evs, n, nevents) != Success)
            return;
        scratch = memory.GetSpan(subs, (int)(nevents + 4 - subs)); // the call may not move it, but re-read anyway
        uint got = BinaryPrimitives.ReadUInt32LittleEndian(scratch[(int)(nevents - subs)..]);
        for (uint e = 0; e < Math.Min(got, n); e++)
        {
            var ev = scratch.Slice((int)(evs - subs + e * WasiPoll.EventSize), WasiPoll.EventSize);
            if (ev[10] != TagClock)
                found[(uint)BinaryPrimitives.ReadUInt64LittleEndian(ev)] = ev.ToArray();
        }
    }
}

using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm;

/// <summary>
/// The host descriptors all guests of this process may hold together: the process's RLIMIT_NOFILE less a reserve
/// the host keeps for its own work (its RPCs, new guests' stdio and modules, metrics, reconnects), so no guest —
/// nor all of them together — can take the last descriptors the host needs.
/// </summary>
internal sealed class DescriptorPool
{
    /// <summary>The pool of this process, sized from its soft RLIMIT_NOFILE when first used.</summary>
    public static DescriptorPool Process => process.Value;
    private static readonly Lazy<DescriptorPool> process = new(() => new DescriptorPool(Native.OpenFileLimit()));

    private long held;

    public DescriptorPool(long processLimit)
    {
        // A quarter of a small limit, at most 1024: enough for the host's work, little of a large limit.
        Reserve = Math.Min(MaxReserve, Math.Max(0, processLimit) / 4);
        Size = Math.Max(0, processLimit - Reserve);
    }

    public const long MaxReserve = 1024;

    /// <summary>Descriptors the host keeps for itself.</summary>
    public long Reserve { get; }

    /// <summary>Descriptors guests may hold together.</summary>
    public long Size { get; }

    public long Held => Interlocked.Read(ref held);

    public bool TryTake(int count)
    {
        while (true)
        {
            long now = Interlocked.Read(ref held);
            if (now + count > Size)
                return false;
            if (Interlocked.CompareExchange(ref held, now + count, now) == now)
                return true;
        }
    }

    public void Give(int count) => Interlocked.Add(ref held, -count);
}

/// <summary>
/// What one guest holds beyond what it was given (stdio, preopens): the files it opened and its sockets, held to
/// its RLIMIT_NOFILE as the kernel holds a process — a new descriptor numbered at or above the limit is refused
/// with EMFILE — and to the process's <see cref="DescriptorPool"/>. Used on the guest's thread only (the pool is
/// shared and thread-safe); everything it holds goes back to the pool when the guest ends.
/// </summary>
internal sealed class GuestDescriptors(DescriptorPool pool, long? limit)
{
    private readonly HashSet<uint> files = [];
    private int socketDescriptors;

    /// <summary>The most descriptors (by number) the guest may hold: its limit, never more than the pool.</summary>
    public long Cap { get; } = Math.Min(limit is > 0 ? limit.Value : long.MaxValue, pool.Size);

    /// <summary>0, or EMFILE when a new descriptor numbered <paramref name="fd"/> (costing
    /// <paramref name="hostDescriptors"/> of the host's) may not be kept.</summary>
    public int Admit(uint fd, int hostDescriptors) =>
        fd >= Cap || !pool.TryTake(hostDescriptors) ? WasmEdgeAbi.MFile : WasmEdgeAbi.Success;

    /// <summary>After <see cref="Admit"/>: a file the guest opened (path_open) is held at <paramref name="fd"/>.</summary>
    public void FileOpened(uint fd)
    {
        if (!files.Add(fd))
            pool.Give(1); // (cannot happen: Wasmtime never hands out a number in use)
    }

    /// <summary>
    /// <see cref="Admit"/> for a socket about to be made at <paramref name="fd"/>; on success it is held until
    /// <see cref="SocketGone"/> (or the guest's end). Counted as two of the host's descriptors: the socket and the
    /// placeholder that holds its number in Wasmtime's table.
    /// </summary>
    public int AdmitSocket(uint fd)
    {
        int errno = Admit(fd, SocketCost);
        if (errno == WasmEdgeAbi.Success)
            socketDescriptors += SocketCost;
        return errno;
    }

    public void SocketGone()
    {
        socketDescriptors -= SocketCost;
        pool.Give(SocketCost);
    }

    private const int SocketCost = 2;

    /// <summary>fd_close succeeded on <paramref name="fd"/>.</summary>
    public void Closed(uint fd)
    {
        if (files.Remove(fd))
            pool.Give(1);
    }

    /// <summary>fd_renumber succeeded: what was at <paramref name="to"/> is closed, <paramref name="from"/> moved there.</summary>
    public void Renumbered(uint from, uint to)
    {
        if (from == to)
            return;
        Closed(to);
        if (files.Remove(from))
            files.Add(to);
    }

    /// <summary>The guest has ended: its store (and with it every file) and its sockets are gone.</summary>
    public void Release()
    {
        pool.Give(files.Count + socketDescriptors);
        files.Clear();
        socketDescriptors = 0;
    }
}

namespace Wasmsharp.Shim;

/// <summary>
/// Who may still come to a grouped shim (a pod's, or containers annotated io.containerd.runc.v2.group).
/// `start` finds the group's shim live and tells containerd its address; if the shim's last container is
/// deleted in between, a shim that simply exited left containerd dialling a socket that was gone ("failed to
/// start shim: ... no such file or directory"). So `start` first reserves the shim for its container
/// (<see cref="TryReserve"/>, over the shim's socket), a Create holds the shim while it runs, and the shim
/// closes only when neither is left: closing and reserving exclude each other, and a refused `start` makes a
/// new shim on the freed socket name.
/// </summary>
internal sealed class ShimGroup(TimeSpan reservationLifetime)
{
    /// <summary>containerd dials and sends Create within milliseconds of start's reply; a reservation whose
    /// container never comes (containerd failed meanwhile) lapses after this.</summary>
    public static readonly TimeSpan DefaultReservationLifetime = TimeSpan.FromSeconds(10);

    private readonly object gate = new();
    private readonly Dictionary<string, DateTime> reserved = new(StringComparer.Ordinal);
    private int creating;
    private bool closed;

    public ShimGroup() : this(DefaultReservationLifetime)
    {
    }

    /// <summary>Reserves the shim for container <paramref name="id"/>; false once it is closing.</summary>
    public bool TryReserve(string id)
    {
        lock (gate)
        {
            if (closed) return false;
            reserved[id] = DateTime.UtcNow + reservationLifetime;
            return true;
        }
    }

    /// <summary>A Create begins (its container's reservation is used up); false once the shim is closing.</summary>
    public bool TryBeginCreate(string id)
    {
        lock (gate)
        {
            if (closed) return false;
            reserved.Remove(id);
            creating++;
            return true;
        }
    }

    public void EndCreate()
    {
        lock (gate) creating--;
    }

    /// <summary>
    /// Runs <paramref name="close"/> (under the lock: a reservation after it is refused) when
    /// <paramref name="isEmpty"/> holds and nothing is reserved or being created. Otherwise false, with
    /// <paramref name="retryIn"/> the time until the next reservation lapses (null: nothing will lapse).
    /// </summary>
    public bool TryClose(Func<bool> isEmpty, Action close, out TimeSpan? retryIn)
    {
        lock (gate)
        {
            retryIn = null;
            if (closed) return false;
            var now = DateTime.UtcNow;
            foreach (var (id, until) in reserved.ToArray())
                if (until <= now) reserved.Remove(id);
            if (creating > 0 || !isEmpty()) return false;
            if (reserved.Count > 0)
            {
                retryIn = reserved.Values.Min() - now;
                return false;
            }
            closed = true;
            close();
            return true;
        }
    }
}

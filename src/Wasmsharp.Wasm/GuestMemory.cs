using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm;

/// <summary>
/// A guest's memory budget: the most bytes its linear memories may hold together, and what to do when a
/// <c>memory.grow</c> would go past it. The limit may change while the guest runs (any thread).
/// </summary>
internal sealed class MemoryBudget(long limitBytes, Action<long> exceeded)
{
    private long limit = limitBytes;
    private long used;

    public long Limit
    {
        get => Volatile.Read(ref limit);
        set => Volatile.Write(ref limit, value);
    }

    /// <summary>Bytes of linear memory the guest holds now (all its memories).</summary>
    public long Used => Volatile.Read(ref used);

    /// <summary>Accounts a growth by <paramref name="delta"/> bytes; false (and the owner told) if it would pass the limit.</summary>
    public bool TryGrow(long delta)
    {
        long after = Interlocked.Add(ref used, delta);
        if (after <= Limit)
            return true;
        Interlocked.Add(ref used, -delta);
        exceeded(after);
        return false;
    }

    public void Release(long bytes) => Interlocked.Add(ref used, -bytes);
}

/// <summary>
/// Wasmtime's linear memories, allocated by us (a host memory creator on the engine) so every growth of a
/// guest's memory passes through <see cref="Grow"/>, where the guest's <see cref="MemoryBudget"/> is checked.
/// Wasmtime's own store limiter can only make <c>memory.grow</c> return −1 and does not say it did; here a
/// growth past the budget both fails and tells the instance, which is then killed like the kernel's OOM killer
/// kills a process at its cgroup limit.
/// </summary>
/// <remarks>
/// Layout per memory, as Wasmtime's own mmap memories: guard | reservation | guard, all PROT_NONE except the
/// accessible prefix of the reservation (mprotect'ed read-write as it grows; anonymous pages read as zero).
/// The reservation is Wasmtime's <c>reserved_size_in_bytes</c> (4 GiB for 32-bit memories by default) so
/// compiled code may keep eliding bounds checks; memories never move. The budget comes from the thread
/// creating the memory: instances are instantiated and run on their own guest thread, which sets
/// <see cref="CurrentBudget"/> first. Costs: copy-on-write initialisation from the module image is Wasmtime's
/// only for its own memories (and engine-wide), so data segments are copied at instantiation: measured ~0.4 ms
/// per MB of data segments (1 MB 0.4 ms, 8 MB 3.5 ms, 32 MB 21 ms, against ~0.02 ms with copy-on-write), and
/// that data is private to the instance instead of shared page cache. Negligible for ordinary modules (KBs).
/// </remarks>
internal static unsafe partial class GuestMemory
{
    [ThreadStatic] private static MemoryBudget? currentBudget;

    /// <summary>The budget of memories created (and grown) on this thread; null = unlimited.</summary>
    public static MemoryBudget? CurrentBudget
    {
        get => currentBudget;
        set => currentBudget = value;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryCreator
    {
        public nint Env;
        public delegate* unmanaged<nint, nint, nuint, nuint, nuint, nuint, LinearMemory*, nint> NewMemory;
        public delegate* unmanaged<nint, void> Finalizer;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct LinearMemory
    {
        public nint Env;
        public delegate* unmanaged<nint, nuint*, nuint*, byte*> GetMemory;
        public delegate* unmanaged<nint, nuint, nint> GrowMemory;
        public delegate* unmanaged<nint, void> Finalizer;
    }

    // Native state of one memory (freed by Wasmtime's finalizer call).
    [StructLayout(LayoutKind.Sequential)]
    private struct State
    {
        public byte* Mapping;
        public nuint MappingLength;
        public byte* Base;
        public nuint Size;
        public nuint Capacity;
        public nint Budget; // GCHandle of the MemoryBudget, or 0
    }

    private const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    private const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    private static readonly nint MapFailed = -1;
    private const ulong DefaultReservation = 4UL << 30; // what a 32-bit memory can ever address

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int mprotect(nint addr, nuint length, int prot);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);
    [LibraryImport("libc")]
    private static partial long sysconf(int name);
    private const int _SC_PAGESIZE = 30;

    [LibraryImport("wasmtime", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint wasmtime_error_new(string message);
    [LibraryImport("wasmtime")]
    private static partial void wasmtime_config_host_memory_creator_set(nint config, MemoryCreator* creator);
    [LibraryImport("wasmtime")]
    private static partial void wasmtime_config_memory_init_cow_set(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);

    private static readonly nuint PageSize = (nuint)Math.Max(4096, sysconf(_SC_PAGESIZE));

    /// <summary>Makes the engine built from <paramref name="config"/> take its linear memories from here.</summary>
    public static void Install(Wasmtime.Config config) => NativeConfig.Set(config, static native =>
    {
        // The binding does not wrap the memory creator.
        var creator = new MemoryCreator
        {
            Env = 0,
            NewMemory = &NewMemory,
            Finalizer = null,
        };
        wasmtime_config_host_memory_creator_set(native, &creator);
        // Copy-on-write images work only with Wasmtime's own memories (it panics otherwise).
        wasmtime_config_memory_init_cow_set(native, false);
    });

    private static nuint RoundUp(nuint value) => (value + PageSize - 1) & ~(PageSize - 1);

    [UnmanagedCallersOnly]
    private static nint NewMemory(nint env, nint type, nuint minimum, nuint maximum, nuint reserved, nuint guard, LinearMemory* result)
    {
        try
        {
            var budget = currentBudget;
            if (budget is not null && (long)minimum > budget.Limit)
                return wasmtime_error_new($"the module's initial memory ({minimum} bytes) exceeds the memory limit ({budget.Limit} bytes)");
            nuint capacity = reserved != 0 ? reserved : (nuint)Math.Min((ulong)maximum, DefaultReservation);
            capacity = RoundUp(Math.Max(capacity, minimum));
            guard = RoundUp(guard);
            nuint length = guard + capacity + guard;
            nint mapping = mmap(0, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (mapping == MapFailed)
                return wasmtime_error_new($"cannot reserve {length} bytes for a linear memory: errno {Marshal.GetLastPInvokeError()}");
            byte* baseAddress = (byte*)mapping + guard;
            if (minimum > 0 && mprotect((nint)baseAddress, RoundUp(minimum), PROT_READ | PROT_WRITE) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                munmap(mapping, length);
                return wasmtime_error_new($"cannot commit {minimum} bytes of linear memory: errno {errno}");
            }
            if (budget is not null && !budget.TryGrow((long)minimum))
            {
                munmap(mapping, length);
                return wasmtime_error_new($"the module's initial memory ({minimum} bytes) exceeds the memory limit ({budget.Limit} bytes)");
            }
            var state = (State*)NativeMemory.AllocZeroed((nuint)sizeof(State));
            state->Mapping = (byte*)mapping;
            state->MappingLength = length;
            state->Base = baseAddress;
            state->Size = minimum;
            state->Capacity = capacity;
            state->Budget = budget is null ? 0 : GCHandle.ToIntPtr(GCHandle.Alloc(budget));
            result->Env = (nint)state;
            result->GetMemory = &GetMemory;
            result->GrowMemory = &Grow;
            result->Finalizer = &Free;
            return 0;
        }
        catch (Exception e)
        {
            return wasmtime_error_new($"linear memory creation failed: {e.Message}");
        }
    }

    [UnmanagedCallersOnly]
    private static byte* GetMemory(nint env, nuint* size, nuint* capacity)
    {
        var state = (State*)env;
        *size = state->Size;
        *capacity = state->Capacity;
        return state->Base;
    }

    [UnmanagedCallersOnly]
    private static nint Grow(nint env, nuint newSize)
    {
        try
        {
            var state = (State*)env;
            if (newSize <= state->Size)
                return 0;
            if (newSize > state->Capacity)
                return wasmtime_error_new($"linear memory cannot grow to {newSize} bytes (reserved {state->Capacity})");
            nuint delta = newSize - state->Size;
            var budget = state->Budget == 0 ? null : (MemoryBudget?)GCHandle.FromIntPtr(state->Budget).Target;
            if (budget is not null && !budget.TryGrow((long)delta))
                return wasmtime_error_new($"memory limit of {budget.Limit} bytes reached");
            nuint from = RoundUp(state->Size);
            nuint to = RoundUp(newSize);
            if (to > from && mprotect((nint)(state->Base + from), to - from, PROT_READ | PROT_WRITE) != 0)
            {
                budget?.Release((long)delta);
                return wasmtime_error_new($"cannot commit linear memory: errno {Marshal.GetLastPInvokeError()}");
            }
            state->Size = newSize;
            return 0;
        }
        catch (Exception e)
        {
            return wasmtime_error_new($"linear memory growth failed: {e.Message}");
        }
    }

    [UnmanagedCallersOnly]
    private static void Free(nint env)
    {
        var state = (State*)env;
        if (state->Budget != 0)
        {
            var handle = GCHandle.FromIntPtr(state->Budget);
            (handle.Target as MemoryBudget)?.Release((long)state->Size);
            handle.Free();
        }
        munmap((nint)state->Mapping, state->MappingLength);
        NativeMemory.Free(state);
    }
}

using System.Globalization;

namespace Wasmsharp.Linux;

/// <summary>Resource limits to write into a cgroup; null = leave as is.</summary>
public sealed record CgroupLimits
{
    /// <summary>Memory limit in bytes; -1 = unlimited.</summary>
    public long? MemoryBytes { get; init; }
    /// <summary>Soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low).</summary>
    public long? MemoryReservationBytes { get; init; }
    /// <summary>Memory + swap in bytes (v1 memory.memsw.limit_in_bytes; v2 memory.swap.max gets swap − memory); -1 = unlimited.</summary>
    public long? MemorySwapBytes { get; init; }
    public ulong? CpuShares { get; init; }
    /// <summary>CFS quota per period in µs; -1 or 0 = no quota.</summary>
    public long? CpuQuotaMicros { get; init; }
    public ulong? CpuPeriodMicros { get; init; }
    /// <summary>Maximum number of tasks; 0 or less = unlimited.</summary>
    public long? PidsMax { get; init; }

    public bool IsEmpty => this == new CgroupLimits();
}

/// <summary>
/// A container's cgroup: one directory per v1 hierarchy it uses (memory, cpu, cpuacct, pids), or one directory
/// in the unified v2 tree. Creating, joining, limiting, reading and removing it; plain file operations on
/// cgroupfs, as runc's cgroupfs driver does them.
/// </summary>
public sealed class Cgroup
{
    /// <summary>The v1 controllers a Wasm container uses: limits and stats. No freezer (pause happens at the guest's
    /// safe points; freezing would stop the shim's RPC server too), no devices/blkio (a WASI guest opens no devices).</summary>
    public static readonly IReadOnlyList<string> V1Controllers = ["memory", "cpu", "cpuacct", "pids"];

    private static readonly string[] V2Controllers = ["memory", "cpu", "pids"];

    // v1: controller → directory (several controllers may share a co-mounted directory); v2: "" → directory.
    private readonly IReadOnlyDictionary<string, string> directories;
    private Dictionary<string, string>? previous; // where a joined process came from: directory per hierarchy

    public CgroupMode Mode { get; }

    /// <summary>The path inside each hierarchy, e.g. "/default/web".</summary>
    public string Path { get; }

    private Cgroup(CgroupMode mode, string path, IReadOnlyDictionary<string, string> directories)
    {
        Mode = mode;
        Path = path;
        this.directories = directories;
    }

    /// <summary>The directories of this cgroup (distinct), for removal and diagnostics.</summary>
    public IReadOnlyList<string> Directories => directories.Values.Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The cgroup's directory for <paramref name="controller"/> (v2: any controller → the one directory).</summary>
    public string? Directory(string controller) =>
        Mode == CgroupMode.V2 ? directories.GetValueOrDefault("") : directories.GetValueOrDefault(controller);

    /// <summary>
    /// Maps <paramref name="cgroupsPath"/> (see <see cref="CgroupPath"/>) onto the host's hierarchies without
    /// touching them. Relative paths are taken below the calling process's own cgroups. Null when the host has no
    /// usable cgroups or the path is empty.
    /// </summary>
    public static Cgroup? Locate(CgroupLayout layout, string? cgroupsPath)
    {
        if (string.IsNullOrEmpty(cgroupsPath) || layout.Mode == CgroupMode.Unavailable) return null;
        var own = CgroupLayout.OwnCgroups();
        if (layout.Mode == CgroupMode.V2)
        {
            var unified = layout.Unified!;
            var path = CgroupPath.Resolve(cgroupsPath, own.GetValueOrDefault("", "/"))!;
            return new Cgroup(CgroupMode.V2, path, new Dictionary<string, string> { [""] = Join(unified.MountPoint, path) });
        }
        var dirs = new Dictionary<string, string>(StringComparer.Ordinal);
        string? resolved = null;
        foreach (var controller in V1Controllers)
        {
            if (layout.V1(controller) is not { } hierarchy) continue;
            var path = CgroupPath.Resolve(cgroupsPath, own.GetValueOrDefault(controller, "/"))!;
            resolved ??= path;
            dirs[controller] = Join(hierarchy.MountPoint, path);
        }
        return resolved is null ? null : new Cgroup(CgroupMode.V1, resolved, dirs);
    }

    /// <summary>Creates the directories (and missing parents); on v2 also enables memory, cpu and pids for it
    /// in every ancestor's cgroup.subtree_control, as runc does.</summary>
    /// <exception cref="IOException">a directory cannot be created.</exception>
    public void Create()
    {
        foreach (var dir in Directories)
        {
            if (Mode == CgroupMode.V2) EnableControllersDownTo(dir);
            System.IO.Directory.CreateDirectory(dir);
        }
    }

    // Enables the controllers in each ancestor from the mount root down to the new cgroup's parent.
    private static void EnableControllersDownTo(string dir)
    {
        var parent = System.IO.Path.GetDirectoryName(dir);
        if (parent is null || !File.Exists(System.IO.Path.Combine(parent, "cgroup.subtree_control"))) return;
        EnableControllersDownTo(parent);
        System.IO.Directory.CreateDirectory(parent);
        var available = ReadText(System.IO.Path.Combine(parent, "cgroup.controllers"))?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        foreach (var controller in V2Controllers.Where(available.Contains))
        {
            TryWrite(System.IO.Path.Combine(parent, "cgroup.subtree_control"), "+" + controller);
        }
    }

    /// <summary>Moves process <paramref name="pid"/> (all its threads) in, remembering where it was for <see cref="Leave"/>.</summary>
    /// <exception cref="IOException">the kernel refused the move.</exception>
    public void Join(int pid)
    {
        var from = CgroupLayout.OwnCgroups(pid == Environment.ProcessId ? 0 : pid);
        previous = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (controller, dir) in directories)
        {
            var mount = dir[..^Path.Length];
            if (from.TryGetValue(controller, out var was)) previous[dir] = Join(mount, was);
        }
        foreach (var dir in Directories)
        {
            File.WriteAllText(System.IO.Path.Combine(dir, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// v1 only: moves the calling thread, and no other, into this cgroup's hierarchies for
    /// <paramref name="controllers"/> (all of them when null). Returns where the thread was, for
    /// <see cref="LeaveCurrentThread"/>. New threads it creates start in the same cgroups.
    /// </summary>
    /// <remarks>
    /// Writing "0" to a hierarchy's <c>tasks</c> file moves only the writer, and is the one move for which the
    /// kernel skips its process-wide lock: any cgroup.procs write takes it, and taking it waits for an RCU grace
    /// period when no move happened just before (~10–30 ms measured on a cgroup v1 host). A guest is one thread
    /// of the shim, so its thread is what has to be in the cpu, cpuacct and pids cgroups; memory is charged to the
    /// cgroup of the process's first thread, whatever thread allocates it.
    /// </remarks>
    /// <exception cref="IOException">the kernel refused the move.</exception>
    /// <exception cref="InvalidOperationException">called on a v2 cgroup (v2 moves whole processes).</exception>
    public IReadOnlyDictionary<string, string> JoinCurrentThread(IEnumerable<string>? controllers = null)
    {
        if (Mode != CgroupMode.V1) throw new InvalidOperationException("only cgroup v1 moves single threads");
        var from = CgroupLayout.CurrentThreadCgroups();
        var was = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (controller, dir) in directories)
        {
            if (controllers is not null && !controllers.Contains(controller)) continue;
            if (was.ContainsKey(dir)) continue; // co-mounted with a controller already done
            if (from.TryGetValue(controller, out var path)) was[dir] = Join(dir[..^Path.Length], path);
            File.WriteAllText(System.IO.Path.Combine(dir, "tasks"), "0");
        }
        lock (directories)
        {
            // Where Leave sends whatever is still inside at the end (threads these threads started).
            previous ??= new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (dir, origin) in was) previous.TryAdd(dir, origin);
        }
        return was;
    }

    /// <summary>v1: moves the calling thread back to where <see cref="JoinCurrentThread"/> found it (or to the parent
    /// of a cgroup whose old place is gone). Best effort.</summary>
    public static void LeaveCurrentThread(IReadOnlyDictionary<string, string> joined)
    {
        foreach (var (dir, was) in joined)
        {
            var target = System.IO.Directory.Exists(was) ? was : System.IO.Path.GetDirectoryName(dir);
            if (target is not null && target != dir) TryWrite(System.IO.Path.Combine(target, "tasks"), "0");
        }
    }

    /// <summary>Whether any task (v1 thread, v2 process) is still in one of this cgroup's directories.</summary>
    public bool IsPopulated() => Directories.Any(dir =>
        ReadText(System.IO.Path.Combine(dir, Mode == CgroupMode.V1 ? "tasks" : "cgroup.procs")) is { Length: > 0 } tasks && tasks.Trim().Length > 0);

    /// <summary>Moves <paramref name="pid"/> back where <see cref="Join"/> found it (or to the parent cgroup when that
    /// is gone), so this cgroup can be removed. Best effort.</summary>
    public void Leave(int pid)
    {
        foreach (var dir in Directories)
        {
            var target = previous?.GetValueOrDefault(dir);
            if (target is null || !System.IO.Directory.Exists(target)) target = System.IO.Path.GetDirectoryName(dir);
            if (target is null || target == dir) continue;
            TryWrite(System.IO.Path.Combine(target, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Removes the cgroup's directories (only the leaf: parents like "/ns" stay, as runc leaves them).
    /// Returns false when one is still busy (a process in it) or cannot be removed.</summary>
    public bool Remove()
    {
        var ok = true;
        foreach (var dir in Directories)
        {
            ok &= RemoveDirectory(dir);
        }
        return ok;
    }

    /// <summary>rmdir with a few retries: the kernel may take a moment to let go of an exited task.</summary>
    public static bool RemoveDirectory(string dir)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (System.IO.Directory.Exists(dir)) System.IO.Directory.Delete(dir);
                return true;
            }
            catch (IOException) when (attempt < 20)
            {
                Thread.Sleep(10);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }
    }

    /// <summary>Writes the limits, as runc does for the same spec.</summary>
    /// <exception cref="IOException">the kernel rejected a value.</exception>
    public void Apply(CgroupLimits limits)
    {
        if (Mode == CgroupMode.V2) ApplyV2(limits); else ApplyV1(limits);
    }

    private void ApplyV1(CgroupLimits limits)
    {
        if (Directory("memory") is { } memory)
        {
            if (limits.MemoryReservationBytes is { } soft) Write(memory, "memory.soft_limit_in_bytes", soft);
            var swapFile = System.IO.Path.Combine(memory, "memory.memsw.limit_in_bytes");
            var hasSwap = limits.MemorySwapBytes is not null && File.Exists(swapFile);
            if (limits.MemoryBytes is { } limit)
            {
                // memory ≤ memory+swap must hold after every write: raise memsw first when growing, last when shrinking.
                if (hasSwap && TryWrite(swapFile, Number(limits.MemorySwapBytes!.Value)))
                {
                    hasSwap = false;
                }
                Write(memory, "memory.limit_in_bytes", limit);
            }
            if (hasSwap) Write(memory, "memory.memsw.limit_in_bytes", limits.MemorySwapBytes!.Value);
        }
        if (Directory("cpu") is { } cpu)
        {
            if (limits.CpuShares is { } shares and > 0) Write(cpu, "cpu.shares", (long)shares);
            if (limits.CpuPeriodMicros is { } period and > 0) Write(cpu, "cpu.cfs_period_us", (long)period);
            if (limits.CpuQuotaMicros is { } quota) Write(cpu, "cpu.cfs_quota_us", quota > 0 ? quota : -1);
        }
        if (Directory("pids") is { } pids && limits.PidsMax is { } max)
        {
            File.WriteAllText(System.IO.Path.Combine(pids, "pids.max"), max > 0 ? Number(max) : "max");
        }
    }

    private void ApplyV2(CgroupLimits limits)
    {
        var dir = directories[""];
        if (limits.MemoryBytes is { } limit) File.WriteAllText(System.IO.Path.Combine(dir, "memory.max"), limit > 0 ? Number(limit) : "max");
        if (limits.MemoryReservationBytes is { } low) Write(dir, "memory.low", Math.Max(0, low));
        if (limits.MemorySwapBytes is { } swap && File.Exists(System.IO.Path.Combine(dir, "memory.swap.max")))
        {
            // OCI's swap is memory+swap; v2 limits swap alone.
            var value = swap < 0 ? "max" : Number(Math.Max(0, swap - (limits.MemoryBytes ?? 0)));
            File.WriteAllText(System.IO.Path.Combine(dir, "memory.swap.max"), value);
        }
        if (limits.CpuShares is { } shares and > 0) Write(dir, "cpu.weight", (long)SharesToWeight(shares));
        if (limits.CpuQuotaMicros is not null || limits.CpuPeriodMicros is not null)
        {
            var quota = limits.CpuQuotaMicros is { } q and > 0 ? Number(q) : "max";
            var period = limits.CpuPeriodMicros is { } p and > 0 ? p : 100_000;
            File.WriteAllText(System.IO.Path.Combine(dir, "cpu.max"), $"{quota} {period.ToString(CultureInfo.InvariantCulture)}");
        }
        if (limits.PidsMax is { } max) File.WriteAllText(System.IO.Path.Combine(dir, "pids.max"), max > 0 ? Number(max) : "max");
    }

    /// <summary>cpu.shares (2..262144) → cpu.weight (1..10000), the conversion runc and crun use.</summary>
    public static ulong SharesToWeight(ulong shares) =>
        shares == 0 ? 0 : 1 + ((Math.Clamp(shares, 2, 262144) - 2) * 9999) / 262142;

    /// <summary>Reads the cgroup's counters; missing files read as zero.</summary>
    public CgroupStats ReadStats() => Mode == CgroupMode.V2 ? CgroupStats.ReadV2(directories[""]) : CgroupStats.ReadV1(Directory);

    internal static string? ReadText(string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void Write(string dir, string file, long value) =>
        File.WriteAllText(System.IO.Path.Combine(dir, file), Number(value));

    private static bool TryWrite(string file, string value)
    {
        try
        {
            File.WriteAllText(file, value);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Join(string mountPoint, string path) => path == "/" ? mountPoint : mountPoint.TrimEnd('/') + path;
}

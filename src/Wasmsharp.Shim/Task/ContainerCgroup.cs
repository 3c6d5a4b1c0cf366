using Google.Protobuf.WellKnownTypes;
using Serilog;
using Wasmsharp.Linux;
using Wasmsharp.Oci;
using V1 = Wasmsharp.Containerd.Api.Cgroups.V1;
using V2 = Wasmsharp.Containerd.Api.Cgroups.V2;

namespace Wasmsharp.Shim;

/// <summary>
/// A container's cgroup, made where runc would make it (the spec's linux.cgroupsPath: "/ns/id" from ctr,
/// "slice:prefix:name" from the systemd driver — see <see cref="CgroupPath"/>), in the memory, cpu, cpuacct and
/// pids hierarchies (v1) or the unified tree (v2), with the spec's limits written as runc writes them.
/// </summary>
/// <remarks>
/// The guest runs inside the shim process. On cgroup v1 each guest's thread moves itself into all of its
/// container's hierarchies when it starts running (CPU time, cpu limits and the task count are then the
/// guest's, as a runc container's are its processes'), and the shim's first thread moves into the first
/// container's memory cgroup at Create, after the module is compiled (the kernel charges a process's memory to
/// its first thread's cgroup; the compiler's transient peak is not the container's). Threads move themselves
/// because that is the one move for which the kernel takes no process-wide lock (see
/// <see cref="Cgroup.JoinCurrentThread"/>). On v2 the whole process moves at Create. Further containers of a
/// grouped shim get their cgroups and limits and their guests' threads, but the memory stays charged to the
/// first container's cgroup (a process has one memory cgroup).
/// </remarks>
internal sealed class ContainerCgroup
{
    private static readonly object HolderGate = new();
    private static ContainerCgroup? holder; // the container whose cgroup the shim process is in

    private readonly Cgroup cgroup;
    private readonly ILogger log;

    public string Path => cgroup.Path;
    public CgroupMode Mode => cgroup.Mode;

    private long guestOomKills;

    /// <summary>The guest memory limit currently in force (null = none), reported as the container's limit.</summary>
    public long? MemoryLimit { get; private set; }

    private ContainerCgroup(Cgroup cgroup, long? memoryLimit, ILogger log)
    {
        this.cgroup = cgroup;
        MemoryLimit = memoryLimit;
        this.log = log;
    }

    /// <summary>
    /// Creates the container's cgroup and writes its limits. Null when the spec names no cgroup or the host
    /// has none; also null (with a warning) when it cannot be created — the guest's memory limit is still
    /// enforced by the Wasm host, only cpu and pids limits are then lost.
    /// </summary>
    public static ContainerCgroup? Create(Spec spec, ContainerResources resources, ILogger log)
    {
        Cgroup? cgroup;
        try
        {
            cgroup = Cgroup.Locate(CgroupLayout.Host(), spec.Linux?.CgroupsPath);
        }
        catch (ArgumentException e)
        {
            throw new BundleException($"linux.cgroupsPath: {e.Message}");
        }
        if (cgroup is null) return null;
        try
        {
            cgroup.Create();
            cgroup.Apply(resources.Cgroup);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Warning("cgroup {Path}: cannot set up ({Error}); running without it", cgroup.Path, e.Message);
            cgroup.Remove();
            return null;
        }
        log.Information("cgroup {Path} ({Mode}) created", cgroup.Path, cgroup.Mode);
        return new ContainerCgroup(cgroup, resources.MemoryLimit, log);
    }

    /// <summary>
    /// A cgroup runc made for a native container (from the same linux.cgroupsPath): located to read its counters,
    /// never created, written or removed here (runc delete removes it). Null when there is none to read.
    /// </summary>
    public static ContainerCgroup? Existing(Spec spec, ILogger log)
    {
        try
        {
            return Cgroup.Locate(CgroupLayout.Host(), spec.Linux?.CgroupsPath) is { } cgroup ? new ContainerCgroup(cgroup, null, log) : null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Processes the kernel's OOM killer ended in this cgroup so far (0 when it cannot be read).</summary>
    public ulong KernelOomKills()
    {
        try
        {
            return cgroup.ReadStats().MemoryEvents.GetValueOrDefault("oom_kill");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The kernel's notifications for this cgroup's memory (see <see cref="CgroupOomEvents"/>).</summary>
    /// <exception cref="LinuxException">they cannot be had here.</exception>
    public CgroupOomEvents OpenOomEvents() => CgroupOomEvents.Open(cgroup);

    /// <summary>Counts a guest killed at its memory limit: the kernel's own OOM counters never see those.</summary>
    public void RecordGuestOom() => Interlocked.Increment(ref guestOomKills);

    // v1: where the shim's first thread was before it joined this cgroup's memory hierarchy.
    private IReadOnlyDictionary<string, string>? firstThreadWas;

    /// <summary>
    /// Puts the shim's memory in this cgroup, unless it is already in another container's. v1: the first thread
    /// moves into the memory hierarchy (the kernel charges a process's memory to its first thread's cgroup); the
    /// guest threads join the rest themselves (<see cref="EnterGuestThread"/>). v2: the whole process moves.
    /// </summary>
    public void JoinShim()
    {
        lock (HolderGate)
        {
            if (holder is not null) return;
            try
            {
                if (Mode == CgroupMode.V1)
                    firstThreadWas = MainThread.InvokeAsync(() => cgroup.JoinCurrentThread(["memory"])).GetAwaiter().GetResult();
                else
                    cgroup.Join(Environment.ProcessId);
                holder = this;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Warning("cgroup {Path}: cannot move the shim in: {Error}", cgroup.Path, e.Message);
            }
        }
    }

    /// <summary>
    /// On a guest's thread, before it runs: v1 moves the thread into all of the container's hierarchies, so its
    /// CPU time, limits and task count are the container's, as a runc container's processes are. Disposing
    /// (on the same thread, when the guest has ended) moves it back. Nothing to do on v2.
    /// </summary>
    public IDisposable? EnterGuestThread()
    {
        if (Mode != CgroupMode.V1) return null;
        try
        {
            var was = cgroup.JoinCurrentThread();
            return new ThreadMove(was);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Warning("cgroup {Path}: cannot move the guest thread in: {Error}", cgroup.Path, e.Message);
            return null;
        }
    }

    private sealed class ThreadMove(IReadOnlyDictionary<string, string> was) : IDisposable
    {
        public void Dispose() => Cgroup.LeaveCurrentThread(was);
    }

    /// <summary>Applies new limits (an Update): to the cgroup, and the returned guest limit to the guests.</summary>
    /// <exception cref="IOException">the kernel rejected a value (e.g. a limit below current usage).</exception>
    public void Update(ContainerResources resources)
    {
        cgroup.Apply(resources.Cgroup);
        if (resources.Cgroup.MemoryBytes is not null) MemoryLimit = resources.MemoryLimit;
    }

    /// <summary>Moves the shim out (if it is in) and removes the directories. Idempotent. False if some remain.</summary>
    public bool Release()
    {
        lock (HolderGate)
        {
            if (holder == this)
            {
                if (firstThreadWas is { } was)
                    MainThread.InvokeAsync(() => { Cgroup.LeaveCurrentThread(was); return 0; }).GetAwaiter().GetResult();
                else
                    cgroup.Leave(Environment.ProcessId);
                holder = null;
            }
        }
        // v1: a thread a guest thread started, or one still stuck in a host call, may be left inside.
        if (Mode == CgroupMode.V1 && cgroup.IsPopulated()) cgroup.Leave(Environment.ProcessId);
        if (cgroup.Remove()) return true;
        log.Warning("cgroup {Path}: could not remove all of {Dirs}", cgroup.Path, string.Join(", ", cgroup.Directories));
        return false;
    }

    /// <summary>
    /// `shim delete` after a shim died: its container's cgroup directories, now without processes, are removed
    /// (only those of this runtime's controllers; a live cgroup cannot be removed, so this is safe to try).
    /// </summary>
    public static void RemoveLeftover(string bundlePath, ILogger log)
    {
        try
        {
            var spec = Spec.Load(System.IO.Path.Combine(bundlePath, "config.json"));
            if (Cgroup.Locate(CgroupLayout.Host(), spec.Linux?.CgroupsPath) is { } cgroup && !cgroup.Remove())
                log.Warning("cgroup {Path} still busy", cgroup.Path);
        }
        catch (Exception e) when (e is OciSpecException or ArgumentException or IOException)
        {
            log.Debug("no cgroup to clean up: {Error}", e.Message);
        }
    }

    /// <summary>The cgroup's counters as containerd's metrics message for this host (bare type URL in an Any).</summary>
    /// <param name="guestMemoryBytes">what the container's guests hold themselves (their linear memories): its
    /// memory when the shim's memory is charged to another container's cgroup (a grouped shim, e.g. a pod's,
    /// where the shim joined the sandbox's), whose own counters would show next to nothing. Null: the cgroup's own
    /// counters (a native container's, whose processes are charged there).</param>
    public Any Metrics(long? guestMemoryBytes)
    {
        var stats = cgroup.ReadStats();
        bool holdsShim;
        lock (HolderGate)
            holdsShim = holder == this;
        if (!holdsShim && guestMemoryBytes is { } bytes) stats = GuestMemoryOnly(stats, (ulong)Math.Max(0, bytes));
        var kills = (ulong)Interlocked.Read(ref guestOomKills);
        if (kills > 0)
        {
            var events = new Dictionary<string, ulong>(stats.MemoryEvents);
            events["oom_kill"] = events.GetValueOrDefault("oom_kill") + kills;
            if (Mode == CgroupMode.V2) events["oom"] = events.GetValueOrDefault("oom") + kills;
            stats = stats with { MemoryEvents = events };
        }
        return Mode == CgroupMode.V2 ? Pack(V2Metrics(stats, MemoryLimit)) : Pack(V1Metrics(stats, MemoryLimit));
    }

    // As kubelet reads memory (working set = usage − inactive file): all of it anonymous, none of it cache.
    internal static CgroupStats GuestMemoryOnly(CgroupStats s, ulong bytes) => s with
    {
        MemoryUsage = bytes,
        MemoryMaxUsage = Math.Max(bytes, s.MemoryMaxUsage),
        MemoryStat = new Dictionary<string, ulong>
        {
            ["rss"] = bytes, ["total_rss"] = bytes, ["active_anon"] = bytes, ["total_active_anon"] = bytes, ["anon"] = bytes,
        },
    };

    internal static Any Pack(Google.Protobuf.IMessage message) =>
        new() { TypeUrl = message.Descriptor.FullName, Value = Google.Protobuf.MessageExtensions.ToByteString(message) };

    /// <summary>v1 metrics as runc's shim fills them; the limit is the guest's when one is set (the cgroup's
    /// own limit includes the shim's headroom).</summary>
    internal static V1.Metrics V1Metrics(CgroupStats s, long? guestLimit)
    {
        ulong Stat(string key) => s.MemoryStat.GetValueOrDefault(key);
        var limit = guestLimit is { } g ? (ulong)g : s.MemoryLimit;
        var usage = new V1.CPUUsage { Total = s.CpuUsageNanos, User = s.CpuUserNanos, Kernel = s.CpuSystemNanos };
        usage.PerCpu.AddRange(s.CpuPerCpuNanos);
        return new V1.Metrics
        {
            Pids = new V1.PidsStat { Current = s.PidsCurrent, Limit = s.PidsLimit },
            Cpu = new V1.CPUStat
            {
                Usage = usage,
                Throttling = new V1.Throttle { Periods = s.CpuPeriods, ThrottledPeriods = s.CpuThrottledPeriods, ThrottledTime = s.CpuThrottledNanos },
            },
            Memory = new V1.MemoryStat
            {
                Cache = Stat("cache"),
                Rss = Stat("rss"),
                MappedFile = Stat("mapped_file"),
                PgFault = Stat("pgfault"),
                PgMajFault = Stat("pgmajfault"),
                InactiveAnon = Stat("inactive_anon"),
                ActiveAnon = Stat("active_anon"),
                InactiveFile = Stat("inactive_file"),
                ActiveFile = Stat("active_file"),
                HierarchicalMemoryLimit = guestLimit is null ? Stat("hierarchical_memory_limit") : limit,
                TotalCache = Stat("total_cache"),
                TotalRss = Stat("total_rss"),
                TotalInactiveFile = Stat("total_inactive_file"),
                Usage = new V1.MemoryEntry { Usage = s.MemoryUsage, Limit = limit, Max = s.MemoryMaxUsage, Failcnt = s.MemoryFailCount },
                Swap = new V1.MemoryEntry { Usage = s.SwapUsage, Limit = s.SwapLimit },
            },
            MemoryOomControl = new V1.MemoryOomControl
            {
                OomKillDisable = s.MemoryEvents.GetValueOrDefault("oom_kill_disable"),
                UnderOom = s.MemoryEvents.GetValueOrDefault("under_oom"),
                OomKill = s.MemoryEvents.GetValueOrDefault("oom_kill"),
            },
        };
    }

    internal static V2.Metrics V2Metrics(CgroupStats s, long? guestLimit)
    {
        ulong Stat(string key) => s.MemoryStat.GetValueOrDefault(key);
        ulong Event(string key) => s.MemoryEvents.GetValueOrDefault(key);
        return new V2.Metrics
        {
            Pids = new V2.PidsStat { Current = s.PidsCurrent, Limit = s.PidsLimit },
            Cpu = new V2.CPUStat
            {
                UsageUsec = s.CpuUsageNanos / 1000,
                UserUsec = s.CpuUserNanos / 1000,
                SystemUsec = s.CpuSystemNanos / 1000,
                NrPeriods = s.CpuPeriods,
                NrThrottled = s.CpuThrottledPeriods,
                ThrottledUsec = s.CpuThrottledNanos / 1000,
            },
            Memory = new V2.MemoryStat
            {
                Anon = Stat("anon"),
                File = Stat("file"),
                InactiveAnon = Stat("inactive_anon"),
                ActiveAnon = Stat("active_anon"),
                InactiveFile = Stat("inactive_file"),
                ActiveFile = Stat("active_file"),
                Pgfault = Stat("pgfault"),
                Pgmajfault = Stat("pgmajfault"),
                Usage = s.MemoryUsage,
                UsageLimit = guestLimit is { } g ? (ulong)g : s.MemoryLimit,
                SwapUsage = s.SwapUsage,
                SwapLimit = s.SwapLimit,
                MaxUsage = s.MemoryMaxUsage,
            },
            MemoryEvents = new V2.MemoryEvents { Low = Event("low"), High = Event("high"), Max = Event("max"), Oom = Event("oom"), OomKill = Event("oom_kill") },
        };
    }
}

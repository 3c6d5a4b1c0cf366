using System.Globalization;

namespace Wasmsharp.Linux;

/// <summary>
/// One reading of a cgroup's counters, in the kernel's own terms: v1 fills the memory.stat keys of v1
/// (rss, cache, total_inactive_file…), v2 those of v2 (anon, file, inactive_file…). Unlimited limits read as
/// <see cref="ulong.MaxValue"/> on v2 ("max") and as the kernel's huge number on v1.
/// </summary>
public sealed record CgroupStats
{
    public ulong MemoryUsage { get; init; }
    public ulong MemoryLimit { get; init; }
    public ulong MemoryMaxUsage { get; init; }
    public ulong MemoryFailCount { get; init; }
    public ulong SwapUsage { get; init; }
    public ulong SwapLimit { get; init; }
    public IReadOnlyDictionary<string, ulong> MemoryStat { get; init; } = new Dictionary<string, ulong>();
    /// <summary>v2 memory.events (low, high, max, oom, oom_kill); v1 memory.oom_control (oom_kill_disable, under_oom, oom_kill).</summary>
    public IReadOnlyDictionary<string, ulong> MemoryEvents { get; init; } = new Dictionary<string, ulong>();

    public ulong CpuUsageNanos { get; init; }
    public ulong CpuUserNanos { get; init; }
    public ulong CpuSystemNanos { get; init; }
    public IReadOnlyList<ulong> CpuPerCpuNanos { get; init; } = [];
    public ulong CpuPeriods { get; init; }
    public ulong CpuThrottledPeriods { get; init; }
    public ulong CpuThrottledNanos { get; init; }

    public ulong PidsCurrent { get; init; }
    /// <summary>0 = unlimited ("max"), as containerd reports it.</summary>
    public ulong PidsLimit { get; init; }

    // cpuacct.stat counts USER_HZ ticks, which is 100 on every Linux ABI.
    private const ulong NanosPerUserHzTick = 10_000_000;

    internal static CgroupStats ReadV1(Func<string, string?> directory)
    {
        var memory = directory("memory");
        var cpu = directory("cpu");
        var cpuacct = directory("cpuacct");
        var pids = directory("pids");
        var cpuStat = KeyValues(Read(cpu, "cpu.stat"));
        var cpuacctStat = KeyValues(Read(cpuacct, "cpuacct.stat"));
        return new CgroupStats
        {
            MemoryUsage = Number(Required(memory, "memory.usage_in_bytes"), "memory.usage_in_bytes"),
            MemoryLimit = Number(Read(memory, "memory.limit_in_bytes"), "memory.limit_in_bytes"),
            MemoryMaxUsage = Number(Read(memory, "memory.max_usage_in_bytes"), "memory.max_usage_in_bytes"),
            MemoryFailCount = Number(Read(memory, "memory.failcnt"), "memory.failcnt"),
            SwapUsage = Number(Read(memory, "memory.memsw.usage_in_bytes"), "memory.memsw.usage_in_bytes"),
            SwapLimit = Number(Read(memory, "memory.memsw.limit_in_bytes"), "memory.memsw.limit_in_bytes"),
            MemoryStat = KeyValues(Read(memory, "memory.stat")),
            MemoryEvents = KeyValues(Read(memory, "memory.oom_control")),
            CpuUsageNanos = Number(Required(cpuacct, "cpuacct.usage"), "cpuacct.usage"),
            CpuUserNanos = cpuacctStat.GetValueOrDefault("user") * NanosPerUserHzTick,
            CpuSystemNanos = cpuacctStat.GetValueOrDefault("system") * NanosPerUserHzTick,
            CpuPerCpuNanos = Numbers(Read(cpuacct, "cpuacct.usage_percpu")),
            CpuPeriods = cpuStat.GetValueOrDefault("nr_periods"),
            CpuThrottledPeriods = cpuStat.GetValueOrDefault("nr_throttled"),
            CpuThrottledNanos = cpuStat.GetValueOrDefault("throttled_time"),
            PidsCurrent = Number(Read(pids, "pids.current"), "pids.current"),
            PidsLimit = Limit(Read(pids, "pids.max"), 0, "pids.max"),
        };
    }

    internal static CgroupStats ReadV2(string dir)
    {
        var cpuStat = KeyValues(Required(dir, "cpu.stat"));
        return new CgroupStats
        {
            MemoryUsage = Number(Required(dir, "memory.current"), "memory.current"),
            MemoryLimit = Limit(Read(dir, "memory.max"), ulong.MaxValue, "memory.max"),
            MemoryMaxUsage = Number(Read(dir, "memory.peak"), "memory.peak"),
            SwapUsage = Number(Read(dir, "memory.swap.current"), "memory.swap.current"),
            SwapLimit = Limit(Read(dir, "memory.swap.max"), ulong.MaxValue, "memory.swap.max"),
            MemoryStat = KeyValues(Read(dir, "memory.stat")),
            MemoryEvents = KeyValues(Read(dir, "memory.events")),
            CpuUsageNanos = cpuStat.GetValueOrDefault("usage_usec") * 1000,
            CpuUserNanos = cpuStat.GetValueOrDefault("user_usec") * 1000,
            CpuSystemNanos = cpuStat.GetValueOrDefault("system_usec") * 1000,
            CpuPeriods = cpuStat.GetValueOrDefault("nr_periods"),
            CpuThrottledPeriods = cpuStat.GetValueOrDefault("nr_throttled"),
            CpuThrottledNanos = cpuStat.GetValueOrDefault("throttled_usec") * 1000,
            PidsCurrent = Number(Read(dir, "pids.current"), "pids.current"),
            PidsLimit = Limit(Read(dir, "pids.max"), 0, "pids.max"),
        };
    }

    // A counter file: null when the kernel has none (no swap accounting, an older kernel's memory.peak, a hierarchy
    // not mounted); any other failure to read it is an error for the caller, never a zero (a metric of 0 bytes used
    // is a lie a scheduler acts on).
    private static string? Read(string? dir, string file)
    {
        if (dir is null) return null;
        var path = Path.Combine(dir, file);
        try
        {
            return File.ReadAllText(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CgroupStatsException($"cannot read {path}: {e.Message}", e);
        }
    }

    // The counters every cgroup of the mode has (memory and cpu usage): missing is an error too.
    private static string Required(string? dir, string file) =>
        Read(dir, file) ?? throw new CgroupStatsException(dir is null
            ? $"cannot read {file}: its cgroup hierarchy is not mounted"
            : $"cannot read {Path.Combine(dir, file)}: no such file");

    /// <summary>"key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control) → map; bad lines skipped.</summary>
    public static IReadOnlyDictionary<string, ulong> KeyValues(string? text)
    {
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (text is null) return result;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 2 && ulong.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                result[fields[0]] = value;
        }
        return result;
    }

    /// <summary>A single number; missing → 0; anything else that is not a number is an error.</summary>
    public static ulong Number(string? text, string file = "a cgroup file")
    {
        if (text is null) return 0;
        return ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new CgroupStatsException($"cannot read {file}: not a number: \"{Shorten(text.Trim())}\"");
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";

    /// <summary>A limit file: "max" → <paramref name="unlimited"/>, otherwise the number.</summary>
    public static ulong Limit(string? text, ulong unlimited, string file = "a cgroup file") => text?.Trim() == "max" ? unlimited : Number(text, file);

    /// <summary>Space-separated numbers (cpuacct.usage_percpu).</summary>
    public static IReadOnlyList<ulong> Numbers(string? text) =>
        text is null ? [] : text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(t => Number(t)).ToList();
}

/// <summary>A cgroup's counters could not be read: the metrics request fails with this rather than report zeros.</summary>
public sealed class CgroupStatsException(string message, Exception? inner = null) : IOException(message, inner);

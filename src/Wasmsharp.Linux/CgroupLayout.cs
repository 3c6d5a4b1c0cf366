using System.Globalization;
using System.Text;

namespace Wasmsharp.Linux;

/// <summary>Which cgroup interface the host offers.</summary>
public enum CgroupMode
{
    /// <summary>No cgroup filesystem mounted (or not readable).</summary>
    Unavailable,
    /// <summary>Legacy or hybrid: one v1 hierarchy per controller (group); a controller-less cgroup2 may sit beside them.</summary>
    V1,
    /// <summary>Unified hierarchy: one cgroup2 mount holds every controller.</summary>
    V2,
}

/// <summary>One mounted cgroup hierarchy: where it is and which controllers it carries (v1), or the unified one.</summary>
public sealed record CgroupHierarchy(string MountPoint, IReadOnlyList<string> Controllers, bool Unified);

/// <summary>The host's cgroup hierarchies, from /proc/self/mountinfo.</summary>
public sealed class CgroupLayout
{
    private static readonly HashSet<string> KnownV1Controllers =
    [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event",
        "net_prio", "hugetlb", "pids", "rdma", "misc",
    ];

    public CgroupMode Mode { get; }
    public IReadOnlyList<CgroupHierarchy> Hierarchies { get; }

    private CgroupLayout(CgroupMode mode, IReadOnlyList<CgroupHierarchy> hierarchies)
    {
        Mode = mode;
        Hierarchies = hierarchies;
    }

    /// <summary>The calling process's view of the host (reads /proc/self/mountinfo).</summary>
    public static CgroupLayout Host()
    {
        try
        {
            return Parse(File.ReadAllText("/proc/self/mountinfo"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new CgroupLayout(CgroupMode.Unavailable, []);
        }
    }

    /// <summary>
    /// Reads mountinfo lines (<c>id parent major:minor root mountpoint options [optional...] - fstype source superoptions</c>).
    /// The host is V2 when a cgroup2 filesystem is mounted and no v1 hierarchy is; a v1 hierarchy next to a cgroup2
    /// mount is the hybrid layout (systemd's /sys/fs/cgroup/unified), used as V1 like runc does.
    /// </summary>
    public static CgroupLayout Parse(string mountinfo)
    {
        var hierarchies = new List<CgroupHierarchy>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-");
            if (dash < 6 || fields.Length < dash + 4) continue;
            var fsType = fields[dash + 1];
            if (fsType is not ("cgroup" or "cgroup2")) continue;
            var mountPoint = Unescape(fields[4]);
            if (!seen.Add(mountPoint)) continue; // the same hierarchy mounted again over itself
            if (fsType == "cgroup2")
            {
                hierarchies.Add(new CgroupHierarchy(mountPoint, [], Unified: true));
                continue;
            }
            var controllers = fields[dash + 3].Split(',')
                .Where(o => KnownV1Controllers.Contains(o) || o.StartsWith("name=", StringComparison.Ordinal))
                .ToList();
            hierarchies.Add(new CgroupHierarchy(mountPoint, controllers, Unified: false));
        }
        var mode = hierarchies.Any(h => !h.Unified && h.Controllers.Any(KnownV1Controllers.Contains)) ? CgroupMode.V1
            : hierarchies.Any(h => h.Unified) ? CgroupMode.V2
            : CgroupMode.Unavailable;
        return new CgroupLayout(mode, hierarchies);
    }

    /// <summary>The v1 hierarchy carrying <paramref name="controller"/> (e.g. "memory"), or null.</summary>
    public CgroupHierarchy? V1(string controller) =>
        Hierarchies.FirstOrDefault(h => !h.Unified && h.Controllers.Contains(controller));

    /// <summary>The cgroup2 mount (the whole tree on V2, the controller-less one on hybrid V1), or null.</summary>
    public CgroupHierarchy? Unified => Hierarchies.FirstOrDefault(h => h.Unified);

    /// <summary>
    /// Parses /proc/PID/cgroup (<c>id:controllers:path</c>): controller name (or "name=systemd") → path; the
    /// unified entry (id 0, empty controller list) is keyed "".
    /// </summary>
    public static IReadOnlyDictionary<string, string> ParseProcCgroup(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var first = line.IndexOf(':');
            var second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0) continue;
            var path = line[(second + 1)..];
            var controllers = line[(first + 1)..second];
            if (controllers.Length == 0)
            {
                result[""] = path;
                continue;
            }
            foreach (var c in controllers.Split(',')) result[c] = path;
        }
        return result;
    }

    /// <summary>The cgroups <paramref name="pid"/> is in (0 = the calling process).</summary>
    public static IReadOnlyDictionary<string, string> OwnCgroups(int pid = 0) =>
        ReadProcCgroup(pid == 0 ? "/proc/self/cgroup" : $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cgroup");

    /// <summary>The calling thread's cgroups (v1 threads of one process may be in different ones).</summary>
    public static IReadOnlyDictionary<string, string> CurrentThreadCgroups() => ReadProcCgroup("/proc/thread-self/cgroup");

    private static IReadOnlyDictionary<string, string> ReadProcCgroup(string file)
    {
        try
        {
            return ParseProcCgroup(File.ReadAllText(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new Dictionary<string, string>();
        }
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo.
    private static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var sb = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(field[i]);
            }
        }
        return sb.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}

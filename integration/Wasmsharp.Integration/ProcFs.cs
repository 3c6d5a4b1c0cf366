using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Wasmsharp.Integration;

// Just enough of /proc and a few system calls to find, measure and stop what containerd left running.
public static partial class ProcFs
{
    public sealed record ProcessInfo(int Pid, IReadOnlyList<string> Args, string? Cwd, string? Root)
    {
        public string CommandLine => string.Join(' ', Args);

        // The shim argv carries `-id ID` (start/daemon/delete all do).
        public bool HasArgPair(string flag, string value)
        {
            for (var i = 0; i + 1 < Args.Count; i++)
                if (Args[i] == flag && Args[i + 1] == value) return true;
            return false;
        }

        // A spare shim or its standby (`containerd-shim-wasmsharp-v1 -spare|-standby SOCKET -address ADDRESS ...`):
        // "-spare" or "-standby"; null for any other process.
        public string? SpareRole =>
            Args.Count > 2 && Args[0].Contains("containerd-shim-wasmsharp", StringComparison.Ordinal) && Args[1] is "-spare" or "-standby"
                ? Args[1]
                : null;

        public string? ArgValue(string flag)
        {
            for (var i = 0; i + 1 < Args.Count; i++)
                if (Args[i] == flag) return Args[i + 1];
            return null;
        }
    }

    public static IEnumerable<ProcessInfo> Processes()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // exited meanwhile
            }
            yield return new ProcessInfo(pid, args, Link(Path.Combine(dir, "cwd")), Link(Path.Combine(dir, "root")));
        }
    }

    private static string? Link(string path)
    {
        try
        {
            var target = new FileInfo(path).LinkTarget;
            // A deleted directory reads as "/path (deleted)": still under the base dir for our purposes.
            return target?.EndsWith(" (deleted)", StringComparison.Ordinal) == true ? target[..^10] : target;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses): the
    /// state is [0]. <paramref name="pid"/> may be "self".</summary>
    public static string[] StatFields(string pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    }

    /// <summary>Alive and not a zombie waiting to be reaped.</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            return StatFields(pid.ToString(CultureInfo.InvariantCulture))[0] != "Z";
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static bool IsUnder(string? path, string dir) =>
        path is not null && (path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal));

    // Thread-group id: a guest run by our shim is a thread, so its "task pid" may name a thread of the shim.
    public static int? Tgid(int pid) => StatusField(pid, "Tgid:") is { } v && int.TryParse(v, out var t) ? t : null;

    // "Z (zombie)", "S (sleeping)", ...: a zombie has ended and waits for its parent to reap it.
    public static string? State(int pid) => StatusField(pid, "State:");

    // Parent process id: a native container's init is re-parented to the shim that runs it.
    public static int? ParentPid(int pid) => StatusField(pid, "PPid:") is { } v && int.TryParse(v, out var p) ? p : null;

    // Proportional set size in kB (shared pages split between their users): fair per-container memory.
    // <paramref name="field"/> "Pss_Anon:" gives its anonymous part (heaps, stacks), "Pss_File:" the mapped files'.
    public static long? PssKb(int pid, string field = "Pss:")
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    private static string? StatusField(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return line[field.Length..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    // Mount points under a directory, from our mount namespace (containerd's and the shims' too: all
    // run in the host namespace), deepest first so children go before parents.
    public static IReadOnlyList<string> MountsUnder(string dir) =>
        File.ReadLines("/proc/self/mountinfo")
            .Select(line => Unescape(line.Split(' ')[4]))
            .Where(mountPoint => IsUnder(mountPoint, dir))
            .Distinct()
            .OrderByDescending(m => m.Count(c => c == '/')).ThenByDescending(m => m.Length)
            .ToList();

    // mountinfo escapes space, tab, newline and backslash as \ooo.
    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length && s.Substring(i + 1, 3).All(c => c is >= '0' and <= '7'))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    public const int SIGKILL = 9, SIGTERM = 15, SIGCONT = 18, SIGSTOP = 19;

    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    // MNT_DETACH: a lazy unmount never fails with EBUSY; the tree disappears once nothing uses it.
    public static bool UnmountDetach(string target) => Umount2(target, 2) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();
}

using System.Text.Json;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// The system's runc, driven through its command line as containerd's runc shim drives it: one state root per
/// containerd namespace (<see cref="RootFor"/>), runc's own log (JSON, in the bundle) for the reason of a failure,
/// since a create's or exec's stderr is the container's.
/// </summary>
internal sealed class Runc
{
    public const string Name = "runc";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly string binary;
    private readonly string logPath;
    private readonly bool systemdCgroup;

    public string Root { get; }

    /// <param name="systemdCgroup">linux.cgroupsPath is "slice:prefix:name" (the kubelet's systemd driver): runc
    /// must be told, as containerd's SystemdCgroup option tells runc's shim.</param>
    public Runc(string binary, string root, string logPath, bool systemdCgroup)
    {
        this.binary = binary;
        Root = root;
        this.logPath = logPath;
        this.systemdCgroup = systemdCgroup;
    }

    /// <summary>Where runc keeps the state of a containerd namespace's native containers (runc's shim: /run/containerd/runc/NS).</summary>
    public static string RootFor(string ns) => Path.Combine("/run/containerd/wasmsharp-runc", string.IsNullOrEmpty(ns) ? "default" : ns);

    /// <summary>runc on PATH, or null.</summary>
    public static string? Find()
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        foreach (var dir in (string.IsNullOrEmpty(path) ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : path).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, Name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>runc create: the container's init waits for <see cref="Start"/>; returns its pid (in our pid namespace).</summary>
    /// <param name="consoleSocket">where runc sends the terminal's master when the process has one (<see cref="ConsoleSocket"/>).</param>
    public int Create(string id, string bundle, string pidFile, IReadOnlyDictionary<int, int> stdio, string? consoleSocket = null)
    {
        Run(["create", "--bundle", bundle, "--pid-file", pidFile, .. ConsoleArgs(consoleSocket), id], stdio: stdio);
        return ReadPid(pidFile);
    }

    public void Start(string id) => Run(["start", id]);

    /// <summary>runc exec -d: the process runs detached (runc exits; it is re-parented to us, a subreaper); returns its pid.</summary>
    public int Exec(string id, string processFile, string pidFile, IReadOnlyDictionary<int, int> stdio, string? consoleSocket = null)
    {
        Run(["exec", "--process", processFile, "--detach", "--pid-file", pidFile, .. ConsoleArgs(consoleSocket), id], stdio: stdio);
        return ReadPid(pidFile);
    }

    private static string[] ConsoleArgs(string? socket) => socket is null ? [] : ["--console-socket", socket];

    public void Kill(string id, int signal, bool all) =>
        Run(all ? ["kill", "--all", id, signal.ToString(System.Globalization.CultureInfo.InvariantCulture)] : ["kill", id, signal.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

    public void Pause(string id) => Run(["pause", id]);

    public void Resume(string id) => Run(["resume", id]);

    /// <summary>runc delete --force: kills what is left, removes the cgroup and runc's state.</summary>
    public void Delete(string id) => Run(["delete", "--force", id]);

    /// <summary>runc update with the new linux.resources (JSON) on its stdin.</summary>
    public void Update(string id, ReadOnlySpan<byte> resources) => Run(["update", "--resources", "-", id], resources);

    /// <summary>The pids of every process of the container (runc ps reads its cgroup).</summary>
    public IReadOnlyList<int> Ps(string id)
    {
        var output = Run(["ps", "--format", "json", id]).Stdout;
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(output) ? "[]" : output);
        return doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().Select(e => e.GetInt32()).ToList() : [];
    }

    private RunResult Run(IReadOnlyList<string> args, ReadOnlySpan<byte> stdin = default, IReadOnlyDictionary<int, int>? stdio = null)
    {
        List<string> argv = [Name, "--root", Root, "--log", logPath, "--log-format", "json"];
        if (systemdCgroup) argv.Add("--systemd-cgroup");
        argv.AddRange(args);
        var logged = LogLength();
        RunResult result;
        try
        {
            result = Processes.Run(binary, argv, Processes.EnvironmentStrings().ToList(), stdin, Timeout, stdio);
        }
        catch (LinuxException e)
        {
            throw new RuncException($"runc {args[0]}: {e.Message}");
        }
        if (result.Succeeded) return result;
        var reason = LastError(logged) ?? (result.Stderr.Trim() is { Length: > 0 } err ? err : result.TimedOut ? $"no answer within {Timeout.TotalSeconds} s" : result.Status);
        throw new RuncException($"runc {args[0]} failed: {reason}");
    }

    private long LogLength() => File.Exists(logPath) ? new FileInfo(logPath).Length : 0;

    // The last error runc logged past offset from: its own words for what went wrong with this command.
    private string? LastError(long from)
    {
        try
        {
            using var file = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            file.Seek(from, SeekOrigin.Begin);
            var lines = new StreamReader(file).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            foreach (var line in lines.Reverse())
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.TryGetProperty("level", out var level) && level.GetString() is "error" or "fatal" &&
                        doc.RootElement.TryGetProperty("msg", out var msg))
                        return msg.GetString();
                }
                catch (JsonException)
                {
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    private static int ReadPid(string pidFile)
    {
        var text = File.ReadAllText(pidFile).Trim();
        return int.TryParse(text, out var pid) && pid > 0 ? pid : throw new RuncException($"runc wrote no pid to {pidFile} (\"{text}\")");
    }
}

/// <summary>runc refused or failed a command; the message is runc's reason.</summary>
internal sealed class RuncException(string message) : Exception(message);

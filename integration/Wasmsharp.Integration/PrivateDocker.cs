using System.Diagnostics;
using System.Text;

namespace Wasmsharp.Integration;

// A Docker Engine of our own on a private containerd from a fetched suite ("trixie" = Docker 26 on
// containerd 1.7, "sid" = Docker 28 on containerd 2.1): data-root, exec-root, pidfile, socket, daemon.json
// and CLI config all inside the containerd's base dir, so the containerd's cleanup (and the sweep of a
// crashed run) covers them. Our shim is first on containerd's PATH (PrivateContainerd does that).
// Dispose removes containers, stops dockerd, unmounts what it left, then disposes the containerd.
public sealed class PrivateDocker : IDisposable
{
    // Docker's containerd namespace.
    public const string Namespace = "moby";
    // The daemon.json `runtimes` entry every private dockerd gets: `docker run --runtime=wasmsharp`.
    public const string RuntimeAlias = "wasmsharp";

    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _dockerd;
    private readonly bool _runDockerExisted;
    private bool _disposed;

    public string Suite { get; }
    public PrivateContainerd Containerd { get; }
    public string DockerdExe { get; }
    public string DockerExe { get; }
    public string BaseDir => Containerd.BaseDir;
    // Short names: docker and libnetwork put sockets under these, and socket paths are limited to 108 bytes.
    public string DataRoot => Path.Combine(BaseDir, "dd");
    public string ExecRoot => Path.Combine(BaseDir, "de");
    public string Socket => Path.Combine(BaseDir, "d.sock");
    public string PidFile => Path.Combine(BaseDir, "d.pid");
    public string DaemonJson => Path.Combine(BaseDir, "daemon.json");
    public string LogPath => Path.Combine(BaseDir, "dockerd.log");
    // The CLI's own config (contexts, credentials): never the user's ~/.docker.
    public string CliConfigDir => Path.Combine(BaseDir, "dc");
    /// <summary>The throwaway network namespace dockerd and its containerd run in (/var/run/netns/NAME).</summary>
    public string NetnsPath => Containerd.NetnsPath;
    // cgroupfs parent of runc containers, so they never mix with a system Docker's /docker.
    public string CgroupParent { get; }

    /// <summary>Server version as `docker version` reports it, e.g. 26.1.5+dfsg1.</summary>
    public string ServerVersion { get; private set; } = "";

    private PrivateDocker(string suite, PrivateContainerd containerd, string dockerdExe, string dockerExe, Process dockerd, bool runDockerExisted)
    {
        Suite = suite;
        Containerd = containerd;
        DockerdExe = dockerdExe;
        DockerExe = dockerExe;
        _dockerd = dockerd;
        _runDockerExisted = runDockerExisted;
        CgroupParent = "/" + Path.GetFileName(containerd.BaseDir);
    }

    /// <summary>The suite's docker CLI (Debian's docker-cli, fetched with the suite), else one on PATH.</summary>
    public static string? DockerCli(string suite)
    {
        if (RepoLayout.SuiteBinDir(suite) is { } bin && File.Exists(Path.Combine(bin, "docker")))
            return Path.Combine(bin, "docker");
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "docker")).FirstOrDefault(File.Exists);
    }

    /// <summary>Why a Docker suite cannot run here, or null when it can.</summary>
    public static string? Unavailable(string suite)
    {
        if (RepoLayout.SuiteBinDir(suite) is null || RepoLayout.SuiteDockerd(suite) is null)
            return $"Docker suite '{suite}' is not fetched into {RepoLayout.RuntimesDir}: run `make runtimes` " +
                   "(integration/scripts/fetch-runtimes.sh) or set WASMSHARP_RUNTIMES_DIR";
        if (DockerCli(suite) is null)
            return $"no docker CLI: neither {RepoLayout.SuiteBinDir(suite)}/docker (Debian's docker-cli, fetched by `make runtimes`) nor one on PATH";
        return null;
    }

    /// <param name="iptables">Docker's own default, which the shared harness turns off (see DaemonConfig): for
    /// the test case that runs Docker with its NAT rules, in the throwaway namespace all the same.</param>
    public static PrivateDocker Start(string suite, bool iptables = false)
    {
        if (Unavailable(suite) is { } reason) throw new InvalidOperationException(reason);
        var binDir = RepoLayout.SuiteBinDir(suite)!;
        var dockerdExe = RepoLayout.SuiteDockerd(suite)!;
        var dockerExe = DockerCli(suite)!;
        var runDockerExisted = Directory.Exists("/run/docker");
        // dockerd in its containerd's throwaway network namespace: Docker's default bridge, veths and docker-proxy
        // are made there, as on a node, and nothing of the machine's network is touched.
        var containerd = PrivateContainerd.Start(Namespace, binDir); // also sweeps what crashed runs left
        SweepStaleCgroups();
        PrivateDocker? docker = null;
        try
        {
            var cgroupParent = "/" + Path.GetFileName(containerd.BaseDir);
            File.WriteAllText(Path.Combine(containerd.BaseDir, "daemon.json"), DaemonConfig(cgroupParent, iptables));
            Directory.CreateDirectory(Path.Combine(containerd.BaseDir, "dc"));
            var dockerd = Launch(containerd, dockerdExe, binDir);
            docker = new PrivateDocker(suite, containerd, dockerdExe, dockerExe, dockerd, runDockerExisted);
            docker.WaitReady(TimeSpan.FromSeconds(60));
            return docker;
        }
        catch
        {
            if (docker is not null) docker.Dispose();
            else containerd.Dispose();
            throw;
        }
    }

    /// <summary>Docker's default bridge network in the throwaway namespace (daemon.json "bip").</summary>
    public const string BridgeCidr = "172.29.77.1/24";

    // The containerd image store (needed for Wasm images and --platform), Docker's default bridge network
    // (what users have; in the throwaway namespace, without iptables unless asked — DockerIptablesTests keeps
    // Docker's default — so published ports go through docker-proxy), our runtime under a short name, and cgroupfs whatever the host's init (with systemd
    // dockerd would pick the systemd driver, which wants a slice as cgroup parent).
    private static string DaemonConfig(string cgroupParent, bool iptables) => $$"""
        {
          "features": { "containerd-snapshotter": true },
          "iptables": {{(iptables ? "true" : "false")}},
          "ip6tables": false,
          "bip": "{{BridgeCidr}}",
          "exec-opts": ["native.cgroupdriver=cgroupfs"],
          "cgroup-parent": "{{cgroupParent}}",
          "runtimes": { "{{RuntimeAlias}}": { "runtimeType": "{{RepoLayout.Runtime}}" } }
        }
        """ + "\n";

    private static Process Launch(PrivateContainerd containerd, string dockerdExe, string binDir)
    {
        var dir = containerd.BaseDir;
        // Through sh so dockerd's output goes straight to a file that outlives us if we crash.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"exec {PrivateContainerd.InNetns(containerd.NetnsPath)}\"$0\" \"$@\" </dev/null >>\"$LOG\" 2>&1");
        psi.ArgumentList.Add(dockerdExe);
        foreach (var arg in new[]
                 {
                     "--containerd", containerd.Address,
                     "--data-root", Path.Combine(dir, "dd"),
                     "--exec-root", Path.Combine(dir, "de"),
                     "--pidfile", Path.Combine(dir, "d.pid"),
                     "-H", "unix://" + Path.Combine(dir, "d.sock"),
                     "--config-file", Path.Combine(dir, "daemon.json"),
                 })
            psi.ArgumentList.Add(arg);
        psi.Environment["LOG"] = Path.Combine(dir, "dockerd.log");
        // docker-init and docker-proxy next to the suite's dockerd; runc stays the system's (bookworm's).
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["PATH"] = string.Join(':', binDir, Path.GetDirectoryName(dockerdExe)!, path);
        return Process.Start(psi) ?? throw new InvalidOperationException("cannot start dockerd");
    }

    private void WaitReady(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_dockerd.HasExited)
                throw new InvalidOperationException($"dockerd exited with {_dockerd.ExitCode} while starting\n{LogTail()}");
            if (File.Exists(Socket))
            {
                var version = Docker(TimeSpan.FromSeconds(10), "version", "--format", "{{.Server.Version}}");
                if (version.ExitCode == 0)
                {
                    ServerVersion = version.Stdout.Trim();
                    return;
                }
            }
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"dockerd did not answer on {Socket} within {timeout.TotalSeconds} s\n{LogTail()}");
            Thread.Sleep(50);
        }
    }

    // ---- driving it ----------------------------------------------------------------------------------

    private IReadOnlyDictionary<string, string> CliEnvironment => new Dictionary<string, string>
    {
        ["DOCKER_HOST"] = "unix://" + Socket,
        ["DOCKER_CONFIG"] = CliConfigDir,
        ["DOCKER_CLI_HINTS"] = "false",
        ["DOCKER_CONTEXT"] = "default",
    };

    public ProcessResult Docker(params string[] args) => Docker(DefaultTimeout, args);

    public ProcessResult Docker(TimeSpan timeout, params string[] args) =>
        ProcessRunner.Run(DockerExe, args, timeout, CliEnvironment);

    // `printf %s INPUT | docker ARGS...`: for -i, whose stdin must be a pipe that ends (ours is closed at once).
    public ProcessResult Pipe(string input, TimeSpan timeout, params string[] args) =>
        ProcessRunner.Run("/bin/sh", ["-c", "printf %s \"$WASMSHARP_INPUT\" | exec \"$0\" \"$@\"", DockerExe, .. args], timeout,
            new Dictionary<string, string>(CliEnvironment) { ["WASMSHARP_INPUT"] = input });

    // For commands that block (docker run -a, docker wait, docker events): started now, awaited or killed later.
    public RunningProcess StartDocker(TimeSpan timeout, params string[] args) =>
        ProcessRunner.Start(DockerExe, args, timeout, CliEnvironment);

    /// <summary>`docker load -i TARBALL` (an OCI layout tarball; names come from io.containerd.image.name).</summary>
    public ProcessResult Load(string tarball)
    {
        var result = Docker(TimeSpan.FromSeconds(120), "load", "-i", tarball);
        if (result.ExitCode != 0) throw new InvalidOperationException($"docker load {tarball} failed:\n{result}\n{LogTail()}");
        return result;
    }

    // dockerd's log, then containerd's (which carries our shim's lines).
    public string LogTail(int lines = 40, string? mentioning = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"--- dockerd log, last {lines} lines ({LogPath}) ---");
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            foreach (var line in reader.ReadToEnd().Split('\n').TakeLast(lines)) sb.AppendLine(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            sb.AppendLine($"(no dockerd log: {e.Message})");
        }
        sb.Append(Containerd.LogTail(lines, mentioning));
        return sb.ToString();
    }

    // ---- cleanup -------------------------------------------------------------------------------------

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var problems = new List<string>();
        Try(problems, "remove containers", RemoveContainers);
        Try(problems, "stop dockerd", StopDockerd);
        Try(problems, "unmount", () => UnmountUnder(DataRoot, ExecRoot));
        // Tasks left in the moby namespace, shims, containerd, mounts and every file: the containerd's cleanup.
        Try(problems, "dispose containerd", Containerd.Dispose);
        Try(problems, "remove cgroups", () => RemoveCgroups(CgroupParent));
        Try(problems, "remove /run/docker", () =>
        {
            // dockerd makes /run/docker/plugins whatever its exec-root; only ours to remove if it was not there.
            if (_runDockerExisted) return;
            RmdirIfEmpty("/run/docker/plugins");
            RmdirIfEmpty("/run/docker");
        });
        _dockerd.Dispose();
        if (problems.Count > 0)
            Console.Error.WriteLine($"private docker {BaseDir} cleanup: {string.Join("; ", problems)}");
    }

    private static void Try(List<string> problems, string what, Action action)
    {
        try { action(); }
        catch (Exception e) { problems.Add($"{what}: {e.Message}"); }
    }

    // As a user would: `docker rm -f` of everything (kills, waits for the exit, deletes the task).
    private void RemoveContainers()
    {
        if (_dockerd.HasExited) return;
        var ids = Docker(TimeSpan.FromSeconds(20), "ps", "-aq").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ids.Length > 0) Docker(TimeSpan.FromSeconds(60), ["rm", "-f", .. ids]);
    }

    // SIGTERM (dockerd shuts down cleanly: unmounts, removes its netns files), then SIGKILL.
    private void StopDockerd()
    {
        var pid = _dockerd.HasExited ? (int?)null : _dockerd.Id;
        if (pid is null) return;
        ProcFs.Signal(pid.Value, ProcFs.SIGTERM);
        if (!_dockerd.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            ProcFs.Signal(pid.Value, ProcFs.SIGKILL);
            _dockerd.WaitForExit(TimeSpan.FromSeconds(5));
        }
    }

    // Container rootfs mounts (data-root) and network namespace files (exec-root/netns) of a dockerd
    // that did not clean up; deepest first.
    private static void UnmountUnder(params string[] dirs)
    {
        for (var round = 0; round < 5; round++)
        {
            var mounts = dirs.SelectMany(ProcFs.MountsUnder).Distinct().OrderByDescending(m => m.Length).ToList();
            if (mounts.Count == 0) return;
            foreach (var mount in mounts)
                if (!ProcFs.UnmountDetach(mount))
                    ProcessRunner.Run("umount", ["-l", mount], TimeSpan.FromSeconds(10));
        }
    }

    private static IEnumerable<string> CgroupRoots() =>
        Directory.Exists("/sys/fs/cgroup") ? Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup") : [];

    // Cgroup parents of crashed runs: named after a base dir that no longer exists.
    private static void SweepStaleCgroups()
    {
        foreach (var root in CgroupRoots())
            foreach (var dir in Directory.EnumerateDirectories(root, PrivateContainerd.BasePrefix + "*"))
                if (!Directory.Exists(Path.Combine("/tmp", Path.GetFileName(dir))))
                    RemoveCgroups("/" + Path.GetFileName(dir));
    }

    // runc made /sys/fs/cgroup/<controller>/<parent>/<id>; rmdir only succeeds on empty, unused ones.
    private static void RemoveCgroups(string parent)
    {
        var relative = parent.TrimStart('/');
        foreach (var root in CgroupRoots())
        {
            var dir = Path.Combine(root, relative);
            if (!Directory.Exists(dir)) continue;
            foreach (var child in Directory.EnumerateDirectories(dir)) RmdirIfEmpty(child);
            RmdirIfEmpty(dir);
        }
    }

    private static void RmdirIfEmpty(string dir)
    {
        try { Directory.Delete(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}

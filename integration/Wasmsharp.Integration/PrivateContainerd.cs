using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Wasmsharp.Integration;

// A containerd of our own: private root, state, sockets and log under a short /tmp directory, our shim
// first on its PATH. Dispose always leaves the machine as it found it (tasks, shims, mounts, files), and
// Start first sweeps what crashed earlier runs left.
public sealed class PrivateContainerd : IDisposable
{
    // Recognisable prefix for the sweep; short, because socket paths are limited to 108 bytes.
    public const string BasePrefix = "wsct-";

    // Set in containerd's environment (so in the shim's too): a guest that sees it got the shim's env.
    public const string HostEnvMarker = "WASMSHARP_HOST_ENV_MARKER";

    private Process _containerd;
    private bool _disposed;

    // Base dirs of instances this process is running: a second instance's sweep must spare them.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Running = new();

    public string BaseDir { get; }
    public string Namespace { get; }
    public string RootDir => Path.Combine(BaseDir, "root");
    public string StateDir => Path.Combine(BaseDir, "state");
    public string Address => Path.Combine(BaseDir, "c.sock");
    public string TtrpcAddress => Address + ".ttrpc";
    public string LogPath => Path.Combine(BaseDir, "containerd.log");

    /// <summary>Where the log ends now: give it to <see cref="LogSince"/> to read what is logged from here on.</summary>
    public long LogLength => File.Exists(LogPath) ? new FileInfo(LogPath).Length : 0;

    /// <summary>The log's lines from <paramref name="offset"/> (a <see cref="LogLength"/>) on.</summary>
    public List<string> LogSince(long offset)
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }
    public string ConfigPath => Path.Combine(BaseDir, "config.toml");
    public string ShimDir { get; }
    public int Pid => _containerd.Id;

    /// <summary>Directory holding this containerd's containerd and ctr (null: the system's /usr/bin).</summary>
    public string? BinDir { get; }
    public string ContainerdExe => Path.Combine(BinDir ?? "/usr/bin", "containerd");

    /// <summary>
    /// The throwaway network namespace containerd (and so every shim and runc container, and a dockerd on it)
    /// runs in, /var/run/netns/NAME. Named after the base dir, removed by Dispose (and by the sweep of a
    /// crashed run).
    /// </summary>
    public string NetnsPath { get; private set; } = "";
    public string CtrExe => Path.Combine(BinDir ?? "/usr/bin", "ctr");

    // ---- CRI (Start with cri: true) ----

    /// <summary>containerd's namespace for everything CRI does (its images must be imported there).</summary>
    public const string CriNamespace = "k8s.io";

    /// <summary>Whether the CRI plugin runs (with CNI, the sandbox image, and install.sh's runtime table).</summary>
    public bool Cri { get; private init; }

    /// <summary>This instance's CNI network (and bridge config) name, unique per instance: the base dir's name.
    /// libcni caches results as /var/lib/cni/results/NAME-*, which cleanup and the sweep remove.</summary>
    public string CniNetwork => Path.GetFileName(BaseDir);

    /// <summary>Cgroup parent for pods (Linux.CgroupParent), /NAME under each controller: removed by cleanup.</summary>
    public string PodCgroupParent => "/" + CniNetwork;

    /// <summary>The CNI bridge's subnet, inside the throwaway network namespace.</summary>
    public const string PodSubnet = "10.88.0.0/24";

    private PrivateContainerd(string baseDir, string ns, string shimDir, string? binDir, Process containerd)
    {
        BaseDir = baseDir;
        Namespace = ns;
        ShimDir = shimDir;
        BinDir = binDir;
        _containerd = containerd;
    }

    /// <summary>
    /// Starts a private containerd. <paramref name="binDir"/> picks its binaries (e.g. an extracted newer
    /// release); by default WASMSHARP_CONTAINERD_DIR, else the system's.
    /// </summary>
    /// <param name="environment">Extra variables in containerd's environment (so in every shim's).</param>
    /// <remarks>containerd runs inside a throwaway network namespace of its own (lo up), as a node's containerd
    /// with everything it and its shims wire up (and `--net-host` containers), touching nothing of the machine's
    /// network.</remarks>
    /// <param name="cri">Enable the CRI plugin (default off: the ctr suites do not need it and it is slow to
    /// start): the runtime table comes from packaging/install.sh run on this config, pods get addresses from a CNI
    /// bridge inside the throwaway namespace, the sandbox image is <see cref="Images.Pause"/> in namespace k8s.io.</param>
    public static PrivateContainerd Start(string ns, string? binDir = null, IReadOnlyDictionary<string, string>? environment = null, bool cri = false)
    {
        binDir ??= RepoLayout.ContainerdDir;
        if (ProcFs.GetEuid() != 0)
            throw new InvalidOperationException("a private containerd needs root: run the suite as root");
        SweepStale();

        var baseDir = Path.Combine("/tmp", BasePrefix + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..6]);
        Directory.CreateDirectory(baseDir);
        Running[baseDir] = true;
        File.WriteAllText(Path.Combine(baseDir, "owner"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        var shimDir = RepoLayout.ShimDir;
        var config = Path.Combine(baseDir, "config.toml");

        string netns;
        try
        {
            if (cri) WriteCriConfig(baseDir, config, binDir);
            else File.WriteAllText(config, Config(baseDir));
            netns = CreateNetns(Path.GetFileName(baseDir));
        }
        catch
        {
            Directory.Delete(baseDir, recursive: true);
            Running.TryRemove(baseDir, out _);
            throw;
        }
        Process process;
        try
        {
            process = Launch(baseDir, shimDir, binDir, config, environment, netns);
        }
        catch
        {
            DeleteNetns(Path.GetFileName(netns));
            throw;
        }
        var containerd = new PrivateContainerd(baseDir, ns, shimDir, binDir, process) { _environment = environment, NetnsPath = netns, Cri = cri };
        try
        {
            containerd.WaitReady(TimeSpan.FromSeconds(30));
            if (cri) containerd.PrepareCri();
            return containerd;
        }
        catch
        {
            containerd.Dispose();
            throw;
        }
    }

    private IReadOnlyDictionary<string, string>? _environment;

    private static Process Launch(string baseDir, string shimDir, string? binDir, string config, IReadOnlyDictionary<string, string>? environment,
        string netns)
    {
        // Through sh so containerd's output goes straight to a file that outlives us if we crash.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"exec {InNetns(netns)}\"$0\" --config \"$1\" </dev/null >>\"$2\" 2>&1");
        psi.ArgumentList.Add(Path.Combine(binDir ?? "/usr/bin", "containerd"));
        psi.ArgumentList.Add(config);
        psi.ArgumentList.Add(Path.Combine(baseDir, "containerd.log"));
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["PATH"] = string.Join(':', new[] { shimDir, binDir, path }.Where(p => p is not null));
        psi.Environment[HostEnvMarker] = "leaked";
        // The shim's compiled-module cache stays inside the base dir, so runs neither share nor leave it.
        psi.Environment["WASMSHARP_CACHE_DIR"] = Path.Combine(baseDir, "cache");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start containerd");
        File.WriteAllText(Path.Combine(baseDir, "containerd.pid"), process.Id.ToString(CultureInfo.InvariantCulture));
        return process;

    }

    /// <summary>
    /// Stops containerd (SIGTERM, as systemd would) and starts it again on the same root and state,
    /// leaving shims and their containers running: what an upgrade or crash-restart of containerd does.
    /// </summary>
    public void Restart()
    {
        StopProcess(_containerd);
        _containerd.Dispose();
        _containerd = Launch(BaseDir, ShimDir, BinDir, ConfigPath, _environment, NetnsPath);
        WaitReady(TimeSpan.FromSeconds(30));
    }

    /// <summary>Stops containerd (SIGTERM) and leaves it stopped; shims and containers stay as they are.
    /// Dispose still cleans up.</summary>
    public void StopDaemon() => StopProcess(_containerd);

    private static string Config(string baseDir) => $"""
        # Private containerd for the wasmsharp integration suite.
        version = 2
        root = "{baseDir}/root"
        state = "{baseDir}/state"
        # CRI is not needed by ctr and is the slowest plugin to start.
        disabled_plugins = ["io.containerd.grpc.v1.cri"]

        [grpc]
          address = "{baseDir}/c.sock"

        [ttrpc]
          address = "{baseDir}/c.sock.ttrpc"

        [debug]
          level = "{Environment.GetEnvironmentVariable("WASMSHARP_CONTAINERD_LOG_LEVEL") ?? "info"}"

        # Keep everything inside the base dir (default: /opt/containerd).
        [plugins."io.containerd.internal.v1.opt"]
          path = "{baseDir}/opt"
        """ + "\n";

    // A version 2 config for containerd 1.x, version 3 for 2.x (what install.sh writes for each), then the
    // wasmsharp runtime table added by the shipped install.sh itself, so the tests run the config users get.
    private static void WriteCriConfig(string baseDir, string config, string? binDir)
    {
        var containerd = Path.Combine(binDir ?? "/usr/bin", "containerd");
        var major = ContainerdMajor(containerd);
        var name = Path.GetFileName(baseDir);
        var common = Config(baseDir).Replace("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]", "", StringComparison.Ordinal);
        // CNI: a bridge in containerd's throwaway namespace; host-local keeps its leases inside the base dir.
        var cniConf = Directory.CreateDirectory(Path.Combine(baseDir, "cni", "net.d")).FullName;
        File.WriteAllText(Path.Combine(cniConf, "10-wasmsharp.conflist"), $$"""
            {
              "cniVersion": "0.4.0",
              "name": "{{name}}",
              "plugins": [
                { "type": "bridge", "bridge": "wsbr0", "isGateway": true, "ipMasq": false,
                  "ipam": { "type": "host-local", "dataDir": "{{baseDir}}/cni/ipam",
                            "ranges": [[{ "subnet": "{{PodSubnet}}" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
                { "type": "loopback" }
              ]
            }
            """);
        string cri;
        if (major >= 2)
        {
            cri = $"""
                [plugins.'io.containerd.cri.v1.images'.pinned_images]
                  sandbox = "{Images.Pause}"
                [plugins.'io.containerd.cri.v1.runtime']
                  restrict_oom_score_adj = true
                  netns_mounts_under_state_dir = true
                [plugins.'io.containerd.cri.v1.runtime'.cni]
                  bin_dirs = ["{CniBinDir}"]
                  conf_dir = "{cniConf}"
                # NRI is on by default in 2.x, with a socket in /var/run/nri.
                [plugins.'io.containerd.nri.v1.nri']
                  socket_path = "{baseDir}/nri.sock"
                  plugin_path = "{baseDir}/nri/plugins"
                  plugin_config_path = "{baseDir}/nri/conf.d"
                """;
            // Same content; only the header differs (version 3 quotes plugin names with single quotes).
            common = common.Replace("version = 2", "version = 3", StringComparison.Ordinal)
                .Replace("[plugins.\"io.containerd.internal.v1.opt\"]", "[plugins.'io.containerd.internal.v1.opt']", StringComparison.Ordinal);
        }
        else
        {
            cri = $"""
                [plugins."io.containerd.grpc.v1.cri"]
                  sandbox_image = "{Images.Pause}"
                  restrict_oom_score_adj = true
                  netns_mounts_under_state_dir = true
                  [plugins."io.containerd.grpc.v1.cri".cni]
                    bin_dir = "{CniBinDir}"
                    conf_dir = "{cniConf}"
                """;
        }
        File.WriteAllText(config, common + "\n# CRI (for pods through containerd's CRI plugin, as kubelet drives it).\n" + cri + "\n");
        var install = ProcessRunner.Run(Path.Combine(RepoLayout.Root, "packaging", "install.sh"),
            ["--config-only", "--config", config, "--no-restart", "--containerd", containerd], TimeSpan.FromSeconds(30));
        if (install.ExitCode != 0 || !File.ReadAllText(config).Contains($"runtime_type = \"{RepoLayout.Runtime}\"", StringComparison.Ordinal))
            throw new InvalidOperationException($"packaging/install.sh did not add the wasmsharp runtime to {config}:\n{install}\n{File.ReadAllText(config)}");
    }

    /// <summary>Debian's containernetworking-plugins.</summary>
    public const string CniBinDir = "/usr/lib/cni";

    // `containerd --version`: "containerd github.com/containerd/containerd[/v2] 2.1.9+unknown ...".
    private static int ContainerdMajor(string containerd)
    {
        var output = ProcessRunner.RunChecked(containerd, ["--version"], TimeSpan.FromSeconds(10)).Stdout;
        var words = output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var version = words.FirstOrDefault(w => w.Length > 1 && char.IsAsciiDigit(w.TrimStart('v')[0]) && w.Contains('.'))
            ?? throw new InvalidOperationException($"no version in `{containerd} --version`: {output}");
        return int.Parse(version.TrimStart('v').Split('.')[0], CultureInfo.InvariantCulture);
    }

    // The sandbox image in k8s.io, then until CRI reports runtime and network (CNI config loaded) ready.
    private void PrepareCri()
    {
        if (!File.Exists(Path.Combine(CniBinDir, "bridge")))
            throw new InvalidOperationException($"no CNI plugins in {CniBinDir}: apt-get install -y containernetworking-plugins");
        Images.Import(this, Images.BuildPause(BaseDir), CriNamespace);
        using var client = new CriClient(this);
        client.WaitReady(TimeSpan.FromSeconds(30));
    }

    private void WaitReady(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Address))
        {
            if (_containerd.HasExited)
                throw new InvalidOperationException($"containerd exited with {_containerd.ExitCode} while starting\n{LogTail(40)}");
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"containerd did not create {Address} within {timeout.TotalSeconds} s\n{LogTail(40)}");
            Thread.Sleep(20);
        }
        ProcessResult version;
        while ((version = Ctr(TimeSpan.FromSeconds(5), "version")).ExitCode != 0)
        {
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"containerd does not answer `ctr version`:\n{version}\n{LogTail(40)}");
            Thread.Sleep(50);
        }
    }

    // ---- driving it ----------------------------------------------------------------------------------

    public string[] CtrArgs(IEnumerable<string> args) => ["-a", Address, "-n", Namespace, .. args];

    /// <summary>This containerd's ctr with these arguments, as a shell command line (for pipes and `script`).</summary>
    public string CtrCommandLine(IEnumerable<string> args) =>
        string.Join(' ', new[] { CtrExe }.Concat(CtrArgs(args)).Select(ProcessRunner.ShellQuote));

    public ProcessResult Ctr(params string[] args) => Ctr(ProcessRunner.DefaultTimeout, args);

    public ProcessResult Ctr(TimeSpan timeout, params string[] args) =>
        ProcessRunner.Run(CtrExe, CtrArgs(args), timeout);

    // For commands that block (ctr task attach, ctr events): started now, awaited or killed later.
    public RunningProcess StartCtr(TimeSpan timeout, string[] args, Action<string>? onLine = null) =>
        ProcessRunner.Start(CtrExe, CtrArgs(args), timeout, onLine: onLine);

    public sealed record TaskRow(string Id, int Pid, string Status);

    // `ctr task ls`: TASK PID STATUS.
    public IReadOnlyList<TaskRow> Tasks()
    {
        var result = Ctr("tasks", "ls");
        if (result.ExitCode != 0) throw new InvalidOperationException($"ctr tasks ls failed:\n{result}");
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 3)
            .Select(f => new TaskRow(f[0], int.TryParse(f[1], out var pid) ? pid : 0, f[2]))
            .ToList();
    }

    public TaskRow? Task(string id) => Tasks().FirstOrDefault(t => t.Id == id);

    /// <summary>Shim processes of this containerd (not spare ones) whose -id is one of <paramref name="ids"/>,
    /// or all of them for a runtime binary name.</summary>
    public IReadOnlyList<ProcFs.ProcessInfo> Shims(string binary, IEnumerable<string>? ids = null) => ProcFs.Processes()
        .Where(p => p.Args.Count > 0 && p.Args[0].EndsWith(binary, StringComparison.Ordinal) && p.SpareRole is null &&
                    p.HasArgPair("-address", Address) && (ids is null || ids.Any(id => p.HasArgPair("-id", id))))
        .ToList();

    public IReadOnlyList<string> Containers() =>
        Ctr("containers", "ls", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    // Where containerd 1.6+ puts a v2 task's bundle (the shim's cwd).
    public string BundleDir(string id) => Path.Combine(StateDir, "io.containerd.runtime.v2.task", Namespace, id);

    // The last lines of containerd's log (our shim's log lines are copied into it), plus, when given,
    // the lines that mention a container id: what a failing test should show.
    public string LogTail(int lines = 60, string? mentioning = null)
    {
        string[] all;
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            all = reader.ReadToEnd().Split('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"(no containerd log: {e.Message})";
        }
        var sb = new StringBuilder();
        if (mentioning is not null)
        {
            var related = all.Where(l => l.Contains(mentioning, StringComparison.Ordinal)).TakeLast(40).ToList();
            sb.AppendLine($"--- containerd log, lines mentioning {mentioning} ({related.Count}) ---");
            foreach (var line in related) sb.AppendLine(line);
        }
        sb.AppendLine($"--- containerd log, last {lines} lines ({LogPath}) ---");
        foreach (var line in all.TakeLast(lines)) sb.AppendLine(line);
        return sb.ToString();
    }

    // ---- cleanup -------------------------------------------------------------------------------------

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var problems = new List<string>();
        if (Cri && !_containerd.HasExited) Try(problems, "remove pods", () => { using var client = new CriClient(this); client.RemoveAll(); });
        Try(problems, "remove tasks and containers", RemoveTasksAndContainers);
        Try(problems, "stop containerd", () => StopProcess(_containerd));
        Try(problems, "clean up", () => CleanUpDirectory(BaseDir));
        Try(problems, "remove per-namespace directories", () => RemoveNamespaceLeftovers(Namespace));
        if (Cri) Try(problems, "remove CRI's per-namespace directories", () => RemoveNamespaceLeftovers(CriNamespace));
        Try(problems, "delete network namespace", () => DeleteNetns(Path.GetFileName(NetnsPath)));
        Try(problems, "remove CNI results and pod cgroups", () => RemoveCriLeftovers(CniNetwork));
        _containerd.Dispose();
        Running.TryRemove(BaseDir, out _);
        if (problems.Count > 0)
            Console.Error.WriteLine($"private containerd {BaseDir} cleanup: {string.Join("; ", problems)}");
    }

    private static void Try(List<string> problems, string what, Action action)
    {
        try { action(); }
        catch (Exception e) { problems.Add($"{what}: {e.Message}"); }
    }

    // As a user would: kill -9 every task, delete it, delete every container (and its snapshot).
    private void RemoveTasksAndContainers()
    {
        if (_containerd.HasExited) return;
        var timeout = TimeSpan.FromSeconds(10);
        var namespaces = ProcessRunner.Run(CtrExe, ["-a", Address, "namespaces", "ls", "-q"], timeout)
            .Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var ns in namespaces)
        {
            ProcessResult Run(params string[] args) =>
                ProcessRunner.Run(CtrExe, ["-a", Address, "-n", ns, .. args], timeout);
            var tasks = Run("tasks", "ls", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var id in tasks)
            {
                Run("tasks", "kill", "-s", "SIGKILL", id);
                Run("tasks", "delete", "-f", id);
            }
            foreach (var id in Run("containers", "ls", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                Run("containers", "delete", id);
        }
    }

    // SIGTERM, a grace period, then SIGKILL.
    private static void StopProcess(Process process)
    {
        if (process.HasExited) return;
        ProcFs.Signal(process.Id, ProcFs.SIGTERM);
        if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            ProcFs.Signal(process.Id, ProcFs.SIGKILL);
            process.WaitForExit(TimeSpan.FromSeconds(5));
        }
    }

    // Everything below containerd: shims (cwd = a bundle, or our socket in their argv), runc container
    // processes (root = a rootfs under the dir), mounts, then the files.
    private static void CleanUpDirectory(string baseDir)
    {
        KillProcessesOf(baseDir);
        for (var round = 0; round < 5; round++)
        {
            var mounts = ProcFs.MountsUnder(baseDir);
            if (mounts.Count == 0) break;
            foreach (var mount in mounts)
                if (!ProcFs.UnmountDetach(mount))
                    ProcessRunner.Run("umount", ["-l", mount], TimeSpan.FromSeconds(10));
        }
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (Directory.Exists(baseDir)) Directory.Delete(baseDir, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 10)
            {
                Thread.Sleep(200);
            }
        }
    }

    private static void KillProcessesOf(string baseDir)
    {
        bool Belongs(ProcFs.ProcessInfo p) =>
            p.Pid != Environment.ProcessId &&
            (ProcFs.IsUnder(p.Cwd, baseDir) || ProcFs.IsUnder(p.Root, baseDir) ||
             p.Args.Any(a => a.StartsWith(baseDir + "/", StringComparison.Ordinal)));

        for (var round = 0; round < 50; round++)
        {
            var left = ProcFs.Processes().Where(Belongs).ToList();
            if (left.Count == 0) return;
            foreach (var p in left)
            {
                ProcFs.Signal(p.Pid, ProcFs.SIGKILL);
                // A spare shim (`-spare SOCKET ...`, or a standby that took its place) killed this way cannot
                // remove its socket: we do.
                if (p.SpareRole is not null && p.Args[2].StartsWith("/run/containerd/s/", StringComparison.Ordinal))
                    File.Delete(p.Args[2]);
                // So cannot runc's shim (Docker's containers, the runc side of comparisons).
                if (p.Args.Count > 0 && p.Args[0].EndsWith("containerd-shim-runc-v2", StringComparison.Ordinal) &&
                    p.ArgValue("-address") is { } address && p.ArgValue("-namespace") is { } ns && p.ArgValue("-id") is { } id)
                    File.Delete(RuncShimSocket(address, ns, id));
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// The socket of runc's shim for container (or pod) <paramref name="id"/>: containerd names it by the SHA-256 of
    /// ADDRESS/NAMESPACE/ID. The shim removes it when it exits, but not when it is killed, and neither does
    /// containerd's cleanup of the dead shim (`shim delete`): whoever kills one removes it.
    /// </summary>
    public static string RuncShimSocket(string address, string ns, string id) =>
        "/run/containerd/s/" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{address}/{ns}/{id}")));

    // Directories of earlier runs whose owner process is gone: stop their containerd, then clean up.
    public static void SweepStale()
    {
        foreach (var dir in Directory.EnumerateDirectories("/tmp", BasePrefix + "*"))
        {
            if (Running.ContainsKey(dir)) continue;
            if (ReadPid(Path.Combine(dir, "owner")) is { } owner && owner != Environment.ProcessId && ProcFs.IsAlive(owner))
                continue; // another live run (tests and bench may run at once)
            // Only if that pid is still our containerd (its --config is in the dir), not a reused pid.
            if (ReadPid(Path.Combine(dir, "containerd.pid")) is { } pid &&
                ProcFs.Processes().FirstOrDefault(p => p.Pid == pid) is { } process &&
                process.Args.Any(a => a.StartsWith(dir + "/", StringComparison.Ordinal)))
                ProcFs.Signal(pid, ProcFs.SIGKILL);
            try
            {
                CleanUpDirectory(dir);
                foreach (var ns in SweptNamespaces) RemoveNamespaceLeftovers(ns);
                RemoveCriLeftovers(Path.GetFileName(dir));
            }
            catch (Exception e) { Console.Error.WriteLine($"cannot sweep {dir}: {e.Message}"); }
        }
        // Throwaway network namespaces whose base dir is gone.
        if (Directory.Exists(NetnsDir))
            foreach (var netns in Directory.EnumerateFiles(NetnsDir, BasePrefix + "*"))
                if (!Directory.Exists(Path.Combine("/tmp", Path.GetFileName(netns)))) DeleteNetns(Path.GetFileName(netns));
    }

    private const string NetnsDir = "/var/run/netns";

    /// <summary>`nsenter --net=PATH ` for a shell command line.</summary>
    public static string InNetns(string netns) => $"nsenter --net={ProcessRunner.ShellQuote(netns)} -- ";

    // `ip netns add` (a bind mount in /var/run/netns), with lo up.
    private static string CreateNetns(string name)
    {
        ProcessRunner.RunChecked("ip", ["netns", "add", name], TimeSpan.FromSeconds(10));
        try
        {
            ProcessRunner.RunChecked("ip", ["-n", name, "link", "set", "lo", "up"], TimeSpan.FromSeconds(10));
        }
        catch
        {
            DeleteNetns(name);
            throw;
        }
        return Path.Combine(NetnsDir, name);
    }

    private static void DeleteNetns(string name) => ProcessRunner.Run("ip", ["netns", "delete", name], TimeSpan.FromSeconds(10));

    // The namespaces this harness uses: after a crash we no longer know which one a stale run had.
    private static readonly string[] SweptNamespaces = ["wasmsharp-test", "wasmsharp-bench", "wasmsharp-demo", CriNamespace];

    // What a CRI instance leaves outside its base dir once its pods are gone or its processes killed: libcni's
    // result cache (NETWORK-SANDBOX-IFNAME) and the pods' cgroups under /NETWORK (PodCgroupParent).
    private static void RemoveCriLeftovers(string network)
    {
        const string results = "/var/lib/cni/results";
        if (Directory.Exists(results))
            foreach (var file in Directory.EnumerateFiles(results, network + "-*")) File.Delete(file);
        if (!Directory.Exists("/sys/fs/cgroup")) return;
        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
        {
            var root = Path.Combine(controller, network);
            if (!Directory.Exists(root)) continue;
            // Deepest first: a cgroup directory can only be removed once it has no children.
            foreach (var dir in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(root))
            {
                try { Directory.Delete(dir); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
    }

    // runc leaves an empty state directory per namespace (/run/containerd/runc/NS) and cgroups
    // /sys/fs/cgroup/*/NS[/ID]. rmdir only succeeds on empty, unused ones, so a concurrent run using the
    // same namespace is not disturbed.
    private static void RemoveNamespaceLeftovers(string ns)
    {
        static void RmdirIfUnused(string dir)
        {
            try { Directory.Delete(dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        RmdirIfUnused(Path.Combine("/run/containerd/runc", ns));
        if (!Directory.Exists("/sys/fs/cgroup")) return;
        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
        {
            var nsDir = Path.Combine(controller, ns);
            if (!Directory.Exists(nsDir)) continue;
            foreach (var child in Directory.EnumerateDirectories(nsDir)) RmdirIfUnused(child);
            RmdirIfUnused(nsDir);
        }
    }

    private static int? ReadPid(string file)
    {
        try { return int.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return null; }
    }
}

using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Cri = Runtime.V1;

namespace Wasmsharp.Integration;

/// <summary>
/// Kubernetes' CRI (runtime.v1) against a private containerd's CRI plugin, called as kubelet calls it: pods,
/// their containers, exec, stats, resources, and the CRI log files containerd writes. Blocking calls with a
/// deadline each, for tests. The raw generated clients are <see cref="Runtime"/> and <see cref="Image"/>.
/// </summary>
public sealed class CriClient : IDisposable
{
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(60);

    private readonly GrpcChannel _channel;
    private readonly PrivateContainerd _containerd;
    private int _pods;

    public Cri.RuntimeService.RuntimeServiceClient Runtime { get; }
    public Cri.ImageService.ImageServiceClient Image { get; }

    public CriClient(PrivateContainerd containerd)
    {
        if (!containerd.Cri) throw new InvalidOperationException("this containerd runs without CRI: PrivateContainerd.Start(..., cri: true)");
        _containerd = containerd;
        _channel = Wasmsharp.Grpc.GrpcClient.Connect(containerd.Address);
        Runtime = new Cri.RuntimeService.RuntimeServiceClient(_channel);
        Image = new Cri.ImageService.ImageServiceClient(_channel);
    }

    public void Dispose() => _channel.Dispose();

    private static CallOptions Deadline(TimeSpan? timeout = null) => new(deadline: DateTime.UtcNow + (timeout ?? CallTimeout));

    public Cri.VersionResponse Version() => Runtime.Version(new Cri.VersionRequest { Version = "v1" }, Deadline());

    /// <summary>Until Status reports RuntimeReady and NetworkReady (the CNI config is loaded).</summary>
    public void WaitReady(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        string last = "";
        while (true)
        {
            try
            {
                var status = Runtime.Status(new Cri.StatusRequest(), Deadline(TimeSpan.FromSeconds(5))).Status;
                if (status.Conditions.Count > 0 && status.Conditions.All(c => c.Status)) return;
                last = status.ToString();
            }
            catch (RpcException e) { last = e.Status.ToString(); }
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"CRI not ready after {timeout.TotalSeconds} s: {last}\n{_containerd.LogTail(30)}");
            Thread.Sleep(100);
        }
    }

    // ---- pods ----------------------------------------------------------------------------------------

    /// <summary>
    /// A pod's config as kubelet builds it: metadata (namespace "default", a fresh uid), a log directory inside
    /// the containerd's base dir, the instance's cgroup parent, and its own network namespace (CNI) unless
    /// <paramref name="hostNetwork"/>.
    /// </summary>
    public Cri.PodSandboxConfig PodConfig(string name, bool hostNetwork = false)
    {
        var uid = Guid.NewGuid().ToString();
        var logDir = Directory.CreateDirectory(Path.Combine(_containerd.BaseDir, "pods", $"{name}_{uid}")).FullName;
        return new Cri.PodSandboxConfig
        {
            Metadata = new Cri.PodSandboxMetadata { Name = name, Uid = uid, Namespace = "default", Attempt = 0 },
            // As kubelet: a host-network pod shares the node's UTS namespace, so it cannot set a hostname.
            Hostname = hostNetwork ? "" : name,
            LogDirectory = logDir,
            Linux = new Cri.LinuxPodSandboxConfig
            {
                CgroupParent = $"{_containerd.PodCgroupParent}/pod{uid}",
                SecurityContext = new Cri.LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new Cri.NamespaceOption
                    {
                        Network = hostNetwork ? Cri.NamespaceMode.Node : Cri.NamespaceMode.Pod,
                        Pid = Cri.NamespaceMode.Container,
                        Ipc = Cri.NamespaceMode.Pod,
                    },
                },
            },
        };
    }

    /// <summary>A readable, unique pod name.</summary>
    public string NewPodName(string what) => $"{what}-{Interlocked.Increment(ref _pods)}";

    /// <summary>RunPodSandbox; <paramref name="handler"/> is the RuntimeClass handler ("" = containerd's default, runc).</summary>
    public CriPod RunPod(Cri.PodSandboxConfig config, string handler = "")
    {
        var id = Runtime.RunPodSandbox(new Cri.RunPodSandboxRequest { Config = config, RuntimeHandler = handler }, Deadline()).PodSandboxId;
        return new CriPod(this, id, config, handler);
    }

    public Cri.PodSandboxStatusResponse PodStatus(string podId, bool verbose = false) =>
        Runtime.PodSandboxStatus(new Cri.PodSandboxStatusRequest { PodSandboxId = podId, Verbose = verbose }, Deadline());

    /// <summary>The pod's network namespace path, from PodSandboxStatus's verbose info (the sandbox's OCI spec).</summary>
    public string? PodNetnsPath(string podId)
    {
        var info = PodStatus(podId, verbose: true).Info;
        if (!info.TryGetValue("info", out var json)) return null;
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("runtimeSpec", out var spec) ||
            !spec.TryGetProperty("linux", out var linux) || !linux.TryGetProperty("namespaces", out var namespaces))
            return null;
        foreach (var ns in namespaces.EnumerateArray())
            if (ns.GetProperty("type").GetString() == "network" && ns.TryGetProperty("path", out var path))
                return path.GetString();
        return null;
    }

    /// <summary>The pod's sandbox pid (for a wasmsharp pod the thread standing in for pause), from PodSandboxStatus's verbose info.</summary>
    public int? PodPid(string podId) => InfoPid(PodStatus(podId, verbose: true).Info);

    // "pid" of the JSON in a verbose status's info["info"].
    private static int? InfoPid(IDictionary<string, string> info)
    {
        if (!info.TryGetValue("info", out var json)) return null;
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.TryGetProperty("pid", out var pid) ? pid.GetInt32() : null;
    }

    public IReadOnlyList<Cri.PodSandbox> ListPods() =>
        Runtime.ListPodSandbox(new Cri.ListPodSandboxRequest(), Deadline()).Items;

    public void StopPod(string podId) => Runtime.StopPodSandbox(new Cri.StopPodSandboxRequest { PodSandboxId = podId }, Deadline());

    public void RemovePod(string podId) => Runtime.RemovePodSandbox(new Cri.RemovePodSandboxRequest { PodSandboxId = podId }, Deadline());

    public Cri.PodSandboxStats PodStats(string podId) =>
        Runtime.PodSandboxStats(new Cri.PodSandboxStatsRequest { PodSandboxId = podId }, Deadline()).Stats;

    /// <summary>Stops and removes every pod (and so every container): cleanup, as kubelet's pod deletion.</summary>
    public void RemoveAll()
    {
        foreach (var pod in ListPods())
        {
            StopPod(pod.Id);
            RemovePod(pod.Id);
        }
        foreach (var container in ListContainers()) RemoveContainer(container.Id);
    }

    // ---- containers ----------------------------------------------------------------------------------

    /// <summary>
    /// A container's config: <paramref name="image"/> must be in namespace k8s.io (see Images.Import); command
    /// replaces the entrypoint, args the cmd, as in a pod spec. The CRI log goes to NAME.log in the pod's log dir.
    /// </summary>
    public static Cri.ContainerConfig ContainerConfig(string name, string image, IEnumerable<string>? command = null, IEnumerable<string>? args = null,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var config = new Cri.ContainerConfig
        {
            Metadata = new Cri.ContainerMetadata { Name = name, Attempt = 0 },
            Image = new Cri.ImageSpec { Image = image },
            LogPath = name + ".log",
            Linux = new Cri.LinuxContainerConfig(),
        };
        config.Command.AddRange(command ?? []);
        config.Args.AddRange(args ?? []);
        foreach (var (key, value) in env ?? new Dictionary<string, string>()) config.Envs.Add(new Cri.KeyValue { Key = key, Value = Google.Protobuf.ByteString.CopyFromUtf8(value) });
        return config;
    }

    public string CreateContainer(CriPod pod, Cri.ContainerConfig config) =>
        Runtime.CreateContainer(new Cri.CreateContainerRequest { PodSandboxId = pod.Id, Config = config, SandboxConfig = pod.Config }, Deadline()).ContainerId;

    public void StartContainer(string id) => Runtime.StartContainer(new Cri.StartContainerRequest { ContainerId = id }, Deadline());

    public Cri.ContainerStatus ContainerStatus(string id, bool verbose = false) =>
        Runtime.ContainerStatus(new Cri.ContainerStatusRequest { ContainerId = id, Verbose = verbose }, Deadline()).Status;

    /// <summary>The container's process id (its task's pid), from ContainerStatus's verbose info.</summary>
    public int? ContainerPid(string id) =>
        InfoPid(Runtime.ContainerStatus(new Cri.ContainerStatusRequest { ContainerId = id, Verbose = true }, Deadline()).Info);

    /// <summary>Polls ContainerStatus (every <paramref name="poll"/>, 50 ms by default) until the container has exited; its final status.</summary>
    public Cri.ContainerStatus WaitExited(string id, TimeSpan timeout, TimeSpan? poll = null)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = ContainerStatus(id);
            if (status.State == Cri.ContainerState.ContainerExited) return status;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"container {id} still {status.State} after {timeout.TotalSeconds} s\n{_containerd.LogTail(30, id)}");
            Thread.Sleep(poll ?? TimeSpan.FromMilliseconds(50));
        }
    }

    /// <summary>ListContainers, of one pod or all.</summary>
    public IReadOnlyList<Cri.Container> ListContainers(string? podId = null) =>
        Runtime.ListContainers(new Cri.ListContainersRequest { Filter = podId is null ? null : new Cri.ContainerFilter { PodSandboxId = podId } }, Deadline()).Containers;

    /// <summary>StopContainer: SIGTERM (or the image's stop signal), SIGKILL after <paramref name="timeoutSeconds"/>.</summary>
    public void StopContainer(string id, long timeoutSeconds) =>
        Runtime.StopContainer(new Cri.StopContainerRequest { ContainerId = id, Timeout = timeoutSeconds },
            Deadline(CallTimeout + TimeSpan.FromSeconds(timeoutSeconds)));

    public void RemoveContainer(string id) => Runtime.RemoveContainer(new Cri.RemoveContainerRequest { ContainerId = id }, Deadline());

    public Cri.ExecSyncResponse ExecSync(string id, IEnumerable<string> command, long timeoutSeconds = 10)
    {
        var request = new Cri.ExecSyncRequest { ContainerId = id, Timeout = timeoutSeconds };
        request.Cmd.AddRange(command);
        return Runtime.ExecSync(request, Deadline(CallTimeout + TimeSpan.FromSeconds(timeoutSeconds)));
    }

    // ---- streaming (containerd's CRI streaming server) ----------------------------------------------

    /// <summary>Exec, as kubectl exec: the call returns a URL on the streaming server, opened here as a <see cref="CriStream"/>.</summary>
    public CriStream Exec(string id, IEnumerable<string> command, bool stdin = false, bool stdout = true, bool stderr = true, bool tty = false)
    {
        var request = new Cri.ExecRequest { ContainerId = id, Stdin = stdin, Stdout = stdout, Stderr = stderr, Tty = tty };
        request.Cmd.AddRange(command);
        return OpenStream(Runtime.Exec(request, Deadline()).Url);
    }

    /// <summary>Attach, as kubectl attach, to a running container's stdio.</summary>
    public CriStream Attach(string id, bool stdin = false, bool stdout = true, bool stderr = true, bool tty = false) =>
        OpenStream(Runtime.Attach(new Cri.AttachRequest { ContainerId = id, Stdin = stdin, Stdout = stdout, Stderr = stderr, Tty = tty }, Deadline()).Url);

    /// <summary>PortForward, as kubectl port-forward: channel 0 carries one connection to the pod's 127.0.0.1:<paramref name="port"/>.</summary>
    public CriStream PortForward(string podId, int port)
    {
        var request = new Cri.PortForwardRequest { PodSandboxId = podId };
        request.Port.Add(port);
        return OpenStream(Runtime.PortForward(request, Deadline()).Url);
    }

    // The streaming server listens inside containerd's network namespace.
    private CriStream OpenStream(string url) => CriStream.Open(url, _containerd.NetnsPath);

    public Cri.ContainerStats ContainerStats(string id) =>
        Runtime.ContainerStats(new Cri.ContainerStatsRequest { ContainerId = id }, Deadline()).Stats;

    public IReadOnlyList<Cri.ContainerStats> ListContainerStats(string? podId = null) =>
        Runtime.ListContainerStats(new Cri.ListContainerStatsRequest { Filter = podId is null ? null : new Cri.ContainerStatsFilter { PodSandboxId = podId } }, Deadline()).Stats;

    public void UpdateContainerResources(string id, Cri.LinuxContainerResources resources) =>
        Runtime.UpdateContainerResources(new Cri.UpdateContainerResourcesRequest { ContainerId = id, Linux = resources }, Deadline());

    // ---- CRI log files -------------------------------------------------------------------------------

    /// <summary>One line of a CRI log file: "TIMESTAMP STREAM TAG MESSAGE" (TAG F = full line, P = partial).</summary>
    public sealed record LogLine(DateTimeOffset Time, string Stream, bool Partial, string Message)
    {
        public override string ToString() => $"{Time:O} {Stream} {(Partial ? "P" : "F")} {Message}";
    }

    /// <summary>The lines of a CRI log file (none if it does not exist yet).</summary>
    public static IReadOnlyList<LogLine> ReadLog(string path)
    {
        if (!File.Exists(path)) return [];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<LogLine>();
        // Lines end at \n only: a terminal's output keeps its \r inside the message (ReadLine would split there).
        foreach (var line in reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 4);
            if (parts.Length < 3) throw new FormatException($"not a CRI log line in {path}: {line}");
            lines.Add(new LogLine(DateTimeOffset.Parse(parts[0], CultureInfo.InvariantCulture), parts[1], parts[2] == "P", parts.Length > 3 ? parts[3] : ""));
        }
        return lines;
    }

    /// <summary>A stream's text in a CRI log file, partial lines joined: what `kubectl logs` shows.</summary>
    public static string LogText(string path, string stream = "stdout") =>
        string.Concat(ReadLog(path).Where(l => l.Stream == stream).Select(l => l.Partial ? l.Message : l.Message + "\n"));
}

/// <summary>A running pod: its containers are created, started and inspected through it; Dispose stops and
/// removes it with all its containers (StopPodSandbox + RemovePodSandbox), as kubelet deletes a pod.</summary>
public sealed class CriPod(CriClient client, string id, Cri.PodSandboxConfig config, string handler) : IDisposable
{
    private bool _disposed;

    public string Id { get; } = id;
    public Cri.PodSandboxConfig Config { get; } = config;
    public string Handler { get; } = handler;
    public CriClient Client { get; } = client;

    /// <summary>CreateContainer + StartContainer; the container id.</summary>
    public string Start(Cri.ContainerConfig config)
    {
        var id = Client.CreateContainer(this, config);
        Client.StartContainer(id);
        return id;
    }

    /// <summary>Where containerd writes the CRI log of a container made with CriClient.ContainerConfig.</summary>
    public string LogPath(string containerName) => Path.Combine(Config.LogDirectory, containerName + ".log");

    public Cri.PodSandboxStatus Status() => Client.PodStatus(Id).Status;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Client.StopPod(Id);
        Client.RemovePod(Id);
    }
}

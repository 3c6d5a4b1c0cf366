using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

[CollectionDefinition(Name)]
public sealed class CriCollection : ICollectionFixture<CriFixture>
{
    public const string Name = "private containerd with CRI";
}

// One private containerd with its CRI plugin (WASMSHARP_CONTAINERD_DIR picks the version), driven through a
// CRI client as kubelet would; the busybox and wasm test images imported into CRI's namespace k8s.io.
public sealed class CriFixture : IDisposable
{
    // The RuntimeClass handler packaging/install.sh registers (packaging/kubernetes/runtimeclass.yaml).
    public const string WasmHandler = "wasmsharp";
    public static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(30);

    // Long-running containers: busybox's sleep, and the wasm test image's (longer than any test).
    public static readonly string[] NativeSleep = ["/bin/sleep", "inf"];
    public static readonly string[] WasmSleep = ["/sleep.wasm", "600"];

    public PrivateContainerd Containerd { get; }
    public CriClient Client { get; }

    public CriFixture()
    {
        Containerd = PrivateContainerd.Start("wasmsharp-test", cri: true);
        try
        {
            Images.Import(Containerd, Images.BuildBusybox(Containerd.BaseDir), PrivateContainerd.CriNamespace);
            Images.Import(Containerd, Images.BuildWasmTests(WasmPrograms.Get(), Containerd.BaseDir), PrivateContainerd.CriNamespace);
            Client = new CriClient(Containerd);
        }
        catch
        {
            // xunit does not dispose a fixture whose constructor threw.
            Containerd.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        Containerd.Dispose();
    }

    /// <summary>A new pod (its own network namespace unless hostNetwork) with this handler ("" = runc).</summary>
    public CriPod RunPod(string what, string handler = "", bool hostNetwork = false) =>
        Client.RunPod(Client.PodConfig(Client.NewPodName(what), hostNetwork), handler);

    // Fails with the containerd log (our shim's lines are in it), the lines about `id` first.
    public void Check(bool ok, string what, string? id = null)
    {
        if (ok) return;
        var shim = RepoLayout.ShimPublished ? "" : $"\n(note: {RepoLayout.ShimBinary} is not published in {Containerd.ShimDir})";
        Assert.Fail($"{what}{shim}\n{Containerd.LogTail(40, id)}");
    }

    /// <summary>ContainerStats of a container named "holder" that prints "allocated 20 MiB" and holds it, and of a
    /// sleeper in the same pod: each reports its own guest's memory (not the pod's shim's), and the holder its cpu.</summary>
    public void CheckHolderAndSleeperStats(CriPod pod, string holder, string sleeper)
    {
        const long MiB = 1 << 20;
        ContainerdFixture.Eventually(() => CriClient.LogText(pod.LogPath("holder")).Contains("allocated 20 MiB", StringComparison.Ordinal), RunTimeout);
        Cri.ContainerStats held = null!;
        ContainerdFixture.Eventually(() => (held = Client.ContainerStats(holder)).Memory?.WorkingSetBytes?.Value >= 20 * MiB, TimeSpan.FromSeconds(15));
        var slept = Client.ContainerStats(sleeper);
        Check(held.Memory?.WorkingSetBytes?.Value is >= 20 * MiB and < 40 * MiB, $"holder's stats: {held}", holder);
        Check(slept.Memory?.WorkingSetBytes?.Value < 8 * MiB, $"sleeper's stats: {slept}", sleeper);
        Check(held.Cpu?.UsageCoreNanoSeconds is not null, $"holder's cpu: {held.Cpu}", holder);
    }

    /// <summary>`ctr -n k8s.io ARGS`.</summary>
    public ProcessResult CtrK8s(params string[] args) =>
        ProcessRunner.Run(Containerd.CtrExe, ["-a", Containerd.Address, "-n", PrivateContainerd.CriNamespace, .. args], TimeSpan.FromSeconds(20));

    /// <summary>Shim processes of this containerd (not spare ones) whose -id is one of <paramref name="ids"/>.</summary>
    public IReadOnlyList<ProcFs.ProcessInfo> Shims(string binary, IEnumerable<string>? ids = null) => Containerd.Shims(binary, ids);

    /// <summary>What a pod leaves on the node while it runs: its shim processes, mounts (its netns, its
    /// containers' rootfs), network namespace file, its sandbox's and containers' cgroups, and the shim's socket.</summary>
    public sealed record PodTraces(CriFixture F, string PodId, string[] Ids, string Netns, string[] Cgroups, string? Socket)
    {
        /// <summary>Those still there, each as "kind: what".</summary>
        public IReadOnlyList<string> Left() =>
        [
            .. F.Shims(RepoLayout.ShimBinary, Ids).Concat(F.Shims("containerd-shim-runc-v2", Ids)).Select(s => $"shim: {s.Pid} {s.CommandLine}"),
            .. ProcFs.MountsUnder(F.Containerd.BaseDir).Where(m => m == Netns || Ids.Any(id => m.Contains(id, StringComparison.Ordinal))).Select(m => $"mount: {m}"),
            .. File.Exists(Netns) ? [$"netns: {Netns}"] : Array.Empty<string>(),
            .. Cgroups.Where(Directory.Exists).Select(c => $"cgroup: {c}"),
            .. Socket is not null && File.Exists(Socket) ? [$"socket: {Socket}"] : Array.Empty<string>(),
        ];

        public int Kinds => Left().Select(l => l[..l.IndexOf(':')]).Distinct().Count();
    }

    public PodTraces Traces(CriPod pod)
    {
        string[] ids = [pod.Id, .. Client.ListContainers(pod.Id).Select(c => c.Id)];
        // The sandbox's and containers' cgroups; the pod's own (CgroupParent) is kubelet's to remove, as for runc.
        var cgroups = Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup")
            .SelectMany(c => ids.Select(id => $"{c}{pod.Config.Linux.CgroupParent}/{id}")).ToArray();
        var addressFile = Path.Combine(Containerd.StateDir, "io.containerd.runtime.v2.task", PrivateContainerd.CriNamespace, pod.Id, "address");
        var socket = File.Exists(addressFile) ? File.ReadAllText(addressFile).Trim() is var a && a.StartsWith("unix://", StringComparison.Ordinal) ? a["unix://".Length..] : a : null;
        return new PodTraces(this, pod.Id, ids, Client.PodNetnsPath(pod.Id) ?? "", cgroups, socket);
    }
}

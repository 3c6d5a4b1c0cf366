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

    /// <summary>`ctr -n k8s.io ARGS`.</summary>
    public ProcessResult CtrK8s(params string[] args) =>
        ProcessRunner.Run(Containerd.CtrExe, ["-a", Containerd.Address, "-n", PrivateContainerd.CriNamespace, .. args], TimeSpan.FromSeconds(20));

    /// <summary>Shim processes of this containerd (not spare ones) whose -id is one of <paramref name="ids"/>,
    /// or all of them for a runtime binary name.</summary>
    public IReadOnlyList<ProcFs.ProcessInfo> Shims(string binary, IEnumerable<string>? ids = null) => ProcFs.Processes()
        .Where(p => p.Args.Count > 0 && p.Args[0].EndsWith(binary, StringComparison.Ordinal) && p.SpareRole is null &&
                    p.HasArgPair("-address", Containerd.Address) && (ids is null || ids.Any(id => p.HasArgPair("-id", id))))
        .ToList();
}

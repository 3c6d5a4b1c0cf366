using System.Diagnostics;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// Pods through containerd's CRI, as kubelet starts them: a wasmsharp pod (sandbox and Wasm containers in one
// shim) against a runc pod (pause + busybox under containerd-shim-runc-v2), in one private containerd with CRI.
public static class PodBench
{
    private const int Sleepers = 10;
    private const string WasmHandler = "wasmsharp"; // packaging/install.sh's RuntimeClass handler

    public sealed record Figures(List<double> Wasm, List<double> Runc, double WasmKbPerContainer, double RuncKbPerContainer, string RuncParts);

    public static Figures Measure(int runs)
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-bench", cri: true);
        Images.Import(containerd, Images.BuildBusybox(containerd.BaseDir), PrivateContainerd.CriNamespace);
        Images.Import(containerd, Images.BuildWasmTests(WasmPrograms.Get(), containerd.BaseDir), PrivateContainerd.CriNamespace);
        using var cri = new CriClient(containerd);

        double Wasm() => FirstRun(cri, WasmHandler, CriClient.ContainerConfig("hello", Images.WasmTests, ["/hello.wasm"]));
        double Runc() => FirstRun(cri, "", CriClient.ContainerConfig("hello", Images.Busybox, ["/bin/echo", "hello"]));
        // Warm-ups fill page and module caches on both sides; then interleave so drift hits both.
        for (var i = 0; i < 2; i++) { Wasm(); Runc(); }
        var (wasm, runc) = (new List<double>(), new List<double>());
        for (var i = 0; i < runs; i++)
        {
            wasm.Add(Wasm());
            runc.Add(Runc());
        }

        var wasmKb = PodMemory(cri, containerd, WasmHandler, Images.WasmTests, ["/sleep.wasm", "3600"], out _);
        var runcKb = PodMemory(cri, containerd, "", Images.Busybox, ["/bin/sleep", "3600"], out var parts);
        return new Figures(wasm, runc, wasmKb / Sleepers, runcKb / Sleepers, parts);
    }

    // RunPodSandbox + CreateContainer + StartContainer until the container's exit is seen (ContainerStatus
    // polled every 5 ms); the pod's removal is not timed.
    private static double FirstRun(CriClient cri, string handler, global::Runtime.V1.ContainerConfig container)
    {
        var clock = Stopwatch.StartNew();
        using var pod = cri.RunPod(cri.PodConfig(cri.NewPodName("bench")), handler);
        var status = cri.WaitExited(pod.Start(container), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(5));
        var ms = clock.Elapsed.TotalMilliseconds;
        if (status.ExitCode != 0) throw new InvalidOperationException($"pod bench container exited {status.ExitCode} ({status.Reason}: {status.Message})");
        return ms;
    }

    // PSS (kB) of a pod of `Sleepers` sleeping containers: every process the pod has on the node — its shim, and
    // for runc its pause process and each container's process (ours are threads of the shim).
    private static double PodMemory(CriClient cri, PrivateContainerd containerd, string handler, string image, string[] sleep, out string parts)
    {
        using var pod = cri.RunPod(cri.PodConfig(cri.NewPodName("mem")), handler);
        var ids = Enumerable.Range(0, Sleepers).Select(i => pod.Start(CriClient.ContainerConfig($"s{i}", image, sleep))).ToList();
        Thread.Sleep(2000); // let them settle
        var shims = containerd.Shims(handler == "" ? "containerd-shim-runc-v2" : RepoLayout.ShimBinary, [pod.Id]);
        if (shims.Count != 1) throw new InvalidOperationException($"expected the pod's one shim, found {shims.Count}");
        var shimPid = shims[0].Pid;
        var others = ids.Select(cri.ContainerPid).Append(cri.PodPid(pod.Id))
            .Select(pid => pid is { } p ? ProcFs.Tgid(p) : null)
            .Where(tgid => tgid is not null && tgid != shimPid).Select(tgid => tgid!.Value).Distinct().ToList();
        var shimKb = ProcFs.PssKb(shimPid) ?? throw new InvalidOperationException($"no PSS for shim {shimPid}");
        var othersKb = others.Sum(p => ProcFs.PssKb(p) ?? 0);
        parts = FormattableString.Invariant($"shim {shimKb / 1024.0:0.0} MB + {others.Count} processes {othersKb / 1024.0:0.0} MB");
        return shimKb + othersKb;
    }

    public static void Print(Figures r)
    {
        var (wasm, runc) = (Bench.Median(r.Wasm), Bench.Median(r.Runc));
        Console.WriteLine();
        Console.WriteLine($"| pod through CRI (private containerd) | wasmsharp pod (hello.wasm) | runc pod (busybox echo) | wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(FormattableString.Invariant($"| RunPodSandbox + Create + StartContainer until its exit is seen, median of {r.Wasm.Count} | {wasm:0.0} ms | {runc:0.0} ms | {wasm / runc:0.00} |"));
        Console.WriteLine(FormattableString.Invariant($"| — min / max | {r.Wasm.Min():0.0} / {r.Wasm.Max():0.0} ms | {r.Runc.Min():0.0} / {r.Runc.Max():0.0} ms | |"));
        Console.WriteLine(FormattableString.Invariant($"| memory per container, pod of {Sleepers} sleeping (PSS of the pod's processes / {Sleepers}) | {r.WasmKbPerContainer / 1024:0.00} MB | {r.RuncKbPerContainer / 1024:0.00} MB ({r.RuncParts}) | {r.WasmKbPerContainer / r.RuncKbPerContainer:0.00} |"));
    }
}

using System.Diagnostics;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// Pods through containerd's CRI, as kubelet starts them: a wasmsharp pod (sandbox and Wasm containers in one
// shim) against a runc pod (pause + busybox under containerd-shim-runc-v2), in one private containerd with CRI.
public static class PodBench
{
    private const int Sleepers = 10;
    private const string WasmHandler = "wasmsharp"; // packaging/install.sh's RuntimeClass handler

    /// <summary>Memory (kB PSS) of a pod with one sleeping container and with `Sleepers`, and what it is made of.</summary>
    public sealed record PodKb(double One, double Many, string Parts)
    {
        public double PerContainer => Many / Sleepers;
        public double PerAddedContainer => (Many - One) / (Sleepers - 1);
    }

    public sealed record Figures(List<double> Wasm, List<double> Runc, PodKb WasmKb, PodKb RuncKb);

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

        return new Figures(wasm, runc, PodMemory(cri, containerd, WasmHandler, Images.WasmTests, ["/sleep.wasm", "3600"]),
            PodMemory(cri, containerd, "", Images.Busybox, ["/bin/sleep", "3600"]));
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

    // PSS (kB) of one pod with one sleeping container, then with `Sleepers` (the same pod and shim, so the
    // difference is what the added containers cost): every process the pod has on the node — its shim, and for
    // runc its pause process and each container's process (ours are threads of the shim).
    private static PodKb PodMemory(CriClient cri, PrivateContainerd containerd, string handler, string image, string[] sleep)
    {
        using var pod = cri.RunPod(cri.PodConfig(cri.NewPodName("mem")), handler);
        var ids = new List<string>();
        string parts = "";
        double Measure(int count)
        {
            while (ids.Count < count) ids.Add(pod.Start(CriClient.ContainerConfig($"s{ids.Count}", image, sleep)));
            Thread.Sleep(2000); // let them settle
            var shims = containerd.Shims(handler == "" ? "containerd-shim-runc-v2" : RepoLayout.ShimBinary, [pod.Id]);
            if (shims.Count != 1) throw new InvalidOperationException($"expected the pod's one shim, found {shims.Count}");
            var shimPid = shims[0].Pid;
            var others = ids.Select(cri.ContainerPid).Append(cri.PodPid(pod.Id))
                .Select(pid => pid is { } p ? ProcFs.Tgid(p) : null)
                .Where(tgid => tgid is not null && tgid != shimPid).Select(tgid => tgid!.Value).Distinct().ToList();
            // PSS moves with the shims' heaps (Go's scavenger, .NET's GC) between readings: the median of a few
            // over 5 s, their range shown.
            var readings = Enumerable.Range(0, 5).Select(_ =>
            {
                Thread.Sleep(1000);
                var shimKb = ProcFs.PssKb(shimPid) ?? throw new InvalidOperationException($"no PSS for shim {shimPid}");
                var othersKb = others.Sum(p => ProcFs.PssKb(p) ?? 0);
                var anonKb = ProcFs.PssKb(shimPid, "Pss_Anon:") ?? 0;
                parts = FormattableString.Invariant($"shim {shimKb / 1024.0:0.0} MB, {anonKb / 1024.0:0.0} MB of it anonymous") +
                        (others.Count == 0 ? "" : FormattableString.Invariant($" + {others.Count} processes {othersKb / 1024.0:0.0} MB"));
                return (double)(shimKb + othersKb);
            }).ToList();
            parts += FormattableString.Invariant($"; pod {readings.Min() / 1024:0.0}–{readings.Max() / 1024:0.0} MB over 5 s");
            return Bench.Median(readings);
        }
        var one = Measure(1);
        return new PodKb(one, Measure(Sleepers), parts);
    }

    public static void Print(Figures r)
    {
        var (wasm, runc) = (Bench.Median(r.Wasm), Bench.Median(r.Runc));
        Console.WriteLine();
        Console.WriteLine($"| pod through CRI (private containerd) | wasmsharp pod (hello.wasm) | runc pod (busybox echo) | wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(FormattableString.Invariant($"| RunPodSandbox + Create + StartContainer until its exit is seen, median of {r.Wasm.Count} | {wasm:0.0} ms | {runc:0.0} ms | {wasm / runc:0.00} |"));
        Console.WriteLine(FormattableString.Invariant($"| — min / max | {r.Wasm.Min():0.0} / {r.Wasm.Max():0.0} ms | {r.Runc.Min():0.0} / {r.Runc.Max():0.0} ms | |"));
        var (w, n) = (r.WasmKb, r.RuncKb);
        Console.WriteLine(FormattableString.Invariant($"| memory per container, pod of {Sleepers} sleeping (PSS of all the pod's processes / {Sleepers}) | {w.PerContainer / 1024:0.00} MB ({w.Parts}) | {n.PerContainer / 1024:0.00} MB ({n.Parts}) | {w.PerContainer / n.PerContainer:0.00} |"));
        Console.WriteLine(FormattableString.Invariant($"| — each container past the first (pod of {Sleepers} − pod of 1) / {Sleepers - 1} | {w.PerAddedContainer / 1024:0.00} MB | {n.PerAddedContainer / 1024:0.00} MB | {w.PerAddedContainer / n.PerAddedContainer:0.00} |"));
        Console.WriteLine(FormattableString.Invariant($"| — a pod of 1 sleeping container | {w.One / 1024:0.00} MB | {n.One / 1024:0.00} MB | {w.One / n.One:0.00} |"));
    }
}

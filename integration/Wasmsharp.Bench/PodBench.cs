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

    /// <summary>A pod shim's PSS (kB, and its anonymous part) with a sleeping container, before and after another of
    /// its containers ran a fresh 16 MB module (the shim compiled it), and the same with the module cached.</summary>
    public sealed record CompileKb(long Before, long After, long AfterAnon, long CachedBefore, long CachedAfter, long CachedAfterAnon);

    public sealed record Figures(List<double> Wasm, List<double> Runc, PodKb WasmKb, PodKb RuncKb, LoadBench.Side WasmPods, LoadBench.Side RuncPods, CompileKb Compiled)
    {
        public double Rate(LoadBench.Side side) => PodLifecycles / side.Seconds;
    }

    /// <summary>Pod lifecycles a side for the throughput rows, in alternating rounds, this many at a time.</summary>
    public const int PodLifecycles = 60, PodParallel = 4, PodRounds = 3;

    public static Figures Measure(int runs)
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-bench", cri: true);
        Images.Import(containerd, Images.BuildBusybox(containerd.BaseDir), PrivateContainerd.CriNamespace);
        var programs = WasmPrograms.Get();
        Images.Import(containerd, Images.BuildWasmTests(programs, containerd.BaseDir), PrivateContainerd.CriNamespace);
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

        // Memory as on a node that has run the module before (its optimised code cached), as `bench`'s idle rows:
        // a shim that compiled it would also hold what its compile left.
        using (var warm = cri.RunPod(cri.PodConfig(cri.NewPodName("warm")), WasmHandler))
            cri.WaitExited(warm.Start(CriClient.ContainerConfig("sleep0", Images.WasmTests, ["/sleep.wasm", "0"])), TimeSpan.FromSeconds(60));
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("sleep")), TimeSpan.FromMinutes(1));
        var wasmKb = PodMemory(cri, containerd, WasmHandler, Images.WasmTests, ["/sleep.wasm", "3600"]);
        var runcKb = PodMemory(cri, containerd, "", Images.Busybox, ["/bin/sleep", "3600"]);
        var (wasmPods, runcPods) = (new LoadBench.Side(), new LoadBench.Side());
        for (var round = 0; round < PodRounds; round++)
        {
            LoadBench.RunConcurrently(containerd, PodLifecycles / PodRounds, PodParallel,
                _ => PodLifecycle(cri, WasmHandler, CriClient.ContainerConfig("hello", Images.WasmTests, ["/hello.wasm"])), wasmPods);
            LoadBench.RunConcurrently(containerd, PodLifecycles / PodRounds, PodParallel,
                _ => PodLifecycle(cri, "", CriClient.ContainerConfig("hello", Images.Busybox, ["/bin/echo", "hello"])), runcPods);
        }
        return new Figures(wasm, runc, wasmKb, runcKb, wasmPods, runcPods, ShimAfterCompile(cri, containerd));
    }

    // What a long-lived pod shim keeps after one of its containers was a module's first run on the node (baseline
    // code at once, then the optimised compile in that shim): against a pod whose container loads it cached.
    private static CompileKb ShimAfterCompile(CriClient cri, PrivateContainerd containerd)
    {
        const string image = "example.local/podlarge:1";
        var (module, _) = LargeModule.Import(containerd, image, "podlarge", 16L * 1024 * 1024, PrivateContainerd.CriNamespace);
        var sha = ColdStart.Sha256(module);
        (long Before, long After, long Anon) Pod(bool waitForEntry)
        {
            using var pod = cri.RunPod(cri.PodConfig(cri.NewPodName("compile")), WasmHandler);
            pod.Start(CriClient.ContainerConfig("sleeper", Images.WasmTests, ["/sleep.wasm", "3600"]));
            Thread.Sleep(2000);
            var shim = containerd.Shims(RepoLayout.ShimBinary, [pod.Id]).Single().Pid;
            var before = ProcFs.PssKb(shim) ?? 0;
            var status = cri.WaitExited(pod.Start(CriClient.ContainerConfig("large", image, ["/podlarge.wasm"])), TimeSpan.FromMinutes(3));
            if (status.ExitCode != 0) throw new InvalidOperationException($"the large module exited {status.ExitCode} ({status.Reason}: {status.Message})");
            if (waitForEntry) ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), sha, TimeSpan.FromMinutes(3));
            Thread.Sleep(5000); // the compile's end: its engine dropped, the heaps collected
            return (before, ProcFs.PssKb(shim) ?? 0, ProcFs.PssKb(shim, "Pss_Anon:") ?? 0);
        }
        var first = Pod(waitForEntry: true);
        var cached = Pod(waitForEntry: false);
        return new CompileKb(first.Before, first.After, first.Anon, cached.Before, cached.After, cached.Anon);
    }

    // What kubelet does for a pod that runs one job, minus its sync loop: RunPodSandbox (with its CNI network),
    // CreateContainer, StartContainer, its exit seen (ContainerStatus every 20 ms), StopPodSandbox, RemovePodSandbox.
    private static void PodLifecycle(CriClient cri, string handler, global::Runtime.V1.ContainerConfig container)
    {
        using var pod = cri.RunPod(cri.PodConfig(cri.NewPodName("tp")), handler);
        var status = cri.WaitExited(pod.Start(container), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(20));
        if (status.ExitCode != 0) throw new InvalidOperationException($"pod lifecycle: container exited {status.ExitCode} ({status.Reason}: {status.Message})");
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
        var c = r.Compiled;
        Console.WriteLine(FormattableString.Invariant($"| pod shim with a sleeping container, after another container of the pod ran a fresh 16 MB module (its first run: the shim compiled it) | {c.After / 1024.0:0.0} MB ({c.AfterAnon / 1024.0:0.0} MB anonymous; {c.Before / 1024.0:0.0} MB before) | | |"));
        Console.WriteLine(FormattableString.Invariant($"| — the same, the module's code cached | {c.CachedAfter / 1024.0:0.0} MB ({c.CachedAfterAnon / 1024.0:0.0} MB anonymous; {c.CachedBefore / 1024.0:0.0} MB before) | | |"));
        var (wp, rp) = (r.WasmPods, r.RuncPods);
        Console.WriteLine(FormattableString.Invariant($"| {PodLifecycles} pod lifecycles each (RunPodSandbox with its CNI network, Create, Start, exit seen, Stop, Remove), {PodParallel} at a time, {PodRounds} alternating rounds | {r.Rate(wp):0.0} pods/s ({wp.Seconds:0.0} s) | {r.Rate(rp):0.0} pods/s ({rp.Seconds:0.0} s) | {r.Rate(wp) / r.Rate(rp):0.00} × runc's rate |"));
        string Cpu(LoadBench.CpuSnapshot c) => FormattableString.Invariant($"{c.Total * 1000 / PodLifecycles:0} ms ({c.Containerd * 1000 / PodLifecycles:0} / {(c.Total - c.Containerd) * 1000 / PodLifecycles:0})");
        Console.WriteLine(FormattableString.Invariant($"| — CPU per pod lifecycle, whole machine (containerd with its CRI plugin / the rest: shims, runtime, CNI plugins, the kernel, this client) | {Cpu(wp.Cpu)} | {Cpu(rp.Cpu)} | {wp.Cpu.Total / rp.Cpu.Total:0.00} × runc's |"));
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// Throughput and compute under load (issue 13): many short containers at once, and one long computation.
//  - lifecycles: `ctr run --rm` (create → start → wait → delete, and ctr's container create/delete) of hello.wasm
//    vs runc busybox echo, 4 at a time, in rounds that alternate between the two so the machine's drift hits both;
//    tasks per second over all of a side's rounds.
//  - compute: integration/programs/compute.c built to wasm (its optimised code cached, as every start after a
//    module's first) and natively (gcc -O2 -static) under runc, runs interleaved: the kernel's own time (it prints
//    it; the checksums must agree) and the whole `ctr run --rm`.
public static partial class LoadBench
{
    public sealed record Figures(
        int Lifecycles, int Parallel, double WasmSeconds, double RuncSeconds, CpuSnapshot WasmCpu, CpuSnapshot RuncCpu,
        double GroupedWasmSeconds, double GroupedRuncSeconds, CpuSnapshot GroupedWasmCpu, CpuSnapshot GroupedRuncCpu,
        List<string> GroupedWasmFailures, List<string> GroupedRuncFailures,
        List<double> WasmKernelMs, List<double> NativeKernelMs, List<double> WasmRunMs, List<double> NativeRunMs)
    {
        public double WasmRate => Lifecycles / WasmSeconds;
        public double RuncRate => Lifecycles / RuncSeconds;
    }

    private const int Rounds = 4;

    /// <summary>What `bench` and `load-bench` run: 200 lifecycles a side, 4 at a time; compute runs per side.</summary>
    public const int Lifecycles = 200, Parallel = 4;
    public static int ComputeRuns(int runs) => Math.Max(3, runs / 2);

    public static Figures Measure(PrivateContainerd containerd, WasmPrograms programs, int lifecycles, int parallel, int computeRuns, ref int n)
    {
        Images.Import(containerd, Images.BuildNativeCompute(containerd.BaseDir));
        var first = n;
        n += 4 * lifecycles + 4 * computeRuns + 8;
        var next = first;

        // Warm-ups: hello's code cached, both images' files in the page cache.
        Bench.Timed(containerd, Wasm(next++));
        Bench.Timed(containerd, Runc(next++));
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("hello")), TimeSpan.FromMinutes(1));

        double wasmSeconds = 0, runcSeconds = 0;
        CpuSnapshot wasmCpu = default, runcCpu = default;
        var perRound = lifecycles / Rounds;
        for (var round = 0; round < Rounds; round++)
        {
            var count = round < Rounds - 1 ? perRound : lifecycles - perRound * (Rounds - 1);
            wasmSeconds += Burst(containerd, count, parallel, Wasm, ref next, ref wasmCpu);
            runcSeconds += Burst(containerd, count, parallel, Runc, ref next, ref runcCpu);
        }

        // The same, every container of a side in one shim group (a user's choice, as runc's shim honours it too).
        double groupedWasmSeconds = 0, groupedRuncSeconds = 0;
        CpuSnapshot groupedWasmCpu = default, groupedRuncCpu = default;
        // Counted, not fatal: runc's shim has the race that ours had (a start meeting the group's closing shim).
        List<string> groupedWasmFailures = [], groupedRuncFailures = [];
        for (var round = 0; round < Rounds; round++)
        {
            var count = round < Rounds - 1 ? perRound : lifecycles - perRound * (Rounds - 1);
            groupedWasmSeconds += Burst(containerd, count, parallel, i => Grouped(Wasm(i), "lgw"), ref next, ref groupedWasmCpu, groupedWasmFailures);
            groupedRuncSeconds += Burst(containerd, count, parallel, i => Grouped(Runc(i), "lgr"), ref next, ref groupedRuncCpu, groupedRuncFailures);
        }

        // Compute: the first wasm run compiles (and caches) the module; measured runs load the optimised code.
        string[] WasmCompute(int i) => ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"lcw{i}", "/compute.wasm"];
        string[] NativeCompute(int i) => ["run", "--rm", Images.NativeCompute, $"lcn{i}", "/compute"];
        Compute(containerd, WasmCompute(next++));
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("compute")), TimeSpan.FromMinutes(2));
        var (nativeChecksum, _, _) = Compute(containerd, NativeCompute(next++));
        var figures = new Figures(lifecycles, parallel, wasmSeconds, runcSeconds, wasmCpu, runcCpu,
            groupedWasmSeconds, groupedRuncSeconds, groupedWasmCpu, groupedRuncCpu, groupedWasmFailures, groupedRuncFailures, [], [], [], []);
        for (var i = 0; i < computeRuns; i++)
        {
            var wasmId = next;
            var (wasmSum, wasmKernel, wasmRun) = Compute(containerd, WasmCompute(next++));
            if (!ColdStart.ModuleLine(containerd, $"lcw{wasmId}").Contains(" CacheHit ", StringComparison.Ordinal))
                throw new InvalidOperationException($"lcw{wasmId} should have loaded the optimised code from the cache: {ColdStart.ModuleLine(containerd, $"lcw{wasmId}")}");
            var (nativeSum, nativeKernel, nativeRun) = Compute(containerd, NativeCompute(next++));
            if (wasmSum != nativeChecksum || nativeSum != nativeChecksum)
                throw new InvalidOperationException($"compute checksums differ: wasm {wasmSum}, native {nativeSum} (first native {nativeChecksum})");
            figures.WasmKernelMs.Add(wasmKernel);
            figures.NativeKernelMs.Add(nativeKernel);
            figures.WasmRunMs.Add(wasmRun);
            figures.NativeRunMs.Add(nativeRun);
        }
        return figures;
    }

    private static string[] Wasm(int i) => ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"lw{i}", "/hello.wasm"];
    private static string[] Runc(int i) => ["run", "--rm", Images.Busybox, $"lr{i}", "echo", "hello"];

    // The runc shim's group annotation (ours honours it too): one shim process serves the side's containers.
    private static string[] Grouped(string[] run, string group) => [run[0], run[1], "--annotation", $"io.containerd.runc.v2.group={group}", .. run[2..]];

    // `count` lifecycles, `parallel` at a time; seconds of wall time for all of them.
    private static double Burst(PrivateContainerd containerd, int count, int parallel, Func<int, string[]> run, ref int next, ref CpuSnapshot cpuSum, List<string>? tolerated = null)
    {
        var start = next;
        next += count;
        var taken = -1;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var cpu0 = CpuSnapshot.Take(containerd.Pid);
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, parallel).Select(_ => Task.Run(() =>
        {
            for (int i; (i = Interlocked.Increment(ref taken)) < count;)
            {
                var result = containerd.Ctr(run(start + i));
                if (result.ExitCode != 0 || !result.Stdout.Contains("hello", StringComparison.Ordinal))
                    failures.Add(result.ToString());
            }
        })).ToArray();
        Task.WaitAll(workers);
        var seconds = clock.Elapsed.TotalSeconds;
        cpuSum += CpuSnapshot.Take(containerd.Pid) - cpu0;
        if (tolerated is not null)
        {
            tolerated.AddRange(failures);
            failures.Clear();
        }
        if (!failures.IsEmpty)
            throw new InvalidOperationException($"{failures.Count} of {count} lifecycles failed, e.g.:\n{failures.First()}\n{containerd.LogTail(30)}");
        return seconds;
    }

    // ctr's own error line of a failed run (its stderr), for the table.
    private static string FirstLine(string failure) =>
        failure.Split('\n').FirstOrDefault(l => l.StartsWith("ctr: ", StringComparison.Ordinal))?.Replace("|", "/", StringComparison.Ordinal) ?? "?";

    [GeneratedRegex(@"checksum ([0-9a-f]{16}) in ([0-9.]+) ms")]
    private static partial Regex ComputeLine();

    private static (string Checksum, double KernelMs, double RunMs) Compute(PrivateContainerd containerd, string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = containerd.Ctr(TimeSpan.FromMinutes(2), args);
        var runMs = clock.Elapsed.TotalMilliseconds;
        var match = ComputeLine().Match(result.Stdout);
        if (result.ExitCode != 0 || !match.Success)
            throw new InvalidOperationException($"compute run failed:\n{result}\n{containerd.LogTail(30)}");
        return (match.Groups[1].Value, double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), runMs);
    }

    public static void Print(Figures f)
    {
        Console.WriteLine();
        Console.WriteLine($"| throughput and compute | wasmsharp (wasm) | runc | wasm vs runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(Bench.F($"| {f.Lifecycles} `ctr run --rm` lifecycles each, {f.Parallel} at a time, {Rounds} alternating rounds (hello.wasm / busybox echo) | {f.WasmRate:0.0} tasks/s ({f.WasmSeconds:0.0} s) | {f.RuncRate:0.0} tasks/s ({f.RuncSeconds:0.0} s) | {f.WasmRate / f.RuncRate:0.00} × runc's rate |"));
        string Cpu(CpuSnapshot c) => Bench.F($"{c.Total * 1000 / f.Lifecycles:0} ms ({c.Children * 1000 / f.Lifecycles:0} / {c.Containerd * 1000 / f.Lifecycles:0} / {c.RestMs(f.Lifecycles):0})");
        Console.WriteLine(Bench.F($"| CPU per lifecycle, whole machine (ctr / containerd / the rest: shims, runtime, kernel) | {Cpu(f.WasmCpu)} | {Cpu(f.RuncCpu)} | {f.WasmCpu.Total / f.RuncCpu.Total:0.00} × runc's; the rest {f.WasmCpu.RestMs(1) / f.RuncCpu.RestMs(1):0.00} × |"));
        Console.WriteLine(Bench.F($"| the same, each side's containers in one shim group (annotation `io.containerd.runc.v2.group`) | {f.Lifecycles / f.GroupedWasmSeconds:0.0} tasks/s ({f.GroupedWasmSeconds:0.0} s) | {f.Lifecycles / f.GroupedRuncSeconds:0.0} tasks/s ({f.GroupedRuncSeconds:0.0} s) | {f.GroupedRuncSeconds / f.GroupedWasmSeconds:0.00} × runc's rate |"));
        static string Failed(List<string> f) => f.Count == 0 ? "" : $"; {f.Count} failed, e.g. {FirstLine(f[0])}";
        Console.WriteLine(Bench.F($"| — failed lifecycles, grouped | {f.GroupedWasmFailures.Count}{Failed(f.GroupedWasmFailures)} | {f.GroupedRuncFailures.Count}{Failed(f.GroupedRuncFailures)} | |"));
        Console.WriteLine(Bench.F($"| — CPU per lifecycle, grouped | {Cpu(f.GroupedWasmCpu)} | {Cpu(f.GroupedRuncCpu)} | {f.GroupedWasmCpu.Total / f.GroupedRuncCpu.Total:0.00} × runc's; the rest {f.GroupedWasmCpu.RestMs(1) / f.GroupedRuncCpu.RestMs(1):0.00} × |"));
        var (wk, nk) = (Bench.Median(f.WasmKernelMs), Bench.Median(f.NativeKernelMs));
        var (wr, nr) = (Bench.Median(f.WasmRunMs), Bench.Median(f.NativeRunMs));
        Console.WriteLine(Bench.F($"| compute.c kernel (its own clock), wasm cached vs native (gcc -O2 -static) under runc, median of {f.WasmKernelMs.Count} | {wk:0} ms | {nk:0} ms | {wk / nk:0.00} × native time |"));
        Console.WriteLine(Bench.F($"| compute.c, whole `ctr run --rm`, median of {f.WasmRunMs.Count} | {wr:0} ms | {nr:0} ms | {wr / nr:0.00} × native time |"));
    }

    /// <summary>CPU seconds used so far: by the whole machine (/proc/stat), by containerd, and by this process's
    /// waited-for children (the ctr processes). The rest of the machine's is the shims, runc, the kernel's threads
    /// (and this process, a small part).</summary>
    public readonly record struct CpuSnapshot(double Total, double Containerd, double Children)
    {
        public static CpuSnapshot operator -(CpuSnapshot a, CpuSnapshot b) => new(a.Total - b.Total, a.Containerd - b.Containerd, a.Children - b.Children);
        public static CpuSnapshot operator +(CpuSnapshot a, CpuSnapshot b) => new(a.Total + b.Total, a.Containerd + b.Containerd, a.Children + b.Children);
        public double RestMs(int n) => (Total - Containerd - Children) * 1000 / n;

        public static CpuSnapshot Take(int containerdPid)
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            double total = (long.Parse(cpu[1]) + long.Parse(cpu[2]) + long.Parse(cpu[3]) + long.Parse(cpu[6]) + long.Parse(cpu[7])) / 100.0;
            var stat = File.ReadAllText($"/proc/{containerdPid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            double containerd = (long.Parse(f[11]) + long.Parse(f[12])) / 100.0;
            var self = File.ReadAllText("/proc/self/stat");
            var g = self[(self.LastIndexOf(')') + 2)..].Split(' ');
            double children = (long.Parse(g[13]) + long.Parse(g[14])) / 100.0;
            return new(total, containerd, children);
        }
    }
}

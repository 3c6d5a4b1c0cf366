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
    /// <summary>One side's lifecycles: wall time, CPU, and (where tolerated) the runs that failed.</summary>
    public sealed class Side
    {
        public double Seconds { get; set; }
        public CpuSnapshot Cpu { get; set; }
        public List<string> Failures { get; } = [];
    }

    public sealed record Figures(
        int Lifecycles, int Parallel, Side Wasm, Side Runc, Side GroupedWasm, Side GroupedRunc,
        List<double> WasmKernelMs, List<double> NativeKernelMs, List<double> WasmRunMs, List<double> NativeRunMs)
    {
        public double Rate(Side side) => Lifecycles / side.Seconds;
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

        var (wasm, runc) = Alternate(containerd, lifecycles, parallel, Wasm, Runc, tolerate: false, ref next);
        // The same, every container of a side in one shim group (a user's choice, as runc's shim honours it too).
        // Failures there are counted, not fatal: runc's shim has the race that ours had (a start meeting the group's
        // closing shim).
        var (groupedWasm, groupedRunc) = Alternate(containerd, lifecycles, parallel,
            i => Grouped(Wasm(i), "lgw"), i => Grouped(Runc(i), "lgr"), tolerate: true, ref next);

        // Compute: the first wasm run compiles (and caches) the module; measured runs load the optimised code.
        string[] WasmCompute(int i) => ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"lcw{i}", "/compute.wasm"];
        string[] NativeCompute(int i) => ["run", "--rm", Images.NativeCompute, $"lcn{i}", "/compute"];
        Compute(containerd, WasmCompute(next++));
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("compute")), TimeSpan.FromMinutes(2));
        var (nativeChecksum, _, _) = Compute(containerd, NativeCompute(next++));
        var figures = new Figures(lifecycles, parallel, wasm, runc, groupedWasm, groupedRunc, [], [], [], []);
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

    // `lifecycles` a side in Rounds rounds that alternate between the sides, so the machine's drift hits both.
    private static (Side Wasm, Side Runc) Alternate(PrivateContainerd containerd, int lifecycles, int parallel,
        Func<int, string[]> wasm, Func<int, string[]> runc, bool tolerate, ref int next)
    {
        var (wasmSide, runcSide) = (new Side(), new Side());
        var perRound = lifecycles / Rounds;
        for (var round = 0; round < Rounds; round++)
        {
            var count = round < Rounds - 1 ? perRound : lifecycles - perRound * (Rounds - 1);
            Burst(containerd, count, parallel, wasm, ref next, wasmSide, tolerate);
            Burst(containerd, count, parallel, runc, ref next, runcSide, tolerate);
        }
        return (wasmSide, runcSide);
    }

    // `count` `ctr run`s, `parallel` at a time, added to the side's wall time and CPU.
    private static void Burst(PrivateContainerd containerd, int count, int parallel, Func<int, string[]> run, ref int next, Side side, bool tolerate)
    {
        var start = next;
        next += count;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        RunConcurrently(containerd, count, parallel, i =>
        {
            var result = containerd.Ctr(run(start + i));
            if (result.ExitCode != 0 || !result.Stdout.Contains("hello", StringComparison.Ordinal))
                failures.Add(result.ToString());
        }, side);
        if (!failures.IsEmpty && !tolerate)
            throw new InvalidOperationException($"{failures.Count} of {count} lifecycles failed, e.g.:\n{failures.First()}\n{containerd.LogTail(30)}");
        side.Failures.AddRange(failures);
    }

    /// <summary><paramref name="count"/> runs of <paramref name="lifecycle"/> (given 0 … count − 1), <paramref name="parallel"/>
    /// at a time, their wall time and the machine's CPU added to <paramref name="side"/>.</summary>
    public static void RunConcurrently(PrivateContainerd containerd, int count, int parallel, Action<int> lifecycle, Side side)
    {
        var taken = -1;
        var cpu0 = CpuSnapshot.Take(containerd.Pid);
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, parallel).Select(_ => Task.Run(() =>
        {
            for (int i; (i = Interlocked.Increment(ref taken)) < count;) lifecycle(i);
        })).ToArray();
        Task.WaitAll(workers);
        side.Seconds += clock.Elapsed.TotalSeconds;
        side.Cpu += CpuSnapshot.Take(containerd.Pid) - cpu0;
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
        Console.WriteLine(Bench.F($"| {f.Lifecycles} `ctr run --rm` lifecycles each, {f.Parallel} at a time, {Rounds} alternating rounds (hello.wasm / busybox echo) | {f.Rate(f.Wasm):0.0} tasks/s ({f.Wasm.Seconds:0.0} s) | {f.Rate(f.Runc):0.0} tasks/s ({f.Runc.Seconds:0.0} s) | {f.Rate(f.Wasm) / f.Rate(f.Runc):0.00} × runc's rate |"));
        static string CpuRatio(Side wasm, Side runc) => Bench.F($"{wasm.Cpu.Total / runc.Cpu.Total:0.00} × runc's; the rest {wasm.Cpu.RestMs(1) / runc.Cpu.RestMs(1):0.00} ×");
        string Cpu(CpuSnapshot c) => Bench.F($"{c.Total * 1000 / f.Lifecycles:0} ms ({c.Children * 1000 / f.Lifecycles:0} / {c.Containerd * 1000 / f.Lifecycles:0} / {c.RestMs(f.Lifecycles):0})");
        Console.WriteLine(Bench.F($"| CPU per lifecycle, whole machine (ctr / containerd / the rest: shims, runtime, kernel) | {Cpu(f.Wasm.Cpu)} | {Cpu(f.Runc.Cpu)} | {CpuRatio(f.Wasm, f.Runc)} |"));
        Console.WriteLine(Bench.F($"| the same, each side's containers in one shim group (annotation `io.containerd.runc.v2.group`) | {f.Rate(f.GroupedWasm):0.0} tasks/s ({f.GroupedWasm.Seconds:0.0} s) | {f.Rate(f.GroupedRunc):0.0} tasks/s ({f.GroupedRunc.Seconds:0.0} s) | {f.Rate(f.GroupedWasm) / f.Rate(f.GroupedRunc):0.00} × runc's rate |"));
        static string Failed(Side s) => s.Failures.Count == 0 ? "0" : $"{s.Failures.Count}, e.g. {FirstLine(s.Failures[0])}";
        Console.WriteLine(Bench.F($"| — failed lifecycles, grouped | {Failed(f.GroupedWasm)} | {Failed(f.GroupedRunc)} | |"));
        Console.WriteLine(Bench.F($"| — CPU per lifecycle, grouped | {Cpu(f.GroupedWasm.Cpu)} | {Cpu(f.GroupedRunc.Cpu)} | {CpuRatio(f.GroupedWasm, f.GroupedRunc)} |"));
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
            // After the command: state is field 0, utime 11, stime 12, cutime 13, cstime 14 (clock ticks).
            var f = ProcFs.StatFields(containerdPid.ToString(CultureInfo.InvariantCulture));
            double containerd = (long.Parse(f[11]) + long.Parse(f[12])) / 100.0;
            var g = ProcFs.StatFields("self");
            double children = (long.Parse(g[13]) + long.Parse(g[14])) / 100.0;
            return new(total, containerd, children);
        }
    }
}

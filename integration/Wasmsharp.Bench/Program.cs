using System.Diagnostics;
using System.Globalization;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// `bench`: start time and idle memory of our runtime against runc, through a private containerd.
// `demo`: what a new user would do first — build an image, run it with our runtime, see the output.
public static class Program
{
    private static PrivateContainerd? _containerd;
    private static PrivateDocker? _docker;

    public static int Main(string[] args)
    {
        // Ctrl+C must not leave containerd, shims or mounts behind.
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Interlocked.Exchange(ref _containerd, null)?.Dispose();
            Interlocked.Exchange(ref _docker, null)?.Dispose();
            Environment.Exit(130);
        };
        try
        {
            return args.FirstOrDefault() switch
            {
                "bench" => Bench.Run(ParseRuns(args[1..])),
                "demo" => Demo(),
                "warm-bench" => WarmStart.Run(ParseRuns(args[1..])),
                "net-bench" => NetBench(ParseRuns(args[1..])),
                "pod-bench" => PodBenchOnly(ParseRuns(args[1..])),
                "component-bench" => ComponentBenchOnly(ParseRuns(args[1..])),
                "load-bench" => LoadBenchOnly(ParseRuns(args[1..])),
                "cache-bench" => CacheBenchOnly(),
                "docker-bench" => DockerBench.Run(ParseRuns(args[1..]), d => _docker = d),
                _ => Usage(),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return Usage();
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        finally
        {
            Interlocked.Exchange(ref _containerd, null)?.Dispose();
            Interlocked.Exchange(ref _docker, null)?.Dispose();
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: Wasmsharp.Bench bench [--runs N] | warm-bench [--runs N] | net-bench [--runs N] | pod-bench [--runs N] | component-bench [--runs N] | load-bench [--runs N] | cache-bench | docker-bench [--runs N] | demo");
        return 2;
    }

    private static int ParseRuns(string[] args)
    {
        if (args.Length == 0) return 20;
        if (args.Length == 2 && args[0] == "--runs" && int.TryParse(args[1], out var n) && n > 0) return n;
        throw new ArgumentException("expected --runs N (N > 0)");
    }

    // The bench's containerd with the test programs' image and busybox imported.
    public static (WasmPrograms, PrivateContainerd) StartBenchContainerd()
    {
        var programs = WasmPrograms.Get();
        var containerd = StartContainerd("wasmsharp-bench");
        Images.Import(containerd, Images.BuildWasmTests(programs, containerd.BaseDir));
        Images.Import(containerd, Images.BuildBusybox(containerd.BaseDir));
        return (programs, containerd);
    }

    public static PrivateContainerd StartContainerd(string ns)
    {
        var containerd = PrivateContainerd.Start(ns);
        _containerd = containerd;
        return containerd;
    }

    // Only the network rows of `bench`.
    private static int NetBench(int runs)
    {
        var (_, containerd) = StartBenchContainerd();
        var n = 0;
        for (var i = 0; i < 2; i++) Bench.Timed(containerd, ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"nwarm{n++}", "/hello.wasm"]);
        NetworkBench.Print(NetworkBench.Measure(containerd, runs, ref n), runs);
        HttpBench.Print(HttpBench.Measure(containerd, ref n));
        return 0;
    }

    // Only the pod rows of `bench` (their own private containerd, with CRI).
    private static int PodBenchOnly(int runs)
    {
        PodBench.Print(PodBench.Measure(runs));
        return 0;
    }

    // Only the component rows of `bench`.
    private static int ComponentBenchOnly(int runs)
    {
        var (programs, containerd) = StartBenchContainerd();
        var n = 0;
        ComponentBench.Print(ComponentBench.Measure(containerd, programs, runs, ref n));
        return 0;
    }

    // Only the throughput and compute rows of `bench`.
    private static int LoadBenchOnly(int runs)
    {
        var (programs, containerd) = StartBenchContainerd();
        var n = 0;
        LoadBench.Print(LoadBench.Measure(containerd, programs, LoadBench.Lifecycles, LoadBench.Parallel, LoadBench.ComputeRuns(runs), ref n));
        return 0;
    }

    // Only the busy-node module cache rows of `bench`.
    private static int CacheBenchOnly()
    {
        var (programs, containerd) = StartBenchContainerd();
        var n = 0;
        BusyCacheBench.Print(BusyCacheBench.Measure(containerd, programs, ref n));
        return 0;
    }

    private static int Demo()
    {
        Console.WriteLine("Building the hello program (integration/programs/hello.c) for wasm32-wasi...");
        var programs = WasmPrograms.Get();
        var containerd = StartContainerd("wasmsharp-demo");
        var image = Images.BuildHello(programs, containerd.BaseDir);
        Console.WriteLine($"Built {Images.Hello} with wasmsharp-image; importing into a private containerd ({containerd.Address})...");
        Images.Import(containerd, image);
        if (!RepoLayout.ShimPublished)
            Console.WriteLine($"warning: {RepoLayout.ShimBinary} is not in {containerd.ShimDir} (dotnet publish src/Wasmsharp.Shim -c Release -o out/shim)");

        string[] run = ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.Hello, "demo", "/hello.wasm", "Docker", "without", "containers"];
        Console.WriteLine();
        Console.WriteLine($"$ ctr {string.Join(' ', run)}");
        var result = containerd.Ctr(run);
        Console.Write(result.Stdout);
        Console.Write(result.Stderr);
        Console.WriteLine($"[exit code {result.ExitCode}, {result.Elapsed.TotalMilliseconds:0} ms]");
        if (result.ExitCode != 0)
            Console.Error.WriteLine(containerd.LogTail(30, "demo"));
        return result.ExitCode == 0 ? 0 : 1;
    }
}

public static class Bench
{
    private const int Idle = 3;

    public static int Run(int runs)
    {
        var (programs, containerd) = Program.StartBenchContainerd();
        Console.WriteLine($"containerd {ContainerdVersion(containerd)}, shim from {containerd.ShimDir}, {Environment.ProcessorCount} CPUs, {runs} runs each");

        var n = 0;
        string[] Wasm() => ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"bw{n++}", "/hello.wasm"];
        string[] Runc() => ["run", "--rm", Images.Busybox, $"br{n++}", "echo", "hello"];

        // Warm-ups fill page caches and compile caches on both sides; then interleave so drift hits both.
        for (var i = 0; i < 2; i++)
        {
            Timed(containerd, Wasm());
            Timed(containerd, Runc());
        }
        // The first start compiled hello for itself; the measured ones load the optimised code from the cache.
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("hello")), TimeSpan.FromMinutes(1));
        var wasm = new List<double>();
        var runc = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            wasm.Add(Timed(containerd, Wasm()));
            runc.Add(Timed(containerd, Runc()));
        }

        var cold = ColdStart.Measure(containerd, programs, warmRuns: 10, coldRuns: 3, ref n, Runc, Wasm);
        var component = ComponentBench.Measure(containerd, programs, runs, ref n);
        var busyCache = BusyCacheBench.Measure(containerd, programs, ref n);
        var network = NetworkBench.Measure(containerd, runs, ref n);
        var http = HttpBench.Measure(containerd, ref n);
        var load = LoadBench.Measure(containerd, programs, LoadBench.Lifecycles, LoadBench.Parallel, LoadBench.ComputeRuns(runs), ref n);
        var pods = PodBench.Measure(runs);

        // Idle memory of containers whose module is cached, the usual case (a first run also holds the baseline
        // compiler and code): run the module once and let its entry be written.
        Timed(containerd, ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"mw-warm{n++}", "/sleep.wasm", "0"], expect: "sleeping");
        ColdStart.WaitForEntry(Path.Combine(containerd.BaseDir, "cache"), ColdStart.Sha256(programs.Path("sleep")), TimeSpan.FromMinutes(1));
        var wasmMb = IdleMemory(containerd, "mw", i => ["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"mw{i}", "/sleep.wasm", "3600"]);
        var spareMb = SpareMemory(containerd);
        var runcMb = IdleMemory(containerd, "mr", i => ["run", "-d", Images.Busybox, $"mr{i}", "sleep", "3600"]);

        const int stops = 10;
        string[] PidNs() => ["--with-ns", $"pid:/proc/{Environment.ProcessId}/ns/pid"];
        var stopSleep = Median(StopTimes(containerd, stops, i => ["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"ks{i}", "/sleep.wasm", "1000"]));
        var stopStdin = Median(StopTimes(containerd, stops, i => ["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"ki{i}", "/cat.wasm"]));
        var stopRunc = Median(StopTimes(containerd, stops, i => ["run", "-d", .. PidNs(), Images.Busybox, $"kr{i}", "sleep", "1000"]));

        var (wasmMedian, runcMedian) = (Median(wasm), Median(runc));
        Console.WriteLine();
        Console.WriteLine("| measure | wasmsharp (wasm) | runc (busybox) | wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(F($"| `ctr run --rm` hello, median of {runs} | {wasmMedian:0.0} ms | {runcMedian:0.0} ms | {wasmMedian / runcMedian:0.00} |"));
        Console.WriteLine(F($"| `ctr run --rm` hello, min / max | {wasm.Min():0.0} / {wasm.Max():0.0} ms | {runc.Min():0.0} / {runc.Max():0.0} ms | |"));
        Console.WriteLine(F($"| idle container memory (PSS), mean of {Idle} | {wasmMb.Total:0.00} MB | {runcMb.Total:0.00} MB | {wasmMb.Total / runcMb.Total:0.00} |"));
        Console.WriteLine(F($"| — of which shim / container process | {wasmMb.Shim:0.00} / {wasmMb.Process:0.00} MB | {runcMb.Shim:0.00} / {runcMb.Process:0.00} MB | |"));
        Console.WriteLine(F($"| spare shim and its standby, waiting for the next containers (per containerd, not per container) | {spareMb:0.00} MB | | |"));
        Console.WriteLine(F($"| `ctr task kill` (SIGTERM) to exit seen, guest sleeping, median of {stops} | {stopSleep:0.0} ms | {stopRunc:0.0} ms (busybox sleep) | {stopSleep / stopRunc:0.00} |"));
        Console.WriteLine(F($"| `ctr task kill` (SIGTERM) to exit seen, guest blocked reading stdin, median of {stops} | {stopStdin:0.0} ms | | {stopStdin / stopRunc:0.00} |"));
        PrintColdStart(cold, wasmMedian, runcMedian, runs);
        BusyCacheBench.Print(busyCache);
        ComponentBench.Print(component);
        NetworkBench.Print(network, runs);
        HttpBench.Print(http);
        LoadBench.Print(load);
        PodBench.Print(pods);
        return 0;
    }

    // Module cache miss vs hit: hello and a generated large module, against runc echo and hello (cache hit) runs
    // interleaved with them (the machine drifts between the sections of a bench run).
    private static void PrintColdStart(ColdStart.Figures cold, double helloWarm, double runcEcho, int runs)
    {
        var (helloCold, largeCold, largeWarm) = (Median(cold.HelloCold), Median(cold.LargeCold), Median(cold.LargeWarm));
        var (runcHere, helloHere) = (Median(cold.Runc), Median(cold.HelloWarm));
        Console.WriteLine();
        Console.WriteLine(F($"| start time, module cache miss (cold) vs hit (warm) | wasmsharp | ratio |"));
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine(F($"| hello, cache hit (the row above), median of {runs} | {helloWarm:0.0} ms | {helloWarm / runcEcho:0.00} × runc busybox echo |"));
        Console.WriteLine(F($"| runc busybox echo, interleaved with the rows below, median of {cold.Runc.Count} | {runcHere:0.0} ms | |"));
        Console.WriteLine(F($"| hello, cache hit, interleaved, median of {cold.HelloWarm.Count} | {helloHere:0.0} ms | {helloHere / runcHere:0.00} × runc busybox echo |"));
        Console.WriteLine(F($"| hello, cache miss, median of {cold.HelloCold.Count} | {helloCold:0.0} ms | {helloCold / runcHere:0.00} × runc busybox echo |"));
        Console.WriteLine(F($"| large module ({cold.LargeMb:0.0} MB), cache hit, median of {cold.LargeWarm.Count} | {largeWarm:0.0} ms | {largeWarm / helloHere:0.00} × hello (cache hit); shim's load {cold.LargeLoadMs:0} ms |"));
        Console.WriteLine(F($"| large module ({cold.LargeMb:0.0} MB), cache miss, median of {cold.LargeCold.Count} | {largeCold:0.0} ms | {largeCold / largeWarm:0.0} × its cache hit; baseline compile {cold.LargeCompileMs:0} ms (optimised code written in the background) |"));
    }

    // Time from `ctr task kill` until a waiting client (`ctr task attach`) sees the exit.
    private static List<double> StopTimes(PrivateContainerd containerd, int count, Func<int, string[]> run)
    {
        var times = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var args = run(i);
            var id = args[Array.IndexOf(args, args.First(a => a.StartsWith("example.local/", StringComparison.Ordinal))) + 1];
            var started = containerd.Ctr(args);
            if (started.ExitCode != 0) throw new InvalidOperationException($"cannot start {id}:\n{started}");
            using var attach = containerd.StartCtr(TimeSpan.FromSeconds(30), ["tasks", "attach", id]);
            Thread.Sleep(300); // the guest reaches its blocking call; attach reaches Wait
            var clock = Stopwatch.StartNew();
            containerd.Ctr("tasks", "kill", "--signal", "SIGTERM", id);
            attach.Wait();
            times.Add(clock.Elapsed.TotalMilliseconds);
            containerd.Ctr("tasks", "delete", id);
            containerd.Ctr("containers", "delete", id);
        }
        return times;
    }

    public static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string ContainerdVersion(PrivateContainerd containerd)
    {
        var lines = containerd.Ctr("version").Stdout.Split('\n');
        return lines.Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("Version:", StringComparison.Ordinal))?["Version:".Length..].Trim() ?? "?";
    }

    // Wall time of one `ctr run --rm`, as a user's shell would measure it.
    public static double Timed(PrivateContainerd containerd, string[] args, string expect = "hello")
    {
        var clock = Stopwatch.StartNew();
        var result = containerd.Ctr(args);
        var ms = clock.Elapsed.TotalMilliseconds;
        if (result.ExitCode != 0 || !result.Stdout.Contains(expect, StringComparison.Ordinal))
            throw new InvalidOperationException($"benchmark run failed:\n{result}\n{containerd.LogTail(30)}");
        return ms;
    }

    public static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    // Start `Idle` sleeping containers, let them settle, and sum per container: the PSS of the shim
    // serving it plus the PSS of its task process when that is a separate process (runc). Our guest
    // runs as a thread of the shim: its task pid has the shim's Tgid, so it is not counted twice.
    private sealed record Memory(double Shim, double Process)
    {
        public double Total => Shim + Process;
    }

    // PSS of this containerd's spare shim and its standby (see SpareShim in the shim); 0 when there are none.
    private static double SpareMemory(PrivateContainerd containerd) =>
        ProcFs.Processes().Where(p => p.SpareRole is not null && p.HasArgPair("-address", containerd.Address))
            .Sum(p => ProcFs.PssKb(p.Pid) ?? 0) / 1024.0;

    private static Memory IdleMemory(PrivateContainerd containerd, string prefix, Func<int, string[]> run)
    {
        var ids = Enumerable.Range(0, Idle).Select(i => $"{prefix}{i}").ToList();
        try
        {
            for (var i = 0; i < Idle; i++)
            {
                var result = containerd.Ctr(run(i));
                if (result.ExitCode != 0)
                    throw new InvalidOperationException($"starting an idle container failed:\n{result}\n{containerd.LogTail(30)}");
            }
            Thread.Sleep(2000);
            var tasks = containerd.Tasks();
            var processes = ProcFs.Processes().ToList();
            double shimKb = 0, processKb = 0;
            foreach (var id in ids)
            {
                var task = tasks.FirstOrDefault(t => t.Id == id && t.Status == "RUNNING")
                    ?? throw new InvalidOperationException($"{id} is not running:\n{string.Join('\n', tasks)}");
                var shims = processes.Where(p => p.CommandLine.Contains("containerd-shim", StringComparison.Ordinal) && p.HasArgPair("-id", id)).ToList();
                if (shims.Count != 1)
                    throw new InvalidOperationException($"expected one shim process for {id}, found {shims.Count}");
                var shim = shims[0].Pid;
                shimKb += ProcFs.PssKb(shim) ?? throw new InvalidOperationException($"no PSS for shim {shim}");
                if (ProcFs.Tgid(task.Pid) is { } tgid && tgid != shim)
                    processKb += ProcFs.PssKb(tgid) ?? 0;
            }
            return new Memory(shimKb / 1024 / Idle, processKb / 1024 / Idle);
        }
        finally
        {
            foreach (var id in ids)
            {
                containerd.Ctr("tasks", "kill", "-s", "SIGKILL", id);
                for (var i = 0; i < 50 && containerd.Task(id) is { Status: not "STOPPED" }; i++) Thread.Sleep(100);
                containerd.Ctr("tasks", "delete", id);
                containerd.Ctr("containers", "delete", id);
            }
        }
    }
}

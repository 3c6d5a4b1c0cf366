using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// What a container's own network namespace costs at start: `ctr run --rm` with a new namespace (ctr's default)
// and with `--net-host`, ours and runc's, the four interleaved in one loop; once on a quiet machine and once
// with every CPU kept busy by other work, as on a loaded node.
public static class NetworkBench
{
    public sealed record Row(string Label, double WasmNew, double WasmHost, double RuncNew, double RuncHost);

    public static IReadOnlyList<Row> Measure(PrivateContainerd containerd, int runs, ref int n)
    {
        var rows = new List<Row> { Loop(containerd, "quiet machine", runs, ref n) };
        using (new CpuLoad())
            rows.Add(Loop(containerd, $"{Environment.ProcessorCount} busy threads", Math.Max(5, runs / 2), ref n));
        return rows;
    }

    private static Row Loop(PrivateContainerd containerd, string label, int runs, ref int n)
    {
        var series = new List<double>[4];
        for (var s = 0; s < 4; s++) series[s] = [];
        for (var i = 0; i < runs; i++)
        {
            series[0].Add(Bench.Timed(containerd, ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"nw{n++}", "/hello.wasm"]));
            series[1].Add(Bench.Timed(containerd, ["run", "--rm", "--net-host", "--runtime", RepoLayout.Runtime, Images.WasmTests, $"nw{n++}", "/hello.wasm"]));
            series[2].Add(Bench.Timed(containerd, ["run", "--rm", Images.Busybox, $"nr{n++}", "echo", "hello"]));
            series[3].Add(Bench.Timed(containerd, ["run", "--rm", "--net-host", Images.Busybox, $"nr{n++}", "echo", "hello"]));
        }
        return new Row(label, Bench.Median(series[0]), Bench.Median(series[1]), Bench.Median(series[2]), Bench.Median(series[3]));
    }

    public static void Print(IReadOnlyList<Row> rows, int runs)
    {
        Console.WriteLine();
        Console.WriteLine($"| `ctr run --rm` hello, medians ({runs} runs quiet, {Math.Max(5, runs / 2)} loaded) | wasmsharp new netns / --net-host | runc new netns / --net-host | namespace cost wasmsharp / runc | new netns: wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var r in rows)
            Console.WriteLine(FormattableString.Invariant(
                $"| {r.Label} | {r.WasmNew:0.0} / {r.WasmHost:0.0} ms | {r.RuncNew:0.0} / {r.RuncHost:0.0} ms | {r.WasmNew - r.WasmHost:+0.0;-0.0} / {r.RuncNew - r.RuncHost:+0.0;-0.0} ms | {r.WasmNew / r.RuncNew:0.00} |"));
    }

    /// <summary>One busy-looping thread per CPU at normal priority until disposed.</summary>
    public sealed class CpuLoad : IDisposable
    {
        private volatile bool stop;
        private readonly List<Thread> threads = [];

        public CpuLoad()
        {
            for (var i = 0; i < Environment.ProcessorCount; i++)
            {
                var t = new Thread(() => { var x = 0UL; while (!stop) x++; }) { IsBackground = true };
                t.Start();
                threads.Add(t);
            }
        }

        public void Dispose()
        {
            stop = true;
            foreach (var t in threads) t.Join();
        }
    }
}

// A guest HTTP server's throughput on its container's loopback: httpd.c as Wasm under our runtime against the
// same C server built natively under runc, each in its container's own namespace, driven by wrk from inside
// that namespace (bounded: a few seconds and a few connections per round), rounds interleaved.
public static class HttpBench
{
    private const int Rounds = 3, Seconds = 4, Connections = 8;

    public sealed record Result(double WasmRps, double NativeRps, double WasmLatencyMs, double NativeLatencyMs);

    public static Result Measure(PrivateContainerd containerd, ref int n)
    {
        Images.Import(containerd, Images.BuildNativeHttpd(containerd.BaseDir));
        var wasmId = $"hw{n++}";
        var nativeId = $"hn{n++}";
        // --null-io: the server logs each request, and a FIFO nobody reads would block it (as it would a native one).
        Start(containerd, ["run", "-d", "--null-io", "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/httpd.wasm", "8080"]);
        Start(containerd, ["run", "-d", "--null-io", Images.NativeHttpd, nativeId, "/httpd", "8080"]);
        try
        {
            var (wasmNs, nativeNs) = ($"/proc/{containerd.Task(wasmId)!.Pid}/ns/net", $"/proc/{containerd.Task(nativeId)!.Pid}/ns/net");
            Wrk(wasmNs, 1); // warm-up: connections, caches
            Wrk(nativeNs, 1);
            var wasm = new List<(double Rps, double Latency)>();
            var native = new List<(double Rps, double Latency)>();
            for (var i = 0; i < Rounds; i++)
            {
                wasm.Add(Wrk(wasmNs, Seconds));
                native.Add(Wrk(nativeNs, Seconds));
            }
            return new Result(Bench.Median(wasm.Select(w => w.Rps).ToList()), Bench.Median(native.Select(w => w.Rps).ToList()),
                Bench.Median(wasm.Select(w => w.Latency).ToList()), Bench.Median(native.Select(w => w.Latency).ToList()));
        }
        finally
        {
            foreach (var id in new[] { wasmId, nativeId })
            {
                containerd.Ctr("tasks", "kill", "-s", "SIGKILL", id);
                for (var i = 0; i < 50 && containerd.Task(id) is { Status: not "STOPPED" }; i++) Thread.Sleep(100);
                containerd.Ctr("tasks", "delete", id);
                containerd.Ctr("containers", "delete", id);
            }
        }
    }

    public static void Print(Result r)
    {
        Console.WriteLine();
        Console.WriteLine($"| HTTP/1.0 GET / on the container's loopback, wrk -c{Connections} for {Seconds} s, median of {Rounds} rounds | wasmsharp (httpd.c as Wasm) | runc (httpd.c native, static) | wasm / native |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(FormattableString.Invariant($"| requests/s | {r.WasmRps:0} | {r.NativeRps:0} | {r.WasmRps / r.NativeRps:0.00} |"));
        Console.WriteLine(FormattableString.Invariant($"| mean latency | {r.WasmLatencyMs:0.00} ms | {r.NativeLatencyMs:0.00} ms | {r.WasmLatencyMs / r.NativeLatencyMs:0.00} |"));
    }

    private static void Start(PrivateContainerd containerd, string[] args)
    {
        var result = containerd.Ctr(args);
        if (result.ExitCode != 0) throw new InvalidOperationException($"cannot start the server:\n{result}\n{containerd.LogTail(30)}");
        // Up once it answers.
        var id = args[Array.FindIndex(args, a => a.StartsWith("example.local/", StringComparison.Ordinal)) + 1];
        var ns = $"/proc/{containerd.Task(id)!.Pid}/ns/net";
        NetNs.HttpGetWhenUp(ns, 8080);
    }

    // wrk's requests/s and mean latency (ms), run inside the server's namespace against its 127.0.0.1:8080.
    private static (double Rps, double Latency) Wrk(string ns, int seconds)
    {
        var result = ProcessRunner.Run("nsenter", [$"--net={ns}", "wrk", "-t1", $"-c{Connections}", $"-d{seconds}s", "--timeout", "2s", "http://127.0.0.1:8080/"],
            TimeSpan.FromSeconds(seconds + 20));
        var rps = Field(result.Stdout, "Requests/sec:");
        var latency = result.Stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Latency", StringComparison.Ordinal))?
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        if (result.ExitCode != 0 || rps is null || latency is null || result.Stdout.Contains(" 0 requests", StringComparison.Ordinal))
            throw new InvalidOperationException($"wrk failed:\n{result}");
        return (double.Parse(rps, System.Globalization.CultureInfo.InvariantCulture), Milliseconds(latency));
    }

    private static string? Field(string text, string name) =>
        text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal))?[name.Length..].Trim();

    // wrk prints 812.00us, 1.20ms or 2.00s.
    private static double Milliseconds(string value)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (value.EndsWith("us", StringComparison.Ordinal)) return double.Parse(value[..^2], inv) / 1000;
        if (value.EndsWith("ms", StringComparison.Ordinal)) return double.Parse(value[..^2], inv);
        if (value.EndsWith('s')) return double.Parse(value[..^1], inv) * 1000;
        throw new FormatException($"wrk latency {value}");
    }
}

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

using System.Globalization;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// `warm-bench`: only the start-time figures issue #5 targets, quickly: hello (cache hit), runc's busybox
// echo and the large module (cache hit), interleaved so drift hits all three. The large module is compiled
// and hello once first (their one cache miss).
public static class WarmStart
{
    public static int Run(int runs)
    {
        var programs = WasmPrograms.Get();
        var containerd = Program.StartContainerd("wasmsharp-warm-bench");
        Images.Import(containerd, Images.BuildWasmTests(programs, containerd.BaseDir));
        Images.Import(containerd, Images.BuildBusybox(containerd.BaseDir));
        var n = 0;
        var large = ColdStart.PrepareLarge(containerd);
        ColdStart.Run(containerd, $"wl{n++}", ColdStart.LargeImage, "/large.wasm", "CacheMiss", TimeSpan.FromMinutes(3));
        ColdStart.Run(containerd, $"wh{n++}", Images.WasmTests, "/hello.wasm", "CacheMiss", TimeSpan.FromMinutes(1));
        string[] Runc() => ["run", "--rm", Images.Busybox, $"wr{n++}", "echo", "hello"];

        var hello = new List<double>();
        var runc = new List<double>();
        var largeWarm = new List<double>();
        var largeLoad = new List<double>();
        for (var i = -2; i < runs; i++) // two warm-ups
        {
            var h = ColdStart.Run(containerd, $"wh{n++}", Images.WasmTests, "/hello.wasm", "CacheHit", TimeSpan.FromMinutes(1));
            var r = Bench.Timed(containerd, Runc());
            var id = $"wl{n++}";
            var l = ColdStart.Run(containerd, id, ColdStart.LargeImage, "/large.wasm", "CacheHit", TimeSpan.FromMinutes(1));
            if (i < 0) continue;
            hello.Add(h);
            runc.Add(r);
            largeWarm.Add(l);
            largeLoad.Add(ColdStart.LoggedMs(containerd, id, "CacheHit in "));
        }
        var (hm, rm, lm) = (Bench.Median(hello), Bench.Median(runc), Bench.Median(largeWarm));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""

            | `ctr run --rm`, median of {runs} | ms | ratio |
            |---|---:|---:|
            | hello, cache hit | {hm:0.0} | {hm / rm:0.00} × runc busybox echo |
            | runc busybox echo | {rm:0.0} | |
            | large module ({large / 1024.0 / 1024.0:0.0} MB), cache hit | {lm:0.0} | {lm / hm:0.00} × hello; shim's load {Bench.Median(largeLoad):0.0} ms |
            """));
        return 0;
    }
}

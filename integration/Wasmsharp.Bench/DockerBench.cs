using System.Diagnostics;
using System.Globalization;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// `docker-bench`: `docker run --rm` start-to-exit time of a Wasm hello under our runtime against busybox
// echo under runc, both in the same private dockerd on Docker's default bridge network (each container gets
// a veth and an address), for each fetched Docker version; on a quiet machine, then with every CPU kept busy.
public static class DockerBench
{
    public static int Run(int runs, Action<PrivateDocker?> track)
    {
        var suites = new[] { "trixie", "sid" }.Where(s => PrivateDocker.Unavailable(s) is null).ToList();
        if (suites.Count == 0)
            throw new InvalidOperationException(PrivateDocker.Unavailable("trixie"));
        var programs = WasmPrograms.Get();
        var rows = new List<string>();
        foreach (var suite in suites)
        {
            using var docker = PrivateDocker.Start(suite);
            track(docker);
            docker.Load(DockerImages.BuildWasm(programs, docker.BaseDir));
            docker.Load(Images.BuildBusybox(docker.BaseDir));
            string[] wasmArgs = ["run", "--rm", "--pull", "never", "--runtime=" + RepoLayout.Runtime, DockerImages.Wasm, "/hello.wasm"];
            string[] runcArgs = ["run", "--rm", "--pull", "never", Images.Busybox, "echo", "hello"];

            // Warm-ups (module compile cache, page cache), then interleaved so drift hits both.
            for (var i = 0; i < 2; i++)
            {
                Timed(docker, wasmArgs);
                Timed(docker, runcArgs);
            }
            var containerd = docker.Containerd.Ctr("version").Stdout.Split('\n').Select(l => l.Trim())
                .LastOrDefault(l => l.StartsWith("Version:", StringComparison.Ordinal))?["Version:".Length..].Trim() ?? "?";
            var (wasm, runc) = Interleaved(docker, wasmArgs, runcArgs, runs);
            rows.Add(F($"| Docker {docker.ServerVersion} / containerd {containerd}, median of {runs} | {Median(wasm):0.0} ms | {Median(runc):0.0} ms | {Median(wasm) / Median(runc):0.00} |"));
            rows.Add(F($"| — min / max | {wasm.Min():0.0} / {wasm.Max():0.0} ms | {runc.Min():0.0} / {runc.Max():0.0} ms | |"));
            using (new NetworkBench.CpuLoad())
            {
                var loaded = Math.Max(5, runs / 2);
                (wasm, runc) = Interleaved(docker, wasmArgs, runcArgs, loaded);
                rows.Add(F($"| — with {Environment.ProcessorCount} busy threads, median of {loaded} | {Median(wasm):0.0} ms | {Median(runc):0.0} ms | {Median(wasm) / Median(runc):0.00} |"));
            }
            track(null);
        }
        Console.WriteLine();
        Console.WriteLine($"`docker run --rm` hello on the default bridge network, start to exit ({Environment.ProcessorCount} CPUs, shim from {RepoLayout.ShimDir})");
        Console.WriteLine();
        Console.WriteLine("| Docker | wasmsharp (wasm) | runc (busybox echo) | wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var row in rows) Console.WriteLine(row);
        return 0;
    }

    private static (List<double> Wasm, List<double> Runc) Interleaved(PrivateDocker docker, string[] wasmArgs, string[] runcArgs, int runs)
    {
        var wasm = new List<double>();
        var runc = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            wasm.Add(Timed(docker, wasmArgs));
            runc.Add(Timed(docker, runcArgs));
        }
        return (wasm, runc);
    }

    // Wall time of one `docker run --rm`, as a user's shell would measure it.
    private static double Timed(PrivateDocker docker, string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = docker.Docker(args);
        var ms = clock.Elapsed.TotalMilliseconds;
        if (result.ExitCode != 0 || !result.Stdout.Contains("hello", StringComparison.Ordinal))
            throw new InvalidOperationException($"benchmark run failed:\n{result}\n{docker.LogTail(30)}");
        return ms;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

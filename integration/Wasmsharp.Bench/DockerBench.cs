using System.Diagnostics;
using System.Globalization;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// `docker-bench`: `docker run --rm` start-to-exit time of a Wasm hello under our runtime against busybox
// echo under runc, both in the same private dockerd, for each fetched Docker version.
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
            var wasm = new List<double>();
            var runc = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                wasm.Add(Timed(docker, wasmArgs));
                runc.Add(Timed(docker, runcArgs));
            }
            var (w, r) = (Median(wasm), Median(runc));
            var containerd = docker.Containerd.Ctr("version").Stdout.Split('\n').Select(l => l.Trim())
                .LastOrDefault(l => l.StartsWith("Version:", StringComparison.Ordinal))?["Version:".Length..].Trim() ?? "?";
            rows.Add(F($"| Docker {docker.ServerVersion} / containerd {containerd}, median of {runs} | {w:0.0} ms | {r:0.0} ms | {w / r:0.00} |"));
            rows.Add(F($"| — min / max | {wasm.Min():0.0} / {wasm.Max():0.0} ms | {runc.Min():0.0} / {runc.Max():0.0} ms | |"));
            track(null);
        }
        Console.WriteLine();
        Console.WriteLine($"`docker run --rm` hello, start to exit ({Environment.ProcessorCount} CPUs, shim from {RepoLayout.ShimDir})");
        Console.WriteLine();
        Console.WriteLine("| Docker | wasmsharp (wasm) | runc (busybox echo) | wasm / runc |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var row in rows) Console.WriteLine(row);
        return 0;
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

using System.Diagnostics;
using System.Security.Cryptography;
using Wasmsharp.Integration;

namespace Wasmsharp.Bench;

// Start time with the shim's compiled-module cache empty for the module (cold: the shim compiles it) and
// holding it (warm: the shim maps the compiled code), for hello and for a generated module of >= 15 MB.
// The private containerd gives every shim WASMSHARP_CACHE_DIR=<base>/cache; a cold run first deletes that
// module's entries there. Each run's shim log line ("module ... CacheMiss/CacheHit") is checked, so a run
// that did not do what its column says fails the bench instead of skewing it.
public static class ColdStart
{
    public const string LargeImage = "example.local/large:1";
    public const long LargeMinBytes = 16L * 1024 * 1024;

    public sealed record Figures(
        double LargeMb, List<double> HelloCold, List<double> LargeCold, List<double> LargeWarm, double LargeCompileMs, double LargeLoadMs,
        List<double> Runc, List<double> HelloWarm);

    /// <param name="runc">A runc busybox echo, and <paramref name="hello"/> a cached hello, run in the same loop
    /// as the figures they are compared with.</param>
    public static Figures Measure(PrivateContainerd containerd, WasmPrograms programs, int warmRuns, int coldRuns, ref int n,
        Func<string[]> runc, Func<string[]> hello)
    {
        var size = PrepareLarge(containerd);
        var large = Path.Combine(containerd.BaseDir, "large.wasm");

        var cache = Path.Combine(containerd.BaseDir, "cache");
        var helloSha = Sha256(programs.Path("hello"));
        var largeSha = Sha256(large);
        var coldTimeout = TimeSpan.FromMinutes(3);

        var helloCold = new List<double>();
        var largeCold = new List<double>();
        var largeWarm = new List<double>();
        double compileMs = 0;
        for (var i = 0; i < coldRuns; i++)
        {
            Evict(cache, largeSha);
            var id = $"lc{n++}";
            largeCold.Add(Run(containerd, id, LargeImage, "/large.wasm", "CacheMiss", coldTimeout));
            compileMs += LoggedMs(containerd, id, "(compile ");
            WaitForEntry(cache, largeSha, coldTimeout); // the optimised code is written in the background
        }
        // The entry now exists: every run below loads it. Hello cold runs are interleaved with the warm large ones,
        // and with runc and cached hello runs to compare them with.
        double loadMs = 0;
        var runcRuns = new List<double>();
        var helloWarm = new List<double>();
        for (var i = 0; i < warmRuns; i++)
        {
            var id = $"lw{n++}";
            largeWarm.Add(Run(containerd, id, LargeImage, "/large.wasm", "CacheHit", coldTimeout));
            loadMs += LoggedMs(containerd, id, "CacheHit in ");
            runcRuns.Add(Bench.Timed(containerd, runc()));
            Evict(cache, helloSha);
            helloCold.Add(Run(containerd, $"hc{n++}", Images.WasmTests, "/hello.wasm", "CacheMiss", coldTimeout));
            WaitForEntry(cache, helloSha, coldTimeout); // not to measure the next start against its compile
            helloWarm.Add(Bench.Timed(containerd, hello()));
        }
        return new Figures(size / 1024.0 / 1024.0, helloCold, largeCold, largeWarm, compileMs / coldRuns, loadMs / warmRuns, runcRuns, helloWarm);
    }

    /// <summary>Generates the large module and imports it as <see cref="LargeImage"/>; returns its size.</summary>
    public static long PrepareLarge(PrivateContainerd containerd) => LargeModule.Import(containerd, LargeImage, "large", LargeMinBytes).Size;

    // A cache miss runs baseline code and writes the optimised code in the background: until it is there, the
    // next start runs the baseline entry.
    public static void WaitForEntry(string cache, string sha, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!HasOptimisedEntry(cache, sha))
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"no cache entry for {sha} after {timeout.TotalSeconds} s");
            Thread.Sleep(20);
        }
    }

    /// <summary>The module's optimised entry is there (<c>SHA.DIGEST.cwasm</c>; a first run's baseline entry is
    /// <c>SHA.DIGEST.baseline.cwasm</c>).</summary>
    public static bool HasOptimisedEntry(string cache, string sha) =>
        Directory.Exists(cache) && Directory.GetFiles(cache, sha + ".*.cwasm", SearchOption.AllDirectories)
            .Any(e => Path.GetFileName(e).Split('.').Length == 3);

    // Deletes the module's compiled entries under every engine fingerprint directory.
    public static void Evict(string cache, string sha)
    {
        if (!Directory.Exists(cache)) return;
        foreach (var entry in Directory.EnumerateFiles(cache, sha + ".*", SearchOption.AllDirectories))
            if (entry.EndsWith(".cwasm", StringComparison.Ordinal)) File.Delete(entry);
    }

    public static double Run(PrivateContainerd containerd, string id, string image, string module, string origin, TimeSpan timeout, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = containerd.Ctr(timeout, ["run", "--rm", "--runtime", RepoLayout.Runtime, image, id, module, .. args]);
        var ms = clock.Elapsed.TotalMilliseconds;
        if (result.ExitCode != 0 || !result.Stdout.Contains("hello", StringComparison.Ordinal))
            throw new InvalidOperationException($"benchmark run failed:\n{result}\n{containerd.LogTail(30)}");
        var line = ModuleLine(containerd, id);
        if (!line.Contains($" {origin} ", StringComparison.Ordinal))
            throw new InvalidOperationException($"{id} should have been a {origin}: {line}");
        return ms;
    }

    public static string ModuleLine(PrivateContainerd containerd, string id) =>
        File.ReadLines(containerd.LogPath).LastOrDefault(l => l.Contains($"{id}: module ", StringComparison.Ordinal)) ?? "(no module line in the log)";

    // The shim's own timing: "... CacheMiss in 2922.2 ms (compile 2911.2 ms)", "... CacheHit in 41.0 ms".
    public static double LoggedMs(PrivateContainerd containerd, string id, string before) => LoggedMs(ModuleLine(containerd, id), before);

    public static double LoggedMs(string line, string before)
    {
        var at = line.IndexOf(before, StringComparison.Ordinal);
        if (at < 0) return 0;
        var text = line[(at + before.Length)..].Split(' ')[0];
        return double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var ms) ? ms : 0;
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}

using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Tests of behaviour of particular containerd releases (-info: 2.x, gRPC shims: 1.7) run on the suite's
// own containerd when it is one (WASMSHARP_CONTAINERD_DIR), else on one fetched by `make runtimes`.
public static class ContainerdVersions
{
    // `ctr version`'s server version as (major, minor).
    public static (int Major, int Minor) ServerVersion(PrivateContainerd containerd)
    {
        var output = containerd.Ctr("version").Stdout;
        var server = output[(output.IndexOf("Server:", StringComparison.Ordinal) is var i and >= 0 ? i : 0)..];
        foreach (var line in server.Split('\n'))
        {
            var t = line.Trim();
            if (!t.StartsWith("Version:", StringComparison.Ordinal)) continue;
            var parts = t["Version:".Length..].Trim().TrimStart('v').Split('.');
            return (int.Parse(parts[0]), int.Parse(new string(parts[1].TakeWhile(char.IsAsciiDigit).ToArray())));
        }
        throw new InvalidOperationException($"no server version in `ctr version`:\n{output}");
    }

    /// <summary>
    /// The fixture's containerd if its version fits, else a private one from the `make runtimes` suite
    /// (trixie = 1.7, sid = 2.x; owned: dispose it). Fails when that suite was not fetched.
    /// </summary>
    public static (PrivateContainerd Containerd, bool Owned) Pick(ContainerdFixture f, Func<(int Major, int Minor), bool> fits, string suite, string ns)
    {
        if (fits(ServerVersion(f.Containerd))) return (f.Containerd, false);
        var bin = RepoLayout.SuiteBinDir(suite)
            ?? throw new InvalidOperationException($"this test needs the containerd of Debian {suite}: run `make runtimes` (fetches it into {RepoLayout.RuntimesDir})");
        return (PrivateContainerd.Start(ns, bin), true);
    }

    public static bool IsContainerd2((int Major, int Minor) v) => v.Major >= 2;

    public static bool IsContainerd17((int Major, int Minor) v) => v is (1, 7);
}

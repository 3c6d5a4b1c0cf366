using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Tests of behaviour only newer containerd releases have (-info, gRPC shims) run on the suite's own
// containerd when it is new enough (WASMSHARP_CONTAINERD_DIR), else on one fetched by `make runtimes`.
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

    public static bool AtLeast(PrivateContainerd containerd, int major, int minor) =>
        ServerVersion(containerd) is var (ma, mi) && (ma > major || (ma == major && mi >= minor));

    /// <summary>
    /// The fixture's containerd if it is at least <paramref name="major"/>.<paramref name="minor"/>, else a
    /// private containerd 2.x from out/runtimes (owned: dispose it). Fails when neither is there.
    /// </summary>
    public static (PrivateContainerd Containerd, bool Owned) AtLeast(ContainerdFixture f, int major, int minor, string ns)
    {
        if (AtLeast(f.Containerd, major, minor)) return (f.Containerd, false);
        var bin = RepoLayout.SuiteBinDir("sid")
            ?? throw new InvalidOperationException($"this test needs containerd {major}.{minor}+: run `make runtimes` (fetches containerd 2.x into {RepoLayout.RuntimesDir})");
        return (PrivateContainerd.Start(ns, bin), true);
    }
}

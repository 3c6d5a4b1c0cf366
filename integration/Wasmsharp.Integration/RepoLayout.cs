namespace Wasmsharp.Integration;

// Where things are: the repository (found from our own build output), the published shim, containerd.
public static class RepoLayout
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ContainerdShim.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no ContainerdShim.sln above {AppContext.BaseDirectory}");
    });

    public static string Root => RootLazy.Value;

    public static string ProgramsDir => Path.Combine(Root, "integration", "programs");

    public const string ShimBinary = "containerd-shim-wasmsharp-v1";
    public const string Runtime = "io.containerd.wasmsharp.v1";

    // `dotnet publish src/Wasmsharp.Shim -c Release -o out/shim` puts the shim and libwasmtime.so here.
    public static string ShimDir => Env("WASMSHARP_SHIM_DIR") ?? Path.Combine(Root, "out", "shim");

    public static bool ShimPublished => File.Exists(Path.Combine(ShimDir, ShimBinary));

    // A directory holding containerd and ctr (another version for the version matrix); default: the system's.
    public static string? ContainerdDir => Env("WASMSHARP_CONTAINERD_DIR");

    // Newer containerd and Docker releases extracted by `make runtimes` (integration/scripts/fetch-runtimes.sh):
    // "trixie" = containerd 1.7 + Docker 26, "sid" = containerd 2.1 + Docker 28.
    public static string RuntimesDir => Env("WASMSHARP_RUNTIMES_DIR") ?? Path.Combine(Root, "out", "runtimes");

    /// <summary>Directory of containerd, ctr and docker-init from a fetched suite (null when not fetched).</summary>
    public static string? SuiteBinDir(string suite) =>
        Path.Combine(RuntimesDir, suite, "root", "usr", "bin") is var d && File.Exists(Path.Combine(d, "containerd")) ? d : null;

    /// <summary>dockerd from a fetched suite (null when not fetched).</summary>
    public static string? SuiteDockerd(string suite) =>
        Path.Combine(RuntimesDir, suite, "root", "usr", "sbin", "dockerd") is var d && File.Exists(d) ? d : null;

    // The image tool is a project reference: its dll and runtimeconfig are copied next to ours.
    public static string ImageToolDll
    {
        get
        {
            var local = Path.Combine(AppContext.BaseDirectory, "wasmsharp-image.dll");
            if (File.Exists(local)) return local;
            throw new FileNotFoundException($"wasmsharp-image.dll not found next to {AppContext.BaseDirectory}; build the integration projects");
        }
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}

namespace Wasmsharp.Wasm.Tests;

public sealed class WasiSetupTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("wasmsharp-wasi-setup-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Theory]
    [InlineData("/", "/")]
    [InlineData("", "/")]
    [InlineData("/app/", "/app")]
    [InlineData("app", "/app")]
    [InlineData("//a/./b//c/", "/a/b/c")]
    [InlineData("/a/../../b", "/b")]
    public void NormalizeGuestPath(string input, string expected) => Assert.Equal(expected, WasiSetup.NormalizeGuestPath(input));

    // The directory a working directory opened to, by identity: what Wasmtime reopens through /proc/self/fd.
    private static (string Directory, bool ReadOnly) Opened(string cwd, IReadOnlyList<(string, string, bool)> preopens)
    {
        var (handle, readOnly) = WasiSetup.OpenCwd(cwd, preopens);
        using (handle)
            return (new DirectoryInfo(Wasmsharp.Linux.Files.ProcPath(handle)).ResolveLinkTarget(returnFinalTarget: false)!.FullName, readOnly);
    }

    [Fact]
    public void OpenCwd_KeepsSymlinksInsideTheRoot()
    {
        Directory.CreateDirectory(Path.Combine(root, "real", "dir"));
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.CreateSymbolicLink(Path.Combine(root, "abs"), "/real");          // absolute: relative to the root
        File.CreateSymbolicLink(Path.Combine(root, "rel"), "real/dir");       // relative
        File.CreateSymbolicLink(Path.Combine(root, "escape"), "../../../../etc");
        File.CreateSymbolicLink(Path.Combine(root, "hostetc"), "/etc");
        IReadOnlyList<(string, string, bool)> preopens = [(root, "/", false)];

        Assert.Equal(Path.Combine(root, "real", "dir"), Opened("/abs/dir", preopens).Directory);
        Assert.Equal(Path.Combine(root, "real", "dir"), Opened("/rel", preopens).Directory);
        Assert.Equal(Path.Combine(root, "etc"), Opened("/escape", preopens).Directory);
        Assert.Equal(Path.Combine(root, "etc"), Opened("/hostetc", preopens).Directory);
    }

    [Fact]
    public void OpenCwd_RefusesLoopsAndFiles()
    {
        File.CreateSymbolicLink(Path.Combine(root, "loop"), "loop");
        File.WriteAllText(Path.Combine(root, "file"), "");
        IReadOnlyList<(string, string, bool)> preopens = [(root, "/", false)];
        Assert.Contains("symbolic links", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/loop", preopens)).Message);
        Assert.Contains("not a directory", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/file", preopens)).Message);
    }

    [Fact]
    public void OpenCwd_UsesTheLongestPreopen()
    {
        var rootfs = Directory.CreateDirectory(Path.Combine(root, "rootfs", "data", "x")).Parent!.Parent!.FullName;
        var mount = Directory.CreateDirectory(Path.Combine(root, "mount", "x")).Parent!.FullName;
        var preopens = new List<(string, string, bool)> { (rootfs, "/", false), (mount, "/data", true) };

        Assert.Equal((Path.Combine(mount, "x"), true), Opened("/data/x", preopens));
        Assert.Equal((mount, true), Opened("/data", preopens));
        Directory.CreateDirectory(Path.Combine(rootfs, "database"));
        Assert.Equal((Path.Combine(rootfs, "database"), false), Opened("/database", preopens)); // "/data" matches whole components only
        Assert.Contains("does not exist", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/missing", preopens)).Message);
        Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/x", [(mount, "/data", false)]));
    }
}

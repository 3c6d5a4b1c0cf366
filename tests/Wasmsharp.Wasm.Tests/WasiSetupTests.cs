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

    [Fact]
    public void ResolveBeneath_KeepsSymlinksInsideTheRoot()
    {
        Directory.CreateDirectory(Path.Combine(root, "real", "dir"));
        File.CreateSymbolicLink(Path.Combine(root, "abs"), "/real");          // absolute: relative to the root
        File.CreateSymbolicLink(Path.Combine(root, "rel"), "real/dir");       // relative
        File.CreateSymbolicLink(Path.Combine(root, "escape"), "../../../../etc");
        File.CreateSymbolicLink(Path.Combine(root, "hostetc"), "/etc");

        Assert.Equal(Path.Combine(root, "real", "dir"), WasiSetup.ResolveBeneath(root, "abs/dir"));
        Assert.Equal(Path.Combine(root, "real", "dir"), WasiSetup.ResolveBeneath(root, "rel"));
        Assert.Equal(Path.Combine(root, "etc"), WasiSetup.ResolveBeneath(root, "escape"));
        Assert.Equal(Path.Combine(root, "etc"), WasiSetup.ResolveBeneath(root, "hostetc"));
        Assert.Equal(root, WasiSetup.ResolveBeneath(root, "../.."));
    }

    [Fact]
    public void ResolveBeneath_DetectsLoops()
    {
        File.CreateSymbolicLink(Path.Combine(root, "loop"), "loop");
        Assert.Throws<WasmModuleException>(() => WasiSetup.ResolveBeneath(root, "loop"));
    }

    [Fact]
    public void ResolveCwd_UsesTheLongestPreopen()
    {
        var rootfs = Directory.CreateDirectory(Path.Combine(root, "rootfs", "data", "x")).Parent!.Parent!.FullName;
        var mount = Directory.CreateDirectory(Path.Combine(root, "mount", "x")).Parent!.FullName;
        var preopens = new List<(string, string, bool)> { (rootfs, "/", false), (mount, "/data", true) };

        Assert.Equal((Path.Combine(mount, "x"), true), WasiSetup.ResolveCwd("/data/x", preopens));
        Assert.Equal((mount, true), WasiSetup.ResolveCwd("/data", preopens));
        Directory.CreateDirectory(Path.Combine(rootfs, "database"));
        Assert.Equal((Path.Combine(rootfs, "database"), false), WasiSetup.ResolveCwd("/database", preopens)); // "/data" matches whole components only
        Assert.Throws<WasmModuleException>(() => WasiSetup.ResolveCwd("/missing", preopens));
        Assert.Throws<WasmModuleException>(() => WasiSetup.ResolveCwd("/x", [(mount, "/data", false)]));
    }
}

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

    // As runc makes a container's missing working directory (0755): inside the root whatever the image's symlinks
    // say, in a read-only rootfs too (runc makes it before the remount), never in a read-only mount; not for execs.
    [Fact]
    public void OpenCwd_MakesAMissingWorkingDirectoryInsideTheRoot()
    {
        var rootfs = Directory.CreateDirectory(Path.Combine(root, "rootfs")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(root, "outside")).FullName;
        var mount = Directory.CreateDirectory(Path.Combine(root, "mount")).FullName;
        File.CreateSymbolicLink(Path.Combine(rootfs, "escape"), "../outside");
        File.CreateSymbolicLink(Path.Combine(rootfs, "hostroot"), "/");
        IReadOnlyList<(string, string, bool)> readOnlyRootfs = [(rootfs, "/", true), (mount, "/data", true)];

        var (made, _) = WasiSetup.OpenCwd("/app/work", readOnlyRootfs, create: true);
        made.Dispose();
        Assert.True(Directory.Exists(Path.Combine(rootfs, "app", "work")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(Path.Combine(rootfs, "app", "work")));
        // "../outside" resolves to the root's own /outside, which is missing: a dangling link is refused (runc's
        // MkdirAll refuses it too), and nothing is made outside the root.
        Assert.Contains("does not exist", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/escape/a", readOnlyRootfs, create: true)).Message);
        WasiSetup.OpenCwd("/hostroot/b", readOnlyRootfs, create: true).Directory.Dispose();
        Assert.True(Directory.Exists(Path.Combine(rootfs, "b")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.False(Directory.Exists(Path.Combine(root, "b")));
        Assert.Contains("does not exist", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/data/x", readOnlyRootfs, create: true)).Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(mount));
        Assert.Contains("does not exist", Assert.Throws<WasmModuleException>(() => WasiSetup.OpenCwd("/exec", readOnlyRootfs)).Message);
    }
}

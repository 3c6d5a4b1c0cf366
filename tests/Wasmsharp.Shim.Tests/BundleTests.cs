using Wasmsharp.Shim;

public sealed class BundleTests : IDisposable
{
    private readonly string _bundle = Directory.CreateTempSubdirectory("ws-bundle-").FullName;
    private string Rootfs => Path.Combine(_bundle, "rootfs");

    public BundleTests()
    {
        Directory.CreateDirectory(Path.Combine(Rootfs, "bin"));
        File.WriteAllBytes(Path.Combine(Rootfs, "app.wasm"), [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0]);
        File.WriteAllBytes(Path.Combine(Rootfs, "bin", "tool.wasm"), [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0]);
        File.WriteAllText(Path.Combine(Rootfs, "script.sh"), "#!/bin/sh\necho hi\n");
        File.WriteAllText(Path.Combine(Rootfs, "notes.txt"), "just text\n");
        File.WriteAllBytes(Path.Combine(Rootfs, "bin", "tool"), [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0]);
        Directory.CreateDirectory(Path.Combine(_bundle, "data"));
        File.WriteAllText(Path.Combine(_bundle, "hosts"), "127.0.0.1 localhost\n");
    }

    private Bundle Write(string args, string extra = "")
    {
        File.WriteAllText(Path.Combine(_bundle, "config.json"), $$"""
        { "process": { "args": [{{args}}], "env": ["PATH=/bin"], "cwd": "/" }, "root": { "path": "rootfs" },
          "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/data", "type": "bind", "source": "{{_bundle}}/data", "options": ["rbind", "ro"] },
            { "destination": "/etc/hosts", "type": "bind", "source": "{{_bundle}}/hosts", "options": ["rbind", "rw"] }
          ] {{extra}} }
        """);
        return Bundle.Load(_bundle);
    }

    [Fact]
    public void FindsAbsoluteAndPathEntrypoints()
    {
        var bundle = Write("\"/app.wasm\", \"x\"");
        using (var e = bundle.OpenEntrypoint(bundle.Spec.Process!))
        {
            Assert.Equal("/app.wasm", e.GuestPath);
            Assert.Equal("_start", e.Export);
            Assert.StartsWith("/proc/self/fd/", e.HostPath);
        }
        bundle = Write("\"tool.wasm#run\"");
        using (var e = bundle.OpenEntrypoint(bundle.Spec.Process!))
        {
            Assert.Equal("/bin/tool.wasm", e.GuestPath);
            Assert.Equal("run", e.Export);
        }
    }

    // An image is untrusted: a FIFO (or a directory) named as the entrypoint is refused at once, never waited on.
    [Fact]
    public async Task RefusesAFifoOrDirectoryEntrypointWithoutBlocking()
    {
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(Rootfs, "fifo.wasm")])!) mkfifo.WaitForExit();
        var bundle = Write("\"/fifo.wasm\"");
        var open = Task.Run(() => bundle.OpenEntrypoint(bundle.Spec.Process!));
        var e = await Assert.ThrowsAsync<BundleException>(() => open.WaitAsync(TimeSpan.FromSeconds(5))); // a timeout would be a TimeoutException
        Assert.Contains("/fifo.wasm", e.Message);
        Assert.Contains("not a regular file", e.Message);
        bundle = Write("\"/bin\"");
        Assert.Contains("not a regular file", Assert.Throws<BundleException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!)).Message);
    }

    [Fact]
    public void TellsWasmFromNativeEntrypoints()
    {
        foreach (var (args, kind) in new[] { ("\"/app.wasm\"", EntrypointKind.Wasm), ("\"/script.sh\"", EntrypointKind.Native), ("\"tool\"", EntrypointKind.Native) })
        {
            var bundle = Write(args);
            using var e = bundle.OpenEntrypoint(bundle.Spec.Process!);
            Assert.Equal(kind, e.Kind);
        }
    }

    [Fact]
    public void RejectsNonWasmMissingAndEmptyEntrypoints()
    {
        var bundle = Write("\"/notes.txt\"");
        Assert.Contains("not a WebAssembly module", Assert.Throws<BundleException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!)).Message);
        bundle = Write("\"/nope.wasm\"");
        // Not found (and no args) are their own type: the shim then looks for a Wasm artifact layer.
        Assert.Contains("/nope.wasm: no such file or directory", Assert.Throws<EntrypointNotFoundException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!)).Message);
        bundle = Write("");
        Assert.Contains("config.json: process.args must not be empty", Assert.Throws<EntrypointNotFoundException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!)).Message);
    }

    [Fact]
    public void SymlinksCannotEscapeTheRootfs()
    {
        // A hostile image points its entrypoint at a host file; resolution stays inside the rootfs.
        var outside = Path.Combine(_bundle, "outside.wasm");
        File.WriteAllBytes(outside, [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0]);
        File.CreateSymbolicLink(Path.Combine(Rootfs, "evil.wasm"), outside);
        File.CreateSymbolicLink(Path.Combine(Rootfs, "dotdot.wasm"), "../outside.wasm");
        var bundle = Write("\"/evil.wasm\"");
        Assert.ThrowsAny<BundleException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!));
        bundle = Write("\"/dotdot.wasm\"");
        Assert.ThrowsAny<BundleException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!));
        bundle = Write("\"/../outside.wasm\"");
        Assert.ThrowsAny<BundleException>(() => bundle.OpenEntrypoint(bundle.Spec.Process!));
    }

    // The spec's mounts are made in the rootfs (as root): a directory is preopened through its own root, a file is
    // at its path; proc means nothing to a guest; all of it goes with Unmount.
    [Fact]
    public void MountsBindsInTheRootfsAndPreopensTheDirectories()
    {
        var bundle = Write("\"/app.wasm\"", ", \"hostname\": \"x\"");
        try
        {
            bundle.MountSpecMounts();
            var preopens = bundle.Preopens();
            Assert.Equal(2, preopens.Count);
            Assert.Equal((Rootfs, "/", false), (preopens[0].HostPath, preopens[0].GuestPath, preopens[0].ReadOnly));
            Assert.StartsWith("/proc/self/fd/", preopens[1].HostPath, StringComparison.Ordinal);
            Assert.Equal(("/data", true), (preopens[1].GuestPath, preopens[1].ReadOnly));
            Assert.Equal("127.0.0.1 localhost\n", File.ReadAllText(Path.Combine(Rootfs, "etc", "hosts")));
            Assert.False(Directory.Exists(Path.Combine(Rootfs, "proc")));
        }
        finally
        {
            bundle.Unmount();
        }
        Assert.DoesNotContain(Wasmsharp.Linux.Mounts.MountPoints(), p => p.StartsWith(Rootfs + "/", StringComparison.Ordinal));
        Assert.Equal(0, new FileInfo(Path.Combine(Rootfs, "etc", "hosts")).Length); // what it was mounted on, as runc leaves it
    }

    // A rootfs read-only on disk, where no mount point can be made: a directory mount is still reached through its
    // host source, a tmpfs left out, and a file fails the create naming the user's config.json and the mount.
    [Fact]
    public void ARootfsReadOnlyOnDiskFallsBackForDirectoriesAndRefusesFiles()
    {
        var bundle = Write("\"/app.wasm\"");
        Wasmsharp.Linux.Mounts.Mount(new Wasmsharp.Linux.MountSpec("bind", Rootfs, ["bind", "ro"]), Rootfs);
        try
        {
            File.WriteAllText(Path.Combine(_bundle, "config.json"), $$"""
            { "process": { "args": ["/app.wasm"], "cwd": "/" }, "root": { "path": "rootfs" },
              "mounts": [
                { "destination": "/data", "type": "bind", "source": "{{_bundle}}/data", "options": ["rbind", "rw"] },
                { "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"] }
              ] }
            """);
            bundle = Bundle.Load(_bundle);
            bundle.MountSpecMounts();
            var preopens = bundle.Preopens();
            Assert.Equal(["/", "/data"], preopens.Select(p => p.GuestPath));
            Assert.Equal((Path.Combine(_bundle, "data"), false), (preopens[1].HostPath, preopens[1].ReadOnly));
            bundle.Unmount();

            bundle = Write("\"/app.wasm\""); // /etc/hosts, a file, cannot be mounted
            var e = Assert.Throws<BundleException>(() => bundle.MountSpecMounts());
            Assert.StartsWith($"{_bundle}/config.json: mounts[2] (/etc/hosts): ", e.Message, StringComparison.Ordinal);
            Assert.Contains("Read-only file system", e.Message, StringComparison.Ordinal);
            bundle.Unmount();
        }
        finally
        {
            Wasmsharp.Linux.Mounts.UnmountAll(Rootfs);
        }
    }

    public void Dispose() => Directory.Delete(_bundle, recursive: true);
}

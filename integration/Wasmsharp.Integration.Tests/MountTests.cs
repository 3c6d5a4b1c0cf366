namespace Wasmsharp.Integration.Tests;

// Bind mounts from `ctr run --mount`: writable when rw, truly read-only when ro.
[Collection(ContainerdCollection.Name)]
public sealed class MountTests(ContainerdFixture f)
{
    private static string[] Bind(string host, string mode) =>
        ["--mount", $"type=bind,src={host},dst=/data,options=rbind:{mode}"];

    // runc makes a container's working directory when the image lacks it (a Kubernetes workingDir, `ctr run --cwd`);
    // so do we, in the rootfs (even read-only: runc makes it before the remount), never in a read-only mount.
    [Fact]
    public void A_working_directory_missing_from_the_image_is_made_as_runc_makes_it()
    {
        var id = f.NewId("cwd-made");
        var run = f.RunWasm(id, ["--cwd", "/made/here", "--read-only"], "/fs.wasm", "pwd", "read", "/hello.wasm");
        f.Check(run.ExitCode == 0, "a missing --cwd should be made, as runc makes it (the guest then reads with it)", id, run);
        var roId = f.NewId("cwd-ro-mount");
        var refused = f.RunWasm(roId, ["--cwd", "/data/missing", .. Bind(f.HostDir(roId), "ro")], "/fs.wasm", "pwd", "read", "/hello.wasm");
        f.Check(refused.ExitCode != 0 && refused.Stderr.Contains("working directory /data/missing does not exist", StringComparison.Ordinal)
            && !Directory.Exists(Path.Combine(f.HostDir(roId), "missing")), "nothing is made in a read-only mount", roId, refused);
    }

    [Fact]
    public void Read_write_bind_mount_is_writable_and_the_host_sees_the_file()
    {
        var id = f.NewId("mount-rw");
        var host = f.HostDir(id);
        var write = f.RunWasm(id, Bind(host, "rw"), "/fs.wasm", "write", "/data/x", "written by wasm");
        f.Check(write.ExitCode == 0, "writing /data/x should succeed", id, write);
        var file = Path.Combine(host, "x");
        f.Check(File.Exists(file) && File.ReadAllText(file) == "written by wasm", "the host should see /data/x with its content", id, write);

        var readId = f.NewId("mount-rw-read");
        var read = f.RunWasm(readId, Bind(host, "rw"), "/fs.wasm", "read", "/data/x");
        f.Check(read.ExitCode == 0 && read.Stdout == "written by wasm", "reading it back should work", readId, read);
        f.AssertNothingLeft(id, write);
    }

    [Fact]
    public void Read_only_bind_mount_rejects_writes_and_allows_reads()
    {
        var id = f.NewId("mount-ro");
        var host = f.HostDir(id);
        File.WriteAllText(Path.Combine(host, "keep"), "from the host");
        var before = Snapshot(host);

        var write = f.RunWasm(id, Bind(host, "ro"), "/fs.wasm", "write", "/data/x", "must not land");
        f.Check(write.ExitCode == 1, "writing to a read-only mount should fail with exit 1", id, write);
        f.Check(write.Stderr.Length > 0, "the failure should be explained on stderr (strerror)", id, write);
        var overwrite = f.RunWasm(f.NewId("mount-ro-over"), Bind(host, "ro"), "/fs.wasm", "write", "/data/keep", "changed");
        f.Check(overwrite.ExitCode == 1, "overwriting a file on a read-only mount should fail with exit 1", id, overwrite);
        f.Check(Snapshot(host).SequenceEqual(before), "the host directory should be unchanged", id, write, overwrite);

        var readId = f.NewId("mount-ro-read");
        var read = f.RunWasm(readId, Bind(host, "ro"), "/fs.wasm", "read", "/data/keep");
        f.Check(read.ExitCode == 0 && read.Stdout == "from the host", "reading from a read-only mount should work", readId, read);
        f.AssertNothingLeft(id, write);
    }

    [Fact]
    public void Rootfs_files_are_readable()
    {
        var id = f.NewId("rootfs-read");
        var read = f.RunWasm(id, "/fs.wasm", "read", "/not-wasm.txt");
        f.Check(read.ExitCode == 0 && read.Stdout.Contains("not a WebAssembly module", StringComparison.Ordinal),
            "the image's files should be readable at their paths", id, read);
    }

    [Fact]
    public void Rootfs_is_writable_unless_read_only_like_runc()
    {
        // The rootfs is the container's own snapshot: writable by default, read-only with --read-only.
        var id = f.NewId("rootfs-rw");
        var write = f.RunWasm(id, "/fs.wasm", "write", "/new-file", "x");
        f.Check(write.ExitCode == 0, "writing into the rootfs should succeed", id, write);

        var roId = f.NewId("rootfs-ro");
        var ro = f.RunWasm(roId, ["--read-only"], "/fs.wasm", "write", "/new-file", "x");
        var runcId = f.NewId("rootfs-ro-runc");
        var runc = f.RunRunc(runcId, ["--read-only"], "/bin/busybox", "touch", "/new-file");
        f.Check(runc.ExitCode != 0, "runc with --read-only should refuse the write", runcId, runc);
        f.Check(ro.ExitCode == 1, "with --read-only the guest's write should fail with exit 1", roId, ro);
        f.AssertNothingLeft(roId, ro);
    }

    private static List<string> Snapshot(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => $"{p}:{(File.Exists(p) ? File.ReadAllText(p) : "<dir>")}").ToList();
}

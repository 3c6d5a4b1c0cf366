using Wasmsharp.Integration;

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

    // As runc makes a spec's mounts in the container's mount namespace: a single file (Docker's -v FILE:PATH, a
    // Kubernetes subPath or secret file) is there, a mount's parents list it, and a file mounted inside a directory
    // mount lands in that mount as the container sees it, not in the host directory (which gets, as with runc, only
    // the empty file it is mounted on).
    [Fact]
    public void A_file_can_be_bind_mounted_also_inside_a_directory_mount_as_with_runc()
    {
        var id = f.NewId("mount-file");
        var host = f.HostDir(id);
        var config = Path.Combine(host, "app.conf");
        File.WriteAllText(config, "listen=8080");
        var volume = Directory.CreateDirectory(Path.Combine(host, "volume")).FullName;
        File.WriteAllText(Path.Combine(volume, "data.txt"), "in the volume");
        string[] mounts =
        [
            "--mount", $"type=bind,src={config},dst=/etc/app/app.conf,options=rbind:ro",
            "--mount", $"type=bind,src={volume},dst=/srv/volume,options=rbind:rw",
            "--mount", $"type=bind,src={config},dst=/srv/volume/conf/app.conf,options=rbind:ro",
        ];
        var ids = new List<string>();
        string[] Run(string name, params string[] args)
        {
            ids.Add(f.NewId(name));
            var run = f.RunWasm(ids[^1], mounts, ["/fs.wasm", .. args]);
            f.Check(run.ExitCode == 0, $"fs {string.Join(' ', args)} should succeed", id, run);
            return run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        f.Check(Run("mount-file-read", "read", "/etc/app/app.conf") is ["listen=8080"], "the guest reads the mounted file at its path", id);
        f.Check(Run("mount-file-ls", "ls", "/etc/app") is ["app.conf"], "the file's parent lists it", id);
        f.Check(Run("mount-file-root", "ls", "/").Contains("srv") && Run("mount-file-srv", "ls", "/srv") is ["volume"],
            "a mount's parents, made in the rootfs as runc makes them, list it", id);
        f.Check(Run("mount-file-nested", "read", "/srv/volume/conf/app.conf") is ["listen=8080"], "a file mounted inside a directory mount is there", id);
        f.Check(Run("mount-file-vol", "ls", "/srv/volume").SequenceEqual(["conf", "data.txt"]), "the directory mount lists both", id);
        var ro = f.RunWasm(f.NewId("mount-file-ro"), mounts, "/fs.wasm", "write", "/etc/app/app.conf", "changed");
        f.Check(ro.ExitCode == 1 && File.ReadAllText(config) == "listen=8080", "a read-only file mount refuses writes", id, ro);
        var placeholder = Path.Combine(volume, "conf", "app.conf");
        f.Check(File.Exists(placeholder) && new FileInfo(placeholder).Length == 0,
            "the host directory has only the empty file the mount was made on, as with runc", id);

        var rw = f.RunWasm(f.NewId("mount-file-rw"), ["--mount", $"type=bind,src={config},dst=/app.conf,options=rbind:rw"], "/fs.wasm", "write", "/app.conf", "listen=9090");
        f.Check(rw.ExitCode == 0 && File.ReadAllText(config) == "listen=9090", "a writable file mount writes the host's file", id, rw);
        foreach (var each in ids) f.AssertNothingLeft(each); // no mount left in a rootfs
    }

    // `ctr run`'s (and Docker's, CRI's) spec mounts tmpfs at /dev, /dev/shm and /run: each is the container's own, a
    // read-only rootfs keeps them writable (`docker run --read-only --tmpfs /tmp`), and /dev has runc's devices.
    [Fact]
    public void Tmpfs_mounts_are_the_containers_own_and_dev_has_its_devices_as_with_runc()
    {
        var id = f.NewId("tmpfs");
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--read-only", "--mount", "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m",
                Images.WasmTests, id, "/sleep.wasm", "1000");
            f.Check(run.ExitCode == 0, "the container starts", id, run);
            ProcessResult Exec(string name, params string[] args) => f.Ctr(["tasks", "exec", "--exec-id", name, id, "/fs.wasm", .. args]);
            var write = Exec("w", "write", "/scratch/x", "on tmpfs");
            f.Check(write.ExitCode == 0, "a tmpfs mount is writable under a read-only rootfs", id, write);
            var read = Exec("r", "read", "/scratch/x");
            f.Check(read.ExitCode == 0 && read.Stdout == "on tmpfs", "another process of the container reads it back", id, read);
            var shm = Exec("shm", "write", "/dev/shm/seg", "shared");
            f.Check(shm.ExitCode == 0, "/dev/shm is writable", id, shm);
            var devices = Exec("ls", "ls", "/dev");
            f.Check(devices.ExitCode == 0 && new[] { "full", "null", "random", "shm", "urandom", "zero" }.All(d => devices.Stdout.Split('\n').Contains(d)),
                $"/dev holds runc's devices: {devices.Stdout.ReplaceLineEndings(" ")}", id, devices);
            var nul = Exec("null", "write", "/dev/null", "discarded");
            f.Check(nul.ExitCode == 0, "/dev/null takes writes (a read-only rootfs notwithstanding)", id, nul);
            var empty = Exec("nullread", "read", "/dev/null");
            f.Check(empty.ExitCode == 0 && empty.Stdout.Length == 0, "/dev/null reads empty", id, empty);
            var other = f.RunWasm(f.NewId("tmpfs-other"), ["--mount", "type=tmpfs,src=tmpfs,dst=/scratch"], "/fs.wasm", "read", "/scratch/x");
            f.Check(other.ExitCode == 1, "another container's tmpfs is its own", id, other);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    private static List<string> Snapshot(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => $"{p}:{(File.Exists(p) ? File.ReadAllText(p) : "<dir>")}").ToList();
}

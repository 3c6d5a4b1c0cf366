using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Tests;

// Mounts made in a rootfs (as root, as the shim runs): the image's symlinks never lead a mount point out of it.
public sealed class RootfsMountsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wasmsharp-rootfs-mounts-").FullName;
    private readonly List<RootfsMounts.MountPoint> _points = [];

    private string Rootfs => Path.Combine(_dir, "rootfs");

    public RootfsMountsTests() => Directory.CreateDirectory(Rootfs);

    public void Dispose()
    {
        foreach (var p in Enumerable.Reverse(_points)) p.Unmount();
        RootfsMounts.UnmountBeneath(Rootfs);
        Directory.Delete(_dir, recursive: true);
    }

    private RootfsMounts.MountPoint Mount(string source, string destination, params string[] options)
    {
        var point = RootfsMounts.Mount(Rootfs, new MountSpec("bind", source, ["rbind", .. options]), destination);
        _points.Add(point);
        return point;
    }

    [Fact]
    public void An_absolute_symlink_in_the_image_resolves_inside_the_rootfs()
    {
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        File.CreateSymbolicLink(Path.Combine(Rootfs, "etc"), outside); // the image's /etc -> /…/outside
        Directory.CreateDirectory(Path.Combine(Rootfs, outside.TrimStart('/')));
        var file = Path.Combine(_dir, "app.conf");
        File.WriteAllText(file, "from the host");

        var point = Mount(file, "/etc/app.conf", "ro");

        Assert.False(point.IsDirectory);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside)); // nothing made nor mounted outside
        var inside = Path.Combine(Rootfs, outside.TrimStart('/'), "app.conf");
        Assert.Equal("from the host", File.ReadAllText(inside));
        Assert.Contains("Read-only file system", Assert.Throws<IOException>(() => File.WriteAllText(inside, "changed")).Message, StringComparison.Ordinal);
    }

    // As runc's MkdirAllInRoot: a dangling symlink is not followed (its target is not made), the mount refused.
    [Fact]
    public void A_dangling_symlink_is_not_made_good()
    {
        File.CreateSymbolicLink(Path.Combine(Rootfs, "etc"), "/missing");
        var file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "x");
        Assert.Equal(Tmds.Linux.LibC.ENOENT, Assert.Throws<LinuxException>(() => Mount(file, "/etc/app.conf")).Errno);
        Assert.False(Directory.Exists(Path.Combine(Rootfs, "missing")));
    }

    [Fact]
    public void A_file_on_a_directory_is_refused_naming_the_destination()
    {
        Directory.CreateDirectory(Path.Combine(Rootfs, "data"));
        var file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<LinuxException>(() => Mount(file, "/data"));
        Assert.StartsWith("mount point /data in the rootfs: Is a directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unmount_beneath_detaches_whatever_a_dead_shim_left()
    {
        var source = Directory.CreateDirectory(Path.Combine(_dir, "volume")).FullName;
        File.WriteAllText(Path.Combine(source, "x"), "x");
        Mount(source, "/a/b");
        Mount(Path.Combine(source, "x"), "/a/b/c/x");
        Assert.True(File.Exists(Path.Combine(Rootfs, "a/b/x")));

        RootfsMounts.UnmountBeneath(Rootfs);

        Assert.DoesNotContain(Mounts.MountPoints(), p => p.StartsWith(Rootfs + "/", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(Rootfs, "a/b/x")));
    }
}

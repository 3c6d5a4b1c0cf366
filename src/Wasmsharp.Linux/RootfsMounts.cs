using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

/// <summary>
/// Mounts made inside a container's rootfs, as runc makes a spec's mounts: the mount point is found (or made) as if
/// the rootfs were "/" (openat2 RESOLVE_IN_ROOT, so no symlink of the image leads out of it) and mounted through
/// the descriptor that was resolved, never by name. They are made in the shim's mount namespace, the host's: each
/// is undone when its container is deleted, and `shim delete` detaches whatever a dead shim left beneath a rootfs.
/// </summary>
public static partial class RootfsMounts
{
    [LibraryImport("libc", EntryPoint = "mknodat", SetLastError = true)]
    private static unsafe partial int MknodAt(int dirfd, byte* path, uint mode, ulong dev);

    /// <summary>A mount made in a rootfs: its root, held open (a guest renaming a parent of it cannot redirect the
    /// preopen or the unmount that use it); <see cref="Path"/> reaches it through that descriptor.</summary>
    public sealed class MountPoint(SafeFileHandle root, string destination, bool directory) : IDisposable
    {
        public string Destination { get; } = destination;
        public bool IsDirectory { get; } = directory;
        public string Path => Files.ProcPath(root);

        /// <summary>Detaches the mount (MNT_DETACH: a guest's open file does not hold it); then lets go of it.</summary>
        public unsafe void Unmount()
        {
            if (root.IsClosed) return;
            try
            {
                var p = Mounts.Encode(Path);
                fixed (byte* pp = p)
                {
                    if (umount2(pp, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
                        throw LinuxException.Last($"umount {Destination}");
                }
            }
            finally
            {
                root.Dispose();
            }
        }

        public void Dispose() => root.Dispose();
    }

    /// <summary>
    /// Mounts <paramref name="spec"/> at <paramref name="destination"/> of the rootfs <paramref name="rootfs"/>,
    /// making the mount point first as runc does (a directory, or an empty file for a bind of a file, with its
    /// parents). A bind is read-only when its options say so (a bind ignores MS_RDONLY until remounted).
    /// </summary>
    public static MountPoint Mount(string rootfs, MountSpec spec, string destination)
    {
        var options = Mounts.ParseOptions(spec.Options);
        var directory = !options.IsBind || Directory.Exists(spec.Source);
        var path = destination.TrimStart('/');
        using (var target = MakeMountPoint(rootfs, path, directory, destination))
        {
            var flags = options.Flags & ~(options.IsBind ? MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC : 0UL);
            Mounts.Call(spec.Source, Files.ProcPath(target), spec.Type, flags, options.Data, destination);
        }
        // The descriptor above is the mount point beneath the mount; this one is the new mount's root.
        var root = Files.OpenPathInRoot(rootfs, path);
        try
        {
            ulong perMount = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
            if (options.IsBind && (options.Flags & perMount) != 0)
                Mounts.Call("", Files.ProcPath(root), "", MS_BIND | MS_REMOUNT | (options.Flags & perMount), null, destination);
            if (options.PropagationFlags != 0)
                Mounts.Call("", Files.ProcPath(root), "", options.PropagationFlags, null, destination);
        }
        catch
        {
            new MountPoint(root, destination, directory).Unmount();
            throw;
        }
        return new MountPoint(root, destination, directory);
    }

    /// <summary>Makes the character device <paramref name="name"/> (major, minor) in the directory mount
    /// <paramref name="dir"/>, mode 0666, as runc makes a container's default devices in its /dev.</summary>
    public static unsafe void MakeDevice(MountPoint dir, string name, uint major, uint minor)
    {
        using var handle = Files.OpenDirectory(dir.Path);
        var n = Mounts.Encode(name);
        fixed (byte* pn = n)
        {
            var dev = ((ulong)(major & 0xfff) << 8) | (minor & 0xff) | ((ulong)(minor & ~0xffu) << 12) | ((ulong)(major & ~0xfffu) << 32);
            if (MknodAt((int)handle.DangerousGetHandle(), pn, (uint)S_IFCHR | 0x1b6, dev) != 0 && Marshal.GetLastPInvokeError() is var e && e != EEXIST)
                throw new LinuxException($"mknod {dir.Destination}/{name}", e);
            // mknod applies the umask; the device is for everyone, as runc's.
            if (fchmodat((int)handle.DangerousGetHandle(), pn, 0x1b6, 0) != 0)
                throw LinuxException.Last($"chmod {dir.Destination}/{name}");
        }
    }

    /// <summary>
    /// Detaches every mount beneath <paramref name="rootfs"/> (not the rootfs itself), deepest first: what a shim that
    /// died left in a rootfs its client mounted (Docker's own overlay), which the client could not unmount else.
    /// </summary>
    public static void UnmountBeneath(string rootfs)
    {
        var prefix = System.IO.Path.GetFullPath(rootfs).TrimEnd('/') + "/";
        foreach (var point in Mounts.MountPoints().Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).Distinct().OrderByDescending(p => p.Length))
        {
            try
            {
                Mounts.UnmountAll(point);
            }
            catch (LinuxException)
            {
                // gone with a parent detached before it, or busy: the others still come off
            }
        }
    }

    // The mount point, opened O_PATH in the rootfs; made when missing (EROFS and the like: reported, naming it).
    private static SafeFileHandle MakeMountPoint(string rootfs, string path, bool directory, string destination)
    {
        SafeFileHandle handle;
        try
        {
            handle = Files.OpenPathInRoot(rootfs, path);
        }
        catch (LinuxException e) when (e.Errno == ENOENT)
        {
            if (directory) Files.CreateDirectoryInRoot(rootfs, path);
            else Files.CreateFileInRoot(rootfs, path);
            handle = Files.OpenPathInRoot(rootfs, path);
        }
        var isDirectory = Files.IsDirectory(handle);
        if (isDirectory != directory)
        {
            handle.Dispose();
            throw new LinuxException($"mount point {destination} in the rootfs", directory ? ENOTDIR : EISDIR);
        }
        return handle;
    }
}

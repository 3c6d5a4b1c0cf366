using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

public static class Files
{
    /// <summary>
    /// Opens a FIFO for reading and writing: never blocks on Linux, whether or not the other side is
    /// open yet, and keeps the pipe usable when that side goes away and comes back. On a regular file
    /// it appends.
    /// </summary>
    public static SafeFileHandle OpenFifoReadWrite(string path) => OpenWith(path, O_RDWR | O_APPEND | O_CLOEXEC);

    /// <summary>open(2) of a trusted path with <paramref name="flags"/>; the error names the path.</summary>
    internal static unsafe SafeFileHandle OpenWith(string path, int flags, int mode = 0)
    {
        var p = Mounts.Encode(path);
        fixed (byte* pp = p)
        {
            var fd = open(pp, flags, (mode_t)mode);
            if (fd < 0) throw LinuxException.Last($"open {path}");
            return new SafeFileHandle(fd, ownsHandle: true);
        }
    }

    /// <summary>
    /// Opens a FIFO a process's output goes to (read-write, as <see cref="OpenFifoReadWrite"/>), once its
    /// client has begun to open it for reading. runc's shim opens it write-only, which blocks until then.
    /// Without that wait a guest that ends within a few ms could close the FIFO before the client's open
    /// has begun: with nobody holding the FIFO the kernel drops what was written, and the client, released
    /// later, reads nothing. A write-only non-blocking open fails with ENXIO until some reader is in
    /// open(2); it is retried until <paramref name="readerWait"/> has passed, then the FIFO is opened all
    /// the same and <paramref name="readerArrived"/> is false. A regular file is opened at once.
    /// </summary>
    public static unsafe SafeFileHandle OpenFifoForOutput(string path, TimeSpan readerWait, out bool readerArrived)
    {
        var p = Mounts.Encode(path);
        var probe = -1;
        readerArrived = false;
        fixed (byte* pp = p)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var pause = 1;
            while (true)
            {
                probe = open(pp, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
                if (probe >= 0)
                {
                    readerArrived = true;
                    break;
                }
                // Anything but "no reader yet" is reported by the real open below.
                if (errno != ENXIO || clock.Elapsed >= readerWait) break;
                Thread.Sleep(pause);
                pause = Math.Min(pause * 2, 20);
            }
        }
        try
        {
            // The probe stays open until then: were no writer left in between, the reader it released
            // would read end-of-file.
            return OpenFifoReadWrite(path);
        }
        finally
        {
            if (probe >= 0) close(probe);
        }
    }

    /// <summary>
    /// Opens the regular file <paramref name="path"/> read-only as if <paramref name="root"/> were "/": symlinks and
    /// ".." cannot leave the root (openat2 RESOLVE_IN_ROOT). Used for files named by an untrusted image: the open
    /// never blocks (a FIFO there would block a plain open for ever), and anything but a regular file is refused
    /// (EINVAL, "not a regular file").
    /// </summary>
    public static SafeFileHandle OpenInRoot(string root, string path) => OpenInRoot(root, path, O_RDONLY | O_NONBLOCK, S_IFREG, "a regular file");

    /// <summary>
    /// Opens the directory <paramref name="path"/> as if <paramref name="root"/> were "/", in one walk of the kernel's
    /// (openat2 RESOLVE_IN_ROOT): what is opened is what was resolved, with no window in which a component swapped
    /// for a symlink could lead elsewhere. Hand the directory on as <see cref="ProcPath"/>, which reopens this very
    /// directory, never a name.
    /// </summary>
    public static SafeFileHandle OpenDirectoryInRoot(string root, string path) => OpenInRoot(root, path, O_RDONLY | O_DIRECTORY, S_IFDIR, "a directory");

    /// <summary>
    /// mkdir -p of <paramref name="path"/> as if <paramref name="root"/> were "/" (mode 0755, as runc makes a missing
    /// working directory): each existing parent is opened in the root (openat2 RESOLVE_IN_ROOT) and the next component
    /// made in it (mkdirat), so nothing outside the root is made whatever symlinks the image holds.
    /// </summary>
    public static void CreateDirectoryInRoot(string root, string path) => CreateInRoot(root, path, directory: true);

    /// <summary>Makes the empty file <paramref name="path"/> (0644; its parent must exist) as if <paramref name="root"/>
    /// were "/": made in its parent opened in the root, never through a symlink; one already there is left as it is.</summary>
    public static void CreateFileInRoot(string root, string path) => CreateInRoot(root, path, directory: false);

    private static unsafe void CreateInRoot(string root, string path, bool directory)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < parts.Length; i++)
        {
            var last = i == parts.Length - 1;
            var prefix = string.Join('/', parts, 0, i + 1);
            if (!last || directory)
            {
                try
                {
                    OpenDirectoryInRoot(root, prefix).Dispose();
                    continue;
                }
                catch (LinuxException e) when (e.Errno == ENOENT)
                {
                }
            }
            using var parent = OpenDirectoryInRoot(root, string.Join('/', parts, 0, i));
            var name = Mounts.Encode(parts[i]);
            int made;
            fixed (byte* pn = name)
            {
                var fd = (int)parent.DangerousGetHandle();
                if (!last || directory) made = mkdirat(fd, pn, 0x1ed);
                else if ((made = openat(fd, pn, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0x1a4)) >= 0) made = close(made);
            }
            // There already (a dangling symlink too: it is not followed, as runc's MkdirAllInRoot does not follow
            // one; the open that comes next then fails).
            if (made != 0 && errno != EEXIST) throw LinuxException.Last($"create {prefix} in {root}");
        }
    }

    /// <summary>Opens <paramref name="path"/> (any kind; a final symlink followed, within the root) O_PATH as if
    /// <paramref name="root"/> were "/": a handle to mount on or stat, not to read.</summary>
    public static SafeFileHandle OpenPathInRoot(string root, string path) => OpenInRoot(root, path, O_PATH, 0, "");

    /// <summary>Opens an existing FIFO, pipe or terminal to write without blocking (a full one fails with EAGAIN, a FIFO
    /// nobody reads with ENXIO), never making it a controlling terminal.</summary>
    public static SafeFileHandle OpenWriteNonBlocking(string path) => OpenWith(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    /// <summary>Whether the open file is a directory.</summary>
    public static unsafe bool IsDirectory(SafeFileHandle handle)
    {
        stat st;
        if (fstat((int)handle.DangerousGetHandle(), &st) != 0) throw LinuxException.Last("fstat");
        return (st.st_mode & S_IFMT) == S_IFDIR;
    }

    /// <summary>Opens the directory <paramref name="path"/> (a trusted path, e.g. /proc/self/fd/N of a mount's root).</summary>
    public static SafeFileHandle OpenDirectory(string path) => OpenWith(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    // kind 0: any kind of file.
    private static unsafe SafeFileHandle OpenInRoot(string root, string path, int flags, mode_t kind, string kindName)
    {
        var r = Mounts.Encode(root);
        var p = Mounts.Encode(path.Length == 0 ? "." : path);
        int rootFd;
        fixed (byte* pr = r)
        {
            rootFd = open(pr, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
            if (rootFd < 0) throw LinuxException.Last($"open {root}");
        }
        try
        {
            var how = new open_how { flags = (ulong)(flags | O_CLOEXEC), resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
            int fd;
            fixed (byte* pp = p)
            {
                // EAGAIN: a rename elsewhere raced the walk (the kernel refuses rather than risk leaving the root).
                for (int attempt = 0; (fd = openat2(rootFd, pp, &how, (size_t)sizeof(open_how))) < 0 && errno == EAGAIN && attempt < 16; attempt++) { }
                if (fd < 0) throw LinuxException.Last($"open {path} in {root}");
            }
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            stat st;
            if (kind != 0 && (fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != kind))
            {
                handle.Dispose();
                throw new LinuxException($"open {path} in {root}: not {kindName}", EINVAL);
            }
            return handle;
        }
        finally
        {
            close(rootFd);
        }
    }

    /// <summary>The inode number of <paramref name="path"/> (not following a final symlink); -1 when it does not exist.</summary>
    public static unsafe long Inode(string path)
    {
        var bytes = Mounts.Encode(path);
        stat st;
        fixed (byte* p = bytes)
        {
            if (lstat(p, &st) != 0) return -1;
        }
        return (long)(ulong)st.st_ino;
    }

    /// <summary>A path through which others (e.g. Wasmtime) can open the same file again.</summary>
    public static string ProcPath(SafeFileHandle handle) => $"/proc/self/fd/{handle.DangerousGetHandle()}";

    /// <summary>
    /// Opens <paramref name="path"/> (e.g. a <see cref="ProcPath"/>) for reading or for writing, close-on-exec; a
    /// pipe or FIFO behind a /proc/self/fd path is opened again as such, without blocking when we hold its other side.
    /// </summary>
    public static SafeFileHandle Open(string path, bool write) => OpenWith(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);

    /// <summary>A pipe; both ends close-on-exec.</summary>
    public static unsafe (SafeFileHandle Read, SafeFileHandle Write) CreatePipe()
    {
        var fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw LinuxException.Last("pipe2");
        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>A second descriptor for the same open file (close-on-exec, above stdio).</summary>
    public static SafeFileHandle Duplicate(SafeFileHandle handle)
    {
        var fd = fcntl((int)handle.DangerousGetHandle(), F_DUPFD_CLOEXEC, 3);
        if (fd < 0) throw LinuxException.Last("fcntl(F_DUPFD_CLOEXEC)");
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

/// <summary>
/// A network namespace held open by a descriptor: it lives at least as long as this object (or a thread or
/// socket in it). Namespaces are per thread: <see cref="Enter"/> moves only the calling thread, and a
/// socket keeps the namespace it was made in, whatever its thread does later.
/// </summary>
public sealed partial class NetworkNamespace : IDisposable
{
    private const int CLONE_NEWNET_ = 0x40000000;
    private const uint NS_GET_NSTYPE = 0xb703;   // _IO(0xb7, 0x3)
    private const uint SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914;
    private const short IFF_UP = 0x1;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl_none(int fd, nuint request);
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int ioctl_ptr(int fd, nuint request, void* arg);

    private readonly SafeFileHandle handle;

    private NetworkNamespace(SafeFileHandle handle, string description)
    {
        this.handle = handle;
        Description = description;
    }

    /// <summary>Where it came from, for messages: the path joined, or "new".</summary>
    public string Description { get; }

    /// <summary>The namespace's inode number, as in `readlink /proc/PID/ns/net` ("net:[INODE]").</summary>
    public unsafe ulong Inode
    {
        get
        {
            stat st;
            if (fstat(handle.DangerousGetHandle().ToInt32(), &st) != 0) throw LinuxException.Last($"fstat network namespace {Description}");
            return (ulong)st.st_ino;
        }
    }

    /// <summary>
    /// Opens the namespace at <paramref name="path"/> (/proc/PID/ns/net, a bind mount of one such as
    /// /var/run/netns/NAME). Throws a <see cref="LinuxException"/> naming the path when it is missing or
    /// not a network namespace.
    /// </summary>
    public static NetworkNamespace Open(string path) => Open(path, path);

    private static unsafe NetworkNamespace Open(string path, string description)
    {
        var encoded = Mounts.Encode(path);
        int fd;
        fixed (byte* p = encoded) fd = open(p, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last($"open network namespace {path}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var type = ioctl_none(fd, NS_GET_NSTYPE);
        if (type != CLONE_NEWNET_)
        {
            var errno = type < 0 ? Marshal.GetLastPInvokeError() : 0;
            handle.Dispose();
            throw errno != 0 ? new LinuxException($"{path}: not a namespace", errno)
                             : new LinuxException($"{path}: not a network namespace", 22 /* EINVAL */);
        }
        return new NetworkNamespace(handle, description);
    }

    /// <summary>
    /// Makes a new network namespace with its loopback up (as runc does; the kernel makes `lo` down), on a
    /// short-lived thread of its own so that no thread of ours is left in it.
    /// </summary>
    public static NetworkNamespace CreateNew() => OnOwnThread(() =>
    {
        if (unshare(CLONE_NEWNET_) != 0) throw LinuxException.Last("unshare(CLONE_NEWNET)");
        BringLoopbackUp();
        return Open("/proc/thread-self/ns/net", "new");
    });

    /// <summary>
    /// Runs <paramref name="work"/> inside this namespace, on a short-lived thread of its own: processes it
    /// starts are born in the namespace (a child gets its parent thread's namespaces).
    /// </summary>
    public T RunInside<T>(Func<T> work) => OnOwnThread(() =>
    {
        Enter();
        return work();
    });

    private static T OnOwnThread<T>(Func<T> work)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                error = e;
            }
        }, 256 * 1024) { IsBackground = true, Name = "netns" };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result;
    }

    /// <summary>Moves the calling thread into this namespace (for good: use a thread that ends with its work).</summary>
    public void Enter()
    {
        if (setns(handle.DangerousGetHandle().ToInt32(), CLONE_NEWNET_) != 0)
            throw LinuxException.Last($"setns into network namespace {Description}");
    }

    /// <summary>The calling thread's own network namespace inode.</summary>
    public static unsafe ulong CurrentInode()
    {
        stat st;
        fixed (byte* p = "/proc/thread-self/ns/net\0"u8)
            if (stat(p, &st) != 0) throw LinuxException.Last("stat /proc/thread-self/ns/net");
        return (ulong)st.st_ino;
    }

    // struct ifreq: char ifr_name[16]; union { short ifr_flags; ... } (24 bytes).
    private static unsafe void BringLoopbackUp()
    {
        var sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0) throw LinuxException.Last("socket");
        try
        {
            var ifreq = stackalloc byte[40];
            new Span<byte>(ifreq, 40).Clear();
            "lo"u8.CopyTo(new Span<byte>(ifreq, 16));
            if (ioctl_ptr(sock, SIOCGIFFLAGS, ifreq) != 0) throw LinuxException.Last("ioctl(SIOCGIFFLAGS, lo)");
            *(short*)(ifreq + 16) |= IFF_UP;
            if (ioctl_ptr(sock, SIOCSIFFLAGS, ifreq) != 0) throw LinuxException.Last("ioctl(SIOCSIFFLAGS, lo up)");
        }
        finally
        {
            close(sock);
        }
    }

    public void Dispose() => handle.Dispose();
}

using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm;

/// <summary>
/// The Linux socket calls the guest's sockets are made of (x86_64/aarch64 numbering). Every call happens on
/// the calling thread: a socket belongs to the network namespace of the thread that created it.
/// </summary>
internal static unsafe partial class LinuxSockets
{
    public const int AF_INET = 2, AF_INET6 = 10;
    public const int SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int MSG_PEEK = 2, MSG_TRUNC = 0x20, MSG_WAITALL = 0x100, MSG_NOSIGNAL = 0x4000;
    public const int SOL_SOCKET = 1, SO_ERROR = 4, SO_SNDBUF = 7;
    public const short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 0x10, POLLNVAL = 0x20, POLLRDHUP = 0x2000;
    public const int EINTR = 4, EAGAIN = 11, EINPROGRESS = 115;
    private const ulong FIONREAD = 0x541B, TIOCOUTQ = 0x5411;
    private const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public byte* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);
    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, byte* address, uint length);
    [LibraryImport("libc", EntryPoint = "listen", SetLastError = true)]
    public static partial int Listen(int fd, int backlog);
    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, byte* address, uint* length, int flags);
    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, uint length);
    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* message, int flags);
    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* message, int flags);
    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);
    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, byte* value, uint* length);
    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, byte* value, uint length);
    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, uint* length);
    [LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    public static partial int GetPeerName(int fd, byte* address, uint* length);
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initial, int flags);
    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, byte* buffer, nuint count);
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, byte* buffer, nuint count);
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, int* value);

    public static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>A non-blocking eventfd (the guest thread's wake-up descriptor).</summary>
    public static int NewEventFd()
    {
        int fd = EventFd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return fd >= 0 ? fd : throw new IOException($"eventfd failed: errno {LastError}");
    }

    public static void Signal(int eventFd)
    {
        ulong one = 1;
        _ = Write(eventFd, (byte*)&one, 8);
    }

    public static void Drain(int eventFd)
    {
        ulong value;
        _ = Read(eventFd, (byte*)&value, 8);
    }

    /// <summary>Bytes waiting to be read (FIONREAD), or null when the socket cannot tell (e.g. listening).</summary>
    public static long? Readable(int fd)
    {
        int value = 0;
        return Ioctl(fd, FIONREAD, &value) == 0 ? value : null;
    }

    /// <summary>Free space in the send buffer (SO_SNDBUF − TIOCOUTQ), or null when unknown.</summary>
    public static long? Writable(int fd)
    {
        int size = 0, queued = 0;
        uint length = sizeof(int);
        if (GetSockOpt(fd, SOL_SOCKET, SO_SNDBUF, (byte*)&size, &length) != 0 || Ioctl(fd, TIOCOUTQ, &queued) != 0)
            return null;
        return Math.Max(0, size - queued);
    }

    /// <summary>The pending error of a socket (SO_ERROR), as a Linux errno.</summary>
    public static int PendingError(int fd)
    {
        int error = 0;
        uint length = sizeof(int);
        return GetSockOpt(fd, SOL_SOCKET, SO_ERROR, (byte*)&error, &length) == 0 ? error : LastError;
    }
}

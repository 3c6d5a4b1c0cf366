using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

public static class Sockets
{
    /// <summary>
    /// Binds and listens on a Unix socket, returning the raw descriptor. Not a .NET Socket on purpose:
    /// disposing a Socket that bound a path unlinks the path, and this listener is handed to another
    /// process that must keep serving on it.
    /// </summary>
    public static int ListenUnix(string path, int backlog = 128) => Listen(path, SOCK_STREAM, backlog);

    /// <summary>As <see cref="ListenUnix"/>, for messages (SOCK_SEQPACKET: each send is received whole).</summary>
    public static int ListenUnixMessages(string path, int backlog = 16) => Listen(path, SOCK_SEQPACKET, backlog);

    private static unsafe sockaddr_un Address(string path)
    {
        var addr = new sockaddr_un { sun_family = (ushort)AF_UNIX };
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) throw new LinuxException($"socket path {path} too long", ENAMETOOLONG);
        for (var i = 0; i < bytes.Length; i++) addr.sun_path[i] = bytes[i];
        return addr;
    }

    private static unsafe int Listen(string path, int type, int backlog)
    {
        var addr = Address(path);
        var fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last("socket");
        if (bind(fd, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_un)) != 0 || listen(fd, backlog) != 0)
        {
            var e = LinuxException.Last($"listen on {path}");
            close(fd);
            throw e;
        }
        return fd;
    }

    public static void Close(int fd) => close(fd);

    /// <summary>
    /// Binds a datagram socket to the abstract name <paramref name="name"/> (Linux: no file, gone with the socket or
    /// its process): an exclusive hold on the name within this network namespace. The descriptor, or null when
    /// someone holds it already.
    /// </summary>
    public static unsafe int? TryHoldAbstractName(string name)
    {
        var addr = new sockaddr_un { sun_family = (ushort)AF_UNIX };
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length >= 107) throw new LinuxException($"abstract socket name {name} too long", ENAMETOOLONG);
        for (var i = 0; i < bytes.Length; i++) addr.sun_path[i + 1] = bytes[i]; // sun_path[0] = 0: abstract
        var fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last("socket");
        var length = (socklen_t)(sizeof(ushort) + 1 + bytes.Length);
        if (bind(fd, (sockaddr*)&addr, length) == 0) return fd;
        var e = LinuxException.Last($"bind @{name}");
        close(fd);
        if (e.Errno == 98 /* EADDRINUSE */) return null;
        throw e;
    }

    /// <summary>Connects to a message socket (see <see cref="ListenUnixMessages"/>); null when nobody listens there.</summary>
    public static unsafe int? ConnectUnixMessages(string path)
    {
        var addr = Address(path);
        var fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last("socket");
        if (connect(fd, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_un)) == 0) return fd;
        var errno = Marshal.GetLastPInvokeError();
        close(fd);
        if (errno == ENOENT || errno == ECONNREFUSED) return null;
        throw new LinuxException($"connect to {path}", errno);
    }

    /// <summary>True when <paramref name="fd"/> has something to read (or was closed) within <paramref name="timeout"/>.</summary>
    public static unsafe bool WaitReadable(int fd, TimeSpan timeout)
    {
        var p = new pollfd { fd = fd, events = POLLIN };
        while (true)
        {
            var n = Descriptors.Poll(&p, 1, (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue));
            if (n >= 0) return n > 0;
            if (Marshal.GetLastPInvokeError() != EINTR) throw LinuxException.Last("poll");
        }
    }

    /// <summary>Accepts a connection; <paramref name="peerUid"/> is the connecting process's user (SO_PEERCRED).</summary>
    public static unsafe int Accept(int listener, out uint peerUid)
    {
        int fd;
        while ((fd = accept4(listener, null, null, SOCK_CLOEXEC)) < 0)
        {
            if (Marshal.GetLastPInvokeError() != EINTR) throw LinuxException.Last("accept");
        }
        ucred cred;
        var length = (socklen_t)sizeof(ucred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0)
        {
            var e = LinuxException.Last("SO_PEERCRED");
            close(fd);
            throw e;
        }
        peerUid = cred.uid;
        return fd;
    }

    /// <summary>Sends one message, with <paramref name="passFd"/> (if ≥ 0) as SCM_RIGHTS.</summary>
    public static unsafe void Send(int fd, ReadOnlySpan<byte> message, int passFd = -1)
    {
        var control = stackalloc byte[64];
        fixed (byte* data = message)
        {
            var iov = new iovec { iov_base = data, iov_len = (size_t)message.Length };
            var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1 };
            if (passFd >= 0)
            {
                msg.msg_control = control;
                msg.msg_controllen = (socklen_t)CMSG_SPACE(sizeof(int));
                var header = CMSG_FIRSTHDR(&msg);
                header->cmsg_level = SOL_SOCKET;
                header->cmsg_type = SCM_RIGHTS;
                header->cmsg_len = (socklen_t)CMSG_LEN(sizeof(int));
                *(int*)CMSG_DATA(header) = passFd;
            }
            while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
            {
                if (Marshal.GetLastPInvokeError() != EINTR) throw LinuxException.Last("sendmsg");
            }
        }
    }

    /// <summary>Receives one message into <paramref name="buffer"/> (0 bytes: the peer closed); a descriptor passed
    /// with it comes back close-on-exec in <paramref name="passedFd"/> (else -1).</summary>
    public static unsafe int Receive(int fd, Span<byte> buffer, out int passedFd)
    {
        passedFd = -1;
        var control = stackalloc byte[64];
        fixed (byte* data = buffer)
        {
            var iov = new iovec { iov_base = data, iov_len = (size_t)buffer.Length };
            var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = (socklen_t)64 };
            ssize_t n;
            while ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0)
            {
                if (Marshal.GetLastPInvokeError() != EINTR) throw LinuxException.Last("recvmsg");
            }
            for (var header = CMSG_FIRSTHDR(&msg); header != null; header = CMSG_NXTHDR(&msg, header))
            {
                if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
                var count = ((int)header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (var i = 0; i < count; i++)
                {
                    var received = ((int*)CMSG_DATA(header))[i];
                    if (passedFd < 0) passedFd = received;
                    else close(received); // one expected; never leak extras
                }
            }
            if ((msg.msg_flags & MSG_TRUNC) != 0) throw new LinuxException("message too long", EMSGSIZE);
            return (int)n;
        }
    }
}

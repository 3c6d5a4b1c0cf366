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
    public static unsafe int ListenUnix(string path, int backlog = 128)
    {
        var fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw LinuxException.Last("socket");
        var addr = new sockaddr_un { sun_family = (ushort)AF_UNIX };
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) { close(fd); throw new LinuxException($"socket path {path} too long", ENAMETOOLONG); }
        for (var i = 0; i < bytes.Length; i++) addr.sun_path[i] = bytes[i];
        if (bind(fd, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_un)) != 0 || listen(fd, backlog) != 0)
        {
            var e = LinuxException.Last($"listen on {path}");
            close(fd);
            throw e;
        }
        return fd;
    }

    public static void Close(int fd) => close(fd);
}

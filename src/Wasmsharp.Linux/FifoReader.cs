using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

/// <summary>
/// Reads a FIFO the way containerd's shims do: the open waits for the writer (so a writer that has not
/// connected yet is not mistaken for end-of-file), and end-of-file comes when every writer has closed.
/// Reads wake up periodically so a caller can also stop on its own signal (CloseIO, kill).
/// </summary>
public sealed class FifoReader : IDisposable
{
    private readonly string _path;
    private int _fd = -1;
    private volatile bool _disposed;

    public FifoReader(string path) => _path = path;

    /// <summary>Blocks until a writer opens the FIFO (or Dispose releases the wait). False if disposed.</summary>
    public unsafe bool Open()
    {
        var p = Mounts.Encode(_path);
        fixed (byte* pp = p)
        {
            var fd = open(pp, O_RDONLY | O_CLOEXEC, 0);
            if (fd < 0) throw LinuxException.Last($"open {_path}");
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            _fd = fd;
        }
        return !_disposed;
    }

    /// <summary>
    /// Reads up to buffer.Length bytes. Returns the count, 0 at end-of-file, or -1 when nothing arrived
    /// within <paramref name="wait"/>.
    /// </summary>
    public unsafe int Read(Span<byte> buffer, TimeSpan wait)
    {
        var pfd = new pollfd { fd = _fd, events = POLLIN };
        var ready = poll(&pfd, 1, (int)wait.TotalMilliseconds);
        if (ready < 0 && errno != EINTR) throw LinuxException.Last($"poll {_path}");
        if (ready <= 0) return -1;
        fixed (byte* b = buffer)
        {
            var n = (long)read(_fd, b, (size_t)buffer.Length);
            if (n >= 0) return (int)n;
            var e = errno;
            if (e == EAGAIN || e == EINTR) return -1;
            throw new LinuxException($"read {_path}", e);
        }
    }

    /// <summary>Closes the FIFO; a pending Open is released by briefly becoming its writer.</summary>
    public unsafe void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_fd < 0)
        {
            var p = Mounts.Encode(_path);
            fixed (byte* pp = p)
            {
                var w = open(pp, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
                if (w >= 0) close(w);
            }
        }
    }

    /// <summary>Called by the reading thread when it is done.</summary>
    public void Close()
    {
        if (_fd >= 0) close(_fd);
        _fd = -1;
    }
}

public static class Pipes
{
    /// <summary>Writes all of <paramref name="data"/>, blocking while the pipe is full.</summary>
    public static unsafe void WriteAll(SafeFileHandle handle, ReadOnlySpan<byte> data)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            fixed (byte* b = data)
            {
                var done = 0;
                while (done < data.Length)
                {
                    var n = (long)write((int)handle.DangerousGetHandle(), b + done, (size_t)(data.Length - done));
                    if (n < 0)
                    {
                        if (errno == EINTR) continue;
                        throw LinuxException.Last("write pipe");
                    }
                    done += (int)n;
                }
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }
}

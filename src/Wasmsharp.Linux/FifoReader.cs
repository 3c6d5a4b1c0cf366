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
    private SafeFileHandle? _fifo;
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
            _fifo = new SafeFileHandle(fd, ownsHandle: true);
        }
        return !_disposed;
    }

    /// <summary>
    /// Reads up to buffer.Length bytes. Returns the count, 0 at end-of-file, or -1 when nothing arrived
    /// within <paramref name="wait"/>.
    /// </summary>
    public int Read(Span<byte> buffer, TimeSpan wait) =>
        Descriptors.Read(_fifo ?? throw new InvalidOperationException($"{_path} is not open"), buffer, wait);

    /// <summary>Closes the FIFO; a pending Open is released by briefly becoming its writer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseOpen();
    }

    /// <summary>
    /// Releases a pending Open by briefly becoming the FIFO's writer: the reader then sees end-of-file
    /// unless a real writer has opened it too. For a client that gives up its stdin before opening it.
    /// </summary>
    public unsafe void ReleaseOpen()
    {
        if (_fifo is not null) return;
        var p = Mounts.Encode(_path);
        fixed (byte* pp = p)
        {
            var w = open(pp, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
            if (w >= 0) close(w);
        }
    }

    /// <summary>Called by the reading thread when it is done.</summary>
    public void Close() => _fifo?.Dispose();
}

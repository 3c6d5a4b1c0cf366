using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

public static partial class Descriptors
{
    private const ulong FIONREAD_ = 0x541B;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int ioctl_int(int fd, ulong request, int* value);

    /// <summary>poll(2) with its errno kept. Tmds.LibC's <c>poll</c> does not keep it (no SetLastError), so an EINTR
    /// after it read as whatever an earlier call left ("poll: Success"): use this one.</summary>
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static unsafe partial int Poll(pollfd* fds, nuint count, int timeoutMs);

    /// <summary>The bytes in a pipe or FIFO that no reader has taken yet (FIONREAD).</summary>
    public static unsafe int Unread(SafeFileHandle handle)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int count;
            if (ioctl_int((int)handle.DangerousGetHandle(), FIONREAD_, &count) != 0)
                throw LinuxException.Last("ioctl(FIONREAD)");
            return count;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Waits up to <paramref name="wait"/> for data and reads it. Returns the count, 0 at end-of-file
    /// (EIO counts as end-of-file: what a pty master reports once no slave is open), or -1 when nothing
    /// arrived in time.
    /// </summary>
    public static unsafe int Read(SafeFileHandle handle, Span<byte> buffer, TimeSpan wait)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)handle.DangerousGetHandle();
            var pfd = new pollfd { fd = fd, events = POLLIN };
            // Signals (the runtime uses them to suspend threads for GC) interrupt poll and read: retry,
            // so -1 only ever means "nothing arrived in time".
            var deadline = Environment.TickCount64 + (long)wait.TotalMilliseconds;
            while (true)
            {
                var left = (int)Math.Max(0, deadline - Environment.TickCount64);
                var ready = Poll(&pfd, 1, left);
                if (ready < 0)
                {
                    if (errno == EINTR) continue;
                    throw LinuxException.Last("poll");
                }
                if (ready == 0) return -1;
                fixed (byte* b = buffer)
                {
                    var n = (long)read(fd, b, (size_t)buffer.Length);
                    if (n >= 0) return (int)n;
                    var e = errno;
                    if (e == EINTR) continue;
                    if (e == EAGAIN) return -1;
                    if (e == EIO) return 0;
                    throw new LinuxException("read", e);
                }
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Opens (creating it, and never truncating) a file to append to, with mode 0644.</summary>
    public static SafeFileHandle OpenAppend(string path) => Files.OpenWith(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 420 /* 0644 */);
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

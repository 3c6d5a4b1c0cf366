using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// Copies what the guest writes (a pipe's read end, or a pty master) to where the client wants it (an
/// append-only file, the stdout FIFO), in order, on its own thread, until end-of-file. The thread owns
/// and closes <c>source</c>; <c>target</c> stays the caller's.
/// </summary>
internal sealed class OutputPump
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);
    // How long a partial line waits for its end before it is written anyway.
    private static readonly TimeSpan LineWait = TimeSpan.FromMilliseconds(20);

    private readonly SafeFileHandle _source;
    private readonly SafeFileHandle _target;
    private readonly Thread _thread;
    private readonly bool _wholeLines;
    private volatile bool _draining;

    /// <param name="wholeLines">Append whole lines where possible: when stdout and stderr share one file,
    /// a line must not be split by the other stream. Wasmtime writes a guest's fd_write iovecs one by one,
    /// so "out 1" and its "\n" can arrive separately.</param>
    public OutputPump(SafeFileHandle source, SafeFileHandle target, string name, bool wholeLines = false)
    {
        _source = source;
        _target = target;
        _wholeLines = wholeLines;
        _thread = new Thread(Run, maxStackSize: 128 * 1024) { IsBackground = true, Name = name };
        _thread.Start();
    }

    private void Run()
    {
        var buffer = new byte[32 * 1024];
        try
        {
            while (true)
            {
                var n = Descriptors.Read(_source, buffer, PollInterval);
                if (n == 0) break;                          // every writer closed (pty: no slave left)
                if (n < 0)
                {
                    if (_draining) break;                   // the guest has ended and nothing more came
                    continue;
                }
                // Complete a partial line from what follows at once (bounded by LineWait and the buffer).
                while (_wholeLines && buffer[n - 1] != (byte)'\n' && n < buffer.Length)
                {
                    var more = Descriptors.Read(_source, buffer.AsSpan(n), LineWait);
                    if (more <= 0) break;
                    n += more;
                }
                Pipes.WriteAll(_target, buffer.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            // The target went away (EPIPE) or was closed: nothing more can be delivered.
        }
        finally
        {
            _source.Dispose();
        }
    }

    /// <summary>
    /// Call once the guest can write no more: copies what is left, then stops (at end-of-file, or when
    /// nothing has arrived for a poll interval). Returns whether it finished within <paramref name="timeout"/>.
    /// </summary>
    public bool Finish(TimeSpan timeout)
    {
        _draining = true;
        return _thread.Join(timeout);
    }
}

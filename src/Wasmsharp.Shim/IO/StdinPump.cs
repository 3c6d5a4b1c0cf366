using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// Feeds the client's stdin FIFO into a pipe the guest reads. We own the pipe, so we decide when the
/// guest sees end-of-file: when the client's writer closes, when it sends CloseIO (after what it wrote
/// has been passed on), or at once when the process is killed (a guest blocked reading stdin must wake
/// up to be stopped). With a terminal it feeds the pty master instead, which it never closes.
/// </summary>
internal sealed class StdinPump : IDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly FifoReader _fifo;
    private readonly SafeFileHandle? _pipeRead;
    private readonly SafeFileHandle _pipeWrite;
    private readonly bool _ownsTarget;
    private readonly Action? _atEnd;
    private readonly Action<int>? _onSignalKey;
    private volatile bool _closeRequested;
    private volatile bool _stopped;

    /// <summary>What the guest opens as its stdin (null when feeding a terminal).</summary>
    public string? GuestPath => _pipeRead is null ? null : Files.ProcPath(_pipeRead);

    public StdinPump(string fifoPath)
    {
        _fifo = new FifoReader(fifoPath);
        (_pipeRead, _pipeWrite) = Files.CreatePipe();
        _ownsTarget = true;
        new Thread(Run, maxStackSize: 128 * 1024) { IsBackground = true, Name = "stdin" }.Start();
    }

    /// <summary>Feeds <paramref name="target"/> (a pty master), which stays the caller's; <paramref name="atEnd"/> runs
    /// when the client's input has ended (not when the pump is disposed). <paramref name="onSignalKey"/> is given
    /// SIGINT or SIGQUIT when the input holds the terminal's interrupt or quit character (see <see cref="Pty.SignalKeys"/>):
    /// the pty is nobody's controlling terminal, so its line discipline signals no one.</summary>
    public StdinPump(string fifoPath, SafeFileHandle target, Action? atEnd = null, Action<int>? onSignalKey = null)
    {
        _fifo = new FifoReader(fifoPath);
        _pipeWrite = target;
        _atEnd = atEnd;
        _onSignalKey = onSignalKey;
        new Thread(Run, maxStackSize: 128 * 1024) { IsBackground = true, Name = "stdin" }.Start();
    }

    private void Run()
    {
        var buffer = new byte[16 * 1024];
        try
        {
            if (!_fifo.Open()) return;
            while (!_stopped && !_pipeWrite.IsClosed)
            {
                var n = _fifo.Read(buffer, PollInterval);
                if (n == 0) break;                          // every writer closed
                if (n < 0)
                {
                    if (_closeRequested) break;             // CloseIO and nothing left to pass on
                    continue;
                }
                Pipes.WriteAll(_pipeWrite, buffer.AsSpan(0, n));
                if (_onSignalKey is not null && Pty.SignalKeys(_pipeWrite) is var (interrupt, quit))
                {
                    // After the write: the terminal has echoed the key (^C) and dropped its pending input, as for runc's.
                    var typed = buffer.AsSpan(0, n);
                    if (typed.Contains(interrupt)) _onSignalKey(Signals.SIGINT);
                    if (typed.Contains(quit)) _onSignalKey(Signals.SIGQUIT);
                }
            }
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            // The guest's end went away (EPIPE) or we were stopped: nothing more to feed.
        }
        finally
        {
            _fifo.Close();
            if (_ownsTarget) _pipeWrite.Dispose();
            if (!_stopped) _atEnd?.Invoke();
        }
    }

    /// <summary>
    /// CloseIO: EOF reaches the guest once what the client wrote has been passed on. A client may close
    /// stdin without ever opening the FIFO (Docker does when `docker run -i` gets an empty stdin): the
    /// pending open is released then, or the guest would wait for input forever.
    /// </summary>
    public void CloseInput()
    {
        _closeRequested = true;
        _fifo.ReleaseOpen();
    }

    /// <summary>EOF for the guest now, whatever is still in the FIFO.</summary>
    public void CloseGuestEnd()
    {
        _closeRequested = true;
        if (_ownsTarget) _pipeWrite.Dispose();
    }

    public void Dispose()
    {
        _stopped = true;
        CloseGuestEnd();
        _fifo.Dispose();
        _pipeRead?.Dispose();
    }
}

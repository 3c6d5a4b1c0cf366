using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// A logging binary (<c>binary:///path?k=v</c>) started the way containerd's runc shim does it
/// (pkg/process NewBinaryCmd/NewBinaryIO): argv = the path, then each query key and its value; environment
/// exactly CONTAINER_ID and CONTAINER_NAMESPACE; fd 3 = read end of the stdout pipe, fd 4 = read end of
/// the stderr pipe, fd 5 = the write end of a pipe it closes (or writes to) when it is ready — we wait
/// for that before the guest can run. The guest writes straight into the pipes. At the end we close our
/// write ends, send SIGTERM, wait up to 12 s for it to exit (binaryIOProcTermTimeout), then SIGKILL.
/// </summary>
internal sealed class BinaryLogger : IDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    public static TimeSpan ExitTimeout { get; set; } = TimeSpan.FromSeconds(12);

    private readonly SafeFileHandle _outRead, _outWrite, _errRead, _errWrite;
    private int _pid;

    public string GuestStdout => Files.ProcPath(_outWrite);
    public string GuestStderr => Files.ProcPath(_errWrite);

    public BinaryLogger(StdioUri uri, string containerId, string ns)
    {
        (_outRead, _outWrite) = Files.CreatePipe();
        (_errRead, _errWrite) = Files.CreatePipe();
        var (readyRead, readyWrite) = Files.CreatePipe();
        try
        {
            using (readyRead)
            {
                using (readyWrite)
                {
                    _pid = Processes.Spawn(uri.Path, [uri.Path, .. uri.Args],
                        [$"CONTAINER_ID={containerId}", $"CONTAINER_NAMESPACE={ns}"],
                        new Dictionary<int, int>
                        {
                            [3] = (int)_outRead.DangerousGetHandle(),
                            [4] = (int)_errRead.DangerousGetHandle(),
                            [5] = (int)readyWrite.DangerousGetHandle(),
                        },
                        resetSignals: true);
                }
                // Ready when it writes to fd 5 or closes it (EOF).
                var buffer = new byte[1];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (Descriptors.Read(readyRead, buffer, TimeSpan.FromMilliseconds(200)) < 0)
                {
                    if (clock.Elapsed > ReadyTimeout)
                    {
                        throw new InvalidOperationException($"logging binary {uri.Path} did not signal readiness on fd 5 within {ReadyTimeout.TotalSeconds:0} s");
                    }
                }
            }
            // The logger holds the read ends now (runc's CloseAfterStart): if it dies, the guest's
            // writes fail (EPIPE) rather than block once a pipe is full.
            _outRead.Dispose();
            _errRead.Dispose();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _outWrite.Dispose();
        _errWrite.Dispose();
        var pid = Interlocked.Exchange(ref _pid, 0);
        if (pid > 0)
        {
            // SIGTERM first, so the logger can flush what it has read and exit properly.
            if (!Processes.Signal(pid, Signals.SIGTERM) || !Processes.WaitForExit(pid, ExitTimeout))
            {
                Processes.Signal(pid, Signals.SIGKILL);
                Processes.WaitForExit(pid, TimeSpan.FromSeconds(2));
            }
        }
        _outRead.Dispose();
        _errRead.Dispose();
    }
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// A process's stdio as containerd names it, set up so the guest never blocks on a missing reader.
/// Wasmtime opens the guest's stdio by path (stdout/stderr with O_TRUNC), so we hand it paths to
/// descriptors we own (/proc/self/fd/N) or the pty's slave:
/// <list type="bullet">
/// <item>FIFO paths (made by the client): stdout/stderr opened O_RDWR once the client has begun to read
/// them (as runc's shim waits for, else a guest's output could be lost), and given to the guest directly —
/// or, with <c>pumpOutput</c>, through pipes an <see cref="OutputPump"/> copies into them, so that closing
/// the FIFOs at the guest's end is ours alone even when the guest's own descriptors outlive it;
/// stdin fed through a pipe by <see cref="StdinPump"/>.</item>
/// <item><c>file:///path</c> (decided by stdout, as in containerd's shim): the file is created with its
/// parent directories and never truncated; the guest writes into pipes that <see cref="OutputPump"/>s
/// append to it.</item>
/// <item><c>binary:///logger?k=v</c>: a <see cref="BinaryLogger"/> reads the pipes the guest writes to.</item>
/// <item>terminal: a pty; the slave is the guest's stdin, stdout and stderr; the master is copied to the
/// stdout FIFO and the stdin FIFO into the master; the stderr FIFO is unused (as with runc). For a native
/// process runc makes the pty (<c>consoleFromRuntime</c>) and its master arrives later (<see cref="AttachConsole"/>);
/// when the client's stdin ends the console is shut, as runc's shim shuts it: the output still there is
/// copied, the master closed, and the terminal hangs up.</item>
/// </list>
/// <see cref="CloseOutput"/> (when the guest has ended) waits up to 2 s for output still being copied, as
/// runc's shim does, and closes the output FIFOs; Dispose (at Delete) releases the rest.
/// </summary>
internal sealed class Stdio : IDisposable
{
    private static readonly TimeSpan CopyTimeout = TimeSpan.FromSeconds(2);
    // How long an output FIFO's client may take to begin reading it (runc's shim waits without limit).
    public static readonly TimeSpan ReaderWait = TimeSpan.FromSeconds(2);
    private static readonly object SighupGate = new();
    private static PosixSignalRegistration? s_sighup;

    private readonly List<SafeFileHandle> _handles = [];      // closed last
    private readonly List<SafeFileHandle> _guestEnds = [];    // our copies of what the guest writes to
    private readonly List<OutputPump> _pumps = [];
    private readonly List<SafeFileHandle> _outputFifos = [];  // the client's stdout/stderr FIFOs (O_RDWR)
    private readonly List<string> _fifosWithoutReader = [];
    private int _discarding;
    private StdinPump? _stdin;
    private BinaryLogger? _logger;
    private Pty? _pty;
    private SafeFileHandle? _consoleOutput;   // where a runtime's console will be copied to, until it arrives
    private SafeFileHandle? _console;         // the runtime's pty master
    private OutputPump? _consolePump;
    private int _disposed;
    private int _outputClosed;

    public string Stdin { get; }
    public string Stdout { get; }
    public string Stderr { get; }
    public bool Terminal { get; }

    public string? GuestStdin { get; private set; }
    public string? GuestStdout { get; private set; }
    public string? GuestStderr { get; private set; }

    /// <summary>Output FIFOs whose client had not begun to read them within the wait (worth a warning).</summary>
    public IReadOnlyList<string> FifosWithoutReader => _fifosWithoutReader;

    /// <param name="pumpOutput">For a guest whose own descriptors may outlive its exit (a component blocked in a p2
    /// call keeps its WASI context, hence Wasmtime's descriptors on its stdio, until that call returns): the output
    /// FIFOs are written by our pumps, so <see cref="CloseOutput"/> still gives their readers end-of-file.</param>
    public Stdio(string stdin, string stdout, string stderr, bool terminal, string containerId = "", string ns = "",
        bool consoleFromRuntime = false, bool pumpOutput = false)
    {
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        Terminal = terminal;
        try
        {
            if (terminal)
            {
                OpenTerminal(consoleFromRuntime);
                return;
            }
            if (!string.IsNullOrEmpty(stdin))
            {
                RejectUri(stdin);
                _stdin = new StdinPump(stdin);
                GuestStdin = _stdin.GuestPath;
            }
            var output = string.IsNullOrEmpty(stdout) ? null : StdioUri.Parse(stdout);
            switch (output?.Scheme)
            {
                case StdioUri.File:
                    OpenFile(output.Path, withStderr: !string.IsNullOrEmpty(stderr));
                    break;
                case StdioUri.Binary:
                    _logger = new BinaryLogger(output, containerId, ns);
                    GuestStdout = _logger.GuestStdout;
                    GuestStderr = _logger.GuestStderr;
                    break;
                default:
                    GuestStdout = OpenFifo(output?.Path, pumpOutput ? "stdout" : null);
                    GuestStderr = OpenFifo(string.IsNullOrEmpty(stderr) ? null : StdioUri.Parse(stderr) is { Scheme: StdioUri.Fifo } e
                        ? e.Path
                        : throw new NotSupportedException($"stderr {stderr}: a URI for stderr needs the same URI for stdout"),
                        pumpOutput ? "stderr" : null);
                    break;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <param name="pump">null: the guest writes to the FIFO itself; else the name of the pump that does it for the guest.</param>
    private string? OpenFifo(string? path, string? pump)
    {
        if (string.IsNullOrEmpty(path)) return null;
        var fifo = OpenOutputFifo(path);
        _handles.Add(fifo);
        _outputFifos.Add(fifo);
        return pump is null ? Files.ProcPath(fifo) : PumpInto(fifo, pump, wholeLines: false);
    }

    private SafeFileHandle OpenOutputFifo(string path)
    {
        var fifo = Files.OpenFifoForOutput(path, ReaderWait, out var readerArrived);
        if (!readerArrived) _fifosWithoutReader.Add(path);
        return fifo;
    }

    // containerd: MkdirAll(dir, 0755), then OpenFile(O_WRONLY|O_CREATE|O_APPEND, 0644); stdout and stderr
    // both go to that file.
    private void OpenFile(string path, bool withStderr)
    {
        var dir = System.IO.Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        var file = Descriptors.OpenAppend(path);
        _handles.Add(file);
        GuestStdout = PumpInto(file, "stdout", wholeLines: withStderr);
        if (withStderr) GuestStderr = PumpInto(file, "stderr", wholeLines: true);
    }

    private string PumpInto(SafeFileHandle target, string name, bool wholeLines)
    {
        var (read, write) = Files.CreatePipe();
        _guestEnds.Add(write);
        _pumps.Add(new OutputPump(read, target, name, wholeLines));
        return Files.ProcPath(write);
    }

    private void OpenTerminal(bool consoleFromRuntime)
    {
        if (!string.IsNullOrEmpty(Stdout) && StdioUri.Parse(Stdout).Scheme != StdioUri.Fifo)
        {
            throw new NotSupportedException($"stdout {Stdout}: a terminal needs a FIFO for its output");
        }
        if (!string.IsNullOrEmpty(Stdin)) RejectUri(Stdin);
        // Without a stdout the output is discarded, so a guest never blocks on a full terminal.
        var output = string.IsNullOrEmpty(Stdout) ? Descriptors.OpenAppend("/dev/null") : OpenOutputFifo(StdioUri.Parse(Stdout).Path);
        _handles.Add(output);
        if (!string.IsNullOrEmpty(Stdout)) _outputFifos.Add(output);
        if (consoleFromRuntime)
        {
            _consoleOutput = output;
            return;
        }
        IgnoreHangups();
        _pty = Pty.Open();
        GuestStdin = GuestStdout = GuestStderr = _pty.SlavePath;
        CopyConsole(_pty.Master, output, atStdinEnd: null, onSignalKey: signal => OnTerminalSignal?.Invoke(signal));
    }

    /// <summary>For a guest's own terminal: given SIGINT or SIGQUIT when its interrupt or quit key is typed (the line
    /// discipline signals only a controlling terminal's processes, and a guest is none; runc's process gets them).</summary>
    public Action<int>? OnTerminalSignal { get; set; }

    /// <summary>A native process's terminal, as runc sent its master: copied to and from the client from now on.</summary>
    public void AttachConsole(SafeFileHandle master)
    {
        if (_consoleOutput is null || _console is not null)
        {
            master.Dispose();
            throw new InvalidOperationException("this process's stdio awaits no terminal");
        }
        _console = master;
        CopyConsole(master, _consoleOutput, atStdinEnd: HangUp);
    }

    private void CopyConsole(SafeFileHandle master, SafeFileHandle output, Action? atStdinEnd, Action<int>? onSignalKey = null)
    {
        _consolePump = new OutputPump(Files.Duplicate(master), output, "pty-out");
        _pumps.Add(_consolePump);
        if (!string.IsNullOrEmpty(Stdin))
        {
            _stdin = new StdinPump(Stdin, master, atStdinEnd, onSignalKey);
        }
    }

    // runc's shim on a console's stdin end: what the process wrote is still copied, then no descriptor of the
    // master is left, so the terminal hangs up (SIGHUP to the process's session).
    private void HangUp()
    {
        _consolePump?.Finish(CopyTimeout);
        _console?.Dispose();
    }

    // Wasmtime opens the slave without O_NOCTTY. The daemon leads no session (see Processes.Spawn), so the pty never
    // becomes its controlling terminal; should a shim be started as a session leader all the same (by hand, say),
    // closing the master would send it SIGHUP, whose default action ends the shim.
    private static void IgnoreHangups()
    {
        lock (SighupGate)
        {
            s_sighup ??= PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
        }
    }

    private static void RejectUri(string path)
    {
        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"stdin {path}: a URI is not supported for stdin");
        }
    }

    /// <summary>ResizePty: false when this process has no terminal.</summary>
    public bool Resize(uint columns, uint rows)
    {
        if ((_pty?.Master ?? _console) is not { } master) return false;
        try
        {
            Pty.Resize(master, (ushort)Math.Min(columns, ushort.MaxValue), (ushort)Math.Min(rows, ushort.MaxValue));
        }
        catch (ObjectDisposedException)
        {
            return false;   // being deleted: nothing left to size
        }
        catch (LinuxException) when (_console is not null && _console.IsClosed)
        {
            return false;   // hung up
        }
        return true;
    }

    /// <summary>CloseIO: the client has no more input.</summary>
    public void CloseStdin() => _stdin?.CloseInput();

    /// <summary>
    /// On a kill the guest does not obey: it may be blocked writing to a FIFO its client no longer reads
    /// (a stopped `ctr`, a full log pipe). We hold the FIFOs' read side too, so we empty them until
    /// Dispose: the write completes, the guest reaches its next epoch check and stops. What the client
    /// had not read by then is lost, as it would be had the client never come back.
    /// </summary>
    public void DiscardUnreadOutput()
    {
        if (_outputFifos.Count == 0 || Interlocked.Exchange(ref _discarding, 1) != 0 || Volatile.Read(ref _disposed) != 0) return;
        new Thread(() =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (Volatile.Read(ref _disposed) == 0)
                {
                    var any = false;
                    foreach (var fifo in _outputFifos)
                        any |= Descriptors.Read(fifo, buffer, TimeSpan.FromMilliseconds(any ? 0 : 50)) > 0;
                }
            }
            catch (Exception e) when (e is LinuxException or ObjectDisposedException)
            {
                // closed by Dispose
            }
        }, maxStackSize: 128 * 1024) { IsBackground = true, Name = "discard-output" }.Start();
    }

    /// <summary>On kill: a guest blocked reading stdin must wake up to be stopped.</summary>
    public void InterruptStdin()
    {
        _stdin?.CloseGuestEnd();
        if (_pty is { } pty)
        {
            // End-of-file (VEOF, ^D) in canonical mode ends a read blocked on the terminal.
            try
            {
                Pipes.WriteAll(pty.Master, [4]);
            }
            catch (Exception e) when (e is LinuxException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>
    /// Writes the runtime's own last words on the process (why a guest failed: a trap, a host error) to its stderr,
    /// where `docker logs`, `kubectl logs` and `ctr run` show them, as Wasmtime's CLI prints them. Before
    /// <see cref="CloseOutput"/>; best effort, never blocking: a reader that is not reading loses it.
    /// </summary>
    public void WriteDiagnostic(string text)
    {
        if (GuestStderr is not { } path || Volatile.Read(ref _outputClosed) != 0) return;
        try
        {
            using var stderr = Files.OpenWriteNonBlocking(path);
            Pipes.WriteAll(stderr, System.Text.Encoding.UTF8.GetBytes(text));
        }
        catch (LinuxException)
        {
            // gone, or full: the containerd log has it all the same
        }
    }

    /// <summary>
    /// Call once the guest has ended: delivers what is left of its output, then closes our ends of the
    /// stdout/stderr FIFOs so their readers see end-of-file. Clients wait for that before they delete the
    /// task (Docker's containerd client does), so it must not wait for Delete.
    /// </summary>
    public void CloseOutput()
    {
        if (Interlocked.Exchange(ref _outputClosed, 1) != 0) return;
        // Closing our write ends (our slave) lets the pumps reach end-of-file once they have copied everything.
        foreach (var h in _guestEnds) h.Dispose();
        _pty?.Slave.Dispose();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var pump in _pumps)
        {
            var left = CopyTimeout - clock.Elapsed;
            pump.Finish(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }
        WaitForReaders(clock);
        foreach (var h in _handles) h.Dispose();
    }

    // How long the output FIFOs' readers may take no byte before the exit goes out without them.
    private static readonly TimeSpan ReaderStall = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Until the client has read what the guest left in the output FIFOs (while it keeps reading, within what is
    /// left of the copy timeout). The exit this precedes can reach a client within microseconds of the guest's
    /// last write, and ctr (2.x seen) cancels its copy of the FIFOs once it has the exit: on a busy node its reader
    /// had not run yet and a fast program's output was lost. runc's slower exit hides that window.
    /// </summary>
    private void WaitForReaders(System.Diagnostics.Stopwatch clock)
    {
        if (_outputFifos.Count == 0 || Volatile.Read(ref _discarding) != 0) return;
        try
        {
            var unread = _outputFifos.Sum(Descriptors.Unread);
            var progress = System.Diagnostics.Stopwatch.StartNew();
            while (unread > 0 && clock.Elapsed < CopyTimeout && progress.Elapsed < ReaderStall)
            {
                Thread.Sleep(1);
                var now = _outputFifos.Sum(Descriptors.Unread);
                if (now < unread) progress.Restart();
                unread = now;
            }
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            // a FIFO already gone: nothing to wait for
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stdin?.Dispose();
        _stdin = null;
        CloseOutput();
        // A logging binary is given up to 12 s to finish (as runc's shim does at delete), not at exit.
        _logger?.Dispose();
        _logger = null;
        _pty?.Dispose();
        _console?.Dispose();
    }
}

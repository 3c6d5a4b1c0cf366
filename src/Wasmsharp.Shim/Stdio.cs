using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// A process's stdio as containerd names it (FIFO paths made by the client), opened so
/// that the guest never blocks on a missing reader. We keep the handles for the process's life; the
/// guest's WASI files are opened through /proc/self/fd paths to them.
/// </summary>
internal sealed class Stdio : IDisposable
{
    private readonly List<SafeFileHandle> _handles = [];
    private StdinPump? _stdin;

    public string Stdin { get; }
    public string Stdout { get; }
    public string Stderr { get; }
    public bool Terminal { get; }

    public string? GuestStdin { get; private set; }
    public string? GuestStdout { get; private set; }
    public string? GuestStderr { get; private set; }

    public Stdio(string stdin, string stdout, string stderr, bool terminal)
    {
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        Terminal = terminal;
        if (terminal)
        {
            throw new NotSupportedException("terminal (tty) mode is not supported yet; run without -t");
        }
        try
        {
            if (!string.IsNullOrEmpty(stdin))
            {
                RejectUri(stdin);
                _stdin = new StdinPump(stdin);
                GuestStdin = _stdin.GuestPath;
            }
            GuestStdout = Open(stdout);
            GuestStderr = Open(stderr);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private string? Open(string path)
    {
        if (string.IsNullOrEmpty(path)) return null;
        RejectUri(path);
        var fifo = Files.OpenFifoReadWrite(path);
        _handles.Add(fifo);
        return Files.ProcPath(fifo);
    }

    private static void RejectUri(string path)
    {
        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"stdio URI {path} is not supported yet");
        }
    }

    /// <summary>CloseIO: the client has no more input.</summary>
    public void CloseStdin() => _stdin?.CloseInput();

    /// <summary>On kill: a guest blocked reading stdin must wake up to be stopped.</summary>
    public void InterruptStdin() => _stdin?.CloseGuestEnd();

    public void Dispose()
    {
        _stdin?.Dispose();
        _stdin = null;
        foreach (var h in _handles) h.Dispose();
        _handles.Clear();
    }
}

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
            // Holding stdin O_RDWR keeps Wasmtime's open from blocking; the guest sees no EOF until the
            // container ends (a stdin pump with CloseIO comes later).
            GuestStdin = Open(stdin);
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
        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"stdio URI {path} is not supported yet");
        }
        var fifo = Files.OpenFifoReadWrite(path);
        _handles.Add(fifo);
        return Files.ProcPath(fifo);
    }

    public void Dispose()
    {
        foreach (var h in _handles) h.Dispose();
        _handles.Clear();
    }
}

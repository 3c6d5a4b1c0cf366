using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// runc's <c>--console-socket</c>: for a process with a terminal, runc makes the pty inside the container and sends
/// its master to this Unix socket (SCM_RIGHTS) before runc create / exec --detach returns, as containerd's runc shim
/// receives it. A private directory of its own (the path must fit sockaddr_un), removed with it.
/// </summary>
internal sealed class ConsoleSocket : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly string _dir;
    private readonly int _listener;

    public string Path { get; }

    public ConsoleSocket()
    {
        _dir = Directory.CreateTempSubdirectory("wasmsharp-pty-").FullName;
        Path = System.IO.Path.Combine(_dir, "pty.sock");
        try
        {
            _listener = Sockets.ListenUnix(Path, backlog: 1);
        }
        catch
        {
            Directory.Delete(_dir, recursive: true);
            throw;
        }
    }

    /// <summary>The pty master runc sent (once runc has returned it is waiting in the socket's queue).</summary>
    /// <exception cref="RuncException">runc sent none.</exception>
    public SafeFileHandle ReceiveMaster()
    {
        if (!Sockets.WaitReadable(_listener, Wait)) throw new RuncException($"runc sent no terminal to {Path} within {Wait.TotalSeconds} s");
        var connection = Sockets.Accept(_listener, out _);
        try
        {
            var name = new byte[4096]; // runc sends the pty's name with it
            Sockets.Receive(connection, name, out var master);
            return master >= 0 ? new SafeFileHandle(master, ownsHandle: true) : throw new RuncException("runc's console message carried no terminal");
        }
        finally
        {
            Sockets.Close(connection);
        }
    }

    public void Dispose()
    {
        Sockets.Close(_listener);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

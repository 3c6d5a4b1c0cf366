using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// A private network namespace (only lo, brought up) owned by one dedicated thread: the test's socket work —
/// WasmHost.Prepare (the guest thread it creates inherits the namespace) and client sockets — runs there via
/// <see cref="Run{T}"/>. Needs root. The namespace goes away with the thread and the sockets made in it.
/// </summary>
public sealed unsafe partial class NetNamespace : IDisposable
{
    private const int CLONE_NEWNET = 0x40000000, AF_INET = 2, SOCK_DGRAM = 2;
    private const ulong SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914;
    private const short IFF_UP = 1;

    private readonly BlockingCollection<Action> work = [];
    private readonly Thread thread;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, byte* ifreq);
    [LibraryImport("libc")]
    private static partial int close(int fd);

    public NetNamespace()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        thread = new Thread(() =>
        {
            try
            {
                Enter();
                started.SetResult();
            }
            catch (Exception e)
            {
                started.SetException(e);
                return;
            }
            foreach (var action in work.GetConsumingEnumerable())
                action();
        }) { IsBackground = true, Name = "test netns" };
        thread.Start();
        started.Task.GetAwaiter().GetResult();
    }

    private static void Enter()
    {
        if (unshare(CLONE_NEWNET) != 0)
            throw new InvalidOperationException($"unshare(CLONE_NEWNET) failed: errno {Marshal.GetLastPInvokeError()} (tests need root)");
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        byte* ifreq = stackalloc byte[40];
        new Span<byte>(ifreq, 40).Clear();
        "lo"u8.CopyTo(new Span<byte>(ifreq, 16));
        if (ioctl(fd, SIOCGIFFLAGS, ifreq) != 0)
            throw new InvalidOperationException($"SIOCGIFFLAGS lo: errno {Marshal.GetLastPInvokeError()}");
        *(short*)(ifreq + 16) |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, ifreq) != 0)
            throw new InvalidOperationException($"SIOCSIFFLAGS lo: errno {Marshal.GetLastPInvokeError()}");
        close(fd);
    }

    /// <summary>Runs <paramref name="action"/> on the namespace's thread and returns its result.</summary>
    public T Run<T>(Func<T> action)
    {
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        work.Add(() =>
        {
            try
            {
                result.SetResult(action());
            }
            catch (Exception e)
            {
                result.SetException(e);
            }
        });
        return result.Task.GetAwaiter().GetResult();
    }

    /// <summary>A TCP client connected to 127.0.0.1:<paramref name="port"/> in the namespace, retrying until the
    /// guest listens (up to 10 s).</summary>
    public System.Net.Sockets.Socket Connect(int port) => Run(() =>
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
                System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                socket.Connect(System.Net.IPAddress.Loopback, port);
                return socket;
            }
            catch (System.Net.Sockets.SocketException) when (clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                socket.Dispose();
                Thread.Sleep(10);
            }
        }
    });

    public void Dispose() => work.CompleteAdding();
}

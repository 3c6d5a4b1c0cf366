using System.Collections.Concurrent;
using Wasmsharp.Linux;

namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// A private network namespace (only lo, brought up) owned by one dedicated thread: the test's socket work —
/// WasmHost.Prepare (the guest thread it creates inherits the namespace) and client sockets — runs there via
/// <see cref="Run{T}"/>. Needs root. The namespace goes away with the thread and the sockets made in it.
/// </summary>
public sealed class NetNamespace : IDisposable
{
    private readonly BlockingCollection<Action> work = [];
    private readonly Thread thread;

    public NetNamespace()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        thread = new Thread(() =>
        {
            try
            {
                // The shim's own: a new namespace, lo up; this thread then lives in it.
                using (var ns = NetworkNamespace.CreateNew())
                    ns.Enter();
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

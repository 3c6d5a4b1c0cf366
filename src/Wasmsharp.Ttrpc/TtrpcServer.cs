using System.Collections.Concurrent;
using System.Net.Sockets;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// Serves the methods of a <see cref="TtrpcServiceRegistry"/> over ttrpc. Each connection
/// is served concurrently, and so is each call on a connection.
/// </summary>
public sealed class TtrpcServer(TtrpcServiceRegistry services, Action<string, Exception?>? log = null) : IAsyncDisposable
{
    // How long DisposeAsync lets in-flight calls finish, so their replies (say, to the
    // Shutdown call that triggered the dispose) still reach the client.
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(1);

    private readonly TtrpcServiceRegistry _services = services ?? throw new ArgumentNullException(nameof(services));
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<ServerConnection, byte> _connections = new();
    private int _connectionCount;
    private int _disposed;

    /// <summary>Connections currently open.</summary>
    public int ConnectionCount => Volatile.Read(ref _connectionCount);

    /// <summary>Raised, on a pool thread, each time a client connection ends.</summary>
    public event Action? ConnectionClosed;

    /// <summary>
    /// Accepts connections on a bound, listening socket until <paramref name="ct"/> is
    /// cancelled or the server is disposed, then returns normally. Open connections live on
    /// until <see cref="DisposeAsync"/>. The caller keeps ownership of the listener.
    /// </summary>
    public async Task ServeAsync(Socket listener, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _stopping.Token);
        var backoff = TimeSpan.Zero;
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stop.Token).ConfigureAwait(false);
                backoff = TimeSpan.Zero;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted })
            {
                break; // the listener was closed under us
            }
            catch (SocketException e)
            {
                // E.g. out of file descriptors: back off and retry, as containerd/ttrpc does.
                log?.Invoke("ttrpc: accept failed", e);
                backoff = TimeSpan.FromTicks(Math.Clamp(backoff.Ticks * 2, TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond));
                try { await Task.Delay(backoff, stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
                continue;
            }
            Accept(socket);
        }
    }

    private void Accept(Socket socket)
    {
        var connection = new ServerConnection(socket, _services, log);
        Interlocked.Increment(ref _connectionCount);
        _connections.TryAdd(connection, 0);
        connection.Start(OnClosed);
        // DisposeAsync may have taken its snapshot of connections just before we added this one.
        if (_stopping.IsCancellationRequested)
            connection.Close();
    }

    private void OnClosed(ServerConnection connection)
    {
        _connections.TryRemove(connection, out _);
        Interlocked.Decrement(ref _connectionCount);
        try { ConnectionClosed?.Invoke(); }
        catch (Exception e) { log?.Invoke("ttrpc: ConnectionClosed handler failed", e); }
    }

    /// <summary>
    /// Stops accepting, gives in-flight calls up to a second to finish, then closes every
    /// connection (cancelling the handlers still running).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _stopping.Cancel();

        var giveUp = Environment.TickCount64 + (long)DrainTimeout.TotalMilliseconds;
        while (_connections.Keys.Any(c => c.ActiveCalls > 0) && Environment.TickCount64 < giveUp)
            await Task.Delay(10).ConfigureAwait(false);

        var connections = _connections.Keys.ToArray();
        foreach (var connection in connections)
            connection.Close();
        await Task.WhenAll(connections.Select(c => c.Completion)).ConfigureAwait(false);
    }
}

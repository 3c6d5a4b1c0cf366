using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Wasmsharp.Integration;

/// <summary>
/// A session on containerd's CRI streaming server (the URL an Exec, Attach or PortForward call returns), driven as
/// a WebSocket client of Kubernetes' channel protocol, subprotocol <c>v4.channel.k8s.io</c>: each binary message
/// starts with its channel byte. For exec/attach 0 stdin, 1 stdout, 2 stderr, 3 the status (a metav1.Status JSON
/// once the command ended), 4 terminal size (JSON {"Width","Height"}); for a port forward 2i is port i's data and
/// 2i+1 its errors, each opened by a 2-byte little-endian port number. v4 has no way to close one stream: stdin
/// reaches end-of-file only when the whole connection closes (v5's CLOSE frame is not served by containerd 1.6-2.1).
/// The streaming server listens on 127.0.0.1 inside the throwaway network namespace containerd runs in, so the
/// connection's socket is made in that namespace (a socket keeps the namespace it was created in).
/// </summary>
public sealed class CriStream : IDisposable
{
    public const string Protocol = "v4.channel.k8s.io";
    public const byte StdinChannel = 0, StdoutChannel = 1, StderrChannel = 2, StatusChannel = 3, ResizeChannel = 4;

    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker _invoker;
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly Dictionary<byte, MemoryStream> _received = [];
    private readonly Task _reading;
    private readonly CancellationTokenSource _stop = new();

    private CriStream(ClientWebSocket socket, HttpMessageInvoker invoker)
    {
        _socket = socket;
        _invoker = invoker;
        _reading = Task.Run(ReadAll);
    }

    /// <summary>Opens <paramref name="url"/> (http://127.0.0.1:PORT/exec/TOKEN) from inside the network namespace at <paramref name="netnsPath"/>.</summary>
    public static CriStream Open(string url, string netnsPath, TimeSpan? timeout = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancel) =>
            {
                var socket = NetNs.Inside(netnsPath, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancel);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var invoker = new HttpMessageInvoker(handler);
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(Protocol);
        try
        {
            using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
            var uri = new UriBuilder(url) { Scheme = url.StartsWith("https:", StringComparison.Ordinal) ? "wss" : "ws" }.Uri;
            socket.ConnectAsync(uri, invoker, cancel.Token).GetAwaiter().GetResult();
            if (socket.SubProtocol != Protocol) throw new InvalidOperationException($"{url}: the server chose subprotocol '{socket.SubProtocol}', not {Protocol}");
        }
        catch
        {
            socket.Dispose();
            invoker.Dispose();
            throw;
        }
        return new CriStream(socket, invoker);
    }

    private async Task ReadAll()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage) continue;
                var bytes = message.ToArray();
                message.SetLength(0);
                if (bytes.Length == 0) continue;
                lock (_received)
                {
                    if (!_received.TryGetValue(bytes[0], out var stream)) _received[bytes[0]] = stream = new MemoryStream();
                    stream.Write(bytes, 1, bytes.Length - 1);
                    Monitor.PulseAll(_received);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the server closed the TCP connection, or we gave up
        }
        lock (_received)
        {
            Closed = true;
            Monitor.PulseAll(_received);
        }
    }

    /// <summary>The server has closed the connection (the command ended, or the forwarded connection did).</summary>
    public bool Closed { get; private set; }

    /// <summary>Everything received on <paramref name="channel"/> so far.</summary>
    public byte[] Received(byte channel)
    {
        lock (_received) return _received.TryGetValue(channel, out var s) ? s.ToArray() : [];
    }

    public string Text(byte channel) => Encoding.UTF8.GetString(Received(channel));

    /// <summary>Until <paramref name="done"/> holds for what <paramref name="channel"/> has received, or the connection closes, or the time is up; whether it held.</summary>
    public bool WaitFor(byte channel, Func<string, bool> done, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        lock (_received)
        {
            while (true)
            {
                if (done(_received.TryGetValue(channel, out var s) ? Encoding.UTF8.GetString(s.ToArray()) : "")) return true;
                var left = until - DateTime.UtcNow;
                if (Closed || left <= TimeSpan.Zero) return false;
                Monitor.Wait(_received, left);
            }
        }
    }

    /// <summary>Until the server closes the connection; false if it did not within <paramref name="timeout"/>.</summary>
    public bool WaitClosed(TimeSpan timeout) => _reading.Wait(timeout);

    public void Send(byte channel, ReadOnlySpan<byte> data)
    {
        var frame = new byte[data.Length + 1];
        frame[0] = channel;
        data.CopyTo(frame.AsSpan(1));
        _sending.Wait();
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            _socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancel.Token).GetAwaiter().GetResult();
        }
        finally
        {
            _sending.Release();
        }
    }

    public void SendStdin(string text) => Send(StdinChannel, Encoding.UTF8.GetBytes(text));

    /// <summary>A terminal size, as kubectl sends it when its window changes.</summary>
    public void Resize(int width, int height) => Send(ResizeChannel, Encoding.UTF8.GetBytes($"{{\"Width\":{width},\"Height\":{height}}}"));

    /// <summary>Closes the connection from our side (v4's only way to end stdin); what the server sends afterwards is lost.</summary>
    public void Close()
    {
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", cancel.Token).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// The exit code the status channel reports: 0 for status Success; for Failure with reason NonZeroExitCode the
    /// ExitCode cause (details.causes[].reason "ExitCode", its message the number); null without a status yet or for
    /// another failure (<see cref="Text"/> of <see cref="StatusChannel"/> says what).
    /// </summary>
    public int? ExitCode()
    {
        var json = Text(StatusChannel);
        if (string.IsNullOrWhiteSpace(json)) return null;
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("status", out var status) && status.GetString() == "Success") return 0;
        if (root.TryGetProperty("reason", out var reason) && reason.GetString() == "NonZeroExitCode" &&
            root.TryGetProperty("details", out var details) && details.TryGetProperty("causes", out var causes))
            foreach (var cause in causes.EnumerateArray())
                if (cause.TryGetProperty("reason", out var kind) && kind.GetString() == "ExitCode" && int.TryParse(cause.GetProperty("message").GetString(), out var code))
                    return code;
        return null;
    }

    public override string ToString() =>
        $"stdout: {Text(StdoutChannel)}\nstderr: {Text(StderrChannel)}\nstatus: {Text(StatusChannel)}{(Closed ? "\n(closed)" : "")}";

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Abort();
        _reading.Wait(TimeSpan.FromSeconds(5));
        _socket.Dispose();
        _invoker.Dispose();
        _sending.Dispose();
        _stop.Dispose();
    }
}

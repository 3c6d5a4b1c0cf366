using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Google.Protobuf;
using Wasmsharp.Ttrpc.Tests.Protos;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc.Tests;

internal static class Wait
{
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(5);

    /// <summary>Fails the test instead of hanging it.</summary>
    public static Task Within(this Task task) => task.WaitAsync(Long);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Long);
}

/// <summary>A Unix socket listener in a fresh temp directory.</summary>
internal sealed class UnixListener : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("ttrpc");

    public UnixListener()
    {
        Path = System.IO.Path.Combine(_dir.FullName, "s.sock");
        Socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Socket.Bind(new UnixDomainSocketEndPoint(Path));
        Socket.Listen();
    }

    public string Path { get; }
    public Socket Socket { get; }

    public async Task<RawPeer> AcceptAsync() => new(await Socket.AcceptAsync().Within());

    public void Dispose()
    {
        Socket.Dispose();
        _dir.Delete(recursive: true);
    }
}

/// <summary>A real TtrpcServer serving <see cref="EchoService"/> on a temp socket.</summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    private readonly UnixListener _listener = new();

    public ServerHarness()
    {
        var registry = new TtrpcServiceRegistry();
        Echo.BindService(registry, Service);
        Server = new TtrpcServer(registry, (message, e) => Log.Enqueue($"{message}: {e?.Message}"));
        Serving = Server.ServeAsync(_listener.Socket);
    }

    public EchoService Service { get; } = new();
    public TtrpcServer Server { get; }
    public Task Serving { get; }
    public ConcurrentQueue<string> Log { get; } = new();
    public string Path => _listener.Path;

    public Task<TtrpcClient> ConnectAsync() => TtrpcClient.ConnectAsync(Path).Within();

    public async Task<RawPeer> ConnectRawAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path)).Within();
        return new RawPeer(socket);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Serving.Within();
        _listener.Dispose();
    }
}

/// <summary>
/// One end of a ttrpc connection driven frame by frame. Headers are built and parsed here
/// by hand, independently of the library, so the tests pin the wire format.
/// </summary>
internal sealed class RawPeer(Socket socket) : IDisposable
{
    public Task SendAsync(uint streamId, byte type, byte flags, IMessage message) =>
        SendAsync(streamId, type, flags, message.ToByteArray());

    public Task SendRequestAsync(uint streamId, string service, string method, IMessage payload, byte flags = 0) =>
        SendAsync(streamId, 1, flags, new Request { Service = service, Method = method, Payload = payload.ToByteString() });

    public async Task SendAsync(uint streamId, byte type, byte flags, byte[] payload)
    {
        await SendHeaderAsync((uint)payload.Length, streamId, type, flags);
        await SendRawAsync(payload);
    }

    /// <summary>Sends bytes as they are, failing (not hanging) if the other end stops reading.</summary>
    public Task SendRawAsync(byte[] bytes) => socket.SendAsync(bytes.AsMemory()).AsTask().Within();

    public async Task SendHeaderAsync(uint length, uint streamId, byte type, byte flags)
    {
        var header = new byte[10];
        BinaryPrimitives.WriteUInt32BigEndian(header, length);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), streamId);
        header[8] = type;
        header[9] = flags;
        await SendRawAsync(header);
    }

    public async Task<(uint StreamId, byte Type, byte Flags, byte[] Payload)> ReadAsync()
    {
        var header = await ReadExactlyAsync(10);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        var payload = await ReadExactlyAsync((int)length);
        return (BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), header[8], header[9], payload);
    }

    public async Task<(uint StreamId, Response Response)> ReadResponseAsync()
    {
        var (id, type, flags, payload) = await ReadAsync();
        Assert.Equal(2, type);
        Assert.Equal(0, flags);
        return (id, Response.Parser.ParseFrom(payload));
    }

    public async Task<(uint StreamId, byte Flags, Request Request)> ReadRequestAsync()
    {
        var (id, type, flags, payload) = await ReadAsync();
        Assert.Equal(1, type);
        return (id, flags, Request.Parser.ParseFrom(payload));
    }

    private async Task<byte[]> ReadExactlyAsync(int count)
    {
        var buffer = new byte[count];
        for (var at = 0; at < count;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(at)).AsTask().Within();
            if (n == 0)
                throw new EndOfStreamException();
            at += n;
        }
        return buffer;
    }

    public void Dispose() => socket.Dispose();
}

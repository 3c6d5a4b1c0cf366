using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc.Tests;

/// <summary>The client against a hand-driven server, to observe exactly what goes over the wire.</summary>
public class ClientTests
{
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static Task Reply(RawPeer server, uint streamId, string payload) =>
        server.SendAsync(streamId, 2, 0, new Response { Payload = ByteString.CopyFromUtf8(payload) });

    [Fact]
    public async Task Requests_UseOddIncreasingStreamIds_AndCarryTheCall()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();

        var seen = new List<uint>();
        for (var i = 0; i < 3; i++)
        {
            var call = client.CallAsync("pkg.Svc", $"M{i}", Utf8($"p{i}"),
                [new("containerd-namespace-ttrpc", "default")], TimeSpan.FromSeconds(2));
            var (id, flags, request) = await server.ReadRequestAsync();
            seen.Add(id);
            Assert.Equal(0, flags); // unary
            Assert.Equal("pkg.Svc", request.Service);
            Assert.Equal($"M{i}", request.Method);
            Assert.Equal($"p{i}", request.Payload.ToStringUtf8());
            Assert.Equal(2_000_000_000, request.TimeoutNano);
            Assert.Equal("containerd-namespace-ttrpc", Assert.Single(request.Metadata).Key);
            await Reply(server, id, $"r{i}");
            Assert.Equal($"r{i}", Encoding.UTF8.GetString(await call.Within()));
        }

        // Concurrent calls still reach the wire in id order.
        var calls = Enumerable.Range(0, 20).Select(_ => client.CallAsync("pkg.Svc", "M", default)).ToArray();
        for (var i = 0; i < calls.Length; i++)
        {
            var (id, _, request) = await server.ReadRequestAsync();
            Assert.Equal(0, request.TimeoutNano);
            seen.Add(id);
            await Reply(server, id, "");
        }
        await Task.WhenAll(calls).Within();

        Assert.Equal(Enumerable.Range(0, 23).Select(i => (uint)(2 * i + 1)), seen);
    }

    [Fact]
    public async Task ZeroLengthResponse_IsOk()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();

        var call = client.CallAsync("pkg.Svc", "M", Utf8("x"));
        var (id, _, _) = await server.ReadRequestAsync();
        await server.SendAsync(id, 2, 0, Array.Empty<byte>());

        Assert.Empty(await call.Within());
    }

    [Fact]
    public async Task OutOfOrderReplies_AreMatchedByStreamId()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();

        var first = client.CallAsync("pkg.Svc", "A", default);
        var (a, _, _) = await server.ReadRequestAsync();
        var second = client.CallAsync("pkg.Svc", "B", default);
        var (b, _, _) = await server.ReadRequestAsync();

        await Reply(server, b, "for B");
        Assert.Equal("for B", Encoding.UTF8.GetString(await second.Within()));
        Assert.False(first.IsCompleted);
        await Reply(server, a, "for A");
        Assert.Equal("for A", Encoding.UTF8.GetString(await first.Within()));
    }

    [Fact]
    public async Task ErrorStatus_IsThrownAsRpcException()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();

        var call = client.CallAsync("pkg.Svc", "M", default);
        var (id, _, _) = await server.ReadRequestAsync();
        await server.SendAsync(id, 2, 0, new Response { Status = new Wire.Status { Code = 6, Message = "already there" } });

        var e = await Assert.ThrowsAsync<RpcException>(() => call.Within());
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Equal("already there", e.Status.Detail);
    }

    [Fact]
    public async Task OversizeReply_IsResourceExhausted_AndTheConnectionStillWorks()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();
        const int length = (4 << 20) + 1;

        var call = client.CallAsync("pkg.Svc", "Big", default);
        var (id, _, _) = await server.ReadRequestAsync();
        await server.SendHeaderAsync(length, id, 2, 0);
        await server.SendRawAsync(new byte[length]);

        var e = await Assert.ThrowsAsync<RpcException>(() => call.Within());
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);

        var next = client.CallAsync("pkg.Svc", "Small", default);
        var (nextId, _, _) = await server.ReadRequestAsync();
        await Reply(server, nextId, "fine");
        Assert.Equal("fine", Encoding.UTF8.GetString(await next.Within()));
    }

    [Fact]
    public async Task Timeout_IsDeadlineExceeded_AndALateReplyIsDropped()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        using var server = await listener.AcceptAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => client.CallAsync("pkg.Svc", "Slow", default, timeout: TimeSpan.FromMilliseconds(100)).Within());
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);

        var (late, _, _) = await server.ReadRequestAsync();
        await Reply(server, late, "too late");
        var next = client.CallAsync("pkg.Svc", "Next", default);
        var (id, _, _) = await server.ReadRequestAsync();
        await Reply(server, id, "on time");
        Assert.Equal("on time", Encoding.UTF8.GetString(await next.Within()));
    }

    [Fact]
    public async Task ServerHangingUp_FailsPendingCallsUnavailable()
    {
        using var listener = new UnixListener();
        await using var client = await TtrpcClient.ConnectAsync(listener.Path).Within();
        var server = await listener.AcceptAsync();

        var call = client.CallAsync("pkg.Svc", "M", default);
        await server.ReadRequestAsync();
        server.Dispose();

        var e = await Assert.ThrowsAsync<RpcException>(() => call.Within());
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.False(client.IsConnected);
        var again = await Assert.ThrowsAsync<RpcException>(() => client.CallAsync("pkg.Svc", "M", default).Within());
        Assert.Equal(StatusCode.Unavailable, again.StatusCode);
    }

    [Fact]
    public async Task Connect_ToMissingSocket_Throws()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ttrpc-missing-{Guid.NewGuid():N}.sock");
        await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => TtrpcClient.ConnectAsync(path));
    }
}

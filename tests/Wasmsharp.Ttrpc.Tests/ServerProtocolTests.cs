using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Tests.Protos;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc.Tests;

/// <summary>The server's handling of raw frames, as a misbehaving or foreign client would send them.</summary>
public class ServerProtocolTests
{
    private const string Service = "wasmsharp.test.Echo";

    [Fact]
    public async Task SuccessfulReply_HasNoErrorStatus_AndTheEncodedResult()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();

        await peer.SendRequestAsync(1, Service, "Echo", new EchoRequest { Text = "raw" });
        var (id, response) = await peer.ReadResponseAsync();

        Assert.Equal(1u, id);
        Assert.True(response.Status is null or { Code: 0 });
        Assert.Equal("raw", EchoReply.Parser.ParseFrom(response.Payload).Text);
    }

    [Fact]
    public async Task MetadataAndTimeout_ReachTheHandler()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();
        var request = new Request { Service = Service, Method = "Echo", TimeoutNano = 5_000_000_000, Payload = new EchoRequest().ToByteString() };
        request.Metadata.Add(new KeyValue { Key = "containerd-namespace-ttrpc", Value = "k8s.io" });
        request.Metadata.Add(new KeyValue { Key = "Bad Key!", Value = "skipped" }); // not a valid gRPC header name

        await peer.SendAsync(1, 1, 0, request);
        var reply = EchoReply.Parser.ParseFrom((await peer.ReadResponseAsync()).Response.Payload);

        Assert.Equal(["containerd-namespace-ttrpc=k8s.io"], reply.Headers);
        Assert.True(reply.HasDeadline);
    }

    [Fact]
    public async Task EvenStreamId_IsRejected_AndTheConnectionCarriesOn()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();

        await peer.SendRequestAsync(2, Service, "Echo", new EchoRequest { Text = "even" });
        var (id, response) = await peer.ReadResponseAsync();
        Assert.Equal(2u, id);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        Assert.True(response.Payload.IsEmpty);

        await peer.SendRequestAsync(3, Service, "Echo", new EchoRequest { Text = "odd" });
        var (next, ok) = await peer.ReadResponseAsync();
        Assert.Equal(3u, next);
        Assert.Equal("odd", EchoReply.Parser.ParseFrom(ok.Payload).Text);
    }

    [Fact]
    public async Task ReusedOrDecreasingStreamId_IsRejected()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();

        await peer.SendRequestAsync(5, Service, "Echo", new EchoRequest());
        Assert.Equal(5u, (await peer.ReadResponseAsync()).StreamId);

        foreach (var stale in new uint[] { 5, 3 })
        {
            await peer.SendRequestAsync(stale, Service, "Echo", new EchoRequest());
            var (id, response) = await peer.ReadResponseAsync();
            Assert.Equal(stale, id);
            Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        }

        await peer.SendRequestAsync(7, Service, "Echo", new EchoRequest { Text = "fresh" });
        Assert.Equal("fresh", EchoReply.Parser.ParseFrom((await peer.ReadResponseAsync()).Response.Payload).Text);
    }

    [Fact]
    public async Task OversizeFrame_IsDiscarded_AnsweredResourceExhausted_AndTheConnectionStillWorks()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();
        const int length = (4 << 20) + 1;

        await peer.SendHeaderAsync(length, 1, 1, 0);
        await peer.SendRawAsync(new byte[length]);
        await peer.SendRequestAsync(3, Service, "Echo", new EchoRequest { Text = "after" });

        var (id, rejected) = await peer.ReadResponseAsync();
        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.ResourceExhausted, rejected.Status.Code);
        var (next, ok) = await peer.ReadResponseAsync();
        Assert.Equal(3u, next);
        Assert.Equal("after", EchoReply.Parser.ParseFrom(ok.Payload).Text);
    }

    [Fact]
    public async Task StreamingRequest_IsUnimplemented_AndDataFramesAreIgnored()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();

        await peer.SendRequestAsync(1, Service, "Echo", new EchoRequest(), flags: 0x02); // remote-open: client streaming
        var (id, response) = await peer.ReadResponseAsync();
        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.Unimplemented, response.Status.Code);

        await peer.SendAsync(1, 3, 0, new EchoRequest { Text = "data" }); // Data frame: no reply
        await peer.SendRequestAsync(3, Service, "Echo", new EchoRequest { Text = "next" });
        var (next, ok) = await peer.ReadResponseAsync();
        Assert.Equal(3u, next);
        Assert.Equal("next", EchoReply.Parser.ParseFrom(ok.Payload).Text);
    }

    [Fact]
    public async Task UndecodableRequest_IsInvalidArgument()
    {
        await using var harness = new ServerHarness();
        using var peer = await harness.ConnectRawAsync();

        await peer.SendAsync(1, 1, 0, [0xFF, 0xFF, 0xFF]);
        var (id, response) = await peer.ReadResponseAsync();

        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
    }

    [Fact]
    public async Task ClientHangingUp_ClosesTheConnection()
    {
        await using var harness = new ServerHarness();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Server.ConnectionClosed += () => closed.TrySetResult();
        var peer = await harness.ConnectRawAsync();

        await peer.SendHeaderAsync(100, 1, 1, 0); // then vanish mid-frame
        peer.Dispose();

        await closed.Task.Within();
        Assert.Equal(0, harness.Server.ConnectionCount);
    }
}

using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Tests.Protos;

namespace Wasmsharp.Ttrpc.Tests;

/// <summary>TtrpcServer and TtrpcClient together, through the gRPC-generated client.</summary>
public class ServerTests
{
    [Fact]
    public async Task GeneratedClient_RoundTrips_WithMetadataAndDeadline()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var reply = await echo.EchoAsync(new EchoRequest { Text = "hello" },
            headers: new Metadata { { "containerd-namespace-ttrpc", "default" } },
            deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync.Within();

        Assert.Equal("hello", reply.Text);
        Assert.Equal("/wasmsharp.test.Echo/Echo", reply.Method);
        Assert.Equal(["containerd-namespace-ttrpc=default"], reply.Headers);
        Assert.True(reply.HasDeadline);

        // Synchronous stubs go through BlockingUnaryCall.
        var plain = echo.Echo(new EchoRequest { Text = "sync" });
        Assert.Equal("sync", plain.Text);
        Assert.False(plain.HasDeadline);
        Assert.Empty(plain.Headers);
    }

    [Fact]
    public async Task AsyncUnaryCall_ReportsStatus()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        using var ok = echo.EchoAsync(new EchoRequest());
        await ok.ResponseAsync.Within();
        Assert.Equal(StatusCode.OK, ok.GetStatus().StatusCode);

        using var failed = echo.FailAsync(new FailRequest { Code = (int)StatusCode.NotFound, Text = "gone" });
        await Assert.ThrowsAsync<RpcException>(() => failed.ResponseAsync.Within());
        Assert.Equal(StatusCode.NotFound, failed.GetStatus().StatusCode);
    }

    [Fact]
    public async Task BlockedCall_DoesNotHoldUpOthers_AndRepliesGoOutOfOrder()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var a = echo.BlockAsync(new BlockRequest { Key = "a" }).ResponseAsync;
        await harness.Service.Entered("a").Within();
        var b = echo.BlockAsync(new BlockRequest { Key = "b" }).ResponseAsync;
        await harness.Service.Entered("b").Within();

        // Same connection, while two calls are parked.
        Assert.Equal("meanwhile", (await echo.EchoAsync(new EchoRequest { Text = "meanwhile" }).ResponseAsync.Within()).Text);

        harness.Service.Release("b");
        Assert.Equal("b", (await b.Within()).Text);
        Assert.False(a.IsCompleted);

        harness.Service.Release("a");
        Assert.Equal("a", (await a.Within()).Text);
    }

    [Fact]
    public async Task ManyConcurrentCalls_OnOneConnection_AllMatchTheirReplies()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var calls = Enumerable.Range(0, 200)
            .Select(i => echo.EchoAsync(new EchoRequest { Text = $"call {i}", Blob = ByteString.CopyFrom(new byte[i * 100]) }).ResponseAsync)
            .ToArray();
        var replies = await Task.WhenAll(calls).Within();

        for (var i = 0; i < replies.Length; i++)
        {
            Assert.Equal($"call {i}", replies[i].Text);
            Assert.Equal(i * 100, replies[i].BlobLength);
        }
    }

    [Theory]
    [InlineData("no.such.Service", "Echo", "no.such.Service")]
    [InlineData("wasmsharp.test.Echo", "Nope", "Nope")]
    [InlineData("wasmsharp.test.Echo", "Watch", "Watch")] // streaming methods are not served
    public async Task UnknownServiceOrMethod_IsUnimplemented_NamingIt(string service, string method, string named)
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => client.CallAsync(service, method, new EchoRequest().ToByteArray()).Within());

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains(named, e.Status.Detail);
    }

    [Fact]
    public async Task StreamingCall_ThroughInvoker_IsUnimplemented()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var e = Assert.Throws<RpcException>(() => echo.Watch(new EchoRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Theory]
    [InlineData(StatusCode.NotFound)]
    [InlineData(StatusCode.AlreadyExists)]
    [InlineData(StatusCode.FailedPrecondition)]
    [InlineData(StatusCode.InvalidArgument)]
    public async Task HandlerRpcException_PropagatesCodeAndDetail(StatusCode code)
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            echo.FailAsync(new FailRequest { Code = (int)code, Text = $"detail {code}" }).ResponseAsync.Within());

        Assert.Equal(code, e.StatusCode);
        Assert.Equal($"detail {code}", e.Status.Detail);
    }

    [Fact]
    public async Task HandlerException_IsUnknown_WithItsMessage()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() => echo.FailAsync(new FailRequest { Text = "boom" }).ResponseAsync.Within());

        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.Equal("boom", e.Status.Detail);
        Assert.Contains(harness.Log, line => line.Contains("/wasmsharp.test.Echo/Fail") && line.Contains("boom"));
    }

    [Fact]
    public async Task LargeRequest_UpToTheLimit_IsServed()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());
        var size = FrameHeader.MaxPayload - 1024;

        var reply = await echo.EchoAsync(new EchoRequest { Blob = ByteString.CopyFrom(new byte[size]) }).ResponseAsync.Within();

        Assert.Equal(size, reply.BlobLength);
    }

    [Fact]
    public async Task OversizeRequest_IsResourceExhausted_AndTheConnectionStillWorks()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            echo.EchoAsync(new EchoRequest { Blob = ByteString.CopyFrom(new byte[FrameHeader.MaxPayload + 1]) }).ResponseAsync.Within());

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.True(client.IsConnected);
        Assert.Equal("still here", (await echo.EchoAsync(new EchoRequest { Text = "still here" }).ResponseAsync.Within()).Text);
    }

    [Fact]
    public async Task Deadline_CancelsHandler_AndCallerGetsDeadlineExceeded()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            echo.BlockAsync(new BlockRequest { Key = "slow" }, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync.Within());

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        await harness.Service.Cancelled("slow").Within(); // the server honoured timeout_nano
        Assert.Equal("ok", (await echo.EchoAsync(new EchoRequest { Text = "ok" }).ResponseAsync.Within()).Text);
    }

    [Fact]
    public async Task CallerCancellation_IsCancelled()
    {
        await using var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());
        using var cts = new CancellationTokenSource();

        var call = echo.BlockAsync(new BlockRequest { Key = "c" }, cancellationToken: cts.Token).ResponseAsync;
        await harness.Service.Entered("c").Within();
        cts.Cancel();

        var e = await Assert.ThrowsAsync<RpcException>(() => call.Within());
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        harness.Service.Release("c");
    }

    [Fact]
    public async Task ClosingTheConnection_CancelsHandlers_AndRaisesConnectionClosed()
    {
        await using var harness = new ServerHarness();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Server.ConnectionClosed += () => closed.TrySetResult();
        var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());

        var call = echo.BlockAsync(new BlockRequest { Key = "held" }).ResponseAsync;
        await harness.Service.Entered("held").Within();
        Assert.Equal(1, harness.Server.ConnectionCount);

        await client.DisposeAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => call.Within());
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.False(client.IsConnected);
        await harness.Service.Cancelled("held").Within();
        await closed.Task.Within();
        Assert.Equal(0, harness.Server.ConnectionCount);
    }

    [Fact]
    public async Task ConnectionCount_TracksSeveralClients()
    {
        await using var harness = new ServerHarness();
        var closedCount = 0;
        harness.Server.ConnectionClosed += () => Interlocked.Increment(ref closedCount);

        await using var first = await harness.ConnectAsync();
        var second = await harness.ConnectAsync();
        // Round trips prove both connections have been accepted.
        await first.CallAsync("wasmsharp.test.Echo", "Echo", ReadOnlyMemory<byte>.Empty).Within();
        await second.CallAsync("wasmsharp.test.Echo", "Echo", ReadOnlyMemory<byte>.Empty).Within();
        Assert.Equal(2, harness.Server.ConnectionCount);

        await second.DisposeAsync();
        // The server lowers the count, then raises ConnectionClosed: wait for both before asserting.
        await WaitUntil(() => harness.Server.ConnectionCount == 1 && Volatile.Read(ref closedCount) >= 1);
        Assert.Equal(1, harness.Server.ConnectionCount);
        Assert.Equal(1, Volatile.Read(ref closedCount));
    }

    [Fact]
    public async Task Dispose_LetsInFlightCallFinish_ThenClosesAndStopsServing()
    {
        var harness = new ServerHarness();
        await using var client = await harness.ConnectAsync();
        var echo = new Echo.EchoClient(client.CreateCallInvoker());
        var call = echo.BlockAsync(new BlockRequest { Key = "last" }).ResponseAsync;
        await harness.Service.Entered("last").Within();

        var disposing = harness.DisposeAsync().AsTask();
        await Task.Delay(50);
        Assert.False(disposing.IsCompleted);
        harness.Service.Release("last");

        Assert.Equal("last", (await call.Within()).Text); // the reply made it out
        await disposing.Within();
        Assert.True(harness.Serving.IsCompletedSuccessfully);
        Assert.Equal(0, harness.Server.ConnectionCount);
        await WaitUntil(() => !client.IsConnected);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait.Long;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

using System.Collections.Concurrent;
using Grpc.Core;
using Wasmsharp.Ttrpc.Tests.Protos;

namespace Wasmsharp.Ttrpc.Tests;

/// <summary>The test service: Block calls park on named gates the test opens.</summary>
internal sealed class EchoService : Echo.EchoBase
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _entered = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _cancelled = new();

    /// <summary>Completes when a Block call for <paramref name="key"/> is running.</summary>
    public Task Entered(string key) => Signal(_entered, key).Task;

    /// <summary>Completes when a Block call for <paramref name="key"/> saw its token cancelled.</summary>
    public Task Cancelled(string key) => Signal(_cancelled, key).Task;

    public void Release(string key) => Signal(_gates, key).TrySetResult();

    public override Task<EchoReply> Echo(EchoRequest request, ServerCallContext context)
    {
        var reply = new EchoReply
        {
            Text = request.Text,
            Method = context.Method,
            HasDeadline = context.Deadline != DateTime.MaxValue,
            BlobLength = request.Blob.Length,
        };
        reply.Headers.AddRange(context.RequestHeaders.Select(h => $"{h.Key}={h.Value}"));
        return Task.FromResult(reply);
    }

    public override async Task<EchoReply> Block(BlockRequest request, ServerCallContext context)
    {
        Signal(_entered, request.Key).TrySetResult();
        try
        {
            await Signal(_gates, request.Key).Task.WaitAsync(context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            Signal(_cancelled, request.Key).TrySetResult();
            throw;
        }
        return new EchoReply { Text = request.Key };
    }

    public override Task<EchoReply> Fail(FailRequest request, ServerCallContext context) =>
        request.Code == 0
            ? throw new InvalidOperationException(request.Text)
            : throw new RpcException(new Status((StatusCode)request.Code, request.Text));

    private static TaskCompletionSource Signal(ConcurrentDictionary<string, TaskCompletionSource> map, string key) =>
        map.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}

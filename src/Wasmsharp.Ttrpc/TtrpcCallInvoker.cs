using Grpc.Core;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// Lets gRPC-generated clients call over ttrpc. Unary only: headers become ttrpc metadata
/// (binary "-bin" entries are dropped, ttrpc metadata being text) and the deadline becomes
/// timeout_nano. Disposing a call does not cancel it; use CallOptions.CancellationToken.
/// </summary>
internal sealed class TtrpcCallInvoker(TtrpcClient client) : CallInvoker
{
    private static readonly Task<Metadata> NoHeaders = Task.FromResult(Metadata.Empty);

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        CallAsync(method, options, request).GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var call = CallAsync(method, options, request);
        return new AsyncUnaryCall<TResponse>(call,
            static _ => NoHeaders,
            static state => StatusOf((Task)state),
            static _ => Metadata.Empty,
            static _ => { },
            call);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw StreamingUnsupported(method);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw StreamingUnsupported(method);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw StreamingUnsupported(method);

    private async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options, TRequest request)
    {
        TimeSpan? timeout = null;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
            timeout = (deadline.Kind == DateTimeKind.Local ? deadline.ToUniversalTime() : deadline) - DateTime.UtcNow;

        using var payload = PayloadSerializer.Serialize(method.RequestMarshaller, request);
        var wire = TtrpcClient.NewRequest(method.ServiceName, method.Name, payload.Payload);
        if (options.Headers is { } headers)
        {
            foreach (var entry in headers)
            {
                if (!entry.IsBinary)
                    wire.Metadata.Add(new Wire.KeyValue { Key = entry.Key, Value = entry.Value });
            }
        }

        var response = await client.InvokeAsync(wire, timeout, options.CancellationToken).ConfigureAwait(false);
        try
        {
            return PayloadDeserializer.Deserialize(method.ResponseMarshaller, response.Payload.Memory);
        }
        catch (Exception e)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"ttrpc: error unmarshalling response: {e.Message}", e));
        }
    }

    private static Status StatusOf(Task call) => call.Status switch
    {
        TaskStatus.RanToCompletion => Status.DefaultSuccess,
        TaskStatus.Faulted when call.Exception!.InnerException is RpcException e => e.Status,
        TaskStatus.Faulted => new Status(StatusCode.Unknown, call.Exception!.InnerException?.Message ?? ""),
        TaskStatus.Canceled => Status.DefaultCancelled,
        _ => throw new InvalidOperationException("Status can only be accessed once the call has finished."),
    };

    private static RpcException StreamingUnsupported(IMethod method) =>
        new(new Status(StatusCode.Unimplemented, $"ttrpc: streaming method {method.FullName} is not supported"));
}

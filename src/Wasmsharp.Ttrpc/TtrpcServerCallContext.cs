using Grpc.Core;
using KeyValue = Wasmsharp.Ttrpc.Wire.KeyValue;
using Request = Wasmsharp.Ttrpc.Wire.Request;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// What a handler sees of a ttrpc call: method "/service/method", the ttrpc metadata as
/// request headers, the deadline from timeout_nano, and a token cancelled when the
/// connection closes or the deadline passes.
/// </summary>
internal sealed class TtrpcServerCallContext : ServerCallContext, IDisposable
{
    // CancelAfter cannot take more than ~49 days; a longer timeout is as good as none.
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly string _method;
    private readonly Metadata _requestHeaders;
    private readonly DateTime _deadline;
    private readonly CancellationTokenSource? _timeout;
    private readonly CancellationToken _cancellation;
    private Metadata? _trailers;
    private AuthContext? _authContext;

    public TtrpcServerCallContext(Request request, CancellationToken connectionClosed)
    {
        _method = $"/{request.Service}/{request.Method}";
        _requestHeaders = ToMetadata(request.Metadata);
        _deadline = DateTime.MaxValue; // gRPC's "no deadline"
        _cancellation = connectionClosed;
        if (request.TimeoutNano > 0)
        {
            var timeout = TimeSpan.FromTicks(request.TimeoutNano / TimeSpan.NanosecondsPerTick);
            _deadline = DateTime.UtcNow + timeout;
            if (timeout < MaxTimer)
            {
                _timeout = CancellationTokenSource.CreateLinkedTokenSource(connectionClosed);
                _timeout.CancelAfter(timeout);
                _cancellation = _timeout.Token;
            }
        }
    }

    /// <summary>True once the call's deadline has passed.</summary>
    public bool DeadlineExceeded => _deadline != DateTime.MaxValue && DateTime.UtcNow >= _deadline;

    protected override string MethodCore => _method;
    protected override string HostCore => "";
    protected override string PeerCore => "unix:";
    protected override DateTime DeadlineCore => _deadline;
    protected override Metadata RequestHeadersCore => _requestHeaders;
    protected override CancellationToken CancellationTokenCore => _cancellation;
    protected override Metadata ResponseTrailersCore => _trailers ??= []; // ttrpc has no trailers; accepted and dropped
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => _authContext ??= new AuthContext(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("ttrpc: context propagation is not supported");

    // ttrpc responses carry no headers.
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;

    public void Dispose() => _timeout?.Dispose();

    private static Metadata ToMetadata(IList<KeyValue> pairs)
    {
        var headers = new Metadata();
        foreach (var pair in pairs)
        {
            // gRPC metadata only takes lowercase [a-z0-9._-] keys and binary "-bin" values;
            // anything else cannot be represented and is skipped rather than failing the call.
            try { headers.Add(pair.Key, pair.Value); }
            catch (ArgumentException) { }
        }
        return headers;
    }
}

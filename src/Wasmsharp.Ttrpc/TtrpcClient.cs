using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// A ttrpc client over one Unix socket connection. Calls may run concurrently; each gets
/// the next odd stream id and its reply is matched back by that id.
/// </summary>
public sealed class TtrpcClient : IAsyncDisposable
{
    // Task.WaitAsync cannot time out after more than ~49 days; a longer timeout is as good as none.
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly NetworkStream _stream;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    // Guarded by itself, together with _connected and _nextStreamId, so that no call can
    // register after the receive loop has failed the outstanding ones.
    private readonly Dictionary<uint, TaskCompletionSource<Response>> _pending = [];
    private readonly Task _receiving;
    private uint _nextStreamId = 1;
    private volatile bool _connected = true;

    private TtrpcClient(Socket socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new FrameReader(_stream);
        _writer = new FrameWriter(_stream);
        _receiving = Task.Run(ReceiveAsync);
    }

    /// <summary>Connects to a ttrpc server; a failure to connect throws <see cref="SocketException"/>.</summary>
    public static async Task<TtrpcClient> ConnectAsync(string unixSocketPath, CancellationToken ct = default)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new TtrpcClient(socket);
    }

    /// <summary>False once the connection has failed or been disposed.</summary>
    public bool IsConnected => _connected;

    /// <summary>
    /// Makes a raw unary call and returns the reply payload. Throws <see cref="RpcException"/>
    /// with the server's status on error; Unavailable when the connection breaks;
    /// DeadlineExceeded when <paramref name="timeout"/> passes (the server is told it too);
    /// Cancelled when <paramref name="ct"/> fires; ResourceExhausted for a request over 4 MiB.
    /// </summary>
    public async Task<byte[]> CallAsync(string service, string method, ReadOnlyMemory<byte> payload,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var request = NewRequest(service, method, payload);
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
                request.Metadata.Add(new KeyValue { Key = key, Value = value });
        }
        var response = await InvokeAsync(request, timeout, ct).ConfigureAwait(false);
        return response.Payload.ToByteArray();
    }

    /// <summary>A gRPC <see cref="CallInvoker"/> for generated clients; unary methods only.</summary>
    public CallInvoker CreateCallInvoker() => new TtrpcCallInvoker(this);

    // The payload is wrapped, not copied: it only has to stay valid until InvokeAsync has sent it.
    internal static Request NewRequest(string service, string method, ReadOnlyMemory<byte> payload) => new()
    {
        Service = service,
        Method = method,
        Payload = UnsafeByteOperations.UnsafeWrap(payload),
    };

    /// <summary>Sends <paramref name="request"/> and waits for its reply; a non-OK status is thrown.</summary>
    internal async Task<Response> InvokeAsync(Request request, TimeSpan? timeout, CancellationToken ct)
    {
        var wait = Timeout.InfiniteTimeSpan;
        if (timeout is { } t)
        {
            if (t <= TimeSpan.Zero)
                throw new RpcException(new Grpc.Core.Status(StatusCode.DeadlineExceeded, "ttrpc: deadline exceeded before the call was sent"));
            request.TimeoutNano = t.Ticks > long.MaxValue / TimeSpan.NanosecondsPerTick ? long.MaxValue : t.Ticks * TimeSpan.NanosecondsPerTick;
            if (t < MaxTimer)
                wait = t;
        }
        ct.ThrowIfCancellationRequested();

        var call = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        uint streamId = 0;
        try
        {
            try
            {
                streamId = await _writer.WriteAsync(FrameType.Request, 0, request,
                    static s => s.Client.Register(s.Call), (Client: this, Call: call)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not RpcException)
            {
                throw Unavailable(e);
            }

            Response response;
            try
            {
                response = await call.Task.WaitAsync(wait, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new RpcException(new Grpc.Core.Status(StatusCode.DeadlineExceeded, "ttrpc: deadline exceeded"));
            }
            catch (OperationCanceledException e) when (ct.IsCancellationRequested)
            {
                throw new RpcException(new Grpc.Core.Status(StatusCode.Cancelled, "ttrpc: call cancelled", e));
            }

            if (response.Status is { Code: not 0 } status)
                throw new RpcException(new Grpc.Core.Status((StatusCode)status.Code, status.Message));
            return response;
        }
        finally
        {
            // A reply that never came (timeout, cancel, failed write) must not leak its entry.
            if (streamId == 0)
                Forget(call);
            else
                Take(streamId);
        }
    }

    // Runs under the frame writer's lock, so ids reach the wire in increasing order.
    private uint Register(TaskCompletionSource<Response> call)
    {
        lock (_pending)
        {
            if (!_connected)
                throw Unavailable(null);
            var id = _nextStreamId;
            _nextStreamId += 2;
            _pending.Add(id, call);
            return id;
        }
    }

    private TaskCompletionSource<Response>? Take(uint streamId)
    {
        lock (_pending)
            return _pending.Remove(streamId, out var call) ? call : null;
    }

    // The write failed after Register ran, so the id is unknown here: find the entry by value.
    private void Forget(TaskCompletionSource<Response> call)
    {
        lock (_pending)
        {
            foreach (var (id, pending) in _pending)
            {
                if (pending == call)
                {
                    _pending.Remove(id);
                    return;
                }
            }
        }
    }

    private async Task ReceiveAsync()
    {
        Exception? error = null;
        try
        {
            while (await _reader.ReadAsync(CancellationToken.None).ConfigureAwait(false) is { } frame)
            {
                using (frame)
                    Deliver(frame);
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            TaskCompletionSource<Response>[] orphans;
            lock (_pending)
            {
                _connected = false;
                orphans = [.. _pending.Values];
                _pending.Clear();
            }
            _stream.Dispose();
            foreach (var call in orphans)
                call.TrySetException(Unavailable(error));
        }
    }

    private void Deliver(Frame frame)
    {
        // We open no streams, so only Response frames concern us; a reply nobody waits
        // for any more (timed out, cancelled) is dropped.
        if (frame.Header.Type != FrameType.Response || Take(frame.Header.StreamId) is not { } call)
            return;
        if (frame.Header.IsOversize)
        {
            call.TrySetException(new RpcException(new Grpc.Core.Status(StatusCode.ResourceExhausted,
                $"message length {frame.Header.Length} exceeds maximum message size of {FrameHeader.MaxPayload}")));
            return;
        }
        try
        {
            call.TrySetResult(Response.Parser.ParseFrom(frame.Payload));
        }
        catch (InvalidProtocolBufferException e)
        {
            call.TrySetException(new RpcException(new Grpc.Core.Status(StatusCode.Internal, $"ttrpc: invalid response: {e.Message}")));
        }
    }

    private static RpcException Unavailable(Exception? cause) =>
        new(new Grpc.Core.Status(StatusCode.Unavailable, "ttrpc: connection closed", cause));

    /// <summary>Closes the connection; calls still waiting fail with Unavailable.</summary>
    public async ValueTask DisposeAsync()
    {
        _stream.Dispose();
        await _receiving.ConfigureAwait(false);
    }
}

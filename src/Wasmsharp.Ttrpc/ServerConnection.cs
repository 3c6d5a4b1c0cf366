using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Wire;
using WireStatus = Wasmsharp.Ttrpc.Wire.Status;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// One accepted client connection. A single loop reads frames; each request runs as its
/// own task so a long call (e.g. Wait) never holds up the others, and responses go out
/// in completion order, matched to requests by stream id.
/// </summary>
internal sealed class ServerConnection
{
    private readonly NetworkStream _stream;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly TtrpcServiceRegistry _services;
    private readonly Action<string, Exception?>? _log;
    private readonly CancellationTokenSource _closed = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _activeCalls;
    private uint _lastStreamId;

    public ServerConnection(Socket socket, TtrpcServiceRegistry services, Action<string, Exception?>? log)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new FrameReader(_stream);
        _writer = new FrameWriter(_stream);
        _services = services;
        _log = log;
    }

    /// <summary>Calls whose handler has not finished yet.</summary>
    public int ActiveCalls => Volatile.Read(ref _activeCalls);

    /// <summary>Completes once the connection is closed and <c>onClosed</c> has run.</summary>
    public Task Completion => _completion.Task;

    public void Start(Action<ServerConnection> onClosed) => _ = RunAsync(onClosed);

    /// <summary>Closes the socket, which ends the read loop and cancels every running handler.</summary>
    public void Close()
    {
        _closed.Cancel();
        _stream.Dispose();
    }

    private async Task RunAsync(Action<ServerConnection> onClosed)
    {
        try
        {
            while (await _reader.ReadAsync(_closed.Token).ConfigureAwait(false) is { } frame)
            {
                using (frame)
                    await OnFrameAsync(frame).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (_closed.IsCancellationRequested || IsDisconnect(e))
        {
            // Closed by us, or the client went away: the normal ways for a connection to end.
        }
        catch (Exception e)
        {
            _log?.Invoke("ttrpc: connection failed", e);
        }
        finally
        {
            Close();
            try { onClosed(this); }
            finally { _completion.TrySetResult(); }
        }
    }

    // Checks run in containerd/ttrpc's order; a rejected frame is answered on its own
    // stream id and the connection carries on.
    private ValueTask OnFrameAsync(Frame frame)
    {
        var header = frame.Header;
        if (header.IsOversize)
            return RejectAsync(header.StreamId, StatusCode.ResourceExhausted,
                $"message length {header.Length} exceeds maximum message size of {FrameHeader.MaxPayload}");
        if (header.StreamId % 2 != 1)
            return RejectAsync(header.StreamId, StatusCode.InvalidArgument, "StreamID must be odd for client initiated streams");
        // Data frames belong to streams, which we never open; unknown types are ignored for forward compatibility.
        if (header.Type != FrameType.Request)
            return default;
        if (header.StreamId <= _lastStreamId)
            return RejectAsync(header.StreamId, StatusCode.InvalidArgument, "StreamID cannot be re-used and must increment");
        _lastStreamId = header.StreamId;
        if ((header.Flags & FrameFlags.RemoteOpen) != 0)
            return RejectAsync(header.StreamId, StatusCode.Unimplemented, "ttrpc: streaming requests are not supported");

        Request request;
        try
        {
            request = Request.Parser.ParseFrom(frame.Payload);
        }
        catch (InvalidProtocolBufferException e)
        {
            return RejectAsync(header.StreamId, StatusCode.InvalidArgument, $"unmarshal request error: {e.Message}");
        }

        var handler = _services.Find(request, out var error);
        if (handler is null)
            return RejectAsync(header.StreamId, StatusCode.Unimplemented, error!);

        Interlocked.Increment(ref _activeCalls);
        // On the thread pool: a handler that blocks before its first await must not stall the read loop.
        var streamId = header.StreamId;
        _ = Task.Run(() => ServeAsync(streamId, request, handler));
        return default;
    }

    private async Task ServeAsync(uint streamId, Request request, ServerMethod handler)
    {
        PayloadSerializer? payload = null;
        var response = new Response();
        try
        {
            using (var context = new TtrpcServerCallContext(request, _closed.Token))
            {
                try
                {
                    payload = await handler.InvokeAsync(request.Payload.Memory, context).ConfigureAwait(false);
                    // A handler may report failure through context.Status instead of throwing.
                    if (context.Status.StatusCode != StatusCode.OK)
                        response.Status = ToWire(context.Status.StatusCode, context.Status.Detail);
                    else
                        response.Payload = UnsafeByteOperations.UnsafeWrap(payload.Payload);
                }
                catch (Exception e)
                {
                    response.Status = ToWire(StatusOf(e, context, request));
                }
            }
            await SendAsync(streamId, response).ConfigureAwait(false);
        }
        finally
        {
            payload?.Dispose();
            Interlocked.Decrement(ref _activeCalls);
        }
    }

    private Grpc.Core.Status StatusOf(Exception e, TtrpcServerCallContext context, Request request)
    {
        switch (e)
        {
            case RpcException rpc:
                return rpc.Status;
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new(context.DeadlineExceeded ? StatusCode.DeadlineExceeded : StatusCode.Cancelled, e.Message);
            default:
                _log?.Invoke($"ttrpc: /{request.Service}/{request.Method} failed", e);
                return new(StatusCode.Unknown, e.Message);
        }
    }

    private async ValueTask SendAsync(uint streamId, Response response)
    {
        try
        {
            try
            {
                await _writer.WriteAsync(streamId, FrameType.Response, 0, response).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                // The reply is too big for a frame: tell the caller instead of dropping the call.
                await _writer.WriteAsync(streamId, FrameType.Response, 0, new Response { Status = ToWire(e.Status) }).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (_closed.IsCancellationRequested || IsDisconnect(e))
        {
            // The client is gone; nobody is left to answer.
        }
        catch (Exception e)
        {
            _log?.Invoke("ttrpc: failed to send response", e);
            Close();
        }
    }

    private ValueTask RejectAsync(uint streamId, StatusCode code, string message) =>
        SendAsync(streamId, new Response { Status = ToWire(code, message) });

    private static WireStatus ToWire(Grpc.Core.Status status) => ToWire(status.StatusCode, status.Detail);

    private static WireStatus ToWire(StatusCode code, string? message) => new() { Code = (int)code, Message = message ?? "" };

    private static bool IsDisconnect(Exception e) => e is EndOfStreamException or ObjectDisposedException
        || e is IOException { InnerException: SocketException }
        || e is SocketException;
}

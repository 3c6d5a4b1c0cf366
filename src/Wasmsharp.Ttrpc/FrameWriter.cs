using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// Writes whole frames to a stream, one at a time. Calls and responses on a connection
/// run concurrently; the lock keeps their frames from interleaving on the socket.
/// </summary>
internal sealed class FrameWriter(Stream stream)
{
    private readonly SemaphoreSlim _lock = new(1, 1);

    public ValueTask<uint> WriteAsync(uint streamId, FrameType type, byte flags, IMessage message) =>
        WriteAsync(type, flags, message, static id => id, streamId);

    /// <summary>
    /// Encodes <paramref name="message"/> as one frame and writes it. The stream id comes from
    /// <paramref name="assignStreamId"/>, called under the write lock so that ids it hands
    /// out reach the wire in increasing order (the server rejects a non-increasing id).
    /// Throws ResourceExhausted, writing nothing, when the payload exceeds 4 MiB.
    /// </summary>
    public async ValueTask<uint> WriteAsync<TState>(FrameType type, byte flags, IMessage message,
        Func<TState, uint> assignStreamId, TState state)
    {
        var length = message.CalculateSize();
        if (length > FrameHeader.MaxPayload)
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"message length {length} exceeds maximum message size of {FrameHeader.MaxPayload}"));

        // Header and payload go out in one write (and one syscall), encoded outside the lock.
        var size = FrameHeader.Size + length;
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            message.WriteTo(buffer.AsSpan(FrameHeader.Size, length));
            await _lock.WaitAsync().ConfigureAwait(false);
            try
            {
                var streamId = assignStreamId(state);
                new FrameHeader((uint)length, streamId, type, flags).Write(buffer);
                // No cancellation token: abandoning a half-written frame would corrupt the stream.
                await stream.WriteAsync(buffer.AsMemory(0, size)).ConfigureAwait(false);
                return streamId;
            }
            finally
            {
                _lock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

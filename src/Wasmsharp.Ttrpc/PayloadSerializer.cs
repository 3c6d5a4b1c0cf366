using System.Buffers;
using Grpc.Core;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// Receives one message from a gRPC marshaller. Generated protobuf marshallers write
/// straight into <see cref="GetBufferWriter"/>, which is backed by a pooled array; dispose
/// once <see cref="Payload"/> has been copied into its frame.
/// </summary>
internal sealed class PayloadSerializer : SerializationContext, IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer = [];
    private int _written;
    private ReadOnlyMemory<byte> _payload;

    public ReadOnlyMemory<byte> Payload => _payload;

    public static PayloadSerializer Serialize<T>(Marshaller<T> marshaller, T message)
    {
        var context = new PayloadSerializer();
        try
        {
            marshaller.ContextualSerializer(message, context);
            return context;
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    public override void Complete(byte[] payload) => _payload = payload;

    public override void SetPayloadLength(int payloadLength) => Grow(payloadLength);

    public override IBufferWriter<byte> GetBufferWriter() => this;

    public override void Complete() => _payload = _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Grow(Math.Max(sizeHint, 1));
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public void Dispose()
    {
        if (_buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        _payload = default;
    }

    // Ensures room for `more` bytes after what is already written.
    private void Grow(int more)
    {
        if (_buffer.Length - _written >= more)
            return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_written + more, Math.Max(256, _buffer.Length * 2)));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        if (_buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }
}

/// <summary>Hands a received payload to a gRPC marshaller without copying it first.</summary>
internal sealed class PayloadDeserializer(ReadOnlyMemory<byte> payload) : DeserializationContext
{
    public static T Deserialize<T>(Marshaller<T> marshaller, ReadOnlyMemory<byte> payload) =>
        marshaller.ContextualDeserializer(new PayloadDeserializer(payload));

    public override int PayloadLength => payload.Length;

    public override byte[] PayloadAsNewBuffer() => payload.ToArray();

    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);
}

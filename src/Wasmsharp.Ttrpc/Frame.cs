using System.Buffers;
using System.Buffers.Binary;

namespace Wasmsharp.Ttrpc;

/// <summary>ttrpc frame kinds (header byte 8).</summary>
internal enum FrameType : byte
{
    Request = 1,
    Response = 2,
    Data = 3,
}

/// <summary>Request flags (header byte 9). Unary requests carry none.</summary>
internal static class FrameFlags
{
    public const byte RemoteClosed = 0x01;
    public const byte RemoteOpen = 0x02;
}

/// <summary>The fixed 10-byte big-endian frame header: length, stream id, type, flags.</summary>
internal readonly record struct FrameHeader(uint Length, uint StreamId, FrameType Type, byte Flags)
{
    public const int Size = 10;

    /// <summary>Largest payload either side accepts (4 MiB), as in containerd/ttrpc.</summary>
    public const int MaxPayload = 4 << 20;

    public bool IsOversize => Length > MaxPayload;

    public static FrameHeader Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32BigEndian(source),
        BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
        (FrameType)source[8],
        source[9]);

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StreamId);
        destination[8] = (byte)Type;
        destination[9] = Flags;
    }
}

/// <summary>
/// A received frame. The payload lives in a pooled buffer: dispose the frame once the
/// payload has been parsed. An oversize frame has had its payload discarded (empty).
/// </summary>
internal readonly struct Frame(FrameHeader header, byte[]? buffer) : IDisposable
{
    public FrameHeader Header { get; } = header;

    public ReadOnlySpan<byte> Payload => buffer is null ? default : buffer.AsSpan(0, (int)Header.Length);

    public void Dispose()
    {
        if (buffer is not null)
            ArrayPool<byte>.Shared.Return(buffer);
    }
}

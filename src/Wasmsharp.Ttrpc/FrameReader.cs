using System.Buffers;

namespace Wasmsharp.Ttrpc;

/// <summary>Reads ttrpc frames from a stream. Not thread-safe: one reader loop per connection.</summary>
internal sealed class FrameReader(Stream stream)
{
    // Buffered so that a header and a small payload usually cost one read syscall.
    private readonly BufferedStream _input = new(stream, 16 * 1024);
    private readonly byte[] _header = new byte[FrameHeader.Size];

    /// <summary>
    /// Reads the next frame, or returns null at a clean end of stream (between frames).
    /// An oversize frame's payload is read and dropped so the stream stays in sync; the
    /// caller sees the header and answers ResourceExhausted.
    /// </summary>
    public async ValueTask<Frame?> ReadAsync(CancellationToken ct)
    {
        var got = await _input.ReadAtLeastAsync(_header, FrameHeader.Size, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got == 0)
            return null;
        if (got < FrameHeader.Size)
            throw new EndOfStreamException("ttrpc: connection closed inside a frame header");

        var header = FrameHeader.Read(_header);
        if (header.IsOversize)
        {
            await DiscardAsync(header.Length, ct).ConfigureAwait(false);
            return new Frame(header, null);
        }
        if (header.Length == 0)
            return new Frame(header, null);

        var buffer = ArrayPool<byte>.Shared.Rent((int)header.Length);
        try
        {
            await _input.ReadExactlyAsync(buffer.AsMemory(0, (int)header.Length), ct).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        return new Frame(header, buffer);
    }

    private async ValueTask DiscardAsync(uint length, CancellationToken ct)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            for (long left = length; left > 0;)
            {
                var chunk = (int)Math.Min(left, scratch.Length);
                await _input.ReadExactlyAsync(scratch.AsMemory(0, chunk), ct).ConfigureAwait(false);
                left -= chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}

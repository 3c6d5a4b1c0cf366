using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc.Tests;

public class FrameTests
{
    [Fact]
    public void Header_IsTenBigEndianBytes()
    {
        var header = new FrameHeader(0x01020304, 0x0A0B0C0D, FrameType.Response, 0x05);
        var bytes = new byte[FrameHeader.Size];
        header.Write(bytes);

        Assert.Equal(new byte[] { 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 2, 5 }, bytes);
        Assert.Equal(header, FrameHeader.Read(bytes));
    }

    [Fact]
    public async Task WriterAndReader_RoundTrip()
    {
        var request = new Request { Service = "svc", Method = "M", Payload = ByteString.CopyFromUtf8("payload"), TimeoutNano = 42 };
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        await writer.WriteAsync(7, FrameType.Request, FrameFlags.RemoteClosed, request);
        await writer.WriteAsync(9, FrameType.Response, 0, new Response()); // empty message: zero-length frame

        var bytes = stream.ToArray();
        var length = request.CalculateSize();
        Assert.Equal(FrameHeader.Size * 2 + length, bytes.Length);
        Assert.Equal(new byte[] { 0, 0, 0, (byte)length, 0, 0, 0, 7, 1, 1 }, bytes[..10]);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 9, 2, 0 }, bytes[(10 + length)..]);

        var reader = new FrameReader(new MemoryStream(bytes));
        using (var first = (await reader.ReadAsync(default)).GetValueOrDefault())
        {
            Assert.Equal(new FrameHeader((uint)length, 7, FrameType.Request, FrameFlags.RemoteClosed), first.Header);
            Assert.Equal(request, Request.Parser.ParseFrom(first.Payload));
        }
        using (var second = (await reader.ReadAsync(default)).GetValueOrDefault())
        {
            Assert.Equal(new FrameHeader(0, 9, FrameType.Response, 0), second.Header);
            Assert.True(second.Payload.IsEmpty);
        }
        Assert.Null(await reader.ReadAsync(default));
    }

    [Fact]
    public async Task Reader_DiscardsOversizePayload_AndStaysInSync()
    {
        var stream = new MemoryStream();
        var oversize = new byte[FrameHeader.Size];
        new FrameHeader(FrameHeader.MaxPayload + 1, 3, FrameType.Request, 0).Write(oversize);
        stream.Write(oversize);
        stream.Write(new byte[FrameHeader.MaxPayload + 1]);
        await new FrameWriter(stream).WriteAsync(5, FrameType.Request, 0, new Request { Service = "after" });
        stream.Position = 0;

        var reader = new FrameReader(stream);
        using (var dropped = (await reader.ReadAsync(default)).GetValueOrDefault())
        {
            Assert.True(dropped.Header.IsOversize);
            Assert.Equal(3u, dropped.Header.StreamId);
            Assert.True(dropped.Payload.IsEmpty);
        }
        using var next = (await reader.ReadAsync(default)).GetValueOrDefault();
        Assert.Equal(5u, next.Header.StreamId);
        Assert.Equal("after", Request.Parser.ParseFrom(next.Payload).Service);
    }

    [Fact]
    public async Task Reader_ThrowsOnTruncatedFrame()
    {
        await Assert.ThrowsAsync<EndOfStreamException>(() =>
            new FrameReader(new MemoryStream([0, 0, 0])).ReadAsync(default).AsTask());
        // Header promises 5 bytes, only 2 follow.
        await Assert.ThrowsAnyAsync<EndOfStreamException>(() =>
            new FrameReader(new MemoryStream([0, 0, 0, 5, 0, 0, 0, 1, 1, 0, 1, 2])).ReadAsync(default).AsTask());
    }

    [Fact]
    public async Task Writer_RefusesOversizeMessage_WritingNothing()
    {
        var stream = new MemoryStream();
        var huge = new Request { Payload = ByteString.CopyFrom(new byte[FrameHeader.MaxPayload]) };

        var e = await Assert.ThrowsAsync<RpcException>(() => new FrameWriter(stream).WriteAsync(1, FrameType.Request, 0, huge).AsTask());
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal(0, stream.Length);
    }
}

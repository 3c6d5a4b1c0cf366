using System.Buffers.Binary;

namespace Wasmsharp.Wasm;

/// <summary>What a file starting with the WebAssembly magic holds.</summary>
public enum WasmBinaryKind
{
    /// <summary>No "\0asm" magic (or too short to tell).</summary>
    NotWasm,
    /// <summary>A core module: version 1 (01 00 00 00).</summary>
    Module,
    /// <summary>A component: layer 1 in the upper half of the version field (0d 00 01 00 today).</summary>
    Component,
    /// <summary>The magic, with a layer this host does not know.</summary>
    Unknown,
}

/// <summary>The one place that reads the WebAssembly header ("\0asm", then a u16 version and a u16 layer).</summary>
public static class WasmBinary
{
    /// <summary>Bytes needed to tell a module from a component.</summary>
    public const int HeaderLength = 8;

    private static ReadOnlySpan<byte> Magic => "\0asm"u8;

    /// <summary>The kind of the binary whose first bytes are <paramref name="head"/> (at least
    /// <see cref="HeaderLength"/> of them, fewer only for a shorter file).</summary>
    public static WasmBinaryKind KindOf(ReadOnlySpan<byte> head)
    {
        if (head.Length < HeaderLength || !head[..4].SequenceEqual(Magic))
            return WasmBinaryKind.NotWasm;
        return BinaryPrimitives.ReadUInt16LittleEndian(head[6..8]) switch
        {
            0 => WasmBinaryKind.Module,
            1 => WasmBinaryKind.Component,
            _ => WasmBinaryKind.Unknown,
        };
    }

    /// <summary>The kind of the file open as <paramref name="file"/> (read at offset 0).</summary>
    public static WasmBinaryKind KindOf(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        Span<byte> head = stackalloc byte[HeaderLength];
        int read = RandomAccess.Read(file, head, 0); // a regular file reads short only at its end
        return KindOf(head[..read]);
    }

    /// <summary>The kind of the file at <paramref name="path"/>; <see cref="WasmBinaryKind.NotWasm"/> when it
    /// cannot be read.</summary>
    public static WasmBinaryKind KindOf(string path)
    {
        try
        {
            using var file = File.OpenHandle(path);
            return KindOf(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return WasmBinaryKind.NotWasm;
        }
    }
}

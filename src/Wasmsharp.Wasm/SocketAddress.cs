using System.Buffers.Binary;
using static Wasmsharp.Wasm.WasmEdgeAbi;

namespace Wasmsharp.Wasm;

/// <summary>
/// WasmEdge's socket addresses and their Linux counterparts. A guest passes a <c>__wasi_address_t</c>
/// {u32 buf, u32 buf_len} (8 bytes, align 4) whose buffer holds 4 (IPv4) or 16 (IPv6) address bytes, or — the
/// V2 calls — 128 bytes of storage: u16 family (1 = IPv4, 2 = IPv6) then the address bytes. Ports travel
/// separately, in host order.
/// </summary>
internal static class SocketAddress
{
    public const int NativeSize = 28; // sockaddr_in6, the largest we make

    /// <summary>The buffer a <c>__wasi_address_t</c> at <paramref name="pointer"/> describes (traps when out of bounds).</summary>
    public static Span<byte> Buffer(GuestView guest, uint pointer)
    {
        var header = guest.Span(pointer, 8, 4);
        uint buffer = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        return guest.Span(buffer, length);
    }

    /// <summary>Family and address bytes of a 4-, 16- or 128-byte buffer; false → EINVAL.</summary>
    public static bool TryParse(Span<byte> buffer, out byte family, out Span<byte> address)
    {
        family = 0;
        address = buffer;
        switch (buffer.Length)
        {
            case 4:
                family = FamilyInet4;
                return true;
            case 16:
                family = FamilyInet6;
                return true;
            case AddrStorageSize:
                family = (byte)BinaryPrimitives.ReadUInt16LittleEndian(buffer);
                address = family switch
                {
                    FamilyInet4 => buffer.Slice(2, 4),
                    FamilyInet6 => buffer.Slice(2, 16),
                    _ => default,
                };
                return family is FamilyInet4 or FamilyInet6;
            default:
                return false;
        }
    }

    /// <summary>Writes a sockaddr_in/sockaddr_in6; returns its length.</summary>
    public static int ToNative(byte family, ReadOnlySpan<byte> address, ushort port, Span<byte> native)
    {
        native[..NativeSize].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(native[2..], port);
        if (family == FamilyInet4)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(native, LinuxSockets.AF_INET);
            address[..4].CopyTo(native[4..]);
            return 16;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(native, LinuxSockets.AF_INET6);
        address[..16].CopyTo(native[8..]);
        return 28;
    }

    /// <summary>Family, address bytes and port (host order) of a native sockaddr; false for other families.</summary>
    public static bool FromNative(ReadOnlySpan<byte> native, out byte family, out ReadOnlySpan<byte> address, out ushort port)
    {
        int nativeFamily = BinaryPrimitives.ReadUInt16LittleEndian(native);
        port = BinaryPrimitives.ReadUInt16BigEndian(native[2..]);
        switch (nativeFamily)
        {
            case LinuxSockets.AF_INET:
                family = FamilyInet4;
                address = native.Slice(4, 4);
                break;
            case LinuxSockets.AF_INET6:
                family = FamilyInet6;
                address = native.Slice(8, 16);
                break;
            default:
                family = 0;
                address = default;
                break;
        }
        return family != 0;
    }
}

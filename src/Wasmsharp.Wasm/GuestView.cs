using System.Buffers.Binary;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Bounds- and alignment-checked views of a guest's linear memory during one host call; a bad pointer traps
/// the guest (<see cref="WasiTrapException"/>), as Wasmtime's own WASI functions do. Valid only until the
/// guest runs again (memory may grow and move only while guest code runs).
/// </summary>
internal readonly unsafe struct GuestView(Memory memory, string function)
{
    private readonly byte* data = (byte*)memory.GetPointer();
    private readonly ulong length = (ulong)memory.GetLength();

    public Span<byte> Span(ulong address, long size, int align = 1)
    {
        if (address % (ulong)align != 0)
            throw new WasiTrapException($"{function}: pointer 0x{address:x} not aligned to {align}");
        if (size < 0 || size > int.MaxValue || address + (ulong)size > length)
            throw new WasiTrapException($"{function}: pointer 0x{address:x} (+{size}) out of bounds");
        return new Span<byte>(data + address, (int)size);
    }

    /// <summary>Address of guest bytes [address, address+size) for a system call, bounds-checked.</summary>
    public byte* Pointer(ulong address, ulong size)
    {
        if (address + size > length)
            throw new WasiTrapException($"{function}: buffer 0x{address:x} (+{size}) out of bounds");
        return data + address;
    }

    public uint U32(uint address) => BinaryPrimitives.ReadUInt32LittleEndian(Span(address, 4, 4));

    public void SetU32(uint address, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Span(address, 4, 4), value);

    public void SetU16(uint address, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Span(address, 2, 2), value);
}

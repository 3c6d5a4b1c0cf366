using System.Text;

namespace Wasmsharp.Wasm;

/// <summary>One import of a core module: its module and field names and its kind.</summary>
public readonly record struct WasmImport(string Module, string Name, WasmImportKind Kind)
{
    public override string ToString() => $"{Module}.{Name} ({Kind.ToString().ToLowerInvariant()})";
}

public enum WasmImportKind : byte { Function = 0, Table = 1, Memory = 2, Global = 3, Tag = 4 }

/// <summary>
/// Reads a core module's import section from its bytes, without compiling it: so a module that cannot be
/// linked here is refused before a compile that can take seconds (and gigabytes) for a large module.
/// </summary>
public static class WasmImports
{
    private const byte ImportSection = 2;

    /// <summary>The imports in order; null when the bytes are not a well-formed module up to its import section
    /// (the compiler then reports what is wrong).</summary>
    public static IReadOnlyList<WasmImport>? Read(ReadOnlySpan<byte> module)
    {
        if (WasmBinary.KindOf(module) != WasmBinaryKind.Module)
            return null;
        int at = WasmBinary.HeaderLength;
        while (at < module.Length)
        {
            byte id = module[at++];
            if (!TryLeb(module, ref at, out uint size) || size > module.Length - at)
                return null;
            var section = module.Slice(at, (int)size);
            at += (int)size;
            if (id == ImportSection)
                return Parse(section);
            if (id > ImportSection && id != 0)
                return []; // sections are ordered (custom ones aside): past where imports would be
        }
        return [];
    }

    private static List<WasmImport>? Parse(ReadOnlySpan<byte> s)
    {
        int at = 0;
        if (!TryLeb(s, ref at, out uint count) || count > s.Length)
            return null;
        var imports = new List<WasmImport>((int)count);
        for (uint i = 0; i < count; i++)
        {
            if (!TryName(s, ref at, out var module) || !TryName(s, ref at, out var name) || at >= s.Length)
                return null;
            var kind = (WasmImportKind)s[at++];
            bool ok = kind switch
            {
                WasmImportKind.Function => TryLeb(s, ref at, out _),                     // type index
                WasmImportKind.Tag => Skip(s, ref at, 1) && TryLeb(s, ref at, out _),   // attribute, type index
                WasmImportKind.Table => Skip(s, ref at, 1) && SkipLimits(s, ref at),   // reftype, limits
                WasmImportKind.Memory => SkipLimits(s, ref at),
                WasmImportKind.Global => Skip(s, ref at, 2),                            // valtype, mutability
                _ => false,
            };
            if (!ok)
                return null;
            imports.Add(new WasmImport(module, name, kind));
        }
        return imports;
    }

    private static bool Skip(ReadOnlySpan<byte> s, ref int at, int bytes) => (at += bytes) <= s.Length;

    // limits: a flags byte (bit 0: max present; 64-bit memories use LEB u64, which this skips alike), min[, max]
    private static bool SkipLimits(ReadOnlySpan<byte> s, ref int at)
    {
        if (at >= s.Length)
            return false;
        byte flags = s[at++];
        return TryLeb(s, ref at, out _, wide: true) && ((flags & 1) == 0 || TryLeb(s, ref at, out _, wide: true));
    }

    private static bool TryName(ReadOnlySpan<byte> s, ref int at, out string name)
    {
        name = "";
        if (!TryLeb(s, ref at, out uint length) || length > s.Length - at)
            return false;
        name = Encoding.UTF8.GetString(s.Slice(at, (int)length));
        at += (int)length;
        return true;
    }

    private static bool TryLeb(ReadOnlySpan<byte> s, ref int at, out uint value, bool wide = false)
    {
        value = 0;
        int maxBytes = wide ? 10 : 5;
        for (int shift = 0, n = 0; n < maxBytes && at < s.Length; shift += 7, n++)
        {
            byte b = s[at++];
            if (shift < 32)
                value |= (uint)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
                return true;
        }
        return false;
    }
}

using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Which of WasmEdge's socket calls a module imports, and in which generation. WasmEdge defines several calls
/// twice — as before 0.12 ("V1", e.g. <c>sock_accept(fd, *fd)</c>, <c>sock_getlocaladdr(fd, *addr, *type,
/// *port)</c>) and after ("V2", the WASI-standard <c>sock_accept(fd, flags, *fd)</c>, 128-byte address
/// storage) — and links whichever matches the type of the module's import (V1 when both would). We do the
/// same: the generation is chosen per module before instantiation, and an import that matches none fails it.
/// </summary>
internal sealed class SocketImports
{
    private const string Wasi = "wasi_snapshot_preview1";

    /// <summary>Every (name, generation, parameter count); all parameters and the one result are i32.
    /// "X_v2" names (WasmEdge exports them too) are generation 2 of X.</summary>
    public static readonly (string Name, int Generation, int Params)[] Signatures =
    [
        ("sock_open", 1, 3), ("sock_bind", 1, 3), ("sock_connect", 1, 3), ("sock_listen", 1, 2),
        ("sock_accept", 1, 2), ("sock_accept", 2, 3),
        ("sock_recv", 1, 6), ("sock_recv_from", 1, 7), ("sock_recv_from", 2, 8),
        ("sock_send", 1, 5), ("sock_send_to", 1, 7), ("sock_shutdown", 1, 2),
        ("sock_getsockopt", 1, 5), ("sock_setsockopt", 1, 5),
        ("sock_getlocaladdr", 1, 4), ("sock_getlocaladdr", 2, 3),
        ("sock_getpeeraddr", 1, 4), ("sock_getpeeraddr", 2, 3),
        ("sock_getaddrinfo", 1, 8),
    ];

    /// <summary>Whether <paramref name="name"/> (of wasi_snapshot_preview1) is one of WasmEdge's socket calls we define.</summary>
    public static bool Defines(string name) =>
        Signatures.Any(s => s.Name == name) || name.EndsWith("_v2", StringComparison.Ordinal) && WasiSockets.V2Names.Contains(name[..^3]);

    private readonly Dictionary<string, int> generations;

    private SocketImports(Dictionary<string, int> generations)
    {
        this.generations = generations;
        Key = string.Join(',', generations.OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}:{g.Value}"));
    }

    /// <summary>The module imports at least one socket call.</summary>
    public bool Any => generations.Count > 0;

    /// <summary>Names the set of generations (one linker per distinct key).</summary>
    public string Key { get; }

    /// <summary>The generation to define <paramref name="name"/> in: the import's, else 1 (WasmEdge registers V1 first).</summary>
    public int GenerationOf(string name) => generations.GetValueOrDefault(name, 1);

    public static SocketImports Of(Module module, string path)
    {
        var chosen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var import in module.Imports)
        {
            if (import is not FunctionImport function || import.ModuleName != Wasi)
                continue;
            var name = import.Name;
            bool v2Name = name.EndsWith("_v2", StringComparison.Ordinal);
            var baseName = v2Name ? name[..^3] : name;
            var candidates = Signatures.Where(s => s.Name == baseName).ToArray();
            if (candidates.Length == 0)
                continue;
            bool allInt32 = function.Parameters.All(p => p == ValueKind.Int32)
                && function.Results.Count == 1 && function.Results[0] == ValueKind.Int32;
            var match = candidates.FirstOrDefault(s => allInt32 && s.Params == function.Parameters.Count
                && (!v2Name || s.Generation == 2 || candidates.Length == 1));
            if (match.Name is null)
                throw new WasmModuleException(
                    $"{path}: import {Wasi}.{name} has type {Describe(function.Parameters, function.Results)}, which matches no " +
                    $"generation of WasmEdge's socket API (expected {string.Join(" or ", candidates.Select(c => Describe(c.Params)))})");
            chosen[name] = v2Name ? 2 : match.Generation;
        }
        return new SocketImports(chosen);
    }

    private static string Describe(IReadOnlyList<ValueKind> parameters, IReadOnlyList<ValueKind> results) =>
        $"({string.Join(", ", parameters.Select(Wat))}) -> ({string.Join(", ", results.Select(Wat))})";

    private static string Describe(int parameters) => $"({string.Join(", ", Enumerable.Repeat("i32", parameters))}) -> (i32)";

    private static string Wat(ValueKind kind) => kind switch
    {
        ValueKind.Int32 => "i32",
        ValueKind.Int64 => "i64",
        ValueKind.Float32 => "f32",
        ValueKind.Float64 => "f64",
        ValueKind.V128 => "v128",
        _ => kind.ToString(),
    };
}

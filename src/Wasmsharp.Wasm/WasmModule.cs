namespace Wasmsharp.Wasm;

/// <summary>A compiled WebAssembly module. Owned by its <see cref="WasmHost"/>; shareable across instances and threads.</summary>
public sealed class WasmModule
{
    internal WasmModule(string path, string sha256, Wasmtime.Module inner)
    {
        Path = path;
        Sha256 = sha256;
        Inner = inner;
    }

    /// <summary>Full path of the file the module was loaded from.</summary>
    public string Path { get; }

    /// <summary>SHA-256 of the file's bytes, lower-case hex.</summary>
    public string Sha256 { get; }

    internal Wasmtime.Module Inner { get; }

    public override string ToString() => $"{Path} (sha256:{Sha256})";
}

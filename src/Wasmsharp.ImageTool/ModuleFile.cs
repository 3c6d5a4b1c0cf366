using Wasmsharp.Wasm;

namespace Wasmsharp.ImageTool;

// A --module of the artifact form: the file, what its header says it is, and the media type its layer gets.
public sealed record ModuleFile(string Path, WasmBinaryKind Kind, string MediaType)
{
    public bool IsComponent => Kind == WasmBinaryKind.Component;

    // Without --media-type the header chooses: a component gets the Bytecode Alliance's component layer type
    // (what wasm-pkg-tools and runwasi write for components), a core module application/wasm. An explicit
    // --media-type wins, whatever the file is (the shim reads the header itself).
    public static ModuleFile Read(string path, string? mediaType)
    {
        if (!File.Exists(path))
            throw new UsageException($"--module '{path}': no such file");
        var kind = WasmBinary.KindOf(path);
        var chosen = kind switch
        {
            WasmBinaryKind.Module => MediaTypes.Wasm,
            WasmBinaryKind.Component => MediaTypes.WasmComponentLayer,
            WasmBinaryKind.NotWasm => throw new UsageException($"--module '{path}': not a WebAssembly module or component (it does not start with the \\0asm header)"),
            _ => throw new UsageException($"--module '{path}': a WebAssembly binary of an unknown layer (neither a core module nor a component)"),
        };
        return new ModuleFile(System.IO.Path.GetFullPath(path), kind, mediaType ?? chosen);
    }
}

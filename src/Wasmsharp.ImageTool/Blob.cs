using System.Security.Cryptography;

namespace Wasmsharp.ImageTool;

// A content-addressed blob and its OCI descriptor fields.
public sealed class Blob(string mediaType, byte[] content)
{
    public string MediaType { get; } = mediaType;
    public byte[] Content { get; } = content;
    public string Digest { get; } = DigestOf(content);
    public long Size => Content.LongLength;
    public string Hex => Digest["sha256:".Length..];

    public static string DigestOf(ReadOnlySpan<byte> content) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
}

// What a layout produces: the manifest (the image's root), the blobs it references (config and layers),
// and the platform to advertise in index.json.
public sealed record ImageArtifacts(Blob Manifest, IReadOnlyList<Blob> Blobs, Platform Platform);

// One way to lay an ImageDefinition out as OCI content: the classic form (a rootfs tar layer) or the OCI
// Wasm artifact form (config architecture "wasm", the module itself as the layer).
public interface IImageLayout
{
    ImageArtifacts Build(ImageDefinition definition);
}

public static class MediaTypes
{
    public const string Index = "application/vnd.oci.image.index.v1+json";
    public const string Manifest = "application/vnd.oci.image.manifest.v1+json";
    public const string Config = "application/vnd.oci.image.config.v1+json";
    public const string LayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

    // Module layers: the raw module bytes. The first is the default (runwasi, the Wasm OCI artifact layout).
    public const string Wasm = "application/wasm";
    public const string WasmComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
    public const string WasmContentLayer = "application/vnd.wasm.content.layer.v1+wasm";

    // --media-type accepts these short names or any full type/subtype.
    public static string ModuleLayer(string value) => value switch
    {
        "wasm" => Wasm,
        "component" => WasmComponentLayer,
        "content" => WasmContentLayer,
        _ when value.Count(c => c == '/') == 1 && !value.StartsWith('/') && !value.EndsWith('/') && !value.Any(char.IsWhiteSpace) => value,
        _ => throw new UsageException($"--media-type '{value}': expected wasm, component, content or a full media type (type/subtype)"),
    };
}

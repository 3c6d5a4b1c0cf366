using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wasmsharp.Oci;

// The parts of the OCI image spec (index, manifest, config) needed to find a Wasm module in an image.
// Unknown fields are ignored; Docker's media types are read as their OCI equivalents.

public sealed class Descriptor
{
    public string MediaType { get; set; } = "";
    public string Digest { get; set; } = "";
    public long Size { get; set; }
    public Platform? Platform { get; set; }
    public Dictionary<string, string>? Annotations { get; set; }

    public string? Title => Annotations?.GetValueOrDefault(ImageMediaTypes.TitleAnnotation);

    public override string ToString() => $"{MediaType} {Digest}";
}

public sealed class Platform
{
    public string Architecture { get; set; } = "";
    public string Os { get; set; } = "";
    public string? Variant { get; set; }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

public sealed class ImageIndex
{
    public string? MediaType { get; set; }
    public List<Descriptor> Manifests { get; set; } = [];
}

public sealed class ImageManifest
{
    public string? MediaType { get; set; }
    public Descriptor? Config { get; set; }
    public List<Descriptor> Layers { get; set; } = [];
}

/// <summary>The image config's platform fields (its runtime config is containerd's business: it is in config.json).</summary>
public sealed class ImageConfig
{
    public string Architecture { get; set; } = "";
    public string Os { get; set; } = "";
}

public static class ImageMediaTypes
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

    /// <summary>A core module or component, raw bytes (runwasi's and the Wasm OCI artifact layout's type).</summary>
    public const string Wasm = "application/wasm";
    /// <summary>The Bytecode Alliance's component layer (wasm-pkg-tools, runwasi).</summary>
    public const string WasmComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
    /// <summary>The older "wasm-to-oci" content layer (WasmEdge, Krustlet).</summary>
    public const string WasmContentLayer = "application/vnd.wasm.content.layer.v1+wasm";

    /// <summary>Layer media types that hold a module's raw bytes, which a layer digest then names exactly.</summary>
    public static readonly IReadOnlyList<string> WasmLayers = [Wasm, WasmComponentLayer, WasmContentLayer];

    public const string TitleAnnotation = "org.opencontainers.image.title";

    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;
    public static bool IsManifest(string mediaType) => mediaType is OciManifest or DockerManifest;
    public static bool IsWasmLayer(string mediaType) => WasmLayers.Contains(mediaType);

    /// <summary>The architecture of a Wasm image's config and platform ("wasm", as Go's GOARCH).</summary>
    public const string WasmArchitecture = "wasm";

    /// <summary>OS names used for Wasm images: "wasip1" (Go, runwasi, the Wasm OCI artifact layout), "wasip2",
    /// and "wasi" (Docker's --platform wasi/wasm).</summary>
    public static bool IsWasmOs(string os) => os is "wasip1" or "wasi" or "wasip2";

    public static bool IsWasmPlatform(Platform? p) => p is not null && p.Architecture == WasmArchitecture && IsWasmOs(p.Os);
}

public static class ImageJson
{
    public static T Parse<T>(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            var info = (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)ImageJsonContext.Default.GetTypeInfo(typeof(T))!;
            return JsonSerializer.Deserialize(json, info) ?? throw new WasmArtifactException($"{what} is empty (null)");
        }
        catch (JsonException e)
        {
            throw new WasmArtifactException($"{what} is not valid JSON: {e.Message}", e);
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageConfig))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;

namespace Wasmsharp.Oci;

/// <summary>
/// Finds the module of an OCI Wasm artifact image: index → the manifest for a Wasm platform → a config
/// with architecture "wasm" → the layer(s) whose media type is a Wasm module. Pure: blobs come from the
/// caller (containerd's content store in the shim, files in tests).
/// </summary>
public static class WasmArtifact
{
    /// <summary>Limit for index, manifest and config blobs: JSON documents, never this large.</summary>
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    // Nested indexes (an index of indexes) are legal; more than this is a loop or abuse.
    private const int MaxDepth = 4;

    /// <summary>Reads a blob fully; the size is checked by the caller against the descriptor.</summary>
    public delegate Task<byte[]> BlobReader(Descriptor blob, CancellationToken cancellationToken);

    /// <summary>
    /// Resolves <paramref name="target"/> (an image's target descriptor). <paramref name="argv0"/> (the process's
    /// first argument, without a "#export" suffix) chooses among several module layers by their
    /// org.opencontainers.image.title. Returns <see cref="Resolution.NotArtifact"/> for images of the rootfs
    /// form (including a Wasm-platform image whose layers are filesystem tars).
    /// </summary>
    /// <exception cref="WasmArtifactException">a Wasm image whose module cannot be chosen, or a malformed one.</exception>
    public static async Task<Resolution> ResolveAsync(Descriptor target, string? argv0, BlobReader read, CancellationToken cancellationToken = default)
    {
        var manifestDescriptor = target;
        for (var depth = 0; ImageMediaTypes.IsIndex(manifestDescriptor.MediaType); depth++)
        {
            if (depth == MaxDepth) throw new WasmArtifactException($"image index nesting deeper than {MaxDepth} at {manifestDescriptor.Digest}");
            var index = ImageJson.Parse<ImageIndex>(await ReadDocument(manifestDescriptor, read, cancellationToken).ConfigureAwait(false), $"image index {manifestDescriptor.Digest}");
            var chosen = ChooseManifest(index);
            if (chosen is null)
            {
                var platforms = string.Join(", ", index.Manifests.Select(m => m.Platform?.ToString() ?? "(none)"));
                return Resolution.NotArtifact($"its index has no manifest for a Wasm platform (wasip1/wasm, wasi/wasm); platforms: {platforms}");
            }
            manifestDescriptor = chosen;
        }
        if (!ImageMediaTypes.IsManifest(manifestDescriptor.MediaType))
            throw new WasmArtifactException($"image target {manifestDescriptor.Digest} has media type {manifestDescriptor.MediaType}, not an image index or manifest");

        var manifest = ImageJson.Parse<ImageManifest>(await ReadDocument(manifestDescriptor, read, cancellationToken).ConfigureAwait(false), $"image manifest {manifestDescriptor.Digest}");
        if (manifest.Config is not { } configDescriptor)
            throw new WasmArtifactException($"image manifest {manifestDescriptor.Digest} has no config");
        var config = ImageJson.Parse<ImageConfig>(await ReadDocument(configDescriptor, read, cancellationToken).ConfigureAwait(false), $"image config {configDescriptor.Digest}");
        if (config.Architecture != ImageMediaTypes.WasmArchitecture)
            return Resolution.NotArtifact($"its config's architecture is \"{config.Architecture}\", not \"wasm\"");

        var modules = manifest.Layers.Where(l => ImageMediaTypes.IsWasmLayer(l.MediaType)).ToList();
        if (modules.Count == 0)
        {
            // Docker's wasi/wasm images carry the module as a file in a tar layer: the rootfs form.
            if (manifest.Layers.Any(l => IsFilesystemLayer(l.MediaType)))
                return Resolution.NotArtifact("its layers are filesystem layers (the module is a file in the rootfs)");
            var found = manifest.Layers.Count == 0 ? "it has no layers" : "its layers are " + string.Join(", ", manifest.Layers.Select(l => l.MediaType).Distinct());
            throw new WasmArtifactException($"the Wasm image has no module layer ({found}); a module layer has media type {string.Join(" or ", ImageMediaTypes.WasmLayers)}");
        }
        return Resolution.Artifact(ChooseLayer(modules, argv0), config.Os);
    }

    // The Wasm platform we run best first: preview1 ("wasip1", Docker's "wasi"), then preview2. An index
    // without platforms at all is a plain list: its only entry is the image.
    private static Descriptor? ChooseManifest(ImageIndex index)
    {
        var manifests = index.Manifests.Where(m => ImageMediaTypes.IsManifest(m.MediaType) || ImageMediaTypes.IsIndex(m.MediaType)).ToList();
        var wasm = manifests.Where(m => ImageMediaTypes.IsWasmPlatform(m.Platform))
            .OrderBy(m => m.Platform!.Os switch { "wasip1" => 0, "wasi" => 1, _ => 2 })
            .FirstOrDefault();
        if (wasm is not null) return wasm;
        return manifests is [{ Platform: null } only] ? only : null;
    }

    private static Descriptor ChooseLayer(List<Descriptor> modules, string? argv0)
    {
        if (modules.Count == 1) return modules[0];
        // Several modules: argv[0] names one by its title, as a path ("/app.wasm") or a bare name.
        if (!string.IsNullOrEmpty(argv0))
        {
            var name = argv0.TrimEnd('/');
            name = name[(name.LastIndexOf('/') + 1)..];
            var matches = modules.Where(m => m.Title == name).ToList();
            if (matches.Count == 1) return matches[0];
        }
        var titles = string.Join(", ", modules.Select(m => m.Title is { } t ? $"{t} ({m.Digest})" : $"(untitled) {m.Digest}"));
        var asked = string.IsNullOrEmpty(argv0) ? "no process args" : $"the first argument '{argv0}' names none of them";
        throw new WasmArtifactException($"the Wasm image has {modules.Count} module layers and {asked}: {titles}; make the first argument (the entrypoint) one layer's org.opencontainers.image.title");
    }

    private static bool IsFilesystemLayer(string mediaType) =>
        mediaType.StartsWith("application/vnd.oci.image.layer.", StringComparison.Ordinal) ||
        mediaType.StartsWith("application/vnd.docker.image.rootfs.", StringComparison.Ordinal);

    private static async Task<byte[]> ReadDocument(Descriptor descriptor, BlobReader read, CancellationToken cancellationToken)
    {
        if (descriptor.Size is < 0 or > MaxDocumentBytes)
            throw new WasmArtifactException($"{descriptor.MediaType} {descriptor.Digest} claims {descriptor.Size} bytes; image documents are at most {MaxDocumentBytes}");
        return await read(descriptor, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>"sha256:HEX" → HEX (lower-case, 64 digits); null for other algorithms or malformed digests.</summary>
    public static string? Sha256Hex(string digest)
    {
        const string prefix = "sha256:";
        if (!digest.StartsWith(prefix, StringComparison.Ordinal) || digest.Length != prefix.Length + 64) return null;
        var hex = digest[prefix.Length..];
        return hex.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')) ? hex : null;
    }
}

/// <summary>What an image turned out to be: an artifact with its module layer, or not an artifact (and why).</summary>
public sealed record Resolution(Descriptor? Module, string? Os, string? NotArtifactReason)
{
    public bool IsArtifact => Module is not null;
    public static Resolution Artifact(Descriptor module, string os) => new(module, os, null);
    public static Resolution NotArtifact(string reason) => new(null, null, reason);
}

/// <summary>A Wasm image whose module cannot be found or chosen: reported to the user as is.</summary>
public sealed class WasmArtifactException(string message, Exception? inner = null) : Exception(message, inner);

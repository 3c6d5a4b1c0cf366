using Grpc.Core;
using Wasmsharp.Oci;

namespace Wasmsharp.Containerd.Client;

/// <summary>
/// Answers "which module does container X run?" for OCI Wasm artifact images: the container's image, its
/// target, the manifest for a Wasm platform and the module layer — all from containerd's metadata and
/// content store, so an empty rootfs is enough.
/// </summary>
public sealed class ImageModules(ContainerdClient client)
{
    public async Task<ImageModuleLookup> FindAsync(string containerId, string? argv0, CancellationToken cancellationToken = default)
    {
        var container = await client.GetContainerAsync(containerId, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(container.Image))
            return new ImageModuleLookup(null, "", "containerd records no image for this container (Docker 26 does not pass it on), so no Wasm module layer can be looked up");
        var image = await client.GetImageAsync(container.Image, cancellationToken).ConfigureAwait(false);
        if (image.Target is null)
            throw new WasmArtifactException($"image {container.Image} has no target");
        var target = new Descriptor { MediaType = image.Target.MediaType, Digest = image.Target.Digest, Size = image.Target.Size };

        Resolution resolution;
        try
        {
            resolution = await WasmArtifact.ResolveAsync(target, argv0, ReadDocumentAsync, cancellationToken).ConfigureAwait(false);
        }
        catch (WasmArtifactException e)
        {
            throw new WasmArtifactException($"image {container.Image}: {e.Message}", e);
        }
        catch (ContainerdClientException e) when (e.Code == StatusCode.NotFound)
        {
            throw new ContainerdClientException(e.Code, $"image {container.Image} is incomplete in containerd's content store ({e.Message}); import it again with its platform (ctr images import --all-platforms, or --platform wasip1/wasm)", e);
        }
        if (!resolution.IsArtifact)
            return new ImageModuleLookup(null, container.Image, resolution.NotArtifactReason);
        return new ImageModuleLookup(new ImageModule(container.Image, resolution.Module!, client), container.Image, null);
    }

    private async Task<byte[]> ReadDocumentAsync(Descriptor blob, CancellationToken cancellationToken) =>
        await client.ReadBlobAsync(blob.Digest, blob.Size, cancellationToken).ConfigureAwait(false);
}

/// <summary>Either the module of an artifact image, or why the image is not one.</summary>
public sealed record ImageModuleLookup(ImageModule? Module, string Image, string? NotArtifactReason);

/// <summary>A module layer of an image, read on demand (not at all when its compiled code is cached).</summary>
public sealed class ImageModule(string image, Descriptor layer, ContainerdClient client)
{
    public string Image => image;
    public Descriptor Layer => layer;

    /// <summary>A name for logs and compiler messages: the layer's title, else its digest.</summary>
    public string Name => layer.Title ?? layer.Digest;

    /// <summary>The layer digest's hex when it is a SHA-256 (it then names the module's bytes exactly).</summary>
    public string? Sha256 => WasmArtifact.Sha256Hex(layer.Digest);

    public async Task<byte[]> ReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await client.ReadBlobAsync(layer.Digest, layer.Size, cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdClientException e) when (e.Code == StatusCode.NotFound)
        {
            throw new ContainerdClientException(e.Code, $"the module layer {layer.Digest} of image {image} is missing from containerd's content store; import or pull the image again", e);
        }
    }
}

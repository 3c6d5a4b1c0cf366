using System.Diagnostics;
using System.Security.Cryptography;
using Grpc.Core;
using Wasmsharp.Containerd.Client;
using Wasmsharp.Oci;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim;

// Where a process's module comes from: argv[0] in the rootfs (the classic form), else, for an OCI Wasm
// artifact image (empty rootfs, module as a layer), containerd's content store. containerd is asked only
// when the rootfs has no module for argv[0], so the classic form never pays for a gRPC connection.
internal sealed partial class TaskService
{
    /// <summary>containerd's image and content services; null when the shim was started without -address.</summary>
    internal ImageModules? ImageModules { get; init; }

    private static readonly TimeSpan ImageTimeout = TimeSpan.FromSeconds(60);

    private sealed record LoadedModule(WasmModule Module, string Name, string Export, IReadOnlyList<string> Args);

    private LoadedModule LoadModule(string containerId, Bundle bundle, Oci.Process process)
    {
        Entrypoint entrypoint;
        try
        {
            entrypoint = bundle.OpenEntrypoint(process);
        }
        catch (EntrypointNotFoundException notInRootfs) when (ImageModules is not null)
        {
            return LoadFromImage(containerId, process, notInRootfs);
        }
        using (entrypoint)
        {
            return new LoadedModule(host.LoadModule(entrypoint.HostPath), entrypoint.GuestPath, entrypoint.Export, process.Args);
        }
    }

    private LoadedModule LoadFromImage(string containerId, Oci.Process process, EntrypointNotFoundException notInRootfs)
    {
        var arg0 = process.Args.FirstOrDefault();
        var (file, export) = string.IsNullOrEmpty(arg0) ? (null, "_start") : Bundle.SplitExport(arg0);
        using var timeout = new CancellationTokenSource(ImageTimeout);
        var watch = Stopwatch.StartNew();
        ImageModuleLookup lookup;
        try
        {
            // Create is synchronous (it holds the create lock); the lookup is a few small requests.
            lookup = Task.Run(() => ImageModules!.FindAsync(containerId, file, timeout.Token)).GetAwaiter().GetResult();
        }
        catch (ContainerdClientException e) when (e.Code == StatusCode.Unavailable)
        {
            throw new BundleException($"{notInRootfs.Message} (and the image could not be checked for a Wasm module layer: {e.Message})");
        }
        catch (ContainerdClientException e)
        {
            throw Error(e.Code == StatusCode.NotFound ? StatusCode.FailedPrecondition : e.Code, e.Message);
        }
        catch (WasmArtifactException e)
        {
            throw Error(StatusCode.InvalidArgument, e.Message);
        }
        if (lookup.Module is not { } image)
        {
            var why = lookup.Image.Length == 0 ? lookup.NotArtifactReason : $"image {lookup.Image} is not a Wasm artifact: {lookup.NotArtifactReason}";
            throw new EntrypointNotFoundException($"{notInRootfs.Message} ({why})");
        }
        var resolveMs = watch.Elapsed.TotalMilliseconds;

        byte[] Read()
        {
            try
            {
                return Task.Run(() => image.ReadAsync(timeout.Token)).GetAwaiter().GetResult();
            }
            catch (ContainerdClientException e)
            {
                throw Error(e.Code == StatusCode.NotFound ? StatusCode.FailedPrecondition : e.Code, e.Message);
            }
        }
        // A sha256 layer digest names the module's bytes: the compiled-code caches are keyed by it, so a
        // cached module is not even read from containerd.
        WasmModule module;
        if (image.Sha256 is { } sha)
        {
            module = host.LoadModule(image.Name, sha, Read);
        }
        else
        {
            var bytes = Read();
            module = host.LoadModule(image.Name, Convert.ToHexStringLower(SHA256.HashData(bytes)), () => bytes);
        }
        log.Information("{Id}: module {Layer} from image {Image} ({MediaType}), resolved in {ResolveMs:0.0} ms",
            containerId, image.Layer.Digest, image.Image, image.Layer.MediaType, resolveMs);
        // A guest expects a program name in argv[0] even when the image gave no arguments.
        IReadOnlyList<string> args = process.Args.Count > 0 ? process.Args : [image.Name];
        return new LoadedModule(module, image.Name, export, args);
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using Grpc.Core;
using Wasmsharp.Oci;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim;

// Where a process's module comes from: argv[0] in the rootfs (the classic form), else, for an OCI Wasm
// artifact image (empty rootfs, module as a layer), containerd's content store. containerd is asked only
// when the rootfs has no module for argv[0], so the classic form never pays for a gRPC connection (nor links
// a gRPC client: see ArtifactModuleFetcher).
internal sealed partial class TaskService
{
    /// <summary>containerd's image and content services (via the gRPC binary); null when the shim was started without -address.</summary>
    internal ArtifactModuleFetcher? ImageModules { get; init; }

    private sealed record LoadedModule(WasmModule Module, string Name, string Export, IReadOnlyList<string> Args);

    /// <param name="baselineFirstRun">A module met for the first time may run on baseline code while the optimised
    /// code is compiled in the background (WasmHostOptions.BaselineFirstRun). Only for containers without a memory
    /// limit: that compile's memory is charged to the container once the shim is in its cgroup, and must not
    /// push a limited one over; with a limit the module is compiled before the shim joins, as it always was.</param>
    private LoadedModule LoadModule(string containerId, Bundle bundle, Oci.Process process, bool baselineFirstRun)
    {
        Entrypoint entrypoint;
        try
        {
            entrypoint = bundle.OpenEntrypoint(process);
        }
        catch (EntrypointNotFoundException notInRootfs) when (ImageModules is not null)
        {
            return LoadFromImage(containerId, bundle, process, notInRootfs, baselineFirstRun);
        }
        using (entrypoint)
        {
            // A native container's execs go to runc; in a Wasm container there is no runc container to run them in.
            if (entrypoint.Kind != EntrypointKind.Wasm)
                throw new BundleException($"entrypoint {entrypoint.GuestPath} is a native program, not a WebAssembly module: a Wasm container runs only Wasm");
            return new LoadedModule(host.LoadModule(entrypoint.HostPath, baselineFirstRun, entrypoint.GuestPath), entrypoint.GuestPath, entrypoint.Export, process.Args);
        }
    }

    private LoadedModule LoadFromImage(string containerId, Bundle bundle, Oci.Process process, EntrypointNotFoundException notInRootfs, bool baselineFirstRun)
    {
        var arg0 = process.Args.FirstOrDefault();
        var (file, export) = string.IsNullOrEmpty(arg0) ? (null, "_start") : Bundle.SplitExport(arg0);
        var watch = Stopwatch.StartNew();
        try
        {
            // The blob, when the compiled-code cache misses, is written to a file in the bundle (and removed).
            return ImageModules!.Fetch(containerId, file, bundle.Path, image =>
            {
                var resolveMs = watch.Elapsed.TotalMilliseconds;
                // A sha256 layer digest names the module's bytes: the compiled-code caches are keyed by it, so a
                // cached module is not even read from containerd.
                WasmModule module;
                if (image.Sha256 is { } sha)
                {
                    module = host.LoadModule(image.Name, sha, image.Read, baselineFirstRun);
                }
                else
                {
                    var bytes = image.Read();
                    module = host.LoadModule(image.Name, Convert.ToHexStringLower(SHA256.HashData(bytes)), () => bytes, baselineFirstRun);
                }
                log.Information("{Id}: module {Layer} from image {Image} ({MediaType}), resolved in {ResolveMs:0.0} ms",
                    containerId, image.Digest, image.Image, image.MediaType, resolveMs);
                // A guest expects a program name in argv[0] even when the image gave no arguments.
                IReadOnlyList<string> args = process.Args.Count > 0 ? process.Args : [image.Name];
                return new LoadedModule(module, image.Name, export, args);
            });
        }
        catch (Exception e) when (process.Args.Count == 0 && e is ArtifactModuleFetcher.NotArtifactException
                                      or ArtifactModuleFetcher.FetchException { Kind: "containerd", Code: StatusCode.Unavailable })
        {
            // No args and no artifact to take the program from: what runc says of such a config.json.
            throw new OciSpecException($"config.json: process.{SpecValidation.EmptyArgs}");
        }
        catch (ArtifactModuleFetcher.NotArtifactException e)
        {
            var why = e.Image.Length == 0 ? e.Message : $"image {e.Image} is not a Wasm artifact: {e.Message}";
            throw new EntrypointNotFoundException($"{notInRootfs.Message} ({why})");
        }
        catch (ArtifactModuleFetcher.FetchException e) when (e.Kind == "containerd" && e.Code == StatusCode.Unavailable)
        {
            throw new BundleException($"{notInRootfs.Message} (and the image could not be checked for a Wasm module layer: {e.Message})");
        }
        catch (ArtifactModuleFetcher.FetchException e)
        {
            throw Error(e.Kind == "artifact" ? StatusCode.InvalidArgument : e.Code == StatusCode.NotFound ? StatusCode.FailedPrecondition : e.Code, e.Message);
        }
    }
}

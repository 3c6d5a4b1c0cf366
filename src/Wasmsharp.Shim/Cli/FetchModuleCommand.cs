#if WASMSHARP_GRPC
using System.Text.Json;
using Grpc.Core;
using Wasmsharp.Containerd.Client;
using Wasmsharp.Oci;

namespace Wasmsharp.Shim;

/// <summary>
/// `containerd-shim-wasmsharp-grpc fetch-module -address A -namespace NS -id ID [-argv0 FILE] -output PATH`:
/// the containerd content-store client, run by the main shim only for a container whose module is not in
/// its rootfs (an OCI Wasm artifact image), so the main binary does not link Grpc.Net.Client. It prints one
/// JSON line (see <see cref="ArtifactModuleFetcher"/>) with the module layer, the reason the image is not an
/// artifact, or an error; after a module it waits for "read" on stdin (the caller's compiled-code cache
/// missed), writes the layer's bytes to PATH and prints a second line; anything else ends it.
/// </summary>
internal static class FetchModuleCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? address = null, ns = null, id = null, argv0 = null, output = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "-address": address = args[i + 1]; break;
                case "-namespace": ns = args[i + 1]; break;
                case "-id": id = args[i + 1]; break;
                case "-argv0": argv0 = args[i + 1]; break;
                case "-output": output = args[i + 1]; break;
                default: throw new ArgumentException($"unknown flag {args[i]}");
            }
        }
        if (args.Length % 2 != 0 || address is null || ns is null || id is null || output is null)
            throw new ArgumentException($"usage: {ArtifactModuleFetcher.Command} -address SOCKET -namespace NS -id CONTAINER [-argv0 FILE] -output PATH");

        using var timeout = new CancellationTokenSource(ArtifactModuleFetcher.Timeout);
        using var client = new ContainerdClient(address, ns);
        var stdout = Console.OpenStandardOutput();
        ImageModule module;
        try
        {
            var lookup = await new ImageModules(client).FindAsync(id, argv0, timeout.Token).ConfigureAwait(false);
            if (lookup.Module is null)
            {
                WriteLine(stdout, w => { w.WriteString("notArtifact", lookup.NotArtifactReason); w.WriteString("image", lookup.Image); });
                return 0;
            }
            module = lookup.Module;
        }
        catch (Exception e) when (e is ContainerdClientException or WasmArtifactException)
        {
            WriteError(stdout, e);
            return 0;
        }
        WriteLine(stdout, w =>
        {
            w.WriteString("image", module.Image);
            w.WriteString("digest", module.Layer.Digest);
            w.WriteString("mediaType", module.Layer.MediaType);
            w.WriteNumber("size", module.Layer.Size);
            w.WriteString("name", module.Name);
        });

        if (await Console.In.ReadLineAsync(timeout.Token).ConfigureAwait(false) != "read") return 0;
        try
        {
            var bytes = await module.ReadAsync(timeout.Token).ConfigureAwait(false);
            using (var file = new FileStream(output, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                file.Write(bytes);
            }
            WriteLine(stdout, w => w.WriteNumber("written", bytes.Length));
        }
        catch (ContainerdClientException e)
        {
            WriteError(stdout, e);
        }
        return 0;
    }

    private static void WriteError(Stream stdout, Exception e) => WriteLine(stdout, w =>
    {
        w.WriteStartObject("error");
        w.WriteString("kind", e is WasmArtifactException ? "artifact" : "containerd");
        w.WriteNumber("code", e is ContainerdClientException c ? (int)c.Code : (int)StatusCode.InvalidArgument);
        w.WriteString("message", e.Message);
        w.WriteEndObject();
    });

    private static void WriteLine(Stream stdout, Action<Utf8JsonWriter> body)
    {
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
        stdout.Flush();
    }
}
#endif

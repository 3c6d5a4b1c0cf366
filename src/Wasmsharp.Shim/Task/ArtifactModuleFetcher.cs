using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using Wasmsharp.Linux;
using Process = System.Diagnostics.Process;
using WasmArtifact = Wasmsharp.Oci.WasmArtifact;

namespace Wasmsharp.Shim;

/// <summary>
/// Finds the module of an OCI Wasm artifact image (empty rootfs, module as a layer in containerd's content
/// store) by running `containerd-shim-wasmsharp-grpc fetch-module` (FetchModuleCommand): the
/// content-store client needs Grpc.Net.Client, which would cost every shim about 1 MB of private memory
/// even for classic images, so it lives in the second binary and runs only on this path.
/// </summary>
internal sealed class ArtifactModuleFetcher(string address, string ns)
{
    public const string Command = "fetch-module";

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>The layer containerd's image resolves to. <see cref="Read"/> asks the helper for its bytes.</summary>
    public sealed class Module(string image, string digest, string mediaType, string name, Func<byte[]> read)
    {
        public string Image => image;
        public string Digest => digest;
        public string MediaType => mediaType;
        /// <summary>The layer's title, else its digest.</summary>
        public string Name => name;
        /// <summary>The digest's hex when it is a SHA-256 (it then names the module's bytes exactly).</summary>
        public string? Sha256 => WasmArtifact.Sha256Hex(digest);
        public byte[] Read() => read();
    }

    /// <summary>
    /// Runs the helper for <paramref name="containerId"/> and calls <paramref name="use"/> with the module
    /// while the helper waits, so that <see cref="Module.Read"/> can still ask it for the bytes. Returns
    /// use's result, or throws <see cref="NotArtifactException"/> / <see cref="FetchException"/>.
    /// </summary>
    public T Fetch<T>(string containerId, string? argv0, string scratchDirectory, Func<Module, T> use)
    {
        var helper = StartCommand.GrpcDaemonPath;
        if (!File.Exists(helper))
            throw new FetchException(StatusCode.Unavailable, "containerd", $"{helper} is not installed (it reads OCI Wasm artifact images from containerd's content store)");
        var output = Path.Combine(scratchDirectory, $".module-{Guid.NewGuid():N}.wasm");
        var psi = new ProcessStartInfo(helper)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])[Command, "-address", address, "-namespace", ns, "-id", containerId, "-output", output])
            psi.ArgumentList.Add(a);
        if (argv0 is not null)
        {
            psi.ArgumentList.Add("-argv0");
            psi.ArgumentList.Add(argv0);
        }
        // Tracked: the shim reaps orphans (it is a subreaper), and .NET must be the one to reap this child.
        using var child = Processes.StartTracked(psi);
        var process = child.Process;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        // A helper that hangs (containerd not answering) is killed; its missing answer then reads as the timeout.
        using var kill = timeout.Token.Register(() =>
        {
            try { process.Kill(); } catch (InvalidOperationException) { }
        });
        try
        {
            using var first = ReadLine(process, stderr, timeout.Token);
            var root = first.RootElement;
            if (root.TryGetProperty("notArtifact", out var reason))
                throw new NotArtifactException(root.GetProperty("image").GetString() ?? "", reason.GetString() ?? "");
            var read = false;
            var module = new Module(root.GetProperty("image").GetString()!, root.GetProperty("digest").GetString()!,
                root.GetProperty("mediaType").GetString()!, root.GetProperty("name").GetString()!, () =>
                {
                    if (read) throw new InvalidOperationException("module read twice");
                    read = true;
                    process.StandardInput.WriteLine("read");
                    process.StandardInput.Flush();
                    using var second = ReadLine(process, stderr, timeout.Token);
                    try
                    {
                        return File.ReadAllBytes(output);
                    }
                    finally
                    {
                        File.Delete(output);
                    }
                });
            var result = use(module);
            process.StandardInput.Close(); // not "read": the helper exits
            process.WaitForExit(TimeSpan.FromSeconds(5));
            return result;
        }
        finally
        {
            if (!process.HasExited)
            {
                try { process.Kill(); } catch (InvalidOperationException) { }
            }
            File.Delete(output);
        }
    }

    // One JSON line from the helper; its "error" object, or its death, becomes a FetchException.
    private static JsonDocument ReadLine(Process process, Task<string> stderr, CancellationToken timeout)
    {
        string? line;
        try
        {
            line = process.StandardOutput.ReadLineAsync(timeout).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            throw TimedOut();
        }
        if (line is null && timeout.IsCancellationRequested)
            throw TimedOut();
        if (line is null)
        {
            process.WaitForExit(TimeSpan.FromSeconds(5));
            var why = stderr.IsCompleted ? stderr.Result.Trim() : "";
            throw new FetchException(StatusCode.Internal, "helper", $"{StartCommand.GrpcDaemonName} {Command} failed{(process.HasExited ? $" (exit {process.ExitCode})" : "")}{(why.Length > 0 ? ": " + why : "")}");
        }
        var doc = JsonDocument.Parse(line);
        if (doc.RootElement.TryGetProperty("error", out var error))
        {
            using (doc)
            {
                throw new FetchException((StatusCode)error.GetProperty("code").GetInt32(), error.GetProperty("kind").GetString() ?? "",
                    error.GetProperty("message").GetString() ?? "");
            }
        }
        return doc;
    }

    private static FetchException TimedOut() =>
        new FetchException(StatusCode.DeadlineExceeded, "containerd", $"no answer from containerd within {Timeout.TotalSeconds:0} s while looking up the image's Wasm module layer");

    /// <summary>The container's image is not a Wasm artifact (or containerd records none).</summary>
    public sealed class NotArtifactException(string image, string reason) : Exception(reason)
    {
        public string Image => image;
    }

    /// <summary>
    /// The lookup failed. Kind "containerd": a failed call (<see cref="Code"/> is gRPC's; NotFound means
    /// missing content); "artifact": the image is malformed as a Wasm artifact; "helper": the helper failed.
    /// </summary>
    public sealed class FetchException(StatusCode code, string kind, string message) : Exception(message)
    {
        public StatusCode Code => code;
        public string Kind => kind;
    }
}

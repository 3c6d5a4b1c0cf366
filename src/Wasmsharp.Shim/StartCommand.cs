using Wasmsharp.Linux;
using Wasmsharp.Oci;

namespace Wasmsharp.Shim;

/// <summary>
/// `shim start`: read the runtime options, find or create the shim for this container's group and
/// transport, hand the listening socket to a detached daemon, print its address. containerd reads our
/// stdout and stderr together, so print only the address.
/// </summary>
internal static class StartCommand
{
    /// <summary>Annotation (in the bundle's config.json) choosing the task API transport: ttrpc or grpc.</summary>
    public const string ProtocolAnnotation = "io.containerd.wasmsharp.protocol";

    public static int Run(ShimOptions options)
    {
        var input = StartInput.Parse(StartInput.ReadStdin(), options.Id);
        var runtimeOptions = ShimRuntimeOptions.From(input.RuntimeOptions);
        var bundle = Directory.GetCurrentDirectory();
        var spec = Spec.Load(Path.Combine(bundle, "config.json"));
        var protocol = spec.Annotations.TryGetValue(ProtocolAnnotation, out var annotated) && annotated.Length > 0
            ? ShimRuntimeOptions.ParseProtocol(annotated, $"annotation {ProtocolAnnotation}")
            : runtimeOptions.Protocol ?? ShimProtocol.Ttrpc;
        var group = ShimAddress.GroupId(options.Id, spec.Annotations);
        var socketDir = input.Bootstrap is { HasSocketDir: true } b ? b.SocketDir : null;
        var socketPath = ShimAddress.SocketPath(options.Address, options.Namespace, group, socketDir);
        string reply;
        if (protocol == ShimProtocol.Grpc)
        {
            // A gRPC shim never shares a socket with a ttrpc one of the same group.
            socketPath += "-grpc";
            reply = GrpcReply(socketPath, ContainerdVersion.Detect(input.Bootstrap?.ContainerdVersion, options.PublishBinary));
        }
        else
        {
            // A plain address: the only form containerd 1.6 reads; 1.7+ take it as ttrpc, task API v2.
            reply = ShimAddress.ToUri(socketPath);
        }

        if (!ShimAddress.IsLive(socketPath))
        {
            if (!TryServe(options, socketPath, protocol) && !ShimAddress.IsLive(socketPath))
            {
                throw new InvalidOperationException($"cannot listen on {socketPath}");
            }
        }
        // containerd 1.6/1.7 reconnect to running shims from this file after a restart, parsing it as
        // they parse our reply (2.x keeps its own bootstrap.json).
        File.WriteAllText(Path.Combine(bundle, "address"), reply);
        Console.Out.Write(reply);
        Console.Out.Flush();
        return 0;
    }

    /// <summary>
    /// The JSON form of the start reply that selects gRPC: containerd 1.7 accepts shim version 2 only,
    /// 2.x requires 3 for gRPC. Both dial the bare socket path.
    /// </summary>
    public static string GrpcReply(string socketPath, ContainerdVersion? containerd)
    {
        int version;
        if (containerd is null || containerd.Value.AtLeast(2, 0)) version = 3;
        else if (containerd.Value.AtLeast(1, 7)) version = 2;
        else throw new NotSupportedException($"protocol grpc needs containerd 1.7 or later (this is containerd {containerd}); use ttrpc");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("version", version);
            json.WriteString("address", socketPath);
            json.WriteString("protocol", "grpc");
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool TryServe(ShimOptions options, string socketPath, ShimProtocol protocol)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        File.Delete(socketPath); // stale: nobody answered on it
        int listener;
        try
        {
            listener = Sockets.ListenUnix(socketPath);
        }
        catch (LinuxException e) when (e.Errno == 98 /* EADDRINUSE */)
        {
            return false; // another start for the same group won the race
        }
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the shim executable");
        try
        {
            AdjustOomScore(Processes.SpawnDaemon(self, [self, .. options.DaemonArgs(protocol)], listener));
        }
        finally
        {
            Sockets.Close(listener);
        }
        return true;
    }

    // The shim should be killed by the OOM killer just before containerd, not before its containers.
    private static void AdjustOomScore(int daemonPid)
    {
        try
        {
            var parent = int.Parse(File.ReadAllText($"/proc/{Processes.GetParentProcessId()}/oom_score_adj").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText($"/proc/{daemonPid}/oom_score_adj", Math.Min(1000, parent + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // Best effort, as in containerd's own shims.
        }
    }
}

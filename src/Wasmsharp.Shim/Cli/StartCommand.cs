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
        StartupTrace.Mark("start: stdin read");
        var runtimeOptions = ShimRuntimeOptions.From(input.RuntimeOptions);
        var bundle = Directory.GetCurrentDirectory();
        var annotations = Spec.LoadAnnotations(Path.Combine(bundle, "config.json"));
        StartupTrace.Mark("start: spec loaded");
        var protocol = annotations.TryGetValue(ProtocolAnnotation, out var annotated) && annotated.Length > 0
            ? ShimRuntimeOptions.ParseProtocol(annotated, $"annotation {ProtocolAnnotation}")
            : runtimeOptions.Protocol ?? ShimProtocol.Ttrpc;
        var group = ShimAddress.GroupId(options.Id, annotations);
        var socketDir = input.Bootstrap is { HasSocketDir: true } b ? b.SocketDir : null;
        var socketPath = ShimAddress.SocketPath(options.Address, options.Namespace, group, socketDir);
        string reply;
        StartupTrace.Mark("start: socket path");
        if (protocol == ShimProtocol.Grpc &&
            (GrpcUnavailable(ContainerdVersion.Detect(input.Bootstrap?.ContainerdVersion, options.PublishBinary)) ?? GrpcDaemonMissing()) is { } why)
        {
            // Better a running container over ttrpc than none; the reason goes to containerd's log.
            var log = ShimLog.ToBundleLog(bundle, options.Debug);
            log.Warning("{Id}: protocol grpc requested but {Reason}: serving ttrpc", options.Id, why);
            (log as IDisposable)?.Dispose();
            protocol = ShimProtocol.Ttrpc;
        }
        if (protocol == ShimProtocol.Grpc)
        {
            // A gRPC shim never shares a socket with a ttrpc one of the same group.
            socketPath += "-grpc";
            reply = GrpcReply(socketPath);
        }
        else
        {
            // A plain address: the only form containerd 1.6 reads; 1.7+ take it as ttrpc, task API v2.
            reply = ShimAddress.ToUri(socketPath);
        }

        // Only the ttrpc daemon (this binary) has spares.
        var sparePath = protocol == ShimProtocol.Ttrpc && SpareShim.Enabled ? SpareShim.SocketPath(options.Address, socketDir) : null;
        var served = false;
        var spareTookIt = false;
        // Starts for one socket name take turns (a group's containers may start together just as its shim closes:
        // one of them makes the next shim, the others reserve it). A live ttrpc shim of the group is reserved for
        // this container first: it cannot close in between.
        using (StartTurn.Take(socketPath))
        {
            var live = protocol == ShimProtocol.Ttrpc ? GroupService.TryReserve(socketPath, options.Id) : ShimAddress.IsLive(socketPath);
            if (!live)
            {
                served = TryServe(options, bundle, socketPath, protocol, sparePath, out spareTookIt);
                if (!served && !ShimAddress.IsLive(socketPath))
                {
                    throw new InvalidOperationException($"cannot listen on {socketPath}");
                }
            }
        }
        // containerd 1.6/1.7 reconnect to running shims from this file after a restart, parsing it as
        // they parse our reply (2.x keeps its own bootstrap.json).
        StartupTrace.Mark("start: served");
        File.WriteAllText(Path.Combine(bundle, "address"), reply);
        // Straight to fd 1: Console.Out's set-up costs more than this whole reply.
        using (var stdout = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1))
            stdout.Write(System.Text.Encoding.UTF8.GetBytes(reply));
        StartupTrace.Mark("start: replied");
        // A spare for the next container, if none took this one (an adopted spare's standby takes its place).
        if (served && !spareTookIt && sparePath is not null) SpareShim.Spawn(options, sparePath);
        StartupTrace.Mark("start: done");
        return 0;
    }

    // An exclusive hold on an abstract socket name derived from the shim's socket path: no file to leave behind,
    // released by the kernel if `start` dies. Waits its turn (starts take milliseconds), at most a few seconds.
    private sealed class StartTurn(int? fd) : IDisposable
    {
        private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);

        public static StartTurn Take(string socketPath)
        {
            var name = "wasmsharp-start-" + Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(System.Text.Encoding.UTF8.GetBytes(socketPath)));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                if (Sockets.TryHoldAbstractName(name) is int fd) return new StartTurn(fd);
                if (clock.Elapsed > MaxWait) return new StartTurn(null); // a stuck start: go on as before turns existed
                Thread.Sleep(1);
            }
        }

        public void Dispose()
        {
            if (fd is int held) Sockets.Close(held);
        }
    }

    /// <summary>The binary that serves gRPC (see Wasmsharp.Shim.Grpc), installed next to this one.</summary>
    public const string GrpcDaemonName = "containerd-shim-wasmsharp-grpc";

    public static string GrpcDaemonPath => Path.Combine(AppContext.BaseDirectory, GrpcDaemonName);

    private static string? GrpcDaemonMissing() =>
        File.Exists(GrpcDaemonPath) ? null : $"{GrpcDaemonPath} is not installed";

    /// <summary>
    /// Why this containerd cannot use a gRPC shim, or null. 1.6 reads only a plain address. 2.0–2.3 (and
    /// main as of this writing) take a gRPC shim for dead as soon as they connect: their client
    /// (grpc.NewClient) starts idle, and the watcher that should report a lost connection reads that as
    /// one, so containerd cleans up the bundle while creating the task. 1.7 (grpc.DialContext with
    /// WithBlock) works. An unknown version is tried as 1.7.
    /// </summary>
    public static string? GrpcUnavailable(ContainerdVersion? containerd) => containerd switch
    {
        { } v when !v.AtLeast(1, 7) => $"containerd {v} cannot talk to gRPC shims",
        { } v when v.AtLeast(2, 0) => $"containerd {v} drops gRPC shim connections as soon as it makes them",
        _ => null,
    };

    /// <summary>
    /// The JSON start reply that selects gRPC, in the form containerd 1.7 accepts: shim version 2
    /// (1.7 rejects anything higher; 2.x would need 3), protocol grpc, the bare socket path it dials.
    /// </summary>
    public static string GrpcReply(string socketPath)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("version", 2);
            json.WriteString("address", socketPath);
            json.WriteString("protocol", "grpc");
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool TryServe(ShimOptions options, string bundle, string socketPath, ShimProtocol protocol, string? sparePath, out bool spareTookIt)
    {
        spareTookIt = false;
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

        var daemon = protocol == ShimProtocol.Grpc ? GrpcDaemonPath
            : Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the shim executable");
        // containerd runs us and waits for our reply: our parent, alive until the daemon has it.
        var daemonArgs = options.DaemonArgs(protocol, Processes.GetParentProcessId());
        try
        {
            StartupTrace.Mark("start: spawning");
            var pid = sparePath is null ? null : SpareShim.TryHandOver(sparePath, bundle, daemonArgs, listener);
            spareTookIt = pid is not null;
            StartupTrace.Mark(pid is null ? "start: no spare" : "start: handed to a spare");
            AdjustOomScore(pid ?? Processes.SpawnDaemon(daemon, [daemon, .. daemonArgs], listener));
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

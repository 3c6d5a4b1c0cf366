using System.Net.Sockets;
using Serilog;
using Wasmsharp.Linux;
using Wasmsharp.Ttrpc;
using Wasmsharp.Wasm;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

/// <summary>The long-running shim: serves the task API on the socket `start` handed over as fd 3.</summary>
internal static partial class Daemon
{
    private const int InheritedListenerFd = 3;

    /// <param name="listenerFd">The listening socket: fd 3 from `start`, or the one a spare was handed.</param>
    /// <param name="host">A Wasm host already being made (a spare's), else one is made now.</param>
    public static async Task<int> RunAsync(ShimOptions options, int listenerFd = InheritedListenerFd, Task<WasmHost>? host = null)
    {
        var bundle = Directory.GetCurrentDirectory();
        var log = ShimLog.ToBundleLog(bundle, options.Debug);
        StartupTrace.Mark("daemon: log open");
        try
        {
            Processes.SetChildSubreaper();
            Native.OrphanReaper.Start(log);
        }
        catch (LinuxException e)
        {
            log.Warning(e, "cannot become a subreaper");
        }

        var socketPath = ListenerPath(listenerFd);
        var ttrpcAddress = Environment.GetEnvironmentVariable("TTRPC_ADDRESS") is { Length: > 0 } t ? t : options.Address + ".ttrpc";

        StartupTrace.Mark("daemon: before host");
        // Loading libwasmtime and making the engine takes milliseconds: done while containerd connects and sends Create.
        host ??= MakeHost(log);
        // Learned now, while containerd waits for `start`: the pid cannot have been reused yet.
        var containerdGone = options.ContainerdPid is { } containerdPid ? Processes.WhenExited(containerdPid) : new TaskCompletionSource().Task;
        _ = host.ContinueWith(made =>
        {
            if (made.IsCompletedSuccessfully) made.Result.OptimisedCompiled += compile => LogCompile(log, options.Id, compile);
        }, TaskScheduler.Default);
        // So is the first use of the JSON reader (~2 ms), which Create needs for the bundle's config.json.
        _ = Task.Run(() =>
        {
            try
            {
                Oci.Spec.Load(Path.Combine(bundle, "config.json"));
            }
            catch (Oci.OciSpecException)
            {
                // Create reports it
            }
        });
        var events = new EventPublisher(ttrpcAddress, options.Namespace, log);
        using var stop = new CancellationTokenSource();
        // The socket's name goes at once, before the Shutdown reply: a `start` for the same group that
        // follows (docker restart: delete, then create again with the same id) must start a new shim, not
        // reach this one while it exits. Once released, the name may be a new shim's: never delete it again.
        var socketReleased = 0;
        void ReleaseSocket()
        {
            if (Interlocked.Exchange(ref socketReleased, 1) == 0) TryDelete(socketPath);
        }
        // A short grace period lets the Shutdown reply reach containerd before the server closes.
        var service = new TaskService(host, events, log, options.Namespace, () =>
        {
            ReleaseSocket();
            _ = Task.Delay(50).ContinueWith(_ => stop.Cancel(), TaskScheduler.Default);
        })
        {
            // containerd's gRPC API, asked (by a helper process) only if a container's module is not in its rootfs.
            ImageModules = options.Address.Length > 0 ? new ArtifactModuleFetcher(options.Address, options.Namespace) : null,
        };
        // The container we were started for is on its way, as a reserved one is: a `shim delete` of the group's
        // previous shim (containerd runs it after that shim closed) sends its Shutdown here, and must not close us
        // before containerd has dialled us for it.
        service.Group.TryReserve(options.Id);
        StartupTrace.Mark("daemon: serving");
        log.Information("shim {Pid} for {Id} serving {Protocol} on {Socket}", Environment.ProcessId, options.Id, options.Protocol.ToString().ToLowerInvariant(), socketPath);
        if (options.Protocol == ShimProtocol.Grpc)
        {
#if WASMSHARP_GRPC
            await ServeGrpcAsync(listenerFd, service, log, stop.Token).ConfigureAwait(false);
#else
            // `start` runs containerd-shim-wasmsharp-grpc for gRPC; this binary has no gRPC server.
            throw new NotSupportedException("this binary serves ttrpc only");
#endif
        }
        else
        {
            await ServeTtrpcAsync(listenerFd, service, log, stop.Token).ConfigureAwait(false);
        }
        // Let the Shutdown reply go out and the last events (TaskDelete) reach containerd.
        await events.DrainAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        ReleaseSocket();
        if (host.IsCompletedSuccessfully)
        {
            // At most the compile under way for the cache is finished, and only while containerd lives.
            if (host.Result.FinishCacheWrites(containerdGone))
                host.Result.Dispose();
            else
                log.Information("shim {Pid}: containerd exited: giving up the compile for the cache (the next start takes it over)", Environment.ProcessId);
        }
        log.Information("shim {Pid} exiting", Environment.ProcessId);
        (log as IDisposable)?.Dispose();
        return 0;
    }

    private static async Task ServeTtrpcAsync(int listenerFd, TaskService service, ILogger log, CancellationToken stop)
    {
        using var listener = new Socket(new SafeSocketHandle(listenerFd, ownsHandle: true));
        var registry = new TtrpcServiceRegistry();
        RpcErrors.Bind(registry, service, log);
        Containerd.Api.Group.Group.BindService(registry, new GroupService(service.Group));
        await using var server = new TtrpcServer(registry, (message, e) => log.Warning(e, "ttrpc: {Message}", message));
        try
        {
            await server.ServeAsync(listener, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string ListenerPath(int listenerFd)
    {
        using var listener = new Socket(new SafeSocketHandle(listenerFd, ownsHandle: false));
        return listener.LocalEndPoint?.ToString() ?? "";
    }

    /// <summary>Makes the Wasm host in the background and warms it up (see <see cref="WasmHost.BeginWarmUp"/>).</summary>
    public static Task<WasmHost> MakeHost(ILogger? log) => Task.Run(() =>
    {
        var made = new WasmHost(new WasmHostOptions
        {
            CacheDirectory = CacheDirectory(log ?? Serilog.Core.Logger.None),
            // A module met for the first time runs on quickly compiled code; the optimised code goes to the cache.
            BaselineFirstRun = !string.Equals(Environment.GetEnvironmentVariable("WASMSHARP_BASELINE_FIRST_RUN"), "off", StringComparison.OrdinalIgnoreCase),
            // Not SCHED_IDLE: on a loaded machine that never finished (see Processes.SetCurrentThreadBatch).
            BackgroundThreadSetup = static () => Processes.SetCurrentThreadBatch(),
            // Even at nice 19 an optimising compile slowed concurrent starts ~1.5× (see the option): it waits for
            // 3 s without starts (back-to-back starts on a loaded node came up to ~1 s apart), at most a minute.
            BackgroundCompileQuiet = TimeSpan.FromSeconds(3),
        });
        made.BeginWarmUp();
        return made;
    });

    // One line per optimising compile this shim made (containerd may have stopped reading our log by then: the
    // start's own line already says which shim compiles).
    private static void LogCompile(ILogger log, string id, OptimisedCompile compile)
    {
        if (compile.EntryPath is not null)
            log.Information("{Id}: optimised code of {Module} (sha256:{Sha}) written to the cache, compiled in {CompileMs:0.0} ms", id, compile.Path, compile.Sha256, compile.CompileTime.TotalMilliseconds);
        else
            log.Warning("{Id}: optimised code of {Module} (sha256:{Sha}) compiled in {CompileMs:0.0} ms but not cached: {Problem}", id, compile.Path, compile.Sha256, compile.CompileTime.TotalMilliseconds, compile.Problem);
    }

    private const string DefaultCacheDirectory = "/var/lib/wasmsharp/cache";

    /// <summary>
    /// Where compiled modules are kept between shim processes: $WASMSHARP_CACHE_DIR (set in containerd's
    /// environment), "off" to disable, else /var/lib/wasmsharp/cache. Root-only: entries are native code.
    /// </summary>
    private static string? CacheDirectory(ILogger log)
    {
        var dir = Environment.GetEnvironmentVariable("WASMSHARP_CACHE_DIR") is { Length: > 0 } d ? d : DefaultCacheDirectory;
        if (dir == "off") return null;
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return Path.GetFullPath(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            log.Warning("module cache {Dir} unusable, compiling every time: {Error}", dir, e.Message);
            return null;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (path.Length > 0) File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}

#if WASMSHARP_GRPC
using Serilog;
using Wasmsharp.Grpc;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

internal static partial class Daemon
{
    /// <summary>
    /// The same task service over gRPC: containerd's gRPC clients (1.7, 2.x) call task API v3, whose
    /// messages are v2's on the wire, so the v2 service is served under the v3 name.
    /// </summary>
    private static async Task ServeGrpcAsync(TaskService service, ILogger log, CancellationToken stop)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var server = await GrpcServer.StartAsync(ListenerFd, binder => TaskApi.Task.BindService(binder, service), new GrpcServerOptions
        {
            ServiceNames = new Dictionary<string, string> { ["containerd.task.v2.Task"] = "containerd.task.v3.Task" },
            Log = (message, e) => log.Warning(e, "grpc: {Message}", message),
        }).ConfigureAwait(false);
        log.Information("gRPC server started in {Ms:0} ms", clock.Elapsed.TotalMilliseconds);
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await server.StopAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
    }
}
#endif

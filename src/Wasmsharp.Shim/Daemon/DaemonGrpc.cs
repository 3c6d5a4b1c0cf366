#if WASMSHARP_GRPC
using Serilog;
using Wasmsharp.Grpc;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

internal static partial class Daemon
{
    /// <summary>The same task service over gRPC, as task API v3 (see <see cref="GrpcTaskApi"/>).</summary>
    private static async Task ServeGrpcAsync(int listenerFd, TaskService service, ILogger log, CancellationToken stop)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var server = await GrpcServer.StartAsync((ulong)listenerFd, binder => RpcErrors.Bind(binder, service, log), new GrpcServerOptions
        {
            ServiceNames = GrpcTaskApi.ServiceNames,
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

using Wasmsharp.Ttrpc;
#if WASMSHARP_GRPC
using Wasmsharp.Grpc;
#endif
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

internal static partial class DeleteCommand
{
    private sealed class TaskConnection(TaskApi.Task.TaskClient task, Func<ValueTask> close) : IAsyncDisposable
    {
        public TaskApi.Task.TaskClient Task { get; } = task;

        public ValueTask DisposeAsync() => close();
    }

    private static async Task<TaskConnection> ConnectAsync(ShimAddress.Reply address)
    {
        if (address.Protocol == ShimProtocol.Grpc)
        {
#if WASMSHARP_GRPC
            var channel = GrpcClient.Connect(address.SocketPath);
            return new TaskConnection(new TaskApi.Task.TaskClient(channel.CreateCallInvoker().WithServiceNames(GrpcTaskApi.ServiceNames)),
                () => { channel.Dispose(); return ValueTask.CompletedTask; });
#else
            throw new NotSupportedException($"the gRPC client is in {StartCommand.GrpcDaemonName}");
#endif
        }
        var client = await TtrpcClient.ConnectAsync(address.SocketPath).ConfigureAwait(false);
        return new TaskConnection(new TaskApi.Task.TaskClient(client.CreateCallInvoker()), client.DisposeAsync);
    }

#if !WASMSHARP_GRPC
    /// <summary>Runs the gRPC binary's `delete` with our arguments and passes its output on.</summary>
    private static async Task<int> DelegateToGrpcBinaryAsync(ShimOptions options)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(StartCommand.GrpcDaemonPath, options.RawArgs)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"cannot run {StartCommand.GrpcDaemonPath}");
        using (var stdout = Console.OpenStandardOutput())
        {
            await process.StandardOutput.BaseStream.CopyToAsync(stdout).ConfigureAwait(false);
        }
        await process.WaitForExitAsync().ConfigureAwait(false);
        return process.ExitCode;
    }
#endif
}

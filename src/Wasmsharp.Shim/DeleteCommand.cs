using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Serilog;
using Wasmsharp.Ttrpc;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

/// <summary>
/// `shim delete`: containerd's cleanup after every task delete and after a shim died. Idempotent. If a
/// shim still runs the container (containerd lost track of it), ask it to kill and delete the task
/// rather than kill the shim, which may serve other containers of its group. Then unmount the rootfs.
/// </summary>
internal static class DeleteCommand
{
    public static async Task<int> RunAsync(ShimOptions options, ILogger log)
    {
        var bundlePath = string.IsNullOrEmpty(options.Bundle) ? Directory.GetCurrentDirectory() : options.Bundle;
        await StopInLiveShimAsync(bundlePath, options.Id, log).ConfigureAwait(false);
        try
        {
            Linux.Mounts.UnmountAll(Path.Combine(bundlePath, "rootfs"));
        }
        catch (Exception e)
        {
            log.Warning(e, "unmounting the rootfs of {Id} failed", options.Id);
        }
        ContainerCgroup.RemoveLeftover(bundlePath, log);
        // As runc reports for a process it could not reap: killed (SIGKILL).
        var response = new TaskApi.DeleteResponse
        {
            ExitStatus = (uint)Signals.ExitStatus(Signals.SIGKILL),
            ExitedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        };
        using var stdout = Console.OpenStandardOutput();
        response.WriteTo(stdout);
        return 0;
    }

    private static async Task StopInLiveShimAsync(string bundlePath, string id, ILogger log)
    {
        var addressFile = Path.Combine(bundlePath, "address");
        if (!File.Exists(addressFile)) return;
        var socketPath = ShimAddress.FromUri(File.ReadAllText(addressFile).Trim());
        if (!ShimAddress.IsLive(socketPath)) return;
        try
        {
            await using var client = await TtrpcClient.ConnectAsync(socketPath).ConfigureAwait(false);
            var task = new TaskApi.Task.TaskClient(client.CreateCallInvoker());
            var deadline = DateTime.UtcNow.AddSeconds(3);
            await Ignore(task.KillAsync(new TaskApi.KillRequest { Id = id, Signal = Signals.SIGKILL, All = true }, deadline: deadline).ResponseAsync).ConfigureAwait(false);
            await Ignore(task.WaitAsync(new TaskApi.WaitRequest { Id = id }, deadline: deadline).ResponseAsync).ConfigureAwait(false);
            await Ignore(task.DeleteAsync(new TaskApi.DeleteRequest { Id = id }, deadline: deadline).ResponseAsync).ConfigureAwait(false);
            await Ignore(task.ShutdownAsync(new TaskApi.ShutdownRequest { Id = id }, deadline: deadline).ResponseAsync).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            log.Warning(e, "could not stop {Id} in its shim", id);
        }
    }

    // NotFound here just means the shim has already let go of the task.
    private static async Task Ignore(Task call)
    {
        try
        {
            await call.ConfigureAwait(false);
        }
        catch (RpcException)
        {
        }
    }
}

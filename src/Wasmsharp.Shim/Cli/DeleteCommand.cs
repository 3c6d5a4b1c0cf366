using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Serilog;
using Wasmsharp.Linux;
using Wasmsharp.Ttrpc;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

/// <summary>
/// `shim delete`: containerd's cleanup after every task delete and after a shim died. Idempotent. If a
/// shim still runs the container (containerd lost track of it), ask it to kill and delete the task
/// rather than kill the shim, which may serve other containers of its group. Then delete a native container runc
/// still has, and unmount the rootfs.
/// </summary>
internal static partial class DeleteCommand
{
    public static async Task<int> RunAsync(ShimOptions options, ILogger log)
    {
        var bundlePath = string.IsNullOrEmpty(options.Bundle) ? Directory.GetCurrentDirectory() : options.Bundle;
        var address = ReadAddress(bundlePath);
        StartupTrace.Mark("delete: address read");
#if !WASMSHARP_GRPC
        // Only the gRPC binary has a gRPC client: let it do the whole delete.
        if (address is { Protocol: ShimProtocol.Grpc } && File.Exists(StartCommand.GrpcDaemonPath))
            return await DelegateToGrpcBinaryAsync(options).ConfigureAwait(false);
#endif
        var deadInode = address is { } a ? SocketInode(a.SocketPath) : null; // looked at before it is found dead
        if (address is { } live && ShimAddress.IsLive(live.SocketPath))
        {
            await StopInLiveShimAsync(live, options.Id, log).ConfigureAwait(false);
        }
        else if (address is { } dead && deadInode is { } inode && !Grouped(bundlePath, options.Id))
        {
            // Its shim died without removing its socket (killed -9, say): nobody listens there, as runc's
            // shim also cleans up. Not a group's name: containerd runs this after a grouped shim closed, when a
            // `start` may have made the group's next shim there already (a stale name is replaced by `start`
            // anyway). And only the very file found dead, never one bound since.
            try
            {
                if (SocketInode(dead.SocketPath) == inode) File.Delete(dead.SocketPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Warning("cannot remove the socket {Socket} of a dead shim: {Error}", dead.SocketPath, e.Message);
            }
        }
        // A native container left by a dead shim still runs under runc, holding its rootfs: runc deletes it first.
        Native.NativeContainer.DeleteLeftover(options.Namespace, options.Id, bundlePath, log);
        try
        {
            // Our rootfs goes with all that is mounted in it; a rootfs its client mounted stays, less the spec's mounts
            // the shim made in it (Docker's overlay2 unmounts with MNT_DETACH, taking them along; a client may not).
            Linux.Mounts.UnmountAll(Path.Combine(bundlePath, "rootfs"));
            if (!Bundle.WasReleased(bundlePath) && Bundle.ClientRootfs(bundlePath) is { } clients)
                Linux.RootfsMounts.UnmountBeneath(clients);
        }
        catch (Exception e)
        {
            log.Warning(e, "unmounting the rootfs of {Id} failed", options.Id);
        }
        StartupTrace.Mark("delete: unmounted");
        if (!Bundle.WasReleased(bundlePath)) ContainerCgroup.RemoveLeftover(bundlePath, log);
        // As runc reports for a process it could not reap: killed (SIGKILL).
        StartupTrace.Mark("delete: cleaned");
        var response = new TaskApi.DeleteResponse
        {
            ExitStatus = (uint)Signals.ExitStatus(Signals.SIGKILL),
            ExitedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        };
        using var stdout = Console.OpenStandardOutput();
        response.WriteTo(stdout);
        return 0;
    }

    private static long? SocketInode(string path) => Linux.Files.Inode(path) is var inode and >= 0 ? inode : null;

    // Whether the container's shim serves a group (a pod's, or an annotated one): its socket is not the container's alone.
    private static bool Grouped(string bundlePath, string id)
    {
        try
        {
            return ShimAddress.GroupId(id, Oci.Spec.LoadAnnotations(Path.Combine(bundlePath, "config.json"))) != id;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Oci.OciSpecException)
        {
            return true; // unknown: leave the name to `start`
        }
    }

    // The bundle's address file: what `start` printed (a plain address, or the JSON of a gRPC shim).
    private static ShimAddress.Reply? ReadAddress(string bundlePath)
    {
        try
        {
            return ShimAddress.ParseReply(File.ReadAllText(Path.Combine(bundlePath, "address")));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static async Task StopInLiveShimAsync(ShimAddress.Reply address, string id, ILogger log)
    {
        try
        {
            await using var client = await ConnectAsync(address).ConfigureAwait(false);
            var task = client.Task;
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

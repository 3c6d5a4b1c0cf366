using Google.Protobuf;
using Grpc.Core;
using Wasmsharp.Containerd.Api.Group;
using Wasmsharp.Ttrpc;

namespace Wasmsharp.Shim;

/// <summary>The two sides of <see cref="ShimGroup"/>'s reservation: the shim's ttrpc service and `start`'s call.</summary>
internal sealed class GroupService(ShimGroup group) : Group.GroupBase
{
    public const string ServiceName = "wasmsharp.group.v1.Group";

    public override Task<ReserveResponse> Reserve(ReserveRequest request, ServerCallContext context) =>
        group.TryReserve(request.Id)
            ? Task.FromResult(new ReserveResponse())
            : throw new RpcException(new Status(StatusCode.FailedPrecondition, "this shim is shutting down"));

    /// <summary>
    /// `start`'s side: reserves the live shim at <paramref name="socketPath"/> for container <paramref name="id"/>.
    /// False when nobody serves there or the shim is closing (its socket name is free then); true also for a shim
    /// that predates reservations (it answers Unimplemented) or one too busy to answer, as before them.
    /// </summary>
    public static bool TryReserve(string socketPath, string id)
    {
        if (!File.Exists(socketPath)) return false;
        try
        {
            return ReserveAsync(socketPath, id).GetAwaiter().GetResult();
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false; // nobody listens: a stale name
        }
    }

    private static async Task<bool> ReserveAsync(string socketPath, string id)
    {
        await using var client = await TtrpcClient.ConnectAsync(socketPath).ConfigureAwait(false);
        try
        {
            var payload = new ReserveRequest { Id = id }.ToByteArray();
            await client.CallAsync(ServiceName, "Reserve", payload, timeout: TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            return true;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.Unavailable)
        {
            return false;
        }
        catch (RpcException)
        {
            return true;
        }
    }
}

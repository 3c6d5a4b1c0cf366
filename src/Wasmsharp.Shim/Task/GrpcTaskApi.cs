namespace Wasmsharp.Shim;

/// <summary>
/// containerd's gRPC clients (1.7, 2.x) call task API v3, whose messages are v2's on the wire: the
/// generated v2 service is served, and called, under the v3 name.
/// </summary>
internal static class GrpcTaskApi
{
    public static readonly IReadOnlyDictionary<string, string> ServiceNames =
        new Dictionary<string, string> { ["containerd.task.v2.Task"] = "containerd.task.v3.Task" };
}

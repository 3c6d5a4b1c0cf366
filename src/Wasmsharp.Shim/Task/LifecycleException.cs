using Grpc.Core;

namespace Wasmsharp.Shim;

/// <summary>
/// A verb a process's state does not allow (<see cref="ProcessState"/>), with containerd's runc shim's words and
/// errdefs class: plain refusals are Unknown ("cannot delete a running process"), a kill of an ended process is
/// NotFound. <see cref="RpcErrors"/> turns it into the reply.
/// </summary>
internal sealed class LifecycleException(string message, StatusCode code = StatusCode.Unknown) : Exception(message)
{
    public StatusCode Code { get; } = code;
}

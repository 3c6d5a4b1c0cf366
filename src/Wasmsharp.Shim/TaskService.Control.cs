using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Wasmsharp.Containerd.Api.Events;
using TaskApi = Wasmsharp.Containerd.Api.Task;
using Status = Wasmsharp.Containerd.Api.Types.Status;

namespace Wasmsharp.Shim;

// Controls on a running container: stdin closing, pause and resume.
internal sealed partial class TaskService
{
    public override Task<Empty> CloseIO(TaskApi.CloseIORequest request, ServerCallContext context)
    {
        var process = Process(request.Id, request.ExecId);
        log.Debug("{Id}: close io (stdin {Stdin})", request.Id, request.Stdin);
        if (request.Stdin) process.Stdio.CloseStdin();
        return Task.FromResult(EmptyReply);
    }

    public override Task<Empty> Pause(TaskApi.PauseRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        if (!container.Init.Transition(Status.Running, Status.Paused))
        {
            throw Error(StatusCode.FailedPrecondition, $"cannot pause {request.Id}: it is {container.Init.Status.ToString().ToLowerInvariant()}");
        }
        // Like a frozen cgroup: every running process of the container stops, execs included.
        foreach (var process in container.All.Where(p => p == container.Init || p.Transition(Status.Running, Status.Paused)))
        {
            Try(request.Id, process, "pause", p => p.Instance.Pause());
        }
        events.Publish("/tasks/paused", new TaskPaused { ContainerId = request.Id });
        log.Information("{Id}: paused", request.Id);
        return Task.FromResult(EmptyReply);
    }

    public override Task<Empty> Resume(TaskApi.ResumeRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        if (!container.Init.Transition(Status.Paused, Status.Running))
        {
            throw Error(StatusCode.FailedPrecondition, $"cannot resume {request.Id}: it is {container.Init.Status.ToString().ToLowerInvariant()}");
        }
        foreach (var process in container.All.Where(p => p == container.Init || p.Transition(Status.Paused, Status.Running)))
        {
            Try(request.Id, process, "resume", p => p.Instance.Resume());
        }
        events.Publish("/tasks/resumed", new TaskResumed { ContainerId = request.Id });
        log.Information("{Id}: resumed", request.Id);
        return Task.FromResult(EmptyReply);
    }

    // A process that ended (or is being killed) meanwhile cannot be paused or resumed: nothing to do.
    private void Try(string id, WasmProcess process, string what, Action<WasmProcess> action)
    {
        try
        {
            action(process);
        }
        catch (InvalidOperationException e)
        {
            log.Debug("{Id}: {Process} not {What}d: {Reason}", id, process.Id, what, e.Message);
        }
    }
}

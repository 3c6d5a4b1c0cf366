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
        SetPaused(request.Id, paused: true);
        events.Publish("/tasks/paused", new TaskPaused { ContainerId = request.Id });
        return Task.FromResult(EmptyReply);
    }

    public override Task<Empty> Resume(TaskApi.ResumeRequest request, ServerCallContext context)
    {
        SetPaused(request.Id, paused: false);
        events.Publish("/tasks/resumed", new TaskResumed { ContainerId = request.Id });
        return Task.FromResult(EmptyReply);
    }

    // Like a frozen cgroup: every live process of the container stops (or continues), execs included.
    private void SetPaused(string id, bool paused)
    {
        var container = Find(id);
        var (from, to, verb) = paused ? (Status.Running, Status.Paused, "pause") : (Status.Paused, Status.Running, "resume");
        if (!container.Init.Transition(from, to))
        {
            // Unknown, as runc's "cannot pause a paused container" reaches clients.
            throw Error(StatusCode.Unknown, $"cannot {verb} {id}: it is {container.Init.Status.ToString().ToLowerInvariant()}");
        }
        foreach (var process in container.All.Where(p => p == container.Init || p.Transition(from, to)))
        {
            try
            {
                if (paused) process.Guest.Pause(); else process.Guest.Resume();
            }
            catch (Native.RuncException e) when (process == container.Init)
            {
                // runc could not freeze (or thaw) the container: it stays as it was.
                container.Init.Transition(to, from);
                throw Error(StatusCode.Unknown, e.Message);
            }
            catch (InvalidOperationException e)
            {
                // It ended (or is being killed) meanwhile: nothing to hold or release.
                log.Debug("{Id}: {Process} not {Verb}d: {Reason}", id, process.Id, verb, e.Message);
            }
        }
        log.Information("{Id}: {Verb}d", id, verb);
    }
}

using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Wasmsharp.Containerd.Api.Events;
using TaskApi = Wasmsharp.Containerd.Api.Task;

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

    // Like a frozen cgroup: every live process of the container stops (or continues), execs included. The init's
    // state decides, in runc's words (ProcessState); its execs follow where they can.
    private void SetPaused(string id, bool paused)
    {
        var container = Find(id);
        Func<ProcessState, ProcessState> verb = paused ? s => s.Pause() : s => s.Resume();
        Func<ProcessState, ProcessState> undo = paused ? s => s.Resume() : s => s.Pause();
        var word = paused ? "pause" : "resume";
        try
        {
            container.Init.Apply(verb);
        }
        catch (LifecycleException e)
        {
            throw RpcErrors.From(e);
        }
        foreach (var process in container.All.Where(p => p == container.Init || p.Follow(verb)))
        {
            try
            {
                if (paused) process.Guest.Pause(); else process.Guest.Resume();
            }
            catch (Native.RuncException e) when (process == container.Init)
            {
                // runc could not freeze (or thaw) the container: it stays as it was.
                container.Init.Follow(undo);
                throw RpcErrors.From(e);
            }
            catch (InvalidOperationException e)
            {
                // It ended (or is being killed) meanwhile: nothing to hold or release.
                log.Debug("{Id}: {Process} not {Verb}d: {Reason}", id, process.Id, word, e.Message);
            }
        }
        log.Information("{Id}: {Verb}d", id, word);
    }
}

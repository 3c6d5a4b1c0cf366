using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Containerd.Api.Types;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim;

/// <summary>
/// One containerd "process" (the init of a container, or an exec): what runs for it (<see cref="IGuest"/>: a Wasm
/// guest, or a pod sandbox's stand-in for pause), its stdio, and its exit, recorded once so Wait, State, TaskExit
/// and Delete all report the same values.
/// </summary>
internal sealed class TaskProcess : IDisposable
{
    private readonly object _gate = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Status _status = Status.Created;

    public string Id { get; }
    public IGuest Guest { get; }
    public Stdio Stdio { get; }
    public uint Pid { get; }
    public uint ExitStatus { get; private set; }
    public Timestamp? ExitedAt { get; private set; }
    public Task Exited => _exited.Task;

    public TaskProcess(string id, IGuest guest, Stdio stdio)
    {
        Id = id;
        Guest = guest;
        Stdio = stdio;
        Pid = (uint)guest.ThreadId;
    }

    public Status Status
    {
        get { lock (_gate) return _status; }
    }

    /// <summary>Marks the process running; false if it already ended (e.g. killed while created).</summary>
    public bool MarkRunning()
    {
        lock (_gate)
        {
            if (_status != Status.Created) return false;
            _status = Status.Running;
            return true;
        }
    }

    /// <summary>Moves between RUNNING and PAUSED; false if the process is not in <paramref name="from"/>.</summary>
    public bool Transition(Status from, Status to)
    {
        lock (_gate)
        {
            if (_status != from) return false;
            _status = to;
            return true;
        }
    }

    /// <summary>Records the exit; returns false if it was already recorded.</summary>
    public bool RecordExit(int exitCode)
    {
        lock (_gate)
        {
            if (_status == Status.Stopped) return false;
            _status = Status.Stopped;
            ExitStatus = (uint)exitCode;
            ExitedAt = Timestamp.FromDateTime(DateTime.UtcNow);
        }
        _exited.TrySetResult();
        return true;
    }

    public void Dispose()
    {
        Guest.Dispose();
        Stdio.Dispose();
    }
}

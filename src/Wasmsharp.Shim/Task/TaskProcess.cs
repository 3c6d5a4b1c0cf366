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
    private ProcessState _state = ProcessState.Created;

    public string Id { get; }
    public IGuest Guest { get; }
    public Stdio Stdio { get; }
    private uint _pid;
    // Exit events wait while a Start is announcing the process (see HoldExitEvents).
    private readonly ManualResetEventSlim _notStarting = new(true);

    /// <summary>Its pid: the guest's, known from Create on (a native exec's from its Start on).</summary>
    public uint Pid
    {
        get
        {
            if (_pid == 0) _pid = (uint)Guest.ThreadId;
            return _pid;
        }
    }
    public uint ExitStatus { get; private set; }
    public Timestamp? ExitedAt { get; private set; }
    public Task Exited => _exited.Task;
    private readonly TaskCompletionSource _exitPublished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once its /tasks/exit was handed to the event sink (an init's waits for its execs').</summary>
    public Task ExitPublished => _exitPublished.Task;

    public void MarkExitPublished() => _exitPublished.TrySetResult();

    public TaskProcess(string id, IGuest guest, Stdio stdio)
    {
        Id = id;
        Guest = guest;
        Stdio = stdio;
        _pid = (uint)guest.ThreadId;
    }

    /// <summary>
    /// Held by Start while the process is started and its start event published: an exit it reaches meanwhile is
    /// recorded and published only after (<see cref="WaitUntilAnnounced"/>), so its TaskExit follows its start event
    /// even when the pid to announce is known only once it runs (a native exec).
    /// </summary>
    public IDisposable HoldExitEvents()
    {
        _notStarting.Reset();
        return new Release(_notStarting);
    }

    public void WaitUntilAnnounced() => _notStarting.Wait(TimeSpan.FromSeconds(30));

    private sealed class Release(ManualResetEventSlim gate) : IDisposable
    {
        public void Dispose() => gate.Set();
    }

    public Status Status
    {
        get { lock (_gate) return _state.Status; }
    }

    public ProcessState State
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>Applies a verb of the lifecycle table (<see cref="ProcessState"/>): the state it leads to, or its
    /// <see cref="LifecycleException"/> with the state unchanged.</summary>
    public void Apply(Func<ProcessState, ProcessState> verb)
    {
        lock (_gate) _state = verb(_state);
    }

    /// <summary>Checks a verb that leaves the state as it is (Kill, Delete, Exec on the init).</summary>
    public void Check(Action<ProcessState> verb)
    {
        lock (_gate) verb(_state);
    }

    /// <summary>An init or exec paused or resumed with its container: follows when it can, silently otherwise
    /// (created or ended meanwhile); true when it did.</summary>
    public bool Follow(Func<ProcessState, ProcessState> verb)
    {
        lock (_gate)
        {
            try
            {
                _state = verb(_state);
                return true;
            }
            catch (LifecycleException)
            {
                return false;
            }
        }
    }

    /// <summary>Marks it deleted (after Delete's check passed and it ended).</summary>
    public void MarkDeleted()
    {
        lock (_gate) _state = ProcessState.Deleted;
    }

    /// <summary>Records the exit; returns false if it was already recorded.</summary>
    public bool RecordExit(int exitCode)
    {
        lock (_gate)
        {
            var next = _state.SetExited();
            if (next == _state) return false;
            _state = next;
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

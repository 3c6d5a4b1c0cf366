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

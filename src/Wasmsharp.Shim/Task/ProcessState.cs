using Grpc.Core;
using Status = Wasmsharp.Containerd.Api.Types.Status;

namespace Wasmsharp.Shim;

/// <summary>
/// The lifecycle of a containerd process — created, running, paused, stopped, deleted — as containerd's runc shim
/// has it (pkg/process: init_state.go, exec_state.go, deleted_state.go): each state answers each verb with the
/// state it leads to or a <see cref="LifecycleException"/> in runc's words. One table for an init and its execs,
/// so they cannot drift; the verbs that differ (an exec's Kill before its Start; Pause, Resume and Exec, which
/// only a container has) say so. <see cref="TaskProcess"/> applies a verb under its lock; what runs for the
/// process (<see cref="IGuest"/>) is driven by the caller once the state allowed it.
/// </summary>
internal abstract class ProcessState
{
    public static readonly ProcessState Created = new CreatedState();
    public static readonly ProcessState Running = new RunningState();
    public static readonly ProcessState Paused = new PausedState();
    public static readonly ProcessState Stopped = new StoppedState();
    public static readonly ProcessState Deleted = new DeletedState();

    /// <summary>What State reports (a deleted process reports stopped, as runc's does).</summary>
    public abstract Status Status { get; }

    public abstract string Name { get; }

    public override string ToString() => Name;

    public virtual ProcessState Start() => throw Refused($"cannot start a {Name} process");

    /// <summary>Whether Delete may go on (it then ends a created process and marks it <see cref="Deleted"/>).</summary>
    public virtual void Delete() => throw Refused($"cannot delete a {Name} process");

    /// <summary>Whether a signal may be sent. An exec that has not started has no process to signal.</summary>
    public virtual void Kill(bool exec) { }

    public virtual ProcessState Pause() => throw Refused($"cannot pause a {Name} container");

    public virtual ProcessState Resume() => throw Refused($"cannot resume a {Name} container");

    /// <summary>Whether an exec may be added to the container whose init is in this state.</summary>
    public virtual void Exec() => throw Refused($"cannot exec in a {Name} state");

    /// <summary>The state after the process ended; itself when it had ended already.</summary>
    public virtual ProcessState SetExited() => Stopped;

    protected static LifecycleException Refused(string message) => new(message);

    private sealed class CreatedState : ProcessState
    {
        public override Status Status => Status.Created;
        public override string Name => "created";
        public override ProcessState Start() => Running;
        public override void Delete() { }
        public override void Kill(bool exec)
        {
            if (exec) throw new LifecycleException("process not created", StatusCode.FailedPrecondition);
        }
        public override ProcessState Pause() => throw Refused("cannot pause task in created state");
        public override ProcessState Resume() => throw Refused("cannot resume task in created state");
        public override void Exec() { }
    }

    private sealed class RunningState : ProcessState
    {
        public override Status Status => Status.Running;
        public override string Name => "running";
        public override ProcessState Pause() => Paused;
        public override ProcessState Resume() => throw Refused("cannot resume a running process");
        public override void Exec() { }
    }

    private sealed class PausedState : ProcessState
    {
        public override Status Status => Status.Paused;
        public override string Name => "paused";
        public override ProcessState Resume() => Running;
    }

    private sealed class StoppedState : ProcessState
    {
        public override Status Status => Status.Stopped;
        public override string Name => "stopped";
        public override void Delete() { }
        public override void Kill(bool exec) => throw new LifecycleException("process already finished", StatusCode.NotFound);
        public override ProcessState SetExited() => this;
    }

    private sealed class DeletedState : ProcessState
    {
        public override Status Status => Status.Stopped;
        public override string Name => "deleted";
        public override ProcessState Start() => throw Refused("cannot start a deleted process");
        public override void Delete() => throw new LifecycleException("cannot delete a deleted process", StatusCode.NotFound);
        public override void Kill(bool exec) => throw new LifecycleException("cannot kill a deleted process", StatusCode.NotFound);
        public override ProcessState Pause() => throw Refused("cannot pause a deleted process");
        public override ProcessState Resume() => throw Refused("cannot resume a deleted process");
        public override ProcessState SetExited() => this;
    }
}

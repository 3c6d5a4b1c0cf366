using Wasmsharp.Linux;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// A process of a native container, run by runc as containerd's runc shim runs it: the init (made by runc create,
/// started by runc start) or an exec (runc exec --detach at Start). Its pid is the real process's, in our pid
/// namespace. Once runc has exited the process is our child (the shim is a child subreaper), and a thread of its
/// own waits for that pid alone, so no other wait of the shim (hooks, runc itself, .NET's) can take its exit; it is
/// tracked, so the <see cref="OrphanReaper"/> leaves it alone.
/// </summary>
internal sealed class NativeProcess : IGuest
{
    private readonly object gate = new();
    private readonly TaskCompletionSource<WasmExit> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly NativeContainer container;
    private readonly Func<int>? launch;
    private int pid;
    private bool launching;
    private bool ended;

    /// <summary>The init: runc create has made it (<paramref name="initPid"/>), waiting for runc start.</summary>
    public NativeProcess(NativeContainer container, int initPid)
    {
        this.container = container;
        pid = initPid;
        Reap(initPid);
    }

    /// <summary>An exec: <paramref name="launch"/> runs it (runc exec) at Start and returns its pid.</summary>
    public NativeProcess(NativeContainer container, Func<int> launch)
    {
        this.container = container;
        this.launch = launch;
    }

    private bool IsInit => launch is null;

    public int ThreadId
    {
        get { lock (gate) return pid; }
    }

    public bool InShim => false;

    public Task<WasmExit> Completion => completion.Task;

    /// <exception cref="RuncException">runc could not start it; an exec has then ended (status 255).</exception>
    public void Start()
    {
        if (IsInit)
        {
            container.Runc.Start(container.Id);
            return;
        }
        lock (gate)
        {
            if (ended) return;
            launching = true;
        }
        int started;
        try
        {
            // The exec may end before runc does: it must not be taken for an orphan before it is tracked.
            using (Processes.HoldReaping())
            {
                started = launch!();
                Processes.Track(started);
            }
        }
        catch (RuncException e)
        {
            End(new WasmExit(255, e.Message));
            throw;
        }
        bool killedMeanwhile;
        lock (gate)
        {
            launching = false;
            pid = started;
            killedMeanwhile = ended;
        }
        if (killedMeanwhile) Processes.Signal(started, Signals.SIGKILL);
        Reap(started);
    }

    public bool Kill(int signal)
    {
        lock (gate)
        {
            if (ended) return false;
            if (pid == 0)
            {
                // An exec not started (or being started): it ends without running, as if killed.
                if (!Signals.Terminates(signal)) return false;
                ended = true;
                if (launching) return true; // Start kills what runc made and reports its status
            }
        }
        if (ThreadId == 0)
        {
            completion.TrySetResult(new WasmExit(Signals.ExitStatus(signal), null));
            return true;
        }
        if (!IsInit) return Processes.Signal(ThreadId, signal);
        try
        {
            container.Runc.Kill(container.Id, signal, all: false);
            return true;
        }
        catch (RuncException e)
        {
            // Most often it ended meanwhile ("container not running").
            container.Log.Debug("{Id}: {Message}", container.Id, e.Message);
            return false;
        }
    }

    /// <summary>runc pause freezes the container's cgroup: its execs with it, so only the init acts.</summary>
    public void Pause()
    {
        if (IsInit) container.Runc.Pause(container.Id);
    }

    public void Resume()
    {
        if (IsInit) container.Runc.Resume(container.Id);
    }

    /// <summary>Its memory is the cgroup's (Stats reads it there), not the shim's.</summary>
    public long MemoryBytes => 0;

    /// <summary>Limits are the cgroup's: Update hands them to runc update.</summary>
    public long? MemoryLimitBytes { set { } }

    private void Reap(int child)
    {
        Processes.Track(child);
        new Thread(() =>
        {
            // null: not our child after all (reaped elsewhere): its status is lost, reported as runc's shim does.
            var status = Processes.WaitForExitStatus(child) ?? 255;
            // A kill whose notification has not arrived yet is published now, before the exit.
            if (IsInit) container.Oom?.Check();
            End(new WasmExit(status, null));
        }, 128 * 1024) { IsBackground = true, Name = $"reap {child}" }.Start();
    }

    private void End(WasmExit exit)
    {
        lock (gate) ended = true;
        completion.TrySetResult(exit);
    }

    public void Dispose()
    {
    }
}

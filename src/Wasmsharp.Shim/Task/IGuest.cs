using Wasmsharp.Wasm;

namespace Wasmsharp.Shim;

/// <summary>
/// What runs for one containerd process, as the task service drives it: a Wasm guest (<see cref="WasmGuest"/>),
/// a pod sandbox's stand-in for pause (<see cref="Sandbox.PodSandbox"/>), or a process of a native container run
/// by runc (<see cref="Native.NativeProcess"/>). Each answers every call in every state
/// (a kill of an ended guest is false, a pause of one that cannot run is a no-op), so the service holds no
/// per-kind branches.
/// </summary>
internal interface IGuest : IDisposable
{
    /// <summary>Kernel thread id reported as the process's pid: in the container's namespaces from Create on
    /// (a native exec's process exists only from Start on: 0 until then).</summary>
    int ThreadId { get; }

    /// <summary>
    /// It runs inside the shim: the shim carries out a kill at its next safe point (a read of stdin is interrupted,
    /// output nobody reads is discarded if it blocks), and a signal whose default action does not end a process
    /// has no effect. False for a native process, to which the kernel delivers every signal.
    /// </summary>
    bool InShim => true;

    /// <summary>Completes when it has ended (or was killed); never faults.</summary>
    Task<WasmExit> Completion { get; }

    void Start();

    /// <summary>Delivers <paramref name="signal"/>; false when it had ended (or the signal has no effect).</summary>
    bool Kill(int signal);

    /// <summary>Stops it at its next safe point; InvalidOperationException when it cannot be paused now.</summary>
    void Pause();

    void Resume();

    /// <summary>Memory it holds of its own (a Wasm guest's linear memories).</summary>
    long MemoryBytes { get; }

    /// <summary>Its memory limit (null = none); a new value applies at its next growth.</summary>
    long? MemoryLimitBytes { set; }
}

/// <summary>A Wasm guest as a containerd process.</summary>
internal sealed class WasmGuest(WasmInstance instance) : IGuest
{
    public int ThreadId => instance.ThreadId;
    public Task<WasmExit> Completion => instance.Completion;
    public void Start() => instance.Start();
    public bool Kill(int signal) => instance.Kill(signal);
    public void Pause() => instance.Pause();
    public void Resume() => instance.Resume();
    public long MemoryBytes => instance.MemoryBytes;
    public long? MemoryLimitBytes { set => instance.MemoryLimitBytes = value; }
    public void Dispose() => instance.Dispose();
}

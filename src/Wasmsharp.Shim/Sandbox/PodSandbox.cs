using Wasmsharp.Linux;
using Wasmsharp.Oci;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim.Sandbox;

/// <summary>
/// A pod's sandbox container (CRI's <c>io.kubernetes.cri.container-type: sandbox</c>), run in-process: nothing of
/// its image (pause, or whatever the cluster sets) runs. A thread of the shim stands in for pause: it enters the
/// pod's network namespace and cgroup, and its id is the sandbox's pid, so <c>/proc/PID/ns/net</c> is the pod's
/// namespace as with pause; the shim holds the namespace while the sandbox lives.
/// </summary>
/// <remarks>
/// Signals as pause answers them: SIGINT and SIGTERM end it with status 0 (pause's handler exits 0), every other
/// signal whose default action terminates ends it with 128+signal (SIGKILL: 137), the rest have no effect. Pause
/// and resume hold nothing (pause itself only waits).
/// </remarks>
internal sealed class PodSandbox : IGuest
{
    /// <summary>The annotation CRI sets on every container it creates, and its value for the sandbox.</summary>
    public const string ContainerTypeAnnotation = "io.kubernetes.cri.container-type", SandboxType = "sandbox";

    private readonly object gate = new();
    private readonly TaskCompletionSource<WasmExit> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool ended;

    public static bool IsSandbox(Spec spec) =>
        spec.Annotations.TryGetValue(ContainerTypeAnnotation, out var type) && type == SandboxType;

    /// <param name="threadSetup">puts the thread in the pod's network namespace (null: the host's).</param>
    /// <param name="threadScope">puts the thread in the pod's cgroup until it ends (null: none).</param>
    public PodSandbox(Action? threadSetup, Func<IDisposable?>? threadScope)
    {
        Exception? error = null;
        using var ready = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            IDisposable? scope = null;
            try
            {
                threadSetup?.Invoke();
                scope = threadScope?.Invoke();
                ThreadId = Processes.GetThreadId();
            }
            catch (Exception e)
            {
                error = e;
            }
            ready.Set();
            if (error is null)
            {
                lock (gate)
                    while (!ended) Monitor.Wait(gate);
            }
            scope?.Dispose();
        }, 128 * 1024) { IsBackground = true, Name = "pod sandbox" };
        thread.Start();
        ready.Wait();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
    }

    public int ThreadId { get; private set; }

    public Task<WasmExit> Completion => completion.Task;

    public void Start()
    {
    }

    public bool Kill(int signal)
    {
        if (!Signals.Terminates(signal)) return false;
        lock (gate)
        {
            if (ended) return false;
            ended = true;
            Monitor.PulseAll(gate);
        }
        var status = signal is Signals.SIGINT or Signals.SIGTERM ? 0 : Signals.ExitStatus(signal);
        completion.TrySetResult(new WasmExit(status, null));
        return true;
    }

    public void Pause()
    {
    }

    public void Resume()
    {
    }

    public long MemoryBytes => 0;

    public long? MemoryLimitBytes { set { } }

    public void Dispose() => Kill(Signals.SIGKILL);
}

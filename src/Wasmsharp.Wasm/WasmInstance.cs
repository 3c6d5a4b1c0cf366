using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// One guest: a Wasmtime store + instance living on a dedicated thread. Created by <see cref="WasmHost.Prepare"/>.
/// </summary>
/// <remarks>
/// <para><b>Killing.</b> The engine runs with epoch interruption. Every store gets a deadline of one tick and
/// an epoch-deadline callback: when the engine's epoch passes the deadline, wasm code calls the callback at
/// its next epoch check (function entry, loop back-edge). The callback throws if THIS instance has been
/// killed (the guest unwinds and ends), otherwise it returns 1, i.e. "continue, next deadline one tick
/// from now". <see cref="Kill"/> sets the flag and increments the epoch once, so stores pay only when some
/// instance is being killed — there is no periodic ticker.</para>
/// <para><b>Limitation.</b> A guest blocked inside a WASI call (poll_oneoff/sleep, fd_read on a stdin that
/// never ends) is not interrupted: it ends at the first epoch check after the call returns. Completion stays
/// pending until then, and its thread lives on (it is a background thread).</para>
/// </remarks>
public sealed class WasmInstance : IDisposable
{
    private const int SIGKILL = 9;

    private readonly WasmHost host;
    private readonly WasmModule module;
    private readonly WasiSpec spec;
    private readonly object gate = new();
    private readonly ManualResetEventSlim ready = new(false);
    private readonly ManualResetEventSlim go = new(false);   // Start, Kill or Dispose
    private readonly TaskCompletionSource<WasmExit> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int killSignal;        // 0 = not killed; read lock-free by the epoch callback
    private bool started, finished, disposed;
    private Exception? prepareError;
    private Action? entrypoint;
    private Store? store;

    internal WasmInstance(WasmHost host, WasmModule module, WasiSpec spec)
    {
        this.host = host;
        this.module = module;
        this.spec = spec;
    }

    public WasmModule Module => module;

    /// <summary>Kernel thread id (gettid) of the guest thread; valid once Prepare has returned.</summary>
    public int ThreadId { get; private set; }

    /// <summary>Completes when the guest has ended (or was killed); never faults.</summary>
    public Task<WasmExit> Completion => completion.Task;

    /// <summary>Started and not yet ended.</summary>
    public bool IsRunning
    {
        get
        {
            lock (gate)
                return started && !finished;
        }
    }

    internal void Launch(int stackBytes)
    {
        var thread = new Thread(GuestMain, stackBytes)
        {
            IsBackground = true,
            Name = "wasm " + System.IO.Path.GetFileName(module.Path),
        };
        thread.Start();
        ready.Wait();
        if (prepareError is not null)
            throw prepareError;
    }

    /// <summary>Lets the guest run its entrypoint. Throws InvalidOperationException when called twice.</summary>
    public void Start()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (started)
                throw new InvalidOperationException("the instance has already been started");
            started = true;
        }
        go.Set();
    }

    /// <summary>
    /// Ends the guest as a process without signal handlers would end on <paramref name="signal"/>: at its next
    /// epoch check, with Completion = 128+signal. Before Start, the guest never runs. Thread-safe, returns at
    /// once; the first terminating signal wins. Signals whose default action is to ignore (SIGCHLD, SIGCONT,
    /// SIGURG, SIGWINCH) or to stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU — stopping is not supported) and
    /// signal 0 have no effect.
    /// </summary>
    /// <returns>False when the guest had already ended (or the signal has no effect); true otherwise.</returns>
    public bool Kill(int signal)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(signal);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(signal, 64);
        lock (gate)
        {
            if (finished)
                return false;
            if (!Terminates(signal))
                return signal == 0;
            if (killSignal == 0)
                Volatile.Write(ref killSignal, signal);
        }
        go.Set();
        try
        {
            host.Engine.IncrementEpoch();
        }
        catch (ObjectDisposedException)
        {
            // Host disposed meanwhile: it only frees the engine once all guests ended.
        }
        return true;
    }

    /// <summary>Whether <paramref name="signal"/>'s default action ends a process.</summary>
    public static bool Terminates(int signal) => signal switch
    {
        <= 0 or > 64 => false,
        17 or 18 or 23 or 28 => false, // SIGCHLD SIGCONT SIGURG SIGWINCH: ignored
        19 or 20 or 21 or 22 => false, // SIGSTOP SIGTSTP SIGTTIN SIGTTOU: stop
        _ => true,
    };

    /// <summary>Kills the guest (SIGKILL) if it has not ended; its thread frees the store when it ends. Does not wait.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
                return;
            disposed = true;
        }
        Kill(SIGKILL);
    }

    private ulong OnEpochDeadline(Store _)
    {
        int signal = Volatile.Read(ref killSignal);
        if (signal != 0)
            throw new GuestKilledException(signal);
        return 1; // not us: continue until the next tick
    }

    private void GuestMain()
    {
        try
        {
            ThreadId = Native.CurrentThreadId();
            if (!Instantiate())
                return;
            go.Wait();

            Exception? error = null;
            if (Volatile.Read(ref killSignal) == 0)
            {
                try
                {
                    entrypoint!();
                }
                catch (Exception e)
                {
                    error = e;
                }
            }
            Finish(error);
        }
        catch (Exception e)
        {
            // Never let an exception escape a thread (it would end the process), never leave Prepare waiting.
            if (!ready.IsSet)
            {
                prepareError = new WasmModuleException($"{module.Path}: cannot prepare the instance: {e.Message}", e);
                Finish(prepareError, report: false);
                ready.Set();
            }
            else
            {
                Finish(e);
            }
        }
    }

    private bool Instantiate()
    {
        try
        {
            store = new Store(host.Engine);
            store.SetEpochDeadline(1);
            store.SetEpochDeadlineCallback(OnEpochDeadline);
            store.SetWasiConfiguration(WasiSetup.Build(spec)); // without it the first WASI call aborts the process
            var instance = host.Linker.Instantiate(store, module.Inner);
            entrypoint = instance.GetAction(spec.Entrypoint)
                ?? throw new WasmModuleException($"{module.Path} does not export a function '{spec.Entrypoint}' of type () -> ()");
            ready.Set();
            return true;
        }
        catch (Exception e)
        {
            var message = e is WasmModuleException ? e.Message : $"{module.Path}: cannot prepare the instance: {Describe(e)}";
            prepareError = e as WasmModuleException ?? new WasmModuleException(message, e);
            Finish(prepareError, report: false);
            ready.Set();
            return false;
        }
    }

    private static string Describe(Exception e) => e is WasmtimeException w ? ExitStatus.Describe(w) : e.Message;

    private void Finish(Exception? error, bool report = true)
    {
        int signal;
        lock (gate)
        {
            if (finished)
                return;
            finished = true;
            signal = killSignal;
        }
        var exit = report ? ExitStatus.FromOutcome(error, signal) : new WasmExit(ExitStatus.HostError, error?.Message);
        try
        {
            store?.Dispose();
        }
        catch (Exception)
        {
            // nothing sensible to do; the guest has ended anyway
        }
        store = null;
        entrypoint = null;
        host.Forget(this);
        completion.TrySetResult(exit);
    }
}

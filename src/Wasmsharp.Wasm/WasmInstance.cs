using System.Diagnostics;
using Wasmsharp.Linux;
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
/// instance is being killed or paused — there is no periodic ticker. (While a kill is pending the epoch is
/// nudged again a few times — after 10 ms, 100 ms and 1 s — because a callback running at that moment for
/// another instance's tick may have read the flag just before it was set.)</para>
/// <para><b>Sleeping.</b> WASI <c>poll_oneoff</c> is shadowed (<see cref="WasiPoll"/>): clock-only
/// subscriptions (every sleep of wasi-libc, Rust, Go…) wait on this instance's lock, which
/// <see cref="Kill"/>, <see cref="Pause"/> and <see cref="Resume"/> pulse, so a sleeping guest ends at once
/// when killed.</para>
/// <para><b>Pausing.</b> <see cref="Pause"/> sets a flag and ticks the epoch; the guest's next epoch check
/// (or its sleep in <c>poll_oneoff</c>) then blocks the guest thread until <see cref="Resume"/> or a kill.
/// See <see cref="Pause"/> for when it returns.</para>
/// <para><b>Blocked host calls.</b> A guest blocked inside another WASI call (fd_read on a stdin that never
/// ends, fd_write to a pipe nobody reads) cannot be interrupted: it ends at the first epoch check after
/// the call returns. So that a kill is still reported promptly, <see cref="Completion"/> completes with the
/// kill status after <see cref="KillGrace"/> anyway (<see cref="Abandoned"/> is then true); the thread
/// (a background thread) frees the store itself when the call returns. The caller's part is to make the
/// call return (close or drain the descriptors it is blocked on).</para>
/// </remarks>
public sealed class WasmInstance : IDisposable
{
    /// <summary>How long <see cref="Pause"/> waits for the guest to reach a safe point.</summary>
    internal static readonly TimeSpan PauseHoldTimeout = TimeSpan.FromSeconds(1);
    private static readonly int[] KillNudgesMs = [10, 100];

    /// <summary>How long a killed guest may take to stop before its exit is reported without it.</summary>
    public static readonly TimeSpan KillGrace = TimeSpan.FromMilliseconds(500);

    private readonly WasmHost host;
    private readonly WasmModule module;
    private readonly WasiSpec spec;
    // Guards every field below; also the monitor the guest thread waits on while sleeping or paused
    // (Kill, Pause, Resume and Finish pulse it).
    private readonly object gate = new();
    private readonly ManualResetEventSlim ready = new(false);
    private readonly ManualResetEventSlim go = new(false);   // Start, Kill or Dispose
    private readonly TaskCompletionSource<WasmExit> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int killSignal;        // 0 = not killed; read lock-free by the epoch callback
    private volatile bool paused;  // read lock-free by the epoch callback
    private bool held;             // paused and the guest thread is parked (or proven unable to run guest code)
    private bool started, finished, disposed;
    private long monotonicOrigin;  // Stopwatch timestamp ≈ the guest's CLOCK_MONOTONIC zero (see GuestMonotonicNow)
    private Function? originalPollOneoff; // Wasmtime's own poll_oneoff behind a trampoline, made on first use
    private SocketTable? sockets; // for modules importing WasmEdge's socket calls; used on the guest thread only
    private Exception? prepareError;
    // Set (under gate) when Launch stopped waiting for a long instantiation: its outcome is then the guest's exit.
    private bool detached;

    /// <summary>How long Prepare waits for instantiation, i.e. for a module's wasm start function: guest code that may
    /// never return (a hostile loop, or an AssemblyScript program's top level). Past it the instance counts as
    /// prepared, the start function runs on under the kill path, and how it ends is the guest's exit.</summary>
    internal static TimeSpan PrepareWait { get; set; } = TimeSpan.FromSeconds(2);
    private Action? entrypoint;
    private IDisposable? threadScope; // the spec's GuestThreadScope, held by the guest thread while it runs
    private Store? store;
    private readonly MemoryBudget memoryBudget;
    private volatile bool outOfMemory;

    internal WasmInstance(WasmHost host, WasmModule module, WasiSpec spec)
    {
        this.host = host;
        this.module = module;
        this.spec = spec;
        memoryBudget = new MemoryBudget(spec.MemoryLimitBytes ?? long.MaxValue, OnMemoryLimitExceeded);
        Descriptors = new GuestDescriptors(DescriptorPool.Process, spec.DescriptorLimit);
    }

    /// <summary>The guest's memory limit in bytes (null = none). Setting it takes effect at the guest's next
    /// memory growth; lowering it below what the guest holds takes nothing away, further growth fails.</summary>
    public long? MemoryLimitBytes
    {
        get => memoryBudget.Limit == long.MaxValue ? null : memoryBudget.Limit;
        set => memoryBudget.Limit = value is > 0 ? value.Value : long.MaxValue;
    }

    /// <summary>Bytes of linear memory the guest holds now.</summary>
    public long MemoryBytes => memoryBudget.Used;

    // On the guest thread, inside memory.grow (which fails): end the guest as the OOM killer would.
    private void OnMemoryLimitExceeded(long wanted)
    {
        outOfMemory = true;
        Kill(Signals.SIGKILL);
    }

    public WasmModule Module => module;

    /// <summary>Kernel thread id (gettid) of the guest thread; valid once Prepare has returned.</summary>
    public int ThreadId { get; private set; }

    /// <summary>Completes when the guest has ended (or was killed); never faults.</summary>
    public Task<WasmExit> Completion => completion.Task;

    /// <summary>Started and not yet ended (a paused guest is still running).</summary>
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
        if (!ready.Wait(PrepareWait))
        {
            lock (gate)
            {
                if (!ready.IsSet)
                {
                    detached = true;
                    return;
                }
            }
        }
        if (prepareError is not null)
            throw prepareError;
    }

    /// <summary>Lets the guest run its entrypoint. Throws InvalidOperationException when called twice.</summary>
    public void Start()
    {
        host.AwaitWarmUp();
        StartNow();
    }

    internal void StartNow()
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
    /// epoch check — at once when it sleeps in <c>poll_oneoff</c> or is paused — with Completion = 128+signal.
    /// Before Start, the guest never runs. Thread-safe, returns at once; the first terminating signal wins. Signals whose default action is to ignore (SIGCHLD, SIGCONT,
    /// SIGURG, SIGWINCH) or to stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU — stopping is not supported) and
    /// signal 0 have no effect.
    /// </summary>
    /// <returns>False when the guest had already ended (or the signal has no effect); true otherwise.</returns>
    public bool Kill(int signal)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(signal);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(signal, Signals.Max);
        bool first;
        lock (gate)
        {
            if (finished)
                return false;
            if (!Signals.Terminates(signal))
                return signal == 0;
            first = killSignal == 0;
            if (first)
            {
                Volatile.Write(ref killSignal, signal);
                Monitor.PulseAll(gate); // wakes a sleep in poll_oneoff, the pause gate, a waiting Pause
                sockets?.Wake();        // and a wait on sockets
            }
        }
        go.Set();
        TickEpoch();
        if (first)
            _ = NudgeUntilEnded(signal);
        return true;
    }

    /// <summary>
    /// True when a kill was reported while the guest thread was still blocked in a host call (see the
    /// remarks); the thread ends by itself once that call returns.
    /// </summary>
    public bool Abandoned { get; private set; }

    /// <summary>
    /// Re-ticks the epoch a few times while the kill is pending: an epoch callback that ran for another
    /// instance's tick may have read the kill flag just before it was set and armed its next deadline
    /// after our tick. Costs nothing to other guests beyond a callback each.
    /// </summary>
    private async Task NudgeUntilEnded(int signal)
    {
        var clock = Stopwatch.StartNew();
        foreach (var delay in KillNudgesMs)
        {
            await Task.Delay(delay).ConfigureAwait(false);
            if (completion.Task.IsCompleted)
                return;
            TickEpoch();
        }
        var left = KillGrace - clock.Elapsed;
        if (left > TimeSpan.Zero)
            await Task.Delay(left).ConfigureAwait(false);
        lock (gate)
        {
            if (finished)
                return;
            Abandoned = true;
        }
        TickEpoch();
        completion.TrySetResult(new WasmExit(Signals.ExitStatus(signal),
            $"killed by signal {signal}; the guest was blocked in a host call and is reported ended without waiting for it", Killed: true));
    }

    private void TickEpoch()
    {
        try
        {
            module.Engine.Engine.IncrementEpoch();
        }
        catch (ObjectDisposedException)
        {
            // Host disposed meanwhile: it only frees the engine once all guests ended.
        }
    }

    /// <summary>Paused by <see cref="Pause"/> and not resumed (false once the guest has ended).</summary>
    public bool IsPaused
    {
        get
        {
            lock (gate)
                return paused;
        }
    }

    /// <summary>
    /// Stops the running guest at its next safe point, like SIGSTOP: wasm code stops at its next epoch check
    /// (function entry, loop back-edge); a guest sleeping in <c>poll_oneoff</c> stays there — its sleep keeps
    /// counting wall-clock time and may end, but it does not return to guest code before <see cref="Resume"/>.
    /// A kill still ends a paused guest at once.
    /// </summary>
    /// <remarks>
    /// Returns once the guest thread is parked (at an epoch check or in the shadowed <c>poll_oneoff</c>),
    /// which takes microseconds for a guest running wasm code. If it is not parked within
    /// <see cref="PauseHoldTimeout"/> (1 s), the guest is inside another host call (a WASI call such as
    /// fd_read blocked on stdin): Pause then returns anyway, the guest counting as held, since it cannot run
    /// guest code before coming back through an epoch check, where it stops. While waiting, Pause re-ticks
    /// the epoch every 50 ms. <see cref="IsRunning"/> stays true while paused.
    /// </remarks>
    /// <exception cref="InvalidOperationException">not started, already ended (or ended while pausing),
    /// being killed, or already paused. <see cref="ObjectDisposedException"/> (also an
    /// InvalidOperationException) after <see cref="Dispose"/>.</exception>
    public void Pause()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!started)
                throw new InvalidOperationException("cannot pause: the instance has not been started");
            if (finished)
                throw new InvalidOperationException("cannot pause: the instance has ended");
            if (killSignal != 0)
                throw new InvalidOperationException("cannot pause: the instance is being killed");
            if (paused)
                throw new InvalidOperationException("cannot pause: the instance is already paused");
            paused = true;
            held = false;
            Monitor.PulseAll(gate); // a sleeping guest parks itself (held) at once
            sockets?.Wake();        // so does one waiting on sockets

            long until = Stopwatch.GetTimestamp() + (long)(PauseHoldTimeout.TotalSeconds * Stopwatch.Frequency);
            while (!held && !finished && killSignal == 0)
            {
                TickEpoch();
                long left = until - Stopwatch.GetTimestamp();
                if (left <= 0)
                    break; // inside a blocking host call: held by construction (see remarks)
                Monitor.Wait(gate, (int)Math.Min(50, GuestClock.CeilMilliseconds(left)));
            }
            if (finished)
                throw new InvalidOperationException("cannot pause: the instance ended before it could be paused");
            // killed meanwhile: the kill wins, the guest is ending anyway.
        }
    }

    /// <summary>Lets a paused guest continue.</summary>
    /// <exception cref="InvalidOperationException">the instance has ended, or is not paused.</exception>
    public void Resume()
    {
        lock (gate)
        {
            if (finished)
                throw new InvalidOperationException("cannot resume: the instance has ended");
            if (!paused)
                throw new InvalidOperationException("cannot resume: the instance is not paused");
            paused = false;
            held = false;
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>
    /// Called on the guest thread in host code, before it returns to guest code: blocks until the
    /// Stopwatch timestamp <paramref name="deadline"/> has passed and the instance is not paused; throws
    /// <see cref="GuestKilledException"/> as soon as it is killed. A deadline in the past only checks
    /// kill and pause.
    /// </summary>
    internal void WaitUntil(long deadline)
    {
        lock (gate)
        {
            while (true)
            {
                if (killSignal != 0)
                    throw new GuestKilledException(killSignal);
                if (paused)
                {
                    if (!held)
                    {
                        held = true;
                        Monitor.PulseAll(gate); // tell a waiting Pause
                    }
                    Monitor.Wait(gate);
                    continue;
                }
                long now = Stopwatch.GetTimestamp();
                if (now >= deadline)
                    return;
                long left = deadline - now;
                // Monitor.Wait has millisecond resolution: round up, loop until the deadline has really passed.
                Monitor.Wait(gate, (int)Math.Min(GuestClock.CeilMilliseconds(left), int.MaxValue));
            }
        }
    }

    /// <summary>The guest's CLOCK_MONOTONIC at the Stopwatch <paramref name="timestamp"/>, in ns (Wasmtime
    /// counts from the WASI context's creation).</summary>
    internal ulong GuestMonotonicNow(long timestamp)
    {
        long elapsed = timestamp - monotonicOrigin;
        return elapsed <= 0 ? 0 : GuestClock.TicksToNanoseconds((ulong)elapsed);
    }

    /// <summary>The guest's sockets (null for a module that imports no socket call). Guest thread only.</summary>
    internal SocketTable? Sockets => sockets;

    /// <summary>Wasmtime's own poll_oneoff for this store, callable from a host function (made on first use).</summary>
    internal Function OriginalPollOneoff(Store store, Memory memory) =>
        originalPollOneoff ??= module.Engine.MakeOriginalPollOneoff(store, memory);

    /// <summary>Wasmtime's own fd_fdstat_get for this store, callable from a host function (made on first use).</summary>
    internal Function OriginalFdstat(Store store, Memory memory) => Original(store, memory, "fd_fdstat_get");

    /// <summary>Wasmtime's own <paramref name="name"/> (one of <see cref="WasiOriginals.FdFunctions"/>) for this
    /// store on the guest's memory, callable from a host function (the trampoline is made on first use).</summary>
    internal Function Original(Store store, Memory memory, string name)
    {
        if (!originalFunctions.TryGetValue(name, out var function))
        {
            originalDelegates ??= module.Engine.Originals.MakeDelegates(store, memory);
            function = originalDelegates.GetFunction(name) ?? throw new InvalidOperationException($"the fd trampoline exports no {name}");
            originalFunctions[name] = function;
        }
        return function;
    }
    private Instance? originalDelegates;
    private readonly Dictionary<string, Function> originalFunctions = new(StringComparer.Ordinal);

    /// <summary>The files and sockets the guest opened, held to its limit (guest thread only).</summary>
    internal GuestDescriptors Descriptors { get; }

    internal WasiSpec Spec => spec;

    /// <summary>Kills the guest (SIGKILL) if it has not ended; its thread frees the store when it ends. Does not wait.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
                return;
            disposed = true;
        }
        Kill(Signals.SIGKILL);
    }

    private ulong OnEpochDeadline(Store _)
    {
        int signal = Volatile.Read(ref killSignal);
        if (signal != 0)
            throw new GuestKilledException(signal);
        if (paused)
            WaitUntil(long.MinValue); // parks until resumed; throws when killed meanwhile
        return 1; // continue until the next tick
    }

    private void GuestMain()
    {
        try
        {
            ThreadId = Native.CurrentThreadId();
            GuestMemory.CurrentBudget = memoryBudget; // memories are created and grown on this thread
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
            store = new Store(module.Engine.Engine, this); // poll_oneoff finds its instance through the store's data
            store.SetEpochDeadline(1);
            store.SetEpochDeadlineCallback(OnEpochDeadline);
            // Without a WASI configuration the first WASI call aborts the process. Components get p2's sockets
            // from it (modules get WasmEdge's from SocketTable).
            var wasi = WasiSetup.Build(spec, out var cwd);
            using (cwd) // Wasmtime reopens it through /proc/self/fd while the configuration is applied
            {
                try
                {
                    WasiNative.Apply(store, wasi, network: module.IsComponent && spec.NetworkAccess);
                }
                catch (Exception e) when (cwd is not null && e.Message.Contains(Files.ProcPath(cwd), StringComparison.Ordinal))
                {
                    throw new WasmModuleException(e.Message.Replace(Files.ProcPath(cwd), $"working directory {spec.Cwd}", StringComparison.Ordinal), e);
                }
            }
            // Wasmtime's monotonic clock counts from the WASI context's creation, inside the call above. Taking
            // the origin just after it makes our view of the guest's clock lag by the set-up time (µs): absolute
            // monotonic sleeps may end that much late, never early.
            monotonicOrigin = Stopwatch.GetTimestamp();
            // A module's start function is guest code: it runs in the container's cgroup and namespace. For a
            // component, threads Wasmtime starts while instantiating must inherit neither: the thread enters after.
            if (module.IsComponent)
            {
                entrypoint = ComponentRun.Instantiate(module.Engine.ComponentLinker, store, module, spec.Entrypoint);
                EnterContainer();
            }
            else
            {
                EnterContainer();
                InstantiateModule();
            }
            ready.Set();
            return true;
        }
        catch (Exception e)
        {
            bool reportAsExit;
            lock (gate)
            {
                reportAsExit = detached;
                if (!reportAsExit)
                {
                    var message = e is WasmModuleException ? e.Message : $"{module.Path}: cannot prepare the instance: {WasmErrorText.OneLine(Describe(e))}";
                    prepareError = e as WasmModuleException ?? new WasmModuleException(message, e);
                }
            }
            // Prepare has returned: the task exists, and the start function's trap or kill is its exit.
            Finish(reportAsExit ? e : prepareError, report: reportAsExit);
            ready.Set();
            return false;
        }
    }

    // The guest thread into the container's cgroup (held until Finish) and network namespace.
    private void EnterContainer()
    {
        threadScope = spec.GuestThreadScope?.Invoke();
        spec.ThreadSetup?.Invoke();
    }

    private void InstantiateModule()
    {
        var socketImports = module.Engine.SocketImportsOf(module); // throws for a socket import of no known type
        if (socketImports.Any)
        {
            var table = new SocketTable(this, module.Engine.Originals, store!, spec);
            lock (gate)
                sockets = table;
        }
        var instance = module.Engine.LinkerFor(socketImports, spec.StdioIsTerminal).Instantiate(store!, module.Inner);
        entrypoint = instance.GetAction(spec.Entrypoint)
            ?? throw new WasmModuleException($"{module.Path} does not export a function '{spec.Entrypoint}' of type () -> ()");
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
            paused = false;
            held = false;
            signal = killSignal;
            Monitor.PulseAll(gate); // a Pause waiting for the guest to park
            sockets?.Dispose();     // every socket the guest left open
            sockets = null;
        }
        var exit = report ? ExitStatus.FromOutcome(error, signal) : new WasmExit(ExitStatus.HostError, error?.Message);
        if (report && outOfMemory && signal == Signals.SIGKILL)
            exit = exit with { OutOfMemory = true, Message = $"killed: memory limit of {memoryBudget.Limit} bytes reached" };
        try
        {
            store?.Dispose();
        }
        catch (Exception)
        {
            // nothing sensible to do; the guest has ended anyway
        }
        store = null;
        Descriptors.Release(); // the store's files are closed, and the sockets above
        entrypoint = null;
        originalPollOneoff = null;
        originalDelegates = null;
        originalFunctions.Clear();
        host.Forget(this);
        try
        {
            threadScope?.Dispose(); // Finish runs on the guest thread
        }
        catch (Exception)
        {
            // the scope's owner reports its own failures
        }
        threadScope = null;
        completion.TrySetResult(exit);
    }
}

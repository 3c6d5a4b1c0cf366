using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Serilog;
using Wasmsharp.Containerd.Api.Events;
using Wasmsharp.Containerd.Api.Types;
using Wasmsharp.Linux;
using Wasmsharp.Oci;
using Wasmsharp.Shim.Hooks;
using Wasmsharp.Shim.Network;
using Wasmsharp.Shim.Sandbox;
using Wasmsharp.Wasm;
using TaskApi = Wasmsharp.Containerd.Api.Task;
using Status = Wasmsharp.Containerd.Api.Types.Status;

namespace Wasmsharp.Shim;

/// <summary>
/// containerd's task API over Wasm instances. Every RPC not overridden here answers Unimplemented
/// (the generated base class does that).
/// </summary>
internal sealed partial class TaskService(Task<WasmHost> hostReady, IEventSink events, ILogger log, string ns, Action requestShutdown)
    : TaskApi.Task.TaskBase
{
    public TaskService(WasmHost host, IEventSink events, ILogger log, string ns, Action requestShutdown)
        : this(Task.FromResult(host), events, log, ns, requestShutdown)
    {
    }

    // The daemon makes its Wasm engine while containerd connects; the first Create waits for it if need be.
    private WasmHost host => hostReady.GetAwaiter().GetResult();

    private static readonly Empty EmptyReply = new();
    private readonly ConcurrentDictionary<string, Container> _containers = new();
    // Ids being created: a second Create of one id is refused while the first runs, without serialising the
    // creates of different containers (a pod's or group's large first compile must not hold the others up).
    private readonly ConcurrentDictionary<string, byte> _creating = new();

    public int ContainerCount => _containers.Count;

    public override Task<TaskApi.CreateTaskResponse> Create(TaskApi.CreateTaskRequest request, ServerCallContext context)
    {
        StartupTrace.Mark("create: begin");
        if (string.IsNullOrEmpty(request.Id)) throw Error(StatusCode.InvalidArgument, "container id is required");
        if (!string.IsNullOrEmpty(request.Checkpoint)) throw Error(StatusCode.Unimplemented, "checkpoint/restore is not supported for Wasm containers");
        Container container;
        if (!Group.TryBeginCreate(request.Id)) throw Error(StatusCode.Unavailable, $"container {request.Id}: this shim is shutting down");
        var claimed = false;
        try
        {
            claimed = _creating.TryAdd(request.Id, 0);
            if (!claimed || _containers.ContainsKey(request.Id)) throw Error(StatusCode.AlreadyExists, $"container {request.Id}: already exists");
            container = CreateContainer(request);
            _containers[request.Id] = container;
        }
        finally
        {
            if (claimed) _creating.TryRemove(request.Id, out _);
            Group.EndCreate();
        }
        var init = container.Init;
        events.Publish("/tasks/create", new TaskCreate
        {
            ContainerId = request.Id,
            Bundle = request.Bundle,
            Rootfs = { request.Rootfs },
            Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
            Checkpoint = request.Checkpoint,
            Pid = init.Pid,
        });
        log.Information("created {Id} (pid {Pid})", request.Id, init.Pid);
        StartupTrace.Mark("create: done");
        Processes.TrimNativeHeap();
        return Task.FromResult(new TaskApi.CreateTaskResponse { Pid = init.Pid });
    }

    private Container CreateContainer(TaskApi.CreateTaskRequest request)
    {
        Bundle? bundle = null;
        ContainerCgroup? cgroup = null;
        ContainerNetwork? network = null;
        OciHooks? hooks = null;
        TaskProcess? init = null;
        try
        {
            bundle = Bundle.Load(request.Bundle);
            StartupTrace.Mark("create: bundle loaded");
            var process = bundle.Spec.Process ?? throw Error(StatusCode.InvalidArgument, "config.json has no process");
            // For runc's containers too: as runc would say it. Empty args only for an image the shim can look up (a Wasm
            // artifact's module layer is its program); the lookup reports them when the image is not one.
            SpecValidation.Process(process, "config.json: process", argsMayBeEmpty: ImageModules is not null);
            // Only the Wasm host reads the unwrapped args: runc runs config.json as it is, its init included.
            var injectedInit = InjectedInit.Unwrap(process, bundle.Spec.Mounts);
            var sandbox = PodSandbox.IsSandbox(bundle.Spec);
            if (!sandbox)
            {
                // Nothing of a sandbox's image runs, so its rootfs is not even mounted.
                if (request.Rootfs.Count > 0)
                {
                    bundle.MountRootfs(request.Rootfs);
                    StartupTrace.Mark("create: mounted");
                }
                if (IsNative(bundle, process)) return CreateNative(request, bundle);
            }
            if (!sandbox)
            {
                SpecValidation.BindSources(bundle.Spec); // runc checks its own (native) containers' mounts
                bundle.MountSpecMounts();
                StartupTrace.Mark("create: spec mounts made");
            }
            if (injectedInit) log.Information("{Id}: running the command without the injected init", request.Id);
            hooks = OciHooks.FromSpec(request.Id, bundle);
            var resources = ContainerResources.Parse(bundle.Spec.Linux?.Resources);
            network = ContainerNetwork.FromSpec(bundle.Spec, bundle.ConfigPath);
            StartupTrace.Mark("create: network " + network.Mode);
            var sysctls = network.CheckSysctls(bundle.Spec, bundle.ConfigPath);
            cgroup = ContainerCgroup.Create(bundle.Spec, resources, log);
            StartupTrace.Mark("create: cgroup created");
            if (sandbox)
            {
                init = PrepareSandbox(request, network, cgroup);
            }
            else
            {
                // ^C typed to an init: as its PID 1 (a PID namespace of its own) it ignores it, having no handler, as
                // runc's would; an injected init (tini) passes it on; in the host's or a pod's PID namespace it ends it.
                var pidOne = bundle.Spec.Linux?.Namespaces.Any(n => n.Type == "pid" && string.IsNullOrEmpty(n.Path)) == true;
                init = PrepareProcess(request.Id, request.Id, bundle, process, request.Stdin, request.Stdout, request.Stderr, request.Terminal, resources.MemoryLimit, cgroup, network,
                    terminalKeysSignal: injectedInit || !pidOne);
            }
            StartupTrace.Mark("create: prepared");
            cgroup?.JoinShim(); // after compiling: the compiler's transient peak is not the container's
            StartupTrace.Mark("create: joined");
            if (hooks is not null)
            {
                // As runc: prestart and createRuntime in the runtime's namespaces, then createContainer in the container's.
                foreach (var stage in (ReadOnlySpan<HookStage>)[HookStage.Prestart, HookStage.CreateRuntime, HookStage.CreateContainer])
                    hooks.Run(stage, (int)init.Pid, network.Namespace);
                StartupTrace.Mark("create: hooks run");
            }
            // After the hooks, as runc's init: a hook may have put the interfaces (net.ipv4.conf.eth0.*) in place.
            network.ApplySysctls(sysctls, bundle.ConfigPath);
            if (sysctls.Count > 0)
                log.Information("{Id}: sysctls set in its network namespace: {Sysctls}", request.Id, string.Join(", ", sysctls.Select(kv => $"{kv.Key}={kv.Value}")));
            var container = new Container(request.Id, bundle, init) { Cgroup = cgroup, MemoryLimit = resources.MemoryLimit, Network = network, Hooks = hooks };
            WatchExit(request.Id, init);
            return container;
        }
        catch
        {
            // Nothing of the container is left: its guest (never started), rootfs, cgroup, namespace; then, as
            // runc destroys a container it failed to create, its poststop hooks.
            init?.Dispose();
            if (bundle is not null) TryUnmount(bundle);
            cgroup?.Release();
            network?.Dispose();
            if (hooks is not null) RunPoststop(request.Id, hooks);
            throw;
        }
    }

    // A native program as argv[0] (found in the rootfs as the Wasm host would look for a module) goes to runc.
    private static bool IsNative(Bundle bundle, Oci.Process process)
    {
        try
        {
            using var entrypoint = bundle.OpenEntrypoint(process);
            return entrypoint.Kind == EntrypointKind.Native;
        }
        catch (EntrypointNotFoundException)
        {
            return false; // perhaps a Wasm artifact image: the Wasm path looks further
        }
    }

    /// <summary>
    /// A native container: runc create from config.json as it is. runc makes its namespaces and cgroup and runs its
    /// hooks, so none of ours is made; only the rootfs is mounted (by the caller, undone by it on failure).
    /// </summary>
    private Container CreateNative(TaskApi.CreateTaskRequest request, Bundle bundle)
    {
        // runc makes the terminal that config.json asks for and sends us its master.
        var stdio = new Stdio(request.Stdin, request.Stdout, request.Stderr, bundle.Spec.Process!.Terminal, request.Id, ns, consoleFromRuntime: true);
        Native.NativeContainer native;
        try
        {
            native = Native.NativeContainer.Create(request.Id, bundle, ns, stdio, () => PublishKernelOom(request.Id), log);
        }
        catch
        {
            stdio.Dispose();
            throw;
        }
        StartupTrace.Mark("create: runc created");
        var init = new TaskProcess(request.Id, native.Init, stdio);
        var container = new Container(request.Id, bundle, init) { Native = native, Cgroup = null };
        WatchExit(request.Id, init);
        return container;
    }

    private TaskProcess PrepareSandbox(TaskApi.CreateTaskRequest request, ContainerNetwork network, ContainerCgroup? cgroup)
    {
        var stdio = new Stdio(request.Stdin, request.Stdout, request.Stderr, request.Terminal, request.Id, ns);
        try
        {
            var sandbox = new PodSandbox(network.ThreadSetup, cgroup is null ? null : cgroup.EnterGuestThread);
            log.Information("{Id}: pod sandbox in network namespace {Network}: its image does not run", request.Id, network.Mode);
            return new TaskProcess(request.Id, sandbox, stdio);
        }
        catch
        {
            stdio.Dispose();
            throw;
        }
    }

    private void RunPoststop(string id, OciHooks hooks)
    {
        try
        {
            hooks.Run(HookStage.Poststop, 0, null);
        }
        catch (Exception e) when (e is HookException or LinuxException)
        {
            log.Warning("{Id}: {Message}", id, e.Message); // the spec: a failing poststop hook is only logged
        }
    }

    /// <summary>
    /// Resolves, compiles and instantiates a process's module; the guest waits for Start. Its exit is watched
    /// only once the caller has registered it (<see cref="WatchExit"/>): a failed create publishes no exit.
    /// </summary>
    private TaskProcess PrepareProcess(string containerId, string processId, Bundle bundle, Oci.Process process,
        string stdin, string stdout, string stderr, bool terminal, long? memoryLimit, ContainerCgroup? cgroup, ContainerNetwork network,
        bool terminalKeysSignal = true)
    {
        Stdio? stdio = null;
        try
        {
            var (module, moduleName, export, args) = LoadModule(containerId, bundle, process, baselineFirstRun: memoryLimit is null);
            log.Information("{Id}: module {Module} {Origin} in {LoadMs:0.0} ms (compile {CompileMs:0.0} ms{Tier})",
                processId, moduleName, module.Origin, module.LoadTime.TotalMilliseconds, module.CompileTime.TotalMilliseconds,
                !module.Baseline ? "" : module.OptimisingHere ? ", baseline: the optimised code for the cache is compiled in the background"
                    : ", baseline: the optimised code for the cache is being compiled by another shim");
            if (module.CacheProblem is { } problem) log.Warning("{Id}: module cache: {Problem}", processId, problem);
            // A component blocked in a p2 call outlives a kill with its WASI context (see ComponentRun), and with it
            // Wasmtime's descriptors on its stdio: pumped output lets its FIFOs' readers see end-of-file at its exit.
            stdio = new Stdio(stdin, stdout, stderr, terminal, containerId, ns, pumpOutput: module.IsComponent);
            foreach (var fifo in stdio.FifosWithoutReader)
            {
                log.Warning("{Id}: nobody began reading {Fifo} within {Seconds} s; output written before a reader opens it may be lost",
                    processId, fifo, Stdio.ReaderWait.TotalSeconds);
            }
            var instance = host.Prepare(module, new WasiSpec
            {
                Args = args.ToList(),
                Env = GuestEnvironment.For(process),
                Preopens = bundle.Preopens(),
                Cwd = process.Cwd,
                CreateCwd = processId == containerId,
                StdinPath = stdio.GuestStdin,
                StdoutPath = stdio.GuestStdout,
                StderrPath = stdio.GuestStderr,
                Entrypoint = export,
                MemoryLimitBytes = memoryLimit,
                GuestThreadScope = cgroup is null ? null : cgroup.EnterGuestThread,
                ThreadSetup = network.ThreadSetup,
                // The guest thread is in the container's namespace (or the host's, when the spec asks for it).
                NetworkAccess = true,
                StdioIsTerminal = stdio.Terminal,
                DescriptorLimit = process.OpenFileLimit is { } limit ? (long)Math.Min(limit, long.MaxValue) : null,
                HostsFile = bundle.EtcFile("hosts"),
                ResolvConf = bundle.EtcFile("resolv.conf"),
            });
            var task = new TaskProcess(processId, new WasmGuest(instance), stdio);
            if (terminalKeysSignal)
            {
                stdio.OnTerminalSignal = signal =>
                {
                    log.Information("{Id}: {Signal} typed into its terminal", processId, Signals.Name(signal));
                    Terminate(task, signal);
                };
            }
            return task;
        }
        catch
        {
            stdio?.Dispose();
            throw;
        }
    }

    private void WatchExit(string containerId, TaskProcess process)
    {
        process.Guest.Completion.ContinueWith(t =>
        {
            process.WaitUntilAnnounced();
            var exit = t.IsCompletedSuccessfully ? t.Result : new WasmExit(255, t.Exception?.GetBaseException().Message);
            StartupTrace.Mark("guest ended");
            if (exit.Message is not null)
            {
                log.Warning("{Id}: guest ended with {Code}: {Message}", process.Id, exit.ExitCode, exit.Message);
            }
            // As Wasmtime's CLI: a trap's or host error's text on the process's stderr (`docker logs`), the containerd
            // log aside. Not a native process's: runc says nothing there.
            if (process.Guest is WasmGuest && exit.Failure is { } failure) process.Stdio.WriteDiagnostic($"Error: {failure}\n");
            // Before the exit is visible: a client that saw it may wait for end-of-file on the FIFOs.
            process.Stdio.CloseOutput();
            var isInit = process.Id == containerId;
            _containers.TryGetValue(containerId, out var container);
            bool recorded;
            // An init's exit and an exec's start are ordered by the container's gate: an exec either started
            // before (and the sweep below ends it) or sees the init stopped and is refused.
            lock (isInit && container is not null ? container.ExecGate : process)
                recorded = process.RecordExit(exit.ExitCode);
            if (!recorded)
            {
                process.MarkExitPublished();
                return;
            }
            log.Information("{Id} exited with {Code}", process.Id, exit.ExitCode);
            if (isInit && container is not null)
            {
                // As runc's shim: the init's exit is the container's last; its execs are ended and their exits
                // published first (an exec still blocked in a host call is reported ended after KillGrace).
                var execs = container.Execs.Values.Where(e => !e.ExitPublished.IsCompleted).ToList();
                foreach (var exec in execs) Terminate(exec, Signals.SIGKILL);
                if (!Task.WhenAll(execs.Select(e => e.ExitPublished)).Wait(ExecsEndWithin))
                    log.Warning("{Id}: execs still running {Seconds} s after the init's exit; publishing it anyway", containerId, ExecsEndWithin.TotalSeconds);
            }
            if (exit.OutOfMemory) PublishOom(containerId); // before the exit, as runc's shim does
            StartupTrace.Mark("exit recorded");
            events.Publish("/tasks/exit", new TaskExit
            {
                ContainerId = containerId,
                Id = process.Id,
                Pid = process.Pid,
                ExitStatus = process.ExitStatus,
                ExitedAt = process.ExitedAt,
            });
            process.MarkExitPublished();
        }, TaskScheduler.Default);
    }

    private static readonly TimeSpan ExecsEndWithin = TimeSpan.FromSeconds(10);

    /// <summary>Test seam: runs in an exec's Start between the check that its init has not stopped and the exec's
    /// own transition, where a test widens the window the container's gate closes.</summary>
    internal Action? AfterExecStartCheck { get; set; }

    /// <summary>Test seam: false takes the gate out of an exec's Start, to show a test fails without it.</summary>
    internal bool OrderExecStartWithInitExit { get; set; } = true;

    public override Task<TaskApi.StartResponse> Start(TaskApi.StartRequest request, ServerCallContext context)
    {
        StartupTrace.Mark("start rpc: begin");
        var process = Process(request.Id, request.ExecId);
        var container = Find(request.Id);
        var isInit = string.IsNullOrEmpty(request.ExecId);
        if (isInit && container.Hooks is { } hooks && hooks.Has(HookStage.StartContainer) && process.Status == Status.Created)
            RunStartHook(container, process, HookStage.StartContainer);
        // An exec's start and its init's exit are ordered by the container's gate: the exec either starts first
        // (and the init's exit sweep ends it) or sees the init stopped and is refused, in runc's shim's words.
        var gate = !isInit && OrderExecStartWithInitExit ? container.ExecGate : new object();
        // Its exit waits for the start event, published once it runs (a native exec's pid is known only then). Held
        // from before the gate: an init's exit sweep that ends this exec just after the gate must not publish the
        // exec's exit before its start.
        using (process.HoldExitEvents())
        {
            lock (gate)
            {
                if (!isInit && container.Init.Status == Status.Stopped)
                    throw Error(StatusCode.FailedPrecondition, $"container {request.Id} init process is not running");
                if (!isInit) AfterExecStartCheck?.Invoke();
                process.Apply(s => s.Start());
            }
            process.Guest.Start();
            StartupTrace.Mark("start rpc: guest started");
            if (string.IsNullOrEmpty(request.ExecId))
            {
                events.Publish("/tasks/start", new TaskStart { ContainerId = request.Id, Pid = process.Pid });
            }
            else
            {
                events.Publish("/tasks/exec-started", new TaskExecStarted { ContainerId = request.Id, ExecId = request.ExecId, Pid = process.Pid });
            }
        }
        if (isInit && container.Hooks is { } started && started.Has(HookStage.Poststart))
            RunStartHook(container, process, HookStage.Poststart);
        return Task.FromResult(new TaskApi.StartResponse { Pid = process.Pid });
    }

    // runc: a failing startContainer or poststart hook kills the container and fails Start with its message.
    private void RunStartHook(Container container, TaskProcess init, HookStage stage)
    {
        try
        {
            container.Hooks!.Run(stage, (int)init.Pid, container.Network!.Namespace);
        }
        catch (Exception e) when (e is HookException or LinuxException)
        {
            Terminate(init, Signals.SIGKILL);
            init.Exited.Wait(TimeSpan.FromSeconds(5));
            throw Error(StatusCode.Unknown, e.Message); // a hook's failure, even a system call's, is runc's Unknown
        }
    }

    public override async Task<TaskApi.WaitResponse> Wait(TaskApi.WaitRequest request, ServerCallContext context)
    {
        var process = Process(request.Id, request.ExecId);
        await process.Exited.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        return new TaskApi.WaitResponse { ExitStatus = process.ExitStatus, ExitedAt = process.ExitedAt };
    }

    public override Task<TaskApi.StateResponse> State(TaskApi.StateRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        var process = Process(request.Id, request.ExecId);
        var status = process.Status;
        return Task.FromResult(new TaskApi.StateResponse
        {
            Id = request.Id,
            ExecId = request.ExecId,
            Bundle = container.Bundle.Path,
            Pid = process.Pid,
            Status = status,
            Stdin = process.Stdio.Stdin,
            Stdout = process.Stdio.Stdout,
            Stderr = process.Stdio.Stderr,
            Terminal = process.Stdio.Terminal,
            ExitStatus = status == Status.Stopped ? process.ExitStatus : 0,
            ExitedAt = status == Status.Stopped ? process.ExitedAt : null,
        });
    }

    public override Task<Empty> Kill(TaskApi.KillRequest request, ServerCallContext context)
    {
        var process = Process(request.Id, request.ExecId);
        process.Check(s => s.Kill(exec: !string.IsNullOrEmpty(request.ExecId)));
        var signal = (int)request.Signal;
        if (Signals.Terminates(signal) || !process.Guest.InShim)
        {
            log.Information("{Id}: kill {Process} with {Signal}", request.Id, request.All ? "all" : ProcessName(request.Id, request.ExecId), Signals.Name(signal));
            var container = Find(request.Id);
            if (request.All && container.Native is { } native)
            {
                native.KillAll(signal); // every process of its cgroup, also those no exec started
                return Task.FromResult(EmptyReply);
            }
            var targets = request.All ? container.All : [process];
            foreach (var target in targets) Terminate(target, signal);
        }
        else
        {
            // Signal 0 probes for existence; SIGCHLD, SIGWINCH and friends are ignored by a process
            // without handlers, which is what a Wasm guest is.
            log.Debug("{Id}: signal {Signal} has no effect on a Wasm guest", request.Id, signal);
        }
        return Task.FromResult(EmptyReply);
    }

    // A terminating signal for a started process: the guest stops at its next safe point, and whatever
    // it may be blocked on in the host (a stdin read, a write nobody reads) is made to return.
    private void Terminate(TaskProcess process, int signal)
    {
        if (!process.Guest.Kill(signal) || !process.Guest.InShim) return;
        process.Stdio.InterruptStdin();
        _ = ReleaseIfBlocked(process);
    }

    // A killed guest normally stops within milliseconds; one still running after this is blocked in a
    // host call, most likely writing to output nobody reads.
    private static readonly TimeSpan BlockedAfter = TimeSpan.FromMilliseconds(150);

    private async Task ReleaseIfBlocked(TaskProcess process)
    {
        await Task.Delay(BlockedAfter).ConfigureAwait(false);
        if (process.Status == Status.Stopped) return;
        log.Warning("{Id}: still running {Ms} ms after the kill: discarding its unread output so it can stop", process.Id, BlockedAfter.TotalMilliseconds);
        process.Stdio.DiscardUnreadOutput();
    }

    public override async Task<TaskApi.DeleteResponse> Delete(TaskApi.DeleteRequest request, ServerCallContext context)
    {
        StartupTrace.Mark("delete rpc: begin");
        if (!string.IsNullOrEmpty(request.ExecId)) return await DeleteExec(request.Id, request.ExecId).ConfigureAwait(false);
        var container = Find(request.Id);
        var init = container.Init;
        await EndForDelete(init).ConfigureAwait(false);
        if (!_containers.TryRemove(request.Id, out _)) throw Error(StatusCode.NotFound, $"container {request.Id} not found");
        init.MarkDeleted();
        foreach (var exec in container.Execs.Values) exec.Dispose();
        init.Dispose();
        StartupTrace.Mark("delete rpc: disposed");
        // runc's delete first: what is left in a native container holds the rootfs; runc removes its cgroup.
        var nativeDeleted = container.Native?.Delete() ?? true;
        var unmounted = TryUnmount(container.Bundle);
        StartupTrace.Mark("delete rpc: unmounted");
        if ((container.Cgroup?.Release() ?? true) && unmounted && nativeDeleted) container.Bundle.MarkReleased();
        container.Network?.Dispose();
        StartupTrace.Mark("delete rpc: released");
        if (container.Hooks is { } hooks) RunPoststop(request.Id, hooks);
        events.Publish("/tasks/delete", new TaskDelete
        {
            ContainerId = request.Id,
            Pid = init.Pid,
            ExitStatus = init.ExitStatus,
            ExitedAt = init.ExitedAt,
            Id = request.Id,
        });
        log.Information("deleted {Id}", request.Id);
        return new TaskApi.DeleteResponse { Pid = init.Pid, ExitStatus = init.ExitStatus, ExitedAt = init.ExitedAt };
    }

    private async Task<TaskApi.DeleteResponse> DeleteExec(string id, string execId)
    {
        var container = Find(id);
        var exec = Process(id, execId);
        await EndForDelete(exec).ConfigureAwait(false);
        if (!container.Execs.TryRemove(execId, out _)) throw Error(StatusCode.NotFound, $"process does not exist {execId}");
        exec.MarkDeleted();
        exec.Dispose();
        // Like runc's shim: no TaskDelete event for an exec, only the response.
        log.Information("{Id}: deleted exec {ExecId}", id, execId);
        return new TaskApi.DeleteResponse { Pid = exec.Pid, ExitStatus = exec.ExitStatus, ExitedAt = exec.ExitedAt };
    }

    // Delete as the lifecycle table allows it (not while running or paused); a process never started is ended the
    // way runc ends it (SIGKILL), so its waiters are released.
    private static async Task EndForDelete(TaskProcess process)
    {
        process.Check(s => s.Delete());
        if (process.Status != Status.Created) return;
        process.Guest.Kill(Signals.SIGKILL);
        await process.Exited.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }

    public override Task<Empty> Exec(TaskApi.ExecProcessRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        if (string.IsNullOrEmpty(request.ExecId)) throw Error(StatusCode.InvalidArgument, "exec id is required");
        if (container.Execs.ContainsKey(request.ExecId)) throw Error(StatusCode.AlreadyExists, $"id {request.ExecId}: already exists");
        container.Init.Check(s => s.Exec());
        Oci.Process process;
        try
        {
            process = Oci.Process.Parse(request.Spec is null ? default : request.Spec.Value.Span);
            SpecValidation.Process(process, $"exec {request.ExecId}: process");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or OciSpecException)
        {
            throw Error(StatusCode.InvalidArgument, $"exec {request.ExecId}: invalid process spec: {e.Message}");
        }
        TaskProcess exec;
        if (container.Native is { } native)
        {
            exec = PrepareNativeExec(native, request, process);
        }
        else
        {
            // The exec's environment extends the container's; the exec spec wins on conflicts.
            var env = container.Bundle.Spec.Process?.Env ?? [];
            process.Env = [.. env, .. process.Env];
            exec = PrepareProcess(request.Id, request.ExecId, container.Bundle, process, request.Stdin, request.Stdout, request.Stderr, request.Terminal, container.MemoryLimit, container.Cgroup, container.Network!);
        }
        if (!container.Execs.TryAdd(request.ExecId, exec))
        {
            exec.Dispose();
            throw Error(StatusCode.AlreadyExists, $"id {request.ExecId}: already exists");
        }
        WatchExit(request.Id, exec);
        events.Publish("/tasks/exec-added", new TaskExecAdded { ContainerId = request.Id, ExecId = request.ExecId });
        log.Information("{Id}: exec {ExecId} added (pid {Pid})", request.Id, request.ExecId, exec.Pid);
        return Task.FromResult(EmptyReply);
    }

    // runc exec runs containerd's process spec as it is (its env already the container's and the exec's), at Start.
    private TaskProcess PrepareNativeExec(Native.NativeContainer native, TaskApi.ExecProcessRequest request, Oci.Process process)
    {
        var stdio = new Stdio(request.Stdin, request.Stdout, request.Stderr, process.Terminal, request.Id, ns, consoleFromRuntime: true);
        return new TaskProcess(request.ExecId, native.PrepareExec(request.ExecId, request.Spec.Value.Memory, stdio), stdio);
    }

    public override Task<Empty> ResizePty(TaskApi.ResizePtyRequest request, ServerCallContext context)
    {
        // Like runc's shim: a process without a terminal ignores it; an unknown one is NotFound.
        Process(request.Id, request.ExecId).Stdio.Resize(request.Width, request.Height);
        return Task.FromResult(EmptyReply);
    }

    public override Task<TaskApi.PidsResponse> Pids(TaskApi.PidsRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        var response = new TaskApi.PidsResponse();
        if (container.Native is { } native)
        {
            // Every process in its cgroup, as runc's shim lists them (runc ps).
            foreach (var pid in native.Pids()) response.Processes.Add(new ProcessInfo { Pid = (uint)pid });
            return Task.FromResult(response);
        }
        foreach (var process in container.All)
        {
            if (process.Status is Status.Created or Status.Running or Status.Paused)
            {
                response.Processes.Add(new ProcessInfo { Pid = process.Pid });
            }
        }
        return Task.FromResult(response);
    }

    public override Task<TaskApi.ConnectResponse> Connect(TaskApi.ConnectRequest request, ServerCallContext context)
    {
        _containers.TryGetValue(request.Id, out var container);
        return Task.FromResult(new TaskApi.ConnectResponse
        {
            ShimPid = (uint)Environment.ProcessId,
            TaskPid = container?.Init.Pid ?? 0,
        });
    }

    public override Task<Empty> Shutdown(TaskApi.ShutdownRequest request, ServerCallContext context)
    {
        StartupTrace.Mark("shutdown rpc");
        if (request.Now)
        {
            log.Information("shutdown requested now");
            requestShutdown();
        }
        else
        {
            CloseIfIdle();
        }
        return Task.FromResult(EmptyReply);
    }

    /// <summary>Who may still come to this shim: `start` reserves it for a container of its group (see <see cref="ShimGroup"/>).</summary>
    public ShimGroup Group { get; } = new();

    // A grouped shim stays while any container of its group remains, is being created, or is on its way.
    private void CloseIfIdle()
    {
        if (Group.TryClose(() => _containers.IsEmpty, () =>
            {
                log.Information("shutdown requested; no containers left");
                requestShutdown();
            }, out var retryIn) || retryIn is not { } wait)
            return;
        log.Information("shutdown deferred: a container of this shim's group is on its way");
        _ = Task.Delay(wait + TimeSpan.FromMilliseconds(10)).ContinueWith(_ => CloseIfIdle(), TaskScheduler.Default);
    }

    private Container Find(string id) =>
        _containers.TryGetValue(id, out var c) ? c : throw Error(StatusCode.NotFound, $"container {id}: not found");

    private TaskProcess Process(string id, string execId)
    {
        var container = Find(id);
        if (string.IsNullOrEmpty(execId)) return container.Init;
        return container.Execs.TryGetValue(execId, out var exec) ? exec : throw Error(StatusCode.NotFound, $"process does not exist {execId}");
    }

    private static string ProcessName(string id, string execId) => string.IsNullOrEmpty(execId) ? id : execId;

    private bool TryUnmount(Bundle bundle)
    {
        try
        {
            bundle.Unmount();
            return true;
        }
        catch (Exception e)
        {
            log.Error(e, "unmounting {Rootfs} failed", bundle.RootfsPath);
            return false;
        }
    }

    private static RpcException Error(StatusCode code, string message) => RpcErrors.Create(code, message);
}

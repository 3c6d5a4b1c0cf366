using System.Diagnostics;
using Grpc.Core;
using Serilog;
using Status = Wasmsharp.Containerd.Api.Types.Status;
using Wasmsharp.Wasm;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim.Tests;

// The task service in process, without containerd: the Wait/State/Kill/Delete semantics containerd and
// CRI rely on but ctr cannot show (Wait before Start, concurrent Waits, kill of a never-started task).
public sealed partial class TaskLifecycleTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string _dir = Directory.CreateTempSubdirectory("wasmsharp-lifecycle-").FullName;
    private readonly WasmHost _host = new(new WasmHostOptions());
    private readonly ServerCallContext _context = new TestContext();
    private readonly RecordingSink _events = new();
    private TaskService _service = null!;

    public Task InitializeAsync()
    {
        _service = new TaskService(_host, _events, Log.Logger, "test", () => { });
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _host.Dispose();
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    // A call as containerd gets it: through the service's one error boundary.
    private static async Task<RpcException> Refused(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (Exception e)
        {
            return RpcErrors.From(e);
        }
        throw new Xunit.Sdk.XunitException("the call should have been refused");
    }

    // proc_exit(7), or a loop that never ends (stopped only by a kill).
    private const string Exit7 = """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 7))))
        """;
    private const string Spin = """
        (module
          (memory (export "memory") 1)
          (func (export "_start") (loop $l (br $l))))
        """;

    // Reads stdin forever (also past end-of-file, so only a kill ends it).
    private const string ReadStdin = """
        (module
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 64))
            (loop $l (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))
        """;

    private static void Wat2Wasm(string wat, string wasm)
    {
        var source = wasm + ".wat";
        File.WriteAllText(source, wat);
        var wat2wasm = Process.Start(new ProcessStartInfo("wat2wasm", [source, "-o", wasm]) { RedirectStandardError = true })!;
        wat2wasm.WaitForExit();
        Assert.True(wat2wasm.ExitCode == 0, wat2wasm.StandardError.ReadToEnd());
    }

    private string Bundle(string id, string wat)
    {
        var bundle = Directory.CreateDirectory(Path.Combine(_dir, id)).FullName;
        var rootfs = Directory.CreateDirectory(Path.Combine(bundle, "rootfs")).FullName;
        Wat2Wasm(wat, Path.Combine(rootfs, "m.wasm"));
        Wat2Wasm(ReadStdin, Path.Combine(rootfs, "read.wasm"));
        File.WriteAllText(Path.Combine(bundle, "config.json"),
            """{"ociVersion":"1.0.2","process":{"args":["/m.wasm"],"env":["A=1"],"cwd":"/"},"root":{"path":"rootfs"}}""");
        return bundle;
    }

    private async Task<string> Created(string id, string wat)
    {
        await _service.Create(new TaskApi.CreateTaskRequest { Id = id, Bundle = Bundle(id, wat) }, _context);
        return id;
    }

    private Task<TaskApi.StateResponse> State(string id) => _service.State(new TaskApi.StateRequest { Id = id }, _context);
    private Task<TaskApi.WaitResponse> Wait(string id) => _service.Wait(new TaskApi.WaitRequest { Id = id }, _context);
    private Task Start(string id) => _service.Start(new TaskApi.StartRequest { Id = id }, _context);
    private Task Kill(string id, uint signal) => _service.Kill(new TaskApi.KillRequest { Id = id, Signal = signal }, _context);

    // A pod's sandbox as CRI creates it: the pause image's command (not Wasm, not even there), a new network namespace.
    private async Task<string> CreatedSandbox(string id)
    {
        var bundle = Directory.CreateDirectory(Path.Combine(_dir, id)).FullName;
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        File.WriteAllText(Path.Combine(bundle, "config.json"), """
            {"ociVersion":"1.0.2","process":{"args":["/pause"],"cwd":"/"},"root":{"path":"rootfs"},
             "annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-id":"SBX"},
             "linux":{"namespaces":[{"type":"network"},{"type":"ipc"},{"type":"uts"}]}}
            """.Replace("SBX", id));
        await _service.Create(new TaskApi.CreateTaskRequest { Id = id, Bundle = bundle }, _context);
        return id;
    }

    private static string NetNs(uint pid) => new FileInfo($"/proc/{pid}/ns/net").LinkTarget!;

    [Theory]
    [InlineData(15u, 0u)]  // pause exits 0 on SIGTERM and SIGINT
    [InlineData(2u, 0u)]
    [InlineData(9u, 137u)]
    [InlineData(1u, 129u)] // SIGHUP: default action
    public async Task A_pod_sandbox_runs_nothing_holds_its_namespace_and_ends_as_pause_does(uint signal, uint status)
    {
        var id = await CreatedSandbox($"sandbox-{signal}");
        var pid = (await State(id)).Pid;
        Assert.NotEqual(NetNs((uint)Environment.ProcessId), NetNs(pid)); // its own namespace, from create on
        await Start(id);
        Assert.Equal(Status.Running, (await State(id)).Status);
        await Kill(id, 28); // SIGWINCH: no effect
        Assert.Equal(Status.Running, (await State(id)).Status);
        await _service.Pause(new TaskApi.PauseRequest { Id = id }, _context);
        await _service.Resume(new TaskApi.ResumeRequest { Id = id }, _context);
        await Kill(id, signal);
        var exit = await Wait(id).WaitAsync(Timeout);
        Assert.Equal(status, exit.ExitStatus);
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        for (var i = 0; i < 100 && Directory.Exists($"/proc/self/task/{pid}"); i++) await Task.Delay(10);
        Assert.False(Directory.Exists($"/proc/self/task/{pid}"), "the stand-in thread should be gone");
    }

    [Fact]
    public async Task Waits_before_start_block_until_the_exit_and_everyone_sees_one_exit()
    {
        var id = await Created("wait-early", Exit7);
        var waits = Enumerable.Range(0, 3).Select(_ => Wait(id)).ToList();
        await Task.Delay(100);
        Assert.All(waits, w => Assert.False(w.IsCompleted));
        Assert.Equal(Status.Created, (await State(id)).Status);

        await Start(id);
        var results = await Task.WhenAll(waits).WaitAsync(Timeout);
        Assert.All(results, r => Assert.Equal(7u, r.ExitStatus));
        var exitedAt = results[0].ExitedAt;
        Assert.All(results, r => Assert.Equal(exitedAt, r.ExitedAt));

        var state = await State(id);
        Assert.Equal((Status.Stopped, 7u, exitedAt), (state.Status, state.ExitStatus, state.ExitedAt));
        var again = await Wait(id);
        Assert.Equal((7u, exitedAt), (again.ExitStatus, again.ExitedAt));
        var deleted = await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        Assert.Equal((7u, exitedAt), (deleted.ExitStatus, deleted.ExitedAt));
        var gone = await Refused(() => State(id));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        // Released (nothing mounted, no cgroup left): the `shim delete` that follows need not look.
        Assert.True(Wasmsharp.Shim.Bundle.WasReleased(Path.Combine(_dir, id)));
    }

    [Fact]
    public async Task A_container_not_yet_deleted_is_not_marked_released()
    {
        var id = await Created("not-released", Exit7);
        await Start(id);
        await Wait(id).WaitAsync(Timeout);
        Assert.False(Wasmsharp.Shim.Bundle.WasReleased(Path.Combine(_dir, id)));
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
    }

    [Fact]
    public async Task State_goes_created_running_paused_running_stopped()
    {
        var id = await Created("states", Spin);
        Assert.Equal(Status.Created, (await State(id)).Status);
        await Start(id);
        Assert.Equal(Status.Running, (await State(id)).Status);
        await _service.Pause(new TaskApi.PauseRequest { Id = id }, _context);
        Assert.Equal(Status.Paused, (await State(id)).Status);
        await _service.Resume(new TaskApi.ResumeRequest { Id = id }, _context);
        Assert.Equal(Status.Running, (await State(id)).Status);

        var wait = Wait(id);
        await Kill(id, 15);
        Assert.Equal(143u, (await wait.WaitAsync(Timeout)).ExitStatus);
        var state = await State(id);
        Assert.Equal((Status.Stopped, 143u), (state.Status, state.ExitStatus));
        var again = await Refused(() => Kill(id, 9));
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task Kill_of_a_task_never_started_releases_its_waiters()
    {
        var id = await Created("never-started", Spin);
        var wait = Wait(id);
        await Kill(id, 9);
        var exit = await wait.WaitAsync(Timeout);
        Assert.Equal(137u, exit.ExitStatus);
        Assert.Equal(Status.Stopped, (await State(id)).Status);
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
    }

    [Fact]
    public async Task Delete_of_a_running_task_is_refused_without_not_found()
    {
        var id = await Created("delete-running", Spin);
        await Start(id);
        var refused = await Refused(() => _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context));
        Assert.NotEqual(StatusCode.NotFound, refused.StatusCode);
        Assert.Contains("cannot delete a running process", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(Status.Running, (await State(id)).Status);
        await Kill(id, 9);
        await Wait(id).WaitAsync(Timeout);
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
    }

    [Fact]
    public async Task When_init_exits_an_exec_blocked_reading_its_stdin_is_stopped_too()
    {
        var id = await Created("exec-blocked", Spin);
        await Start(id);
        // The exec's stdin is a FIFO whose writer (this test) stays open and silent: the guest blocks in fd_read.
        var fifo = Path.Combine(_dir, "exec-stdin");
        var mkfifo = Process.Start("mkfifo", [fifo])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        var spec = Google.Protobuf.ByteString.CopyFromUtf8("""{"args":["/read.wasm"],"cwd":"/"}""");
        await _service.Exec(new TaskApi.ExecProcessRequest
        {
            Id = id, ExecId = "reader", Stdin = fifo,
            Spec = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = spec },
        }, _context);
        await using var writer = await Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Write)).WaitAsync(Timeout);
        await _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "reader" }, _context);
        await Task.Delay(200); // the exec reaches its read
        Assert.Equal(2, _host.LiveInstances);

        await Kill(id, 15);
        Assert.Equal(137u, (await _service.Wait(new TaskApi.WaitRequest { Id = id, ExecId = "reader" }, _context).WaitAsync(Timeout)).ExitStatus);
        // Both guest threads end (their stores freed) although the exec's stdin writer is still open.
        var clock = Stopwatch.StartNew();
        while (_host.LiveInstances > 0 && clock.Elapsed < Timeout) await Task.Delay(10);
        Assert.Equal(0, _host.LiveInstances);
    }

    private Task AddExec(string id, string execId, string module) => _service.Exec(new TaskApi.ExecProcessRequest
    {
        Id = id, ExecId = execId,
        Spec = new Google.Protobuf.WellKnownTypes.Any
        {
            TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process",
            Value = Google.Protobuf.ByteString.CopyFromUtf8($$"""{"args":["{{module}}"],"cwd":"/"}"""),
        },
    }, _context);

    // One set of rules for init and exec, in runc's words and codes (containerd's runc shim answers Unknown).
    [Fact]
    public async Task Init_and_exec_follow_runcs_rules_for_start_and_delete()
    {
        var id = await Created("rules", Spin);
        await Start(id);
        var again = await Refused(() => Start(id));
        Assert.Equal((StatusCode.Unknown, "cannot start a running process"), (again.StatusCode, again.Status.Detail));

        await AddExec(id, "e1", "/m.wasm");
        await _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "e1" }, _context);
        await _service.Pause(new TaskApi.PauseRequest { Id = id }, _context);
        var paused = await Refused(() => _service.Delete(new TaskApi.DeleteRequest { Id = id, ExecId = "e1" }, _context));
        Assert.Equal((StatusCode.Unknown, "cannot delete a paused process"), (paused.StatusCode, paused.Status.Detail));
        await _service.Resume(new TaskApi.ResumeRequest { Id = id }, _context);

        // An exec added while the init ran cannot start once the init has stopped.
        await AddExec(id, "e2", "/m.wasm");
        await Kill(id, 9);
        await Wait(id).WaitAsync(Timeout);
        var late = await Refused(() => _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "e2" }, _context));
        Assert.Equal((StatusCode.FailedPrecondition, "container rules init process is not running: failed precondition"), (late.StatusCode, late.Status.Detail));
    }

    private sealed class TestContext : ServerCallContext
    {
        protected override string MethodCore => "test";
        protected override string HostCore => "localhost";
        protected override string PeerCore => "test";
        protected override DateTime DeadlineCore => DateTime.MaxValue;
        protected override Metadata RequestHeadersCore { get; } = [];
        protected override CancellationToken CancellationTokenCore => CancellationToken.None;
        protected override Metadata ResponseTrailersCore { get; } = [];
        protected override Grpc.Core.Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);
        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}

using System.Diagnostics;
using Grpc.Core;
using Status = Wasmsharp.Containerd.Api.Types.Status;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim.Tests;

// The lifecycle table (containerd's runc shim: pkg/process init_state.go, exec_state.go, deleted_state.go) through
// the task service and its error boundary; the order of its events; the race of an exec's start with its init's exit.
public sealed partial class TaskLifecycleTests
{
    // Grows its memory until it is stopped: under a limit, the shim's OOM kill.
    private const string Grow = """
        (module
          (memory (export "memory") 1)
          (func (export "_start") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))
        """;

    public static TheoryData<string, string, string, string> Rows => new()
    {
        { "init", "created", "Start", "ok" },
        { "init", "created", "Kill", "ok" },
        { "init", "created", "Pause", "Unknown: cannot pause task in created state" },
        { "init", "created", "Resume", "Unknown: cannot resume task in created state" },
        { "init", "created", "Delete", "ok" },
        { "init", "created", "Exec", "ok" },
        { "init", "running", "Start", "Unknown: cannot start a running process" },
        { "init", "running", "Kill", "ok" },
        { "init", "running", "Pause", "ok" },
        { "init", "running", "Resume", "Unknown: cannot resume a running process" },
        { "init", "running", "Delete", "Unknown: cannot delete a running process" },
        { "init", "running", "Exec", "ok" },
        { "init", "paused", "Start", "Unknown: cannot start a paused process" },
        { "init", "paused", "Kill", "ok" },
        { "init", "paused", "Pause", "Unknown: cannot pause a paused container" },
        { "init", "paused", "Resume", "ok" },
        { "init", "paused", "Delete", "Unknown: cannot delete a paused process" },
        { "init", "paused", "Exec", "Unknown: cannot exec in a paused state" },
        { "init", "stopped", "Start", "Unknown: cannot start a stopped process" },
        { "init", "stopped", "Kill", "NotFound: process already finished: not found" },
        { "init", "stopped", "Pause", "Unknown: cannot pause a stopped container" },
        { "init", "stopped", "Resume", "Unknown: cannot resume a stopped container" },
        { "init", "stopped", "Delete", "ok" },
        { "init", "stopped", "Exec", "Unknown: cannot exec in a stopped state" },
        { "exec", "created", "Start", "ok" },
        { "exec", "created", "Kill", "FailedPrecondition: process not created: failed precondition" },
        { "exec", "created", "Delete", "ok" },
        { "exec", "running", "Start", "Unknown: cannot start a running process" },
        { "exec", "running", "Kill", "ok" },
        { "exec", "running", "Delete", "Unknown: cannot delete a running process" },
        { "exec", "paused", "Start", "Unknown: cannot start a paused process" },
        { "exec", "paused", "Kill", "ok" },
        { "exec", "paused", "Delete", "Unknown: cannot delete a paused process" },
        { "exec", "stopped", "Start", "Unknown: cannot start a stopped process" },
        { "exec", "stopped", "Kill", "NotFound: process already finished: not found" },
        { "exec", "stopped", "Delete", "ok" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task Each_state_answers_each_verb_as_runcs_shim(string process, string state, string verb, string expected)
    {
        var id = $"table-{process}-{state}-{verb}".ToLowerInvariant();
        await Created(id, Spin);
        Wat2Wasm(Exit7, Path.Combine(_dir, id, "rootfs", "exit7.wasm"));
        var execId = process == "exec" ? "e" : "";
        try
        {
            await Reach(id, execId, state);
            Assert.Equal(expected, await Outcome(() => Verb(id, execId, verb)));
        }
        finally
        {
            await Outcome(() => _service.Resume(new TaskApi.ResumeRequest { Id = id }, _context));
            await Outcome(() => _service.Kill(new TaskApi.KillRequest { Id = id, Signal = 9, All = true }, _context));
            await Outcome(() => Wait(id).WaitAsync(Timeout)); // gone when the verb was a Delete
            await Outcome(() => _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context));
        }
    }

    private async Task Reach(string id, string execId, string state)
    {
        if (execId.Length == 0)
        {
            if (state == "created") return;
            await Start(id);
            if (state == "paused") await _service.Pause(new TaskApi.PauseRequest { Id = id }, _context);
            if (state == "stopped")
            {
                await Kill(id, 9);
                await Wait(id).WaitAsync(Timeout);
            }
            return;
        }
        await Start(id);
        await AddExec(id, execId, state == "stopped" ? "/exit7.wasm" : "/m.wasm");
        if (state == "created") return;
        await _service.Start(new TaskApi.StartRequest { Id = id, ExecId = execId }, _context);
        if (state == "paused") await _service.Pause(new TaskApi.PauseRequest { Id = id }, _context);
        if (state == "stopped") await _service.Wait(new TaskApi.WaitRequest { Id = id, ExecId = execId }, _context).WaitAsync(Timeout);
    }

    private Task Verb(string id, string execId, string verb) => verb switch
    {
        "Start" => _service.Start(new TaskApi.StartRequest { Id = id, ExecId = execId }, _context),
        "Kill" => _service.Kill(new TaskApi.KillRequest { Id = id, ExecId = execId, Signal = 15 }, _context),
        "Pause" => _service.Pause(new TaskApi.PauseRequest { Id = id }, _context),
        "Resume" => _service.Resume(new TaskApi.ResumeRequest { Id = id }, _context),
        "Delete" => _service.Delete(new TaskApi.DeleteRequest { Id = id, ExecId = execId }, _context),
        "Exec" => AddExec(id, "x", "/m.wasm"),
        _ => throw new ArgumentOutOfRangeException(nameof(verb)),
    };

    // "ok", or the reply's code and message as containerd receives them.
    private static async Task<string> Outcome(Func<Task> call)
    {
        try
        {
            await call();
            return "ok";
        }
        catch (Exception e)
        {
            var rpc = RpcErrors.From(e);
            return $"{rpc.StatusCode}: {rpc.Status.Detail}";
        }
    }

    // A deleted process (a call that found it just before its Delete): runc's deletedState.
    [Fact]
    public void A_deleted_process_refuses_everything_and_reports_stopped()
    {
        var deleted = ProcessState.Deleted;
        Assert.Equal(Status.Stopped, deleted.Status);
        string Of(Action verb)
        {
            try
            {
                verb();
                return "ok";
            }
            catch (LifecycleException e)
            {
                var rpc = RpcErrors.From(e);
                return $"{rpc.StatusCode}: {rpc.Status.Detail}";
            }
        }
        Assert.Equal("Unknown: cannot start a deleted process", Of(() => deleted.Start()));
        Assert.Equal("NotFound: cannot delete a deleted process: not found", Of(deleted.Delete));
        Assert.Equal("NotFound: cannot kill a deleted process: not found", Of(() => deleted.Kill(exec: false)));
        Assert.Equal("Unknown: cannot pause a deleted process", Of(() => deleted.Pause()));
        Assert.Equal("Unknown: cannot resume a deleted process", Of(() => deleted.Resume()));
        Assert.Equal("Unknown: cannot exec in a deleted state", Of(deleted.Exec));
        Assert.Same(deleted, deleted.SetExited());
    }

    [Fact]
    public async Task Events_of_a_run_are_create_start_exit_delete()
    {
        var id = await Created("events-run", Exit7);
        await Start(id);
        await Wait(id).WaitAsync(Timeout);
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        Assert.Equal(["/tasks/create", "/tasks/start", $"/tasks/exit {id}", "/tasks/delete"], _events.For(id));
    }

    // As runc's shim: exec-added at Exec, exec-started at its Start, its exit; the init's exit last of all exits, also
    // when its exit ends an exec still running; no delete event for an exec.
    [Fact]
    public async Task Events_of_execs_come_in_order_and_the_inits_exit_comes_last()
    {
        var id = await Created("events-exec", Spin);
        Wat2Wasm(Exit7, Path.Combine(_dir, id, "rootfs", "exit7.wasm"));
        await Start(id);
        await AddExec(id, "e1", "/exit7.wasm");
        await _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "e1" }, _context);
        Assert.Equal(7u, (await _service.Wait(new TaskApi.WaitRequest { Id = id, ExecId = "e1" }, _context).WaitAsync(Timeout)).ExitStatus);
        await _service.Delete(new TaskApi.DeleteRequest { Id = id, ExecId = "e1" }, _context);
        await AddExec(id, "e2", "/m.wasm");
        await _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "e2" }, _context);
        await Kill(id, 9);
        await Wait(id).WaitAsync(Timeout);
        Assert.True(await _events.WaitFor(id, $"/tasks/exit {id}", Timeout));
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        Assert.Equal([
            "/tasks/create", "/tasks/start",
            "/tasks/exec-added e1", "/tasks/exec-started e1", "/tasks/exit e1",
            "/tasks/exec-added e2", "/tasks/exec-started e2", "/tasks/exit e2",
            $"/tasks/exit {id}", "/tasks/delete",
        ], _events.For(id));
    }

    [Fact]
    public async Task Events_of_an_oom_kill_put_the_oom_before_the_exit()
    {
        var id = "events-oom";
        var bundle = Bundle(id, Grow);
        File.WriteAllText(Path.Combine(bundle, "config.json"), """
            {"ociVersion":"1.0.2","process":{"args":["/m.wasm"],"cwd":"/"},"root":{"path":"rootfs"},
             "linux":{"resources":{"memory":{"limit":8388608}}}}
            """);
        await _service.Create(new TaskApi.CreateTaskRequest { Id = id, Bundle = bundle }, _context);
        await Start(id);
        Assert.Equal(137u, (await Wait(id).WaitAsync(Timeout)).ExitStatus);
        Assert.True(await _events.WaitFor(id, $"/tasks/exit {id}", Timeout));
        await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/oom", $"/tasks/exit {id}", "/tasks/delete"], _events.For(id));
    }

    // The race the container's gate closes: an exec's Start checks that its init has not stopped, then starts the
    // exec. The seam holds Start between the two while the init is killed and the test waits for the init to be
    // recorded stopped. With the gate, the init's exit waits for the Start, so the exec starts before the init stops
    // and its events come before the init's exit; without it, the exec starts although its init has stopped (runc's
    // shim refuses that: "init process is not running").
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_exec_start_and_its_inits_exit_are_ordered_by_the_gate(bool gate)
    {
        _service.OrderExecStartWithInitExit = gate;
        var violations = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var id = await Created($"race-{gate}-{i}".ToLowerInvariant(), Spin);
            await Start(id);
            await AddExec(id, "e", "/m.wasm");
            var initStoppedFirst = false;
            bool InitStopped() => _service.State(new TaskApi.StateRequest { Id = id }, _context).GetAwaiter().GetResult().Status == Status.Stopped;
            _service.AfterExecStartCheck = () =>
            {
                _ = Kill(id, 9);
                var clock = Stopwatch.StartNew();
                while (clock.ElapsedMilliseconds < 300 && !InitStopped()) Thread.Sleep(2);
                initStoppedFirst = InitStopped();
            };
            var start = await Outcome(() => _service.Start(new TaskApi.StartRequest { Id = id, ExecId = "e" }, _context));
            _service.AfterExecStartCheck = null;
            await Wait(id).WaitAsync(Timeout);
            Assert.True(await _events.WaitFor(id, $"/tasks/exit {id}", Timeout));
            var events = _events.For(id).ToList();
            var started = events.IndexOf("/tasks/exec-started e");
            var ok = start == "ok"
                ? !initStoppedFirst && started >= 0 && started < events.IndexOf("/tasks/exit e") && events.IndexOf("/tasks/exit e") < events.IndexOf($"/tasks/exit {id}")
                : start == $"FailedPrecondition: container {id} init process is not running: failed precondition" && started < 0;
            if (!ok) violations.Add($"{id}: start {start} (init stopped before it: {initStoppedFirst}); events {string.Join(", ", events)}");
            await _service.Delete(new TaskApi.DeleteRequest { Id = id }, _context);
        }
        if (gate) Assert.True(violations.Count == 0, string.Join("\n", violations));
        else Assert.NotEmpty(violations); // the check above catches the race when the gate is gone
    }
}

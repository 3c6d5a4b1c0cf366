using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr task exec` into a running Wasm container: another module of its rootfs runs with its own stdio
// and exit status, in the container's environment; events and `ctr task ps` see it.
[Collection(ContainerdCollection.Name)]
public sealed class ExecTests(ContainerdFixture f)
{
    private string StartWasm(string what, params string[] options)
    {
        var id = f.NewId(what);
        var run = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. options, Images.WasmTests, id, "/sleep.wasm", "1000"]);
        f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
        return id;
    }

    [Fact]
    public void Exec_exit_status_matches_runc()
    {
        var id = StartWasm("exec-exit");
        var runcId = f.NewId("exec-exit-runc");
        try
        {
            var exec = f.Ctr("tasks", "exec", "--exec-id", "x1", id, "/exit.wasm", "7");
            var runcRun = f.Ctr("run", "-d", Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            f.Check(runcRun.ExitCode == 0, "runc run -d should succeed", runcId, runcRun);
            var runc = f.Ctr("tasks", "exec", "--exec-id", "x1", runcId, "/bin/busybox", "sh", "-c", "exit 7");
            f.Check(runc.ExitCode == 7, "runc exec should exit 7", runcId, runc);
            f.Check(exec.ExitCode == runc.ExitCode, "the wasm exec's exit status should match runc's", id, exec, runc);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the container keeps running after its exec ends", id, exec);
        }
        finally
        {
            f.RemoveContainer(id);
            f.RemoveContainer(runcId);
        }
    }

    [Fact]
    public void Exec_prints_to_its_own_stdout_and_sees_the_container_environment()
    {
        var id = StartWasm("exec-env", "--env", "FROM_CONTAINER=yes");
        try
        {
            var hello = f.Ctr("tasks", "exec", "--exec-id", "h", id, "/hello.wasm", "x");
            f.Check(hello.ExitCode == 0 && ContainerdFixture.Lines(hello.Stdout).SequenceEqual(["hello from wasm", "x"]),
                "the exec's stdout should reach its ctr", id, hello);
            var env = f.Ctr("tasks", "exec", "--exec-id", "e", id, "/env.wasm");
            f.Check(env.ExitCode == 0 && ContainerdFixture.Lines(env.Stdout).Contains("FROM_CONTAINER=yes"),
                "the exec should see the container's environment", id, env);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void Exec_events_carry_the_exec_id()
    {
        var id = StartWasm("exec-events");
        try
        {
            var exec = f.Ctr("tasks", "exec", "--exec-id", "ev1", id, "/exit.wasm", "5");
            f.Check(exec.ExitCode == 5, "exec should exit 5", id, exec);
            var added = f.Events.WaitFor(id, "/tasks/exec-added", TimeSpan.FromSeconds(5));
            var started = f.Events.WaitFor(id, "/tasks/exec-started", TimeSpan.FromSeconds(5));
            f.Check(added is not null && added.Contains("\"exec_id\":\"ev1\"", StringComparison.Ordinal), $"exec-added should name ev1: {added}", id, exec);
            f.Check(started is not null && started.Contains("\"exec_id\":\"ev1\"", StringComparison.Ordinal), $"exec-started should name ev1: {started}", id, exec);
            var exit = ContainerdFixture.Eventually(() => f.Events.For(id, "/tasks/exit").Any(l => l.Contains("\"id\":\"ev1\"", StringComparison.Ordinal)), TimeSpan.FromSeconds(5));
            var exitLine = f.Events.For(id, "/tasks/exit").FirstOrDefault(l => l.Contains("\"id\":\"ev1\"", StringComparison.Ordinal));
            f.Check(exit && exitLine!.Contains("\"exit_status\":5", StringComparison.Ordinal), $"a /tasks/exit for ev1 with status 5: {exitLine}", id, exec);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void Non_wasm_exec_is_refused_and_the_container_keeps_running()
    {
        var id = StartWasm("exec-bad");
        try
        {
            var exec = f.Ctr("tasks", "exec", "--exec-id", "bad", id, "/not-wasm.txt");
            f.Check(exec.ExitCode != 0 && exec.Stderr.Contains("WebAssembly", StringComparison.OrdinalIgnoreCase),
                "a non-wasm exec should fail with a clear error", id, exec);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the container should keep running", id, exec);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void Ps_lists_init_and_execs_and_kill_all_stops_them()
    {
        var id = StartWasm("exec-ps");
        try
        {
            var exec = f.Ctr("tasks", "exec", "-d", "--exec-id", "bg", id, "/sleep.wasm", "1000");
            f.Check(exec.ExitCode == 0, "a detached exec should start", id, exec);
            var ps = f.Ctr("tasks", "ps", id);
            var pids = ContainerdFixture.Lines(ps.Stdout).Skip(1).ToList();
            f.Check(ps.ExitCode == 0 && pids.Count == 2, $"`ctr task ps` should list init and the exec, lists {pids.Count}", id, ps);
            var kill = f.Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id);
            f.Check(kill.ExitCode == 0, "kill --all should succeed", id, kill);
            var stopped = ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "STOPPED" }, TimeSpan.FromSeconds(5));
            f.Check(stopped, "the container should stop", id, kill);
            var exitOfExec = ContainerdFixture.Eventually(() => f.Events.For(id, "/tasks/exit").Any(l => l.Contains("\"id\":\"bg\"", StringComparison.Ordinal)), TimeSpan.FromSeconds(5));
            f.Check(exitOfExec, "the exec should have exited too", id, kill);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }
}

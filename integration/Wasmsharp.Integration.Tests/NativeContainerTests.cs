using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// A native image under our runtime: the shim has runc run it (busybox here), with runc's semantics for output,
// exit status, kill, exec, ps, pause and stdin; and a Wasm container and a native one share one shim (a pod's
// grouping) and a network namespace.
[Collection(ContainerdCollection.Name)]
public sealed class NativeContainerTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(5);

    private ProcessResult RunNative(string id, string[] options, params string[] args) =>
        f.Ctr(["run", "--rm", "--runtime", RepoLayout.Runtime, .. options, Images.Busybox, id, .. args]);

    private string StartNative(string what, string[] options, params string[] args)
    {
        var id = f.NewId(what);
        var run = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. options, Images.Busybox, id, .. args]);
        f.Check(run.ExitCode == 0, "ctr run -d of a native image should succeed", id, run);
        f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the native task should be RUNNING", id, run);
        return id;
    }

    [Fact]
    public void Native_program_prints_and_leaves_nothing()
    {
        var id = f.NewId("native-echo");
        var run = RunNative(id, [], "echo", "hi");
        f.Check(run.ExitCode == 0 && run.Stdout == "hi\n", $"echo hi should print hi and exit 0, got {run.ExitCode}: {run.Stdout}", id, run);
        f.AssertNothingLeft(id, run);
        f.Check(!Directory.Exists($"/run/containerd/wasmsharp-runc/{ContainerdFixture.Namespace}/{id}"), "runc's state of the container should be gone", id, run);
    }

    [Fact]
    public void Exit_status_and_stderr_are_the_programs()
    {
        var id = f.NewId("native-exit");
        var run = RunNative(id, [], "sh", "-c", "echo oops >&2; exit 3");
        f.Check(run.ExitCode == 3, $"sh -c 'exit 3' should exit 3, got {run.ExitCode}", id, run);
        f.Check(run.Stderr.Contains("oops", StringComparison.Ordinal), "its stderr should reach ctr", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Piped_stdin_reaches_cat_and_its_end_ends_it()
    {
        var id = f.NewId("native-stdin");
        // As in DifferentialScenarioTests: the input stays open a moment so ctr's CloseIO comes after the task exists.
        var run = ProcessRunner.Run("/bin/sh",
            ["-c", $"{{ printf 'one\\ntwo\\n'; sleep 0.5; }} | {f.Containerd.CtrCommandLine(["run", "--rm", "--runtime", RepoLayout.Runtime, Images.Busybox, id, "cat"])}"],
            ContainerdFixture.RunTimeout);
        f.Check(run.ExitCode == 0 && run.Stdout == "one\ntwo\n", $"cat should copy stdin and end with it, got {run.ExitCode}: {run.Stdout}", id, run);
        f.AssertNothingLeft(id, run);
    }

    // ctr run -t / ctr task exec -t: runc makes the terminal inside the container and sends its master to the
    // shim's console socket; what is typed reaches the program and its output comes back through the terminal.
    [Fact]
    public void Run_and_exec_with_a_terminal_get_the_terminal_runc_made()
    {
        var id = f.NewId("native-tty");
        var run = InTerminal.Run(f, id, "typed\r", ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.Busybox, id, "sh", "-c", "tty; read line; echo \"got $line\"; exit 3"]);
        f.Check(run.ExitCode == 3 && run.Stdout.Contains("/dev/pts/", StringComparison.Ordinal) && run.Stdout.Contains("got typed", StringComparison.Ordinal),
            $"ctr run -t: exit {run.ExitCode}, output {run.Stdout}", id, run);
        f.AssertNothingLeft(id, run);

        var sleeper = StartNative("native-exec-tty", [], "sleep", "1000");
        try
        {
            var exec = InTerminal.Run(f, sleeper, "typed\r", ["task", "exec", "-t", "--exec-id", "tty", sleeper, "sh", "-c", "tty; read line; echo \"got $line\"; exit 4"]);
            f.Check(exec.ExitCode == 4 && exec.Stdout.Contains("/dev/pts/", StringComparison.Ordinal) && exec.Stdout.Contains("got typed", StringComparison.Ordinal),
                $"ctr task exec -t: exit {exec.ExitCode}, output {exec.Stdout}", sleeper, exec);
        }
        finally
        {
            f.RemoveContainer(sleeper);
        }
        f.AssertNothingLeft(sleeper);
    }

    [Theory]
    [InlineData("SIGTERM", 143)]
    [InlineData("SIGKILL", 137)]
    public void Kill_ends_it_with_the_signals_status(string signal, int expected)
    {
        // In our pid namespace, as KillTests runs runc: pid 1 of a new one ignores SIGTERM without a handler.
        var id = StartNative($"native-kill-{signal.ToLowerInvariant()}", f.HostPidNamespace, "sleep", "1000");
        var kill = f.Ctr("tasks", "kill", "--signal", signal, id);
        f.Check(kill.ExitCode == 0, "ctr task kill should succeed", id, kill);
        f.Check(ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "STOPPED" }, Shortly), "the task should be STOPPED", id, kill);
        var exit = f.Events.WaitFor(id, "/tasks/exit", Shortly);
        f.Check(exit is not null && exit.Contains($"\"exit_status\":{expected}", StringComparison.Ordinal),
            $"the /tasks/exit event should carry exit_status {expected}: {exit ?? "(no event)"}", id, kill);
        var delete = f.Ctr("tasks", "delete", id);
        f.Check(delete.ExitCode == 0, "ctr task delete should succeed", id, delete);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, kill, delete, deleteContainer);
    }

    [Fact]
    public void Exec_runs_in_the_container_with_its_own_output_and_status_and_ps_lists_it()
    {
        var id = StartNative("native-exec", [], "sleep", "1000");
        try
        {
            var exec = f.Ctr("tasks", "exec", "--exec-id", "x1", id, "sh", "-c", "echo from-exec; exit 5");
            f.Check(exec.ExitCode == 5 && exec.Stdout == "from-exec\n", $"the exec should print and exit 5, got {exec.ExitCode}: {exec.Stdout}", id, exec);
            var started = f.Events.WaitFor(id, "/tasks/exec-started", Shortly);
            f.Check(started is not null && !started.Contains("\"pid\":0", StringComparison.Ordinal) && started.Contains("\"pid\":", StringComparison.Ordinal),
                $"/tasks/exec-started should carry the exec's pid: {started}", id, exec);

            var sleeper = f.Ctr("tasks", "exec", "--detach", "--exec-id", "x2", id, "sleep", "1000");
            f.Check(sleeper.ExitCode == 0, "a detached exec should start", id, sleeper);
            var initPid = f.Containerd.Task(id)!.Pid;
            var ps = f.Ctr("tasks", "ps", id);
            var pids = ContainerdFixture.Lines(ps.Stdout).Skip(1).Select(l => int.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0])).ToList();
            f.Check(ps.ExitCode == 0 && pids.Count == 2 && pids.Contains(initPid),
                $"ctr task ps should list the init ({initPid}) and the exec: {ps.Stdout}", id, ps);
            var execPid = pids.Single(p => p != initPid);
            f.Check(ProcFs.ParentPid(execPid) == ProcFs.ParentPid(initPid), "the exec, like the init, should be the shim's child", id, ps);

            var killExec = f.Ctr("tasks", "kill", "--exec-id", "x2", "--signal", "SIGKILL", id);
            f.Check(killExec.ExitCode == 0 && ContainerdFixture.Eventually(() => !ProcFs.IsAlive(execPid), Shortly), "killing the exec should end it", id, killExec);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the container keeps running after its exec ends", id, killExec);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void Pause_freezes_and_resume_thaws()
    {
        var id = StartNative("native-pause", [], "sh", "-c", "while true; do sleep 0.1; done");
        try
        {
            var pause = f.Ctr("tasks", "pause", id);
            f.Check(pause.ExitCode == 0 && f.Containerd.Task(id) is { Status: "PAUSED" }, "ctr task pause should leave it PAUSED", id, pause);
            // runc freezes the cgroup it made from the spec's linux.cgroupsPath (ctr: /NAMESPACE/ID).
            var freezer = $"/sys/fs/cgroup/freezer/{ContainerdFixture.Namespace}/{id}/freezer.state";
            var unified = $"/sys/fs/cgroup/{ContainerdFixture.Namespace}/{id}/cgroup.freeze";
            var frozen = File.Exists(freezer) ? File.ReadAllText(freezer).Trim() == "FROZEN" : File.ReadAllText(unified).Trim() == "1";
            f.Check(frozen, "the container's cgroup should be frozen", id, pause);
            var again = f.Ctr("tasks", "pause", id);
            f.Check(again.ExitCode != 0, "pausing a paused task should fail", id, again);
            var resume = f.Ctr("tasks", "resume", id);
            f.Check(resume.ExitCode == 0 && f.Containerd.Task(id) is { Status: "RUNNING" }, "ctr task resume should leave it RUNNING", id, resume);
            var exec = f.Ctr("tasks", "exec", "--exec-id", "after", id, "echo", "thawed");
            f.Check(exec.Stdout == "thawed\n", "an exec after resume should run", id, exec);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void Metrics_come_from_the_cgroup_runc_made()
    {
        var id = StartNative("native-metrics", ["--memory-limit", (64L << 20).ToString()], "sleep", "1000");
        try
        {
            var metrics = f.Ctr("tasks", "metrics", "--format", "json", id);
            f.Check(metrics.ExitCode == 0 && metrics.Stdout.Contains("67108864", StringComparison.Ordinal),
                "ctr task metrics should report the container's 64 MiB memory limit", id, metrics);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public async Task Update_hands_new_limits_to_runc()
    {
        var id = StartNative("native-update", ["--memory-limit", (64L << 20).ToString()], "sleep", "1000");
        try
        {
            await CgroupTests.UpdateMemory(f, id, 96L << 20);
            var metrics = f.Ctr("tasks", "metrics", "--format", "json", id);
            f.Check(metrics.Stdout.Contains((96L << 20).ToString(), StringComparison.Ordinal), "the metrics should show the new 96 MiB limit", id, metrics);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void Oom_kill_is_reported_before_the_exit_as_runc_does()
    {
        var id = f.NewId("native-oom");
        // busybox tail buffers a "line" of /dev/zero that never ends: the kernel's OOM killer stops it.
        var run = RunNative(id, ["--memory-limit", (32L << 20).ToString()], "/bin/busybox", "tail", "/dev/zero");
        f.Check(run.ExitCode == 137, $"the container should be OOM-killed (137), got {run.ExitCode}", id, run);
        string[] expected = ["/tasks/create", "/tasks/start", "/tasks/oom", "/tasks/exit", "/tasks/delete"];
        IReadOnlyList<string> Topics() => f.Events.For(id).Select(l => l.Split(' ').FirstOrDefault(w => w.StartsWith("/tasks/", StringComparison.Ordinal)) ?? "?").ToList();
        ContainerdFixture.Eventually(() => Topics().Count >= expected.Length, Shortly);
        f.Check(Topics().SequenceEqual(expected), $"events {string.Join(", ", Topics())} should be {string.Join(", ", expected)}", id, run);
        f.AssertNothingLeft(id, run);
    }

    // runc's shim watches the cgroup and publishes /tasks/oom when the kernel kills any process of it: here a child,
    // while the init lives on.
    [Fact]
    public void Oom_kill_of_a_child_is_reported_while_the_init_runs_on()
    {
        var id = StartNative("native-oom-child", ["--memory-limit", (32L << 20).ToString()], "sh", "-c", "/bin/busybox tail /dev/zero; exec sleep 1000");
        try
        {
            bool Oom() => f.Events.For(id).Any(l => l.Contains("/tasks/oom", StringComparison.Ordinal));
            ContainerdFixture.Eventually(Oom, ContainerdFixture.RunTimeout);
            f.Check(Oom(), $"no /tasks/oom while the init runs: {string.Join("; ", f.Events.For(id))}", id);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" } && !f.Events.For(id).Any(l => l.Contains("/tasks/exit", StringComparison.Ordinal)),
                "the init should run on after its child was OOM-killed", id);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void A_shim_killed_with_9_leaves_no_native_container()
    {
        var id = StartNative("native-shim-kill9", [], "sleep", "1000");
        var pid = f.Containerd.Task(id)!.Pid;
        var shim = ProcFs.ParentPid(pid) ?? 0;
        f.Check(shim > 0 && ProcFs.Processes().Any(p => p.Pid == shim && p.HasArgPair("-id", id)), $"the init's parent {shim} should be our shim", id);
        ProcFs.Signal(shim, ProcFs.SIGKILL);
        var exit = f.Events.WaitFor(id, "/tasks/exit", TimeSpan.FromSeconds(10));
        f.Check(exit is not null && exit.Contains("\"exit_status\":137", StringComparison.Ordinal), $"containerd should publish the exit with 137: {exit ?? "(no event)"}", id);
        ContainerdFixture.Eventually(() => f.Containerd.Task(id) is null, Shortly);
        f.Ctr("tasks", "delete", id);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.Check(ContainerdFixture.Eventually(() => !ProcFs.IsRunning(pid), Shortly),
            "`shim delete` should have had runc kill the container's process", id, deleteContainer);
        f.Check(!Directory.Exists($"/run/containerd/wasmsharp-runc/{ContainerdFixture.Namespace}/{id}"), "runc's state of the container should be gone", id, deleteContainer);
        f.AssertNothingLeft(id, deleteContainer);
    }

    [Fact]
    public void Wasm_server_and_native_client_share_a_shim_and_a_network_namespace()
    {
        var group = f.NewId("native-pod");
        string[] grouped = ["--annotation", $"io.kubernetes.cri.sandbox-id={group}"];
        var serverId = f.NewId("pod-wasm-server");
        var clientId = f.NewId("pod-native-client");
        try
        {
            var server = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. grouped, Images.WasmTests, serverId, "/httpd.wasm", "8080"]);
            f.Check(server.ExitCode == 0, "the Wasm server should start", serverId, server);
            var serverPid = f.Containerd.Task(serverId)?.Pid ?? 0;
            f.Check(serverPid > 0, "the server's task should be running", serverId, server);

            // Retried until the server listens (its "listening" goes to a FIFO nobody reads here).
            ProcessResult? fetch = null;
            var fetched = ContainerdFixture.Eventually(() =>
            {
                var runId = f.NewId("pod-native-client");
                fetch = RunNative(runId, [.. grouped, "--with-ns", $"network:/proc/{serverPid}/ns/net"], "wget", "-qO-", "http://127.0.0.1:8080/");
                if (fetch.ExitCode == 0) clientId = runId;
                return fetch.ExitCode == 0;
            }, TimeSpan.FromSeconds(10));
            f.Check(fetched && fetch!.Stdout.Contains("hello from wasmsharp", StringComparison.Ordinal),
                $"the native wget should fetch the Wasm server's page over the shared loopback, got: {fetch?.Stdout}", clientId, fetch!);

            // Same shim: the Wasm task is a thread of the shim, the native init is its child.
            var sleeperId = f.NewId("pod-native-sleeper");
            var sleeper = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. grouped, "--with-ns", $"network:/proc/{serverPid}/ns/net", Images.Busybox, sleeperId, "sleep", "1000"]);
            try
            {
                f.Check(sleeper.ExitCode == 0, "a native container should join the group", sleeperId, sleeper);
                var sleeperPid = f.Containerd.Task(sleeperId)!.Pid;
                f.Check(ProcFs.ParentPid(sleeperPid) == ProcFs.Tgid(serverPid),
                    $"the native init's parent ({ProcFs.ParentPid(sleeperPid)}) should be the shim running the Wasm server ({ProcFs.Tgid(serverPid)})", sleeperId, sleeper);
            }
            finally
            {
                f.RemoveContainer(sleeperId);
            }
            f.AssertNothingLeft(sleeperId);
        }
        finally
        {
            f.RemoveContainer(serverId);
        }
        f.AssertNothingLeft(serverId);
        f.AssertNothingLeft(clientId);
    }
}

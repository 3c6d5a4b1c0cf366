using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The same verbs against runc (busybox) and our runtime (a wasm program with the same behaviour),
// through the same containerd: what a user observes must agree.
[Collection(ContainerdCollection.Name)]
public sealed class DifferentialTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(5);

    private IReadOnlyList<string> Topics(string id) =>
        f.Events.Topics(id);

    private IReadOnlyList<string> TopicsWhenSettled(string id, int expected)
    {
        ContainerdFixture.Eventually(() => Topics(id).Count >= expected, Shortly);
        Thread.Sleep(100); // nothing further should trail in
        return Topics(id);
    }

    [Fact]
    public void Run_rm_publishes_the_same_event_sequence()
    {
        var wasmId = f.NewId("diff-events");
        var wasm = f.RunWasm(wasmId, "/exit.wasm", "3");
        var runcId = f.NewId("diff-events-runc");
        var runc = f.RunRunc(runcId, [], "/bin/busybox", "sh", "-c", "exit 3");
        f.Check(wasm.ExitCode == 3 && runc.ExitCode == 3, "both exit 3", wasmId, wasm, runc);
        var expected = new[] { "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete" };
        var runcTopics = TopicsWhenSettled(runcId, expected.Length);
        var wasmTopics = TopicsWhenSettled(wasmId, expected.Length);
        var (agree, difference) = EventSequences.Compare(runcTopics, wasmTopics);
        ScenarioTable.Record("events of `ctr run --rm` (exit 3)", string.Join(", ", runcTopics), string.Join(", ", wasmTopics), difference);
        f.Check(runcTopics.SequenceEqual(expected) || runcTopics.SequenceEqual(expected[..^1]), $"runc's events: {string.Join(", ", runcTopics)}", runcId, runc);
        f.Check(wasmTopics.SequenceEqual(expected) && agree, $"our events {string.Join(", ", wasmTopics)} should be runc's {string.Join(", ", runcTopics)}", wasmId, wasm);
    }

    [Fact]
    public void Exec_publishes_the_same_event_sequence()
    {
        var wasmId = f.NewId("diff-exec");
        var runcId = f.NewId("diff-exec-runc");
        try
        {
            f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/sleep.wasm", "1000");
            f.Ctr("run", "-d", Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            var wasm = f.Ctr("tasks", "exec", "--exec-id", "x", wasmId, "/exit.wasm", "4");
            var runc = f.Ctr("tasks", "exec", "--exec-id", "x", runcId, "/bin/busybox", "sh", "-c", "exit 4");
            f.Check(wasm.ExitCode == 4 && runc.ExitCode == 4, "both execs exit 4", wasmId, wasm, runc);
            var runcTopics = TopicsWhenSettled(runcId, 5);
            var wasmTopics = TopicsWhenSettled(wasmId, 5);
            ScenarioTable.Record("events of `ctr task exec` (exit 4) in a running task", string.Join(", ", runcTopics), string.Join(", ", wasmTopics));
            f.Check(runcTopics.Contains("/tasks/exec-added") && runcTopics.Contains("/tasks/exec-started"), $"runc's events: {string.Join(", ", runcTopics)}", runcId, runc);
            f.Check(wasmTopics.SequenceEqual(runcTopics), $"our events {string.Join(", ", wasmTopics)} should be runc's {string.Join(", ", runcTopics)}", wasmId, wasm, runc);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
    }

    [Fact]
    public void Errors_agree_delete_running_and_kill_exited()
    {
        var wasmId = f.NewId("diff-errors");
        var runcId = f.NewId("diff-errors-runc");
        try
        {
            f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/sleep.wasm", "1000");
            f.Ctr(["run", "-d", .. f.HostPidNamespace, Images.Busybox, runcId, "/bin/busybox", "sleep", "1000"]);

            var wasmDelete = f.Ctr("tasks", "delete", wasmId);
            var runcDelete = f.Ctr("tasks", "delete", runcId);
            f.Check(runcDelete.ExitCode != 0 && wasmDelete.ExitCode != 0, "deleting a running task fails for both", wasmId, wasmDelete, runcDelete);
            f.Check(wasmDelete.Stderr.Contains("cannot delete a running process", StringComparison.Ordinal) == runcDelete.Stderr.Contains("cannot delete a running process", StringComparison.Ordinal),
                "with the same message", wasmId, wasmDelete, runcDelete);
            f.Check(f.Containerd.Task(wasmId) is { Status: "RUNNING" }, "and the task keeps running", wasmId, wasmDelete);

            foreach (var id in new[] { wasmId, runcId }) f.Ctr("tasks", "kill", "--signal", "SIGKILL", id);
            ContainerdFixture.Eventually(() => f.Containerd.Task(wasmId) is { Status: "STOPPED" } && f.Containerd.Task(runcId) is { Status: "STOPPED" }, Shortly);
            var wasmKill = f.Ctr("tasks", "kill", wasmId);
            var runcKill = f.Ctr("tasks", "kill", runcId);
            f.Check(runcKill.ExitCode != 0 && runcKill.Stderr.Contains("not found", StringComparison.Ordinal), "runc: killing an exited task is NotFound", runcId, runcKill);
            f.Check(wasmKill.ExitCode != 0 && wasmKill.Stderr.Contains("not found", StringComparison.Ordinal), "ours too", wasmId, wasmKill, runcKill);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
    }

    [Fact]
    public void Pause_resume_kill_delete_publish_the_same_event_sequence()
    {
        var wasmId = f.NewId("diff-pause");
        var runcId = f.NewId("diff-pause-runc");
        try
        {
            f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/sleep.wasm", "1000");
            f.Ctr("run", "-d", Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            foreach (var id in new[] { wasmId, runcId })
            {
                f.Check(f.Ctr("tasks", "pause", id).ExitCode == 0, "pause", id);
                f.Check(f.Ctr("tasks", "resume", id).ExitCode == 0, "resume", id);
                f.Check(f.Ctr("tasks", "kill", "--signal", "SIGKILL", id).ExitCode == 0, "kill", id);
                ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "STOPPED" }, Shortly);
                f.Check(f.Ctr("tasks", "delete", id).ExitCode == 0, "delete", id);
            }
            var runcTopics = TopicsWhenSettled(runcId, 6);
            var wasmTopics = TopicsWhenSettled(wasmId, 6);
            var (agree, difference) = EventSequences.Compare(runcTopics, wasmTopics);
            ScenarioTable.Record("events of run -d, pause, resume, kill, delete", string.Join(", ", runcTopics), string.Join(", ", wasmTopics), difference);
            f.Check(runcTopics.Contains("/tasks/paused") && runcTopics.Contains("/tasks/resumed"), $"runc's events: {string.Join(", ", runcTopics)}", runcId);
            f.Check(agree && wasmTopics[^1] == "/tasks/delete", $"our events {string.Join(", ", wasmTopics)} should be runc's {string.Join(", ", runcTopics)}", wasmId);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
    }
}

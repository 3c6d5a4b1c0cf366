using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr run -d` then `ctr task kill`: the task stops promptly, the status is 128 + signal everywhere a
// user can see it (the /tasks/exit event, a waiting client, `ctr task delete`), and it cleans up.
// ctr 1.6 has no `task wait`; `ctr task attach` is its waiting client (it waits, exits with the task's
// status, then deletes the task).
[Collection(ContainerdCollection.Name)]
public sealed class KillTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData("SIGTERM", 143, "1000")]
    [InlineData("SIGKILL", 137, "1000")]
    [InlineData("SIGTERM", 143, "spin")]
    [InlineData("SIGKILL", 137, "spin")]
    public void Wasm_kill_stops_the_task_and_it_can_be_deleted(string signal, int expected, string mode)
    {
        var id = f.NewId($"kill-{signal.ToLowerInvariant()}-{mode}");
        KillThenDelete(id, ["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", mode], signal, expected);
    }

    [Theory]
    [InlineData("SIGTERM", 143)]
    [InlineData("SIGKILL", 137)]
    public void Runc_kill_gives_the_same_status(string signal, int expected)
    {
        var id = f.NewId($"kill-runc-{signal.ToLowerInvariant()}");
        KillThenDelete(id, ["run", "-d", .. f.HostPidNamespace, Images.Busybox, id, "sleep", "1000"], signal, expected);
    }

    [Theory]
    [InlineData("SIGTERM", 143)]
    [InlineData("SIGKILL", 137)]
    public void Wasm_waiting_client_sees_the_kill_status(string signal, int expected)
    {
        var id = f.NewId($"wait-{signal.ToLowerInvariant()}");
        WaitThenKill(id, ["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "1000"], signal, expected);
    }

    [Theory]
    [InlineData("SIGTERM", 143)]
    [InlineData("SIGKILL", 137)]
    public void Runc_waiting_client_sees_the_same_status(string signal, int expected)
    {
        var id = f.NewId($"wait-runc-{signal.ToLowerInvariant()}");
        WaitThenKill(id, ["run", "-d", .. f.HostPidNamespace, Images.Busybox, id, "sleep", "1000"], signal, expected);
    }

    private void StartRunning(string id, string[] run)
    {
        var start = f.Ctr(run);
        f.Check(start.ExitCode == 0, "ctr run -d should succeed", id, start);
        var row = f.Containerd.Task(id);
        f.Check(row is { Status: "RUNNING" }, $"`ctr task ls` should show {id} RUNNING, shows {row?.Status ?? "nothing"}", id, start);
    }

    private void KillThenDelete(string id, string[] run, string signal, int expected)
    {
        StartRunning(id, run);
        var kill = f.Ctr("tasks", "kill", "--signal", signal, id);
        f.Check(kill.ExitCode == 0, $"ctr task kill --signal {signal} should succeed", id, kill);
        var stopped = ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "STOPPED" }, Shortly);
        f.Check(stopped, $"`ctr task ls` should show {id} STOPPED within {Shortly.TotalSeconds} s, shows {f.Containerd.Task(id)?.Status}", id, kill);

        var exit = f.Events.WaitFor(id, "/tasks/exit", Shortly);
        f.Check(exit is not null && exit.Contains($"\"exit_status\":{expected}", StringComparison.Ordinal),
            $"the /tasks/exit event should carry exit_status {expected}: {exit ?? "(no event)"}", id, kill);

        var delete = f.Ctr("tasks", "delete", id);
        f.Check(delete.ExitCode == 0, "ctr task delete should succeed", id, delete);
        // ctr 1.6 reports a non-zero status as a warning: "task ID exit with non-zero exit code N".
        f.Check(!delete.Stderr.Contains("exit code", StringComparison.Ordinal) || delete.Stderr.Contains($"exit code {expected}", StringComparison.Ordinal),
            $"ctr task delete should report exit code {expected}", id, delete);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.Check(deleteContainer.ExitCode == 0, "ctr container delete should succeed", id, deleteContainer);
        f.AssertNothingLeft(id, kill, delete, deleteContainer);
    }

    private void WaitThenKill(string id, string[] run, string signal, int expected)
    {
        StartRunning(id, run);
        using var waiter = f.Containerd.StartCtr(TimeSpan.FromSeconds(20), ["tasks", "attach", id]);
        Thread.Sleep(300); // let it reach Wait (were it later, Wait on an exited task still returns the status)
        var kill = f.Ctr("tasks", "kill", "--signal", signal, id);
        f.Check(kill.ExitCode == 0, $"ctr task kill --signal {signal} should succeed", id, kill);
        var waited = waiter.Wait();
        f.Check(!waited.TimedOut && waited.ExitCode == expected, $"the waiting client should exit with {expected}", id, kill, waited);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.Check(deleteContainer.ExitCode == 0, "ctr container delete should succeed", id, waited, deleteContainer);
        f.AssertNothingLeft(id, kill, waited, deleteContainer);
    }
}

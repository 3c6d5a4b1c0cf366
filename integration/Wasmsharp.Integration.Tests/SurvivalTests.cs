using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Containers outlive a containerd restart (the shim keeps running and containerd reconnects from the
// bundle's address file); a shim killed with -9 is cleaned up by containerd through our `delete`.
[Collection(ContainerdCollection.Name)]
public sealed class SurvivalTests(ContainerdFixture f)
{
    [Fact]
    public void Container_survives_a_containerd_restart_and_its_exit_arrives_afterwards()
    {
        var id = f.NewId("survive");
        var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "4");
        f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
        var before = f.Containerd.Task(id);
        f.Check(before is { Status: "RUNNING" }, "the task should be running", id, run);

        f.Containerd.Restart();
        f.Events.Resubscribe();

        var after = f.Containerd.Task(id);
        f.Check(after is { Status: "RUNNING" } && after.Pid == before!.Pid, $"after the restart `ctr task ls` should still show {id} RUNNING with pid {before!.Pid}, shows {after}", id, run);
        var exit = f.Events.WaitFor(id, "/tasks/exit", TimeSpan.FromSeconds(15));
        f.Check(exit is not null && !exit.Contains("exit_status", StringComparison.Ordinal),
            $"the exit (status 0, which the JSON omits) should reach containerd after the restart: {exit ?? "(no event)"}", id, run);
        f.Check(f.Containerd.Task(id) is { Status: "STOPPED" }, "the task should then be STOPPED", id, run);
        var delete = f.Ctr("tasks", "delete", id);
        f.Check(delete.ExitCode == 0, "ctr task delete should succeed", id, delete);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run, delete);
    }

    [Fact]
    public void Killing_the_shim_reports_137_and_leaves_nothing()
    {
        var id = f.NewId("shim-kill9");
        var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "1000");
        f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
        var shim = ProcFs.Processes().Single(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim-wasmsharp", StringComparison.Ordinal) && p.HasArgPair("-id", id));

        // The socket the shim listened on, as `start` told containerd: the dead shim cannot remove it.
        var socket = File.ReadAllText(Path.Combine(f.Containerd.BundleDir(id), "address")).Trim().Replace("unix://", "", StringComparison.Ordinal);
        ProcFs.Signal(shim.Pid, ProcFs.SIGKILL);

        var exit = f.Events.WaitFor(id, "/tasks/exit", TimeSpan.FromSeconds(10));
        f.Check(exit is not null && exit.Contains("\"exit_status\":137", StringComparison.Ordinal),
            $"containerd should publish the task's exit with 137: {exit ?? "(no event)"}", id, run);
        ContainerdFixture.Eventually(() => f.Containerd.Task(id) is null, TimeSpan.FromSeconds(5));
        f.Ctr("tasks", "delete", id);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.Check(deleteContainer.ExitCode == 0, "the container can then be deleted", id, deleteContainer);
        f.AssertNothingLeft(id, run, deleteContainer);
        f.Check(!File.Exists(socket), $"the dead shim's socket {socket} is removed (by `shim delete`, as runc's)", id, run);
    }
}

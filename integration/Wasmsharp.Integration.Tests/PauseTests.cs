using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr task pause` / `resume`: the guest stops at its next safe point and continues where it was;
// `ctr task ls` and the events say so, as for a frozen runc container.
[Collection(ContainerdCollection.Name)]
public sealed class PauseTests(ContainerdFixture f)
{
    [Fact]
    public void Pause_holds_the_guest_and_resume_continues_it_like_runc()
    {
        var id = f.NewId("pause");
        var host = f.HostDir(id);
        var tick = Path.Combine(host, "tick");
        var runcId = f.NewId("pause-runc");
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--mount", $"type=bind,src={host},dst=/data,options=rbind:rw",
                Images.WasmTests, id, "/tick.wasm", "/data/tick");
            f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
            f.Check(ContainerdFixture.Eventually(() => Counter(tick) > 2, TimeSpan.FromSeconds(5)), "the guest should tick", id, run);

            var pause = f.Ctr("tasks", "pause", id);
            f.Check(pause.ExitCode == 0, "ctr task pause should succeed", id, pause);
            f.Check(f.Containerd.Task(id) is { Status: "PAUSED" }, $"`ctr task ls` should show PAUSED, shows {f.Containerd.Task(id)?.Status}", id, pause);
            var held = Counter(tick);
            Thread.Sleep(600);
            f.Check(Counter(tick) == held, $"while paused the counter should stay at {held}, is {Counter(tick)}", id, pause);
            var again = f.Ctr("tasks", "pause", id);
            f.Check(again.ExitCode != 0, "pausing a paused task should fail", id, again);

            var resume = f.Ctr("tasks", "resume", id);
            f.Check(resume.ExitCode == 0, "ctr task resume should succeed", id, resume);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "`ctr task ls` should show RUNNING again", id, resume);
            f.Check(ContainerdFixture.Eventually(() => Counter(tick) > held + 2, TimeSpan.FromSeconds(5)), "after resume the guest should tick again", id, resume);
            f.Check(f.Events.WaitFor(id, "/tasks/paused", TimeSpan.FromSeconds(5)) is not null, "a /tasks/paused event", id, pause);
            f.Check(f.Events.WaitFor(id, "/tasks/resumed", TimeSpan.FromSeconds(5)) is not null, "a /tasks/resumed event", id, resume);

            // runc, same verbs: the same statuses and events.
            var runcRun = f.Ctr("run", "-d", Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            f.Check(runcRun.ExitCode == 0, "runc run -d should succeed", runcId, runcRun);
            var runcPause = f.Ctr("tasks", "pause", runcId);
            f.Check(runcPause.ExitCode == 0 && f.Containerd.Task(runcId) is { Status: "PAUSED" }, "runc pauses too", runcId, runcPause);
            f.Check(f.Ctr("tasks", "pause", runcId).ExitCode == again.ExitCode, "pausing twice fails with runc too", runcId, runcPause);
            f.Check(f.Ctr("tasks", "resume", runcId).ExitCode == 0 && f.Containerd.Task(runcId) is { Status: "RUNNING" }, "runc resumes", runcId, runcPause);
        }
        finally
        {
            f.RemoveContainer(id);
            f.RemoveContainer(runcId);
        }
    }

    [Fact]
    public void Kill_of_a_paused_guest_stops_it()
    {
        var id = f.NewId("pause-kill");
        var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "spin");
        f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
        var pause = f.Ctr("tasks", "pause", id);
        f.Check(pause.ExitCode == 0, "ctr task pause should succeed", id, pause);
        var delete = f.Ctr("tasks", "delete", id);
        f.Check(delete.ExitCode != 0, "deleting a paused task should fail, as with runc", id, delete);
        var kill = f.Ctr("tasks", "kill", "--signal", "SIGKILL", id);
        f.Check(kill.ExitCode == 0, "ctr task kill should succeed", id, kill);
        var exit = f.Events.WaitFor(id, "/tasks/exit", TimeSpan.FromSeconds(5));
        f.Check(exit is not null && exit.Contains("\"exit_status\":137", StringComparison.Ordinal), $"the paused guest should exit with 137: {exit}", id, kill);
        f.Ctr("tasks", "delete", id);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run, kill);
    }

    // The tick file of a ticking guest (-1 while absent or half-written).
    internal static long Counter(string path)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), out var n) ? n : -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }
}

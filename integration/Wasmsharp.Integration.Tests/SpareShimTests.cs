using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `start` hands each container to a spare daemon left running before (see SpareShim in the shim), so a container
// does not wait for a shim process to start up; a standby takes the spare's place. What a user can see of it: two
// extra shim processes per containerd, shims that look like any other (`ps` shows -id ID), and a way to turn it off.
[Collection(ContainerdCollection.Name)]
public sealed class SpareShimTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(10);

    // Spare shims of this containerd, and their standbys, which take a spare's place when it is adopted.
    private static List<ProcFs.ProcessInfo> Spares(PrivateContainerd containerd) => OfRole(containerd, "-spare");

    private static List<ProcFs.ProcessInfo> Standbys(PrivateContainerd containerd) => OfRole(containerd, "-standby");

    private static List<ProcFs.ProcessInfo> OfRole(PrivateContainerd containerd, string role) =>
        ProcFs.Processes().Where(p => p.SpareRole == role && p.HasArgPair("-address", containerd.Address)).ToList();

    private static bool Running(int pid) => ProcFs.IsRunning(pid);

    private int ShimOf(string id) => ProcFs.Tgid(f.Containerd.Task(id)!.Pid) ?? throw new InvalidOperationException($"no process for {id}");

    [Fact]
    public void The_next_container_is_served_by_the_spare_the_previous_start_left()
    {
        var first = f.NewId("spare-first");
        var second = f.NewId("spare-second");
        try
        {
            var run1 = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, first, "/sleep.wasm", "1000");
            f.Check(run1.ExitCode == 0, "the first container starts", first, run1);
            ContainerdFixture.Eventually(() => Spares(f.Containerd).Count == 1, Shortly);
            var spares = Spares(f.Containerd);
            f.Check(spares.Count == 1, $"one spare shim waits after a start: {string.Join(" | ", spares.Select(p => p.CommandLine))}", first, run1);
            var spare = spares[0].Pid;

            var run2 = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, second, "/sleep.wasm", "1000");
            f.Check(run2.ExitCode == 0, "the second container starts", second, run2);
            f.Check(ShimOf(second) == spare, $"the second container runs in the spare ({spare}), not in {ShimOf(second)}", second, run2);
            var shown = ProcFs.Processes().First(p => p.Pid == spare);
            f.Check(shown.HasArgPair("-id", second) && shown.HasArgPair("-namespace", f.Containerd.Namespace),
                $"the adopted spare shows a shim's command line: {shown.CommandLine}", second, run2);
            ContainerdFixture.Eventually(() => Spares(f.Containerd).Any(p => p.Pid != spare), Shortly);
            var next = Spares(f.Containerd);
            f.Check(next.Count == 1 && next[0].Pid != spare,
                $"a new spare waits for the next container (spares: {string.Join(" | ", next.Select(p => $"{p.Pid} {p.CommandLine}"))}; standbys: {string.Join(" | ", Standbys(f.Containerd).Select(p => p.Pid))})", second, run2);
            // It was the standby, which now waits behind it with a standby of its own.
            ContainerdFixture.Eventually(() => Standbys(f.Containerd).Count == 1, Shortly);
            f.Check(Standbys(f.Containerd).Count == 1, "one standby waits behind the spare", second, run2);

            var exec = f.Ctr("tasks", "exec", "--exec-id", "e1", second, "/exit.wasm", "3");
            f.Check(exec.ExitCode == 3, $"the adopted shim serves the task API (exec exit {exec.ExitCode})", second, exec);
        }
        finally
        {
            f.RemoveContainer(first);
            f.RemoveContainer(second);
        }
    }

    [Fact]
    public void Switched_off_in_containerds_environment_no_spare_is_started()
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-spare-off", environment: new Dictionary<string, string> { ["WASMSHARP_SPARE_SHIM"] = "off" });
        Images.Import(containerd, Images.BuildHello(f.Programs, containerd.BaseDir));
        for (var i = 0; i < 2; i++)
        {
            var run = containerd.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, Images.Hello, $"off-{i}");
            Assert.True(run.ExitCode == 0 && run.Stdout.Contains("hello", StringComparison.Ordinal), run.ToString());
        }
        Assert.Empty(Spares(containerd));
    }

    [Fact]
    public void A_spare_leaves_when_its_containerd_is_gone()
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-spare-gone");
        Images.Import(containerd, Images.BuildHello(f.Programs, containerd.BaseDir));
        var run = containerd.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, Images.Hello, "gone-1");
        Assert.True(run.ExitCode == 0, run.ToString());
        ContainerdFixture.Eventually(() => Spares(containerd).Count == 1, Shortly);
        var spare = Assert.Single(Spares(containerd)).Pid;
        ContainerdFixture.Eventually(() => Standbys(containerd).Count == 1, Shortly);
        var standby = Assert.Single(Standbys(containerd)).Pid;
        containerd.StopDaemon();
        ContainerdFixture.Eventually(() => !Running(spare) && !Running(standby), Shortly);
        Assert.False(Running(spare), $"spare {spare} still runs after containerd stopped");
        // Sent away, not promoted: no spare takes over for a containerd that is gone.
        Assert.False(Running(standby), $"standby {standby} still runs after containerd stopped");
        Assert.Empty(Spares(containerd));
    }
}

using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr run` gives each container a network namespace of its own (as runc does), `--net-host` the host's,
// `--with-ns network:PATH` the one at PATH; the task's pid is in it from create on, the shim's other threads
// never are, and nothing holds it once the container is deleted.
[Collection(ContainerdCollection.Name)]
public sealed class NetworkNamespaceTests(ContainerdFixture f)
{
    private ulong HostNamespace => NetNs.Of(f.Containerd.Pid) ?? throw new InvalidOperationException("containerd has no netns?");

    private (string Id, int Pid) RunDetached(string what, params string[] options)
    {
        var id = f.NewId(what);
        var run = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. options, Images.WasmTests, id, "/sleep.wasm", "1000"]);
        f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
        var task = f.Containerd.Task(id);
        f.Check(task is { Status: "RUNNING" }, $"task should be RUNNING, is {task?.Status ?? "missing"}", id, run);
        return (id, task!.Pid);
    }

    [Fact]
    public void Each_container_gets_its_own_namespace_with_only_lo_up_and_nothing_holds_it_after_delete()
    {
        var (a, pidA) = RunDetached("netns-a");
        var (b, pidB) = RunDetached("netns-b");
        ulong nsA = 0;
        try
        {
            nsA = NetNs.Of(pidA) ?? 0;
            var nsB = NetNs.Of(pidB) ?? 0;
            f.Check(nsA != 0 && nsA != HostNamespace, $"task pid {pidA} should be in a namespace of its own, is in net:[{nsA}] (host net:[{HostNamespace}])", a);
            f.Check(nsB != 0 && nsB != nsA, $"two containers should not share a namespace (both net:[{nsA}])", b);
            // Only the guest's thread is in it: the shim itself (its main thread) stays in the host's.
            var shim = ProcFs.Tgid(pidA) ?? 0;
            f.Check(NetNs.Of(shim) == HostNamespace, $"the shim's main thread ({shim}) should stay in the host namespace", a);
            var holders = NetNs.Holders(nsA);
            f.Check(holders.Count == 1, $"only the guest thread should be in net:[{nsA}], found: {string.Join("; ", holders)}", a);
            // What the container sees: lo, up, and nothing else.
            var links = ProcessRunner.Run("nsenter", [$"--net=/proc/{pidA}/ns/net", "ip", "-o", "link"], TimeSpan.FromSeconds(10));
            var lines = ContainerdFixture.Lines(links.Stdout);
            f.Check(links.ExitCode == 0 && lines.Count == 1 && lines[0].Contains(" lo: ") && lines[0].Contains(",UP"),
                "the container's namespace should hold only lo, up", a, links);
        }
        finally
        {
            f.RemoveContainer(a);
            f.RemoveContainer(b);
        }
        f.AssertNothingLeft(a);
        ContainerdFixture.Eventually(() => NetNs.Holders(nsA).Count == 0, TimeSpan.FromSeconds(5));
        f.Check(NetNs.Holders(nsA).Count == 0, $"net:[{nsA}] still held after delete: {string.Join("; ", NetNs.Holders(nsA))}", a);
    }

    [Fact]
    public void Net_host_shares_the_host_namespace()
    {
        var (id, pid) = RunDetached("netns-host", "--net-host");
        try
        {
            f.Check(NetNs.Of(pid) == HostNamespace, $"with --net-host the task pid {pid} should be in the host namespace", id);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void With_ns_network_path_joins_that_namespace_and_leaves_it_to_its_owner()
    {
        var (owner, ownerPid) = RunDetached("netns-owner");
        string? joiner = null;
        try
        {
            var ns = NetNs.Of(ownerPid)!.Value;
            (joiner, var joinerPid) = RunDetached("netns-join", "--with-ns", $"network:/proc/{ownerPid}/ns/net");
            f.Check(NetNs.Of(joinerPid) == ns, $"the joining container should be in net:[{ns}], is in net:[{NetNs.Of(joinerPid)}]", joiner);
            f.RemoveContainer(joiner);
            f.Check(NetNs.Of(ownerPid) == ns, "the owner's namespace must outlive a container that joined it", owner);
        }
        finally
        {
            if (joiner is not null) f.RemoveContainer(joiner);
            f.RemoveContainer(owner);
        }
    }

    [Fact]
    public void Exec_runs_in_the_container_namespace()
    {
        var (id, pid) = RunDetached("netns-exec");
        try
        {
            var exec = f.Containerd.StartCtr(TimeSpan.FromSeconds(30), ["task", "exec", "--exec-id", "e1", id, "/sleep.wasm", "1000"]);
            int? execPid = null;
            ContainerdFixture.Eventually(() =>
            {
                var ps = f.Ctr("task", "ps", id);
                execPid = ContainerdFixture.Lines(ps.Stdout).Skip(1).Select(l => int.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]))
                    .FirstOrDefault(p => p != pid) is var p && p != 0 ? p : null;
                return execPid is not null;
            }, TimeSpan.FromSeconds(10));
            f.Check(execPid is not null, "ctr task ps should list the exec", id);
            f.Check(NetNs.Of(execPid!.Value) == NetNs.Of(pid), $"exec thread {execPid} should be in the container's namespace", id);
            exec.Kill();
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }
}

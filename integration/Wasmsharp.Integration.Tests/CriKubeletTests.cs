using Grpc.Core;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// What kubelet reads and does to the Wasm containers of a wasmsharp pod, beyond starting them: statuses with
// kubelet's reasons, exec, stats, resource updates, stops with a grace period, restarts, and a pod's removal.
[Collection(CriCollection.Name)]
public sealed class CriKubeletTests(CriFixture f)
{
    private const long MiB = 1 << 20;

    private static Cri.ContainerConfig Wasm(string name, params string[] command) => CriClient.ContainerConfig(name, Images.WasmTests, command);

    private static Cri.ContainerConfig WithMemoryLimit(Cri.ContainerConfig config, long bytes)
    {
        config.Linux.Resources = new Cri.LinuxContainerResources { MemoryLimitInBytes = bytes };
        return config;
    }

    private static string Describe(Cri.ContainerStatus s) => $"{s.State}, exit code {s.ExitCode}, reason {s.Reason} ({s.Message})";

    // containerd's CRI sets Reason from the exit code, and OOMKilled from the /tasks/oom event the shim
    // publishes before /tasks/exit: here from the pod's one shim, which serves all three containers.
    [Fact]
    public void Exited_wasm_containers_have_kubelets_reasons_Completed_Error_and_OOMKilled()
    {
        using var pod = f.RunPod("wasm-reasons", CriFixture.WasmHandler);
        var ok = pod.Start(Wasm("ok", "/hello.wasm"));
        var failed = pod.Start(Wasm("failed", "/exit.wasm", "3"));
        var oom = pod.Start(WithMemoryLimit(Wasm("oom", "/alloc.wasm", "forever"), 32 * MiB));

        var status = f.Client.WaitExited(ok, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 0, Reason: "Completed" }, Describe(status), ok);
        status = f.Client.WaitExited(failed, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 3, Reason: "Error" }, Describe(status), failed);
        status = f.Client.WaitExited(oom, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 137, Reason: "OOMKilled" }, Describe(status), oom);
        var log = CriClient.LogText(pod.LogPath("oom"));
        f.Check(log.Contains("24 MiB", StringComparison.Ordinal) && !log.Contains("malloc failed", StringComparison.Ordinal),
            $"killed near its limit, before malloc failed:\n{log}", oom);
    }

    [Fact]
    public void ExecSync_runs_a_wasm_module_in_a_running_wasm_container_and_a_missing_one_fails_clearly()
    {
        using var pod = f.RunPod("wasm-exec", CriFixture.WasmHandler);
        var id = pod.Start(Wasm("main", CriFixture.WasmSleep));

        var hello = f.Client.ExecSync(id, ["/hello.wasm", "from exec"]);
        f.Check((hello.ExitCode, hello.Stdout.ToStringUtf8(), hello.Stderr.ToStringUtf8()) == (0, "hello from wasm\nfrom exec\n", "hello on stderr\n"),
            $"exec /hello.wasm: exit {hello.ExitCode}, stdout {hello.Stdout.ToStringUtf8()}, stderr {hello.Stderr.ToStringUtf8()}", id);
        var exit = f.Client.ExecSync(id, ["/exit.wasm", "5"]);
        f.Check(exit.ExitCode == 5, $"exec /exit.wasm 5: exit {exit.ExitCode}", id);

        // As runc's "exec: no such file or directory": the call fails and names the module.
        var missing = Assert.Throws<RpcException>(() => f.Client.ExecSync(id, ["/missing.wasm"]));
        f.Check(missing.Status.Detail.Contains("/missing.wasm", StringComparison.Ordinal), $"exec of a missing module: {missing.Status}", id);
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the container survives the failed exec", id);
    }

    // ContainerStats reads the task's metrics: in the pod's one shim each Wasm container reports what its own
    // guests hold, not the shim's memory.
    [Fact]
    public void Stats_report_each_wasm_containers_own_memory_and_its_cpu()
    {
        using var pod = f.RunPod("wasm-stats", CriFixture.WasmHandler);
        var sleeper = pod.Start(Wasm("sleeper", CriFixture.WasmSleep));
        var holder = pod.Start(Wasm("holder", "/alloc.wasm", "20", "1000"));
        f.CheckHolderAndSleeperStats(pod, holder, sleeper);

        var listed = f.Client.ListContainerStats(pod.Id);
        f.Check(listed.Count == 2 && listed.Single(s => s.Attributes.Id == holder).Memory.WorkingSetBytes.Value >= 20 * MiB,
            $"ListContainerStats: {string.Join("; ", listed)}", pod.Id);
        // PodSandboxStats is in containerd 1.7 and later.
        if (ContainerdVersions.ServerVersion(f.Containerd) is (>= 2, _) or (1, >= 7))
        {
            var podStats = f.Client.PodStats(pod.Id);
            f.Check(podStats.Attributes.Id == pod.Id && podStats.Linux.Containers.Any(c => c.Attributes.Id == holder && c.Memory.WorkingSetBytes.Value >= 20 * MiB),
                $"PodSandboxStats: {podStats}", pod.Id);
        }
    }

    // The limit reaches the running guests (at their next growth) as a cgroup's would reach runc's processes.
    [Fact]
    public void UpdateContainerResources_limits_later_growth_and_StopContainer_ends_a_wasm_guest_at_once_with_SIGTERM()
    {
        using var pod = f.RunPod("wasm-update", CriFixture.WasmHandler);
        var id = pod.Start(Wasm("main", CriFixture.WasmSleep));
        var fits = f.Client.ExecSync(id, ["/alloc.wasm", "48"]);
        f.Check(fits.ExitCode == 0, $"48 MiB without a limit: exit {fits.ExitCode}", id);

        f.Client.UpdateContainerResources(id, new Cri.LinuxContainerResources { MemoryLimitInBytes = 32 * MiB });
        var killed = f.Client.ExecSync(id, ["/alloc.wasm", "48"]);
        f.Check(killed.ExitCode == 137, $"48 MiB past the new 32 MiB limit: exit {killed.ExitCode}, {killed.Stdout.ToStringUtf8()}", id);

        // A Wasm guest has no SIGTERM handler: it ends at once, not after the grace period.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        f.Client.StopContainer(id, 30);
        var status = f.Client.ContainerStatus(id);
        f.Check(status is { State: Cri.ContainerState.ContainerExited, ExitCode: 143 } && clock.Elapsed < TimeSpan.FromSeconds(5),
            $"after StopContainer with a 30 s grace ({clock.Elapsed.TotalSeconds:F1} s): {Describe(status)}", id);
    }

    // containerd's CRI marks a container OOMKilled on the /tasks/oom its shim publishes, also while it runs (a child
    // was killed); the same as a runc pod, the baseline ("" = runc).
    [Theory]
    [InlineData("")]
    [InlineData(CriFixture.WasmHandler)]
    public void A_native_container_whose_child_is_OOM_killed_is_OOMKilled_while_it_runs_on(string handler)
    {
        using var pod = f.RunPod("native-oom", handler);
        var id = pod.Start(WithMemoryLimit(CriClient.ContainerConfig("sidecar", Images.Busybox,
            ["/bin/sh", "-c", "/bin/busybox tail /dev/zero; echo survived; exec sleep 600"]), 32 * MiB));
        ContainerdFixture.Eventually(() => f.Client.ContainerStatus(id).Reason == "OOMKilled", CriFixture.RunTimeout);
        var status = f.Client.ContainerStatus(id);
        f.Check(status is { State: Cri.ContainerState.ContainerRunning, Reason: "OOMKilled" }, Describe(status), id);
        ContainerdFixture.Eventually(() => CriClient.LogText(pod.LogPath("sidecar")).Contains("survived", StringComparison.Ordinal), CriFixture.RunTimeout);
        f.Check(CriClient.LogText(pod.LogPath("sidecar")) == "survived\n", $"log: {CriClient.LogText(pod.LogPath("sidecar"))}", id);
    }

    // A pod sharing the node's pid namespace (hostPID): its containers have no pid namespace of their own, so a
    // process that leaves a child behind (a double fork) leaves it to the nearest subreaper, the pod's shim, which
    // must reap it as runc's shim does.
    [Fact]
    public void Orphans_of_a_native_container_without_its_own_pid_namespace_are_reaped_by_the_pods_shim()
    {
        var podConfig = f.Client.PodConfig(f.Client.NewPodName("host-pid"));
        podConfig.Linux.SecurityContext.NamespaceOptions.Pid = Cri.NamespaceMode.Node;
        using var pod = f.Client.RunPod(podConfig, CriFixture.WasmHandler);
        var config = CriClient.ContainerConfig("forker", Images.Busybox,
            ["/bin/sh", "-c", "for i in 1 2 3; do (sleep 3 &); done; echo forked; exec sleep 600"]);
        config.Linux.SecurityContext = new Cri.LinuxContainerSecurityContext
        {
            NamespaceOptions = new Cri.NamespaceOption { Pid = Cri.NamespaceMode.Node, Network = Cri.NamespaceMode.Pod, Ipc = Cri.NamespaceMode.Pod },
        };
        var id = pod.Start(config);
        var shim = f.Shims(RepoLayout.ShimBinary, [pod.Id]).Single().Pid;

        // The three `sleep 3` are the shim's children once their parents have gone.
        IReadOnlyList<int> Orphans() => ProcFs.Processes().Where(p => p.CommandLine == "sleep 3" && ProcFs.ParentPid(p.Pid) == shim).Select(p => p.Pid).ToList();
        ContainerdFixture.Eventually(() => Orphans().Count == 3, CriFixture.RunTimeout);
        var orphans = Orphans();
        f.Check(orphans.Count == 3, $"expected three orphans re-parented to the shim {shim}, found {orphans.Count}", id);
        // They end after 3 s: then nothing of them may be left, not even a zombie.
        ContainerdFixture.Eventually(() => orphans.All(p => !Directory.Exists($"/proc/{p}")), TimeSpan.FromSeconds(15));
        var left = orphans.Where(p => Directory.Exists($"/proc/{p}")).Select(p => $"{p}: {ProcFs.State(p)}").ToList();
        f.Check(left.Count == 0, $"orphans left: {string.Join(", ", left)}", id);
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the container runs on", id);
    }

    // kubelet restarts an exited container by creating a new one with the same name and attempt + 1.
    [Fact]
    public void A_restarted_container_runs_in_the_same_shim_and_pod_namespace()
    {
        using var pod = f.RunPod("wasm-restart", CriFixture.WasmHandler);
        var first = pod.Start(Wasm("app", "/exit.wasm", "1"));
        f.Check(f.Client.WaitExited(first, CriFixture.RunTimeout).ExitCode == 1, "the first attempt exits 1", first);

        var config = Wasm("app", CriFixture.WasmSleep);
        config.Metadata.Attempt = 1;
        config.LogPath = "app-1.log";
        var second = pod.Start(config);
        f.Check(f.Client.ContainerStatus(second).State == Cri.ContainerState.ContainerRunning, "the second attempt runs", second);

        var shims = f.Shims(RepoLayout.ShimBinary, [pod.Id]);
        var pid = f.Client.ContainerPid(second) ?? 0;
        f.Check(shims.Count == 1 && ProcFs.Tgid(pid) == shims[0].Pid, $"attempt 1 (pid {pid}) is not in the pod's one shim: {string.Join("; ", shims.Select(s => s.Pid))}", second);
        var podPid = f.Client.PodPid(pod.Id) ?? 0;
        f.Check(NetNs.Of(pid) is { } ns && ns == NetNs.Of(podPid), $"attempt 1 is in netns {NetNs.Of(pid)}, the pod's is {NetNs.Of(podPid)}", second);
    }

    [Fact]
    public void Stopping_and_removing_a_wasm_pod_leaves_no_shim_mount_netns_cgroup_or_socket()
    {
        var pod = f.RunPod("wasm-gone", CriFixture.WasmHandler);
        CriFixture.PodTraces traces;
        try
        {
            pod.Start(Wasm("wasm", CriFixture.WasmSleep));
            pod.Start(CriClient.ContainerConfig("native", Images.Busybox, CriFixture.NativeSleep));
            traces = f.Traces(pod);
            // Each exists while the pod runs: its absence afterwards means something.
            f.Check(traces.Kinds == 5, $"while the pod runs: {string.Join(", ", traces.Left())}", pod.Id);
        }
        finally
        {
            pod.Dispose();
        }
        ContainerdFixture.Eventually(() => traces.Left().Count == 0, TimeSpan.FromSeconds(5));
        f.Check(traces.Left().Count == 0, $"left after RemovePodSandbox: {string.Join(", ", traces.Left())}", pod.Id);
    }
}

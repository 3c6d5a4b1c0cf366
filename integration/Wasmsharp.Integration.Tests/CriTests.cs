using System.Net;
using System.Text.RegularExpressions;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The CRI harness itself, with containerd's default runtime (runc) and the busybox image: what kubelet does
// to a pod works on this containerd version, and deleting a pod leaves nothing behind.
[Collection(CriCollection.Name)]
public sealed class CriTests(CriFixture f)
{
    [Fact]
    public void Version_names_containerd_and_cri_v1()
    {
        var version = f.Client.Version();
        Assert.Equal("containerd", version.RuntimeName);
        Assert.Equal("v1", version.RuntimeApiVersion);
    }

    // The runtime table is the one packaging/install.sh writes (it ran on this config), in the config version
    // it picks for this containerd, and containerd's CRI loaded it.
    [Fact]
    public void The_wasmsharp_runtime_is_configured_by_install_sh_in_the_config_version_for_this_containerd()
    {
        var config = File.ReadAllText(f.Containerd.ConfigPath);
        var v3 = ContainerdVersions.ServerVersion(f.Containerd).Major >= 2;
        Assert.Contains(v3 ? "version = 3" : "version = 2", config, StringComparison.Ordinal);
        var table = v3 ? "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmsharp]" : "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmsharp]";
        Assert.Contains($"# Added by wasmsharp's install.sh: WebAssembly containers (RuntimeClass handler \"wasmsharp\").\n{table}\n  runtime_type = \"{RepoLayout.Runtime}\"", config, StringComparison.Ordinal);
        // CRI's Status lists the handlers it loaded (containerd 2.x: RuntimeHandlers).
        var status = f.Client.Runtime.Status(new Cri.StatusRequest { Verbose = true });
        var handlers = status.RuntimeHandlers.Select(h => h.Name).ToList();
        f.Check(handlers.Count == 0 || handlers.Contains(CriFixture.WasmHandler), $"CRI's runtime handlers: {string.Join(", ", handlers)}");
        f.Check(status.Info.TryGetValue("config", out var json) && json.Contains(RepoLayout.Runtime, StringComparison.Ordinal),
            $"CRI's loaded config does not name {RepoLayout.Runtime}:\n{json}");
    }

    [Fact]
    public void A_container_prints_exits_zero_and_its_line_is_in_the_cri_log()
    {
        using var pod = f.RunPod("hello");
        var id = pod.Start(CriClient.ContainerConfig("hello", Images.Busybox, ["/bin/echo", "hello"]));
        var status = f.Client.WaitExited(id, CriFixture.RunTimeout);
        f.Check(status.ExitCode == 0, $"exit code {status.ExitCode} ({status.Reason}: {status.Message})", id);
        var log = CriClient.ReadLog(pod.LogPath("hello"));
        f.Check(log.Count == 1 && log[0] is { Stream: "stdout", Partial: false, Message: "hello" },
            $"CRI log {pod.LogPath("hello")}:\n{string.Join("\n", log)}", id);
        // The raw line, as kubelet's log reader parses it.
        Assert.Matches(new Regex(@"^\d{4}-\d\d-\d\dT\S+ stdout F hello$"), File.ReadAllText(pod.LogPath("hello")).TrimEnd('\n'));
        Assert.Equal(Cri.ContainerState.ContainerExited, f.Client.ListContainers(pod.Id).Single().State);
    }

    [Fact]
    public void A_nonzero_exit_and_stderr_reach_status_and_log()
    {
        using var pod = f.RunPod("fail");
        var id = pod.Start(CriClient.ContainerConfig("fail", Images.Busybox, ["/bin/sh", "-c", "echo oops >&2; exit 7"]));
        var status = f.Client.WaitExited(id, CriFixture.RunTimeout);
        f.Check(status.ExitCode == 7, $"exit code {status.ExitCode}", id);
        Assert.Equal("oops\n", CriClient.LogText(pod.LogPath("fail"), "stderr"));
    }

    [Fact]
    public void A_pod_with_its_own_network_namespace_gets_an_address_from_the_cni_bridge()
    {
        using var pod = f.RunPod("net");
        var ip = pod.Status().Network?.Ip ?? "";
        f.Check(IPAddress.TryParse(ip, out var address) && InPodSubnet(address), $"pod address '{ip}' is not in {PrivateContainerd.PodSubnet}", pod.Id);
        var id = pod.Start(CriClient.ContainerConfig("net", Images.Busybox, CriFixture.NativeSleep));
        // The container sees that address on its eth0, and lo is up.
        var exec = f.Client.ExecSync(id, ["/bin/ip", "-o", "addr", "show"]);
        var output = exec.Stdout.ToStringUtf8();
        f.Check(exec.ExitCode == 0 && output.Contains($"eth0    inet {ip}/24", StringComparison.Ordinal) && output.Contains("lo    inet 127.0.0.1/8", StringComparison.Ordinal),
            $"ip addr in the container (exit {exec.ExitCode}):\n{output}{exec.Stderr.ToStringUtf8()}", id);
    }

    [Fact]
    public void A_host_network_pod_shares_containerds_namespace_and_needs_no_address()
    {
        using var pod = f.RunPod("hostnet", hostNetwork: true);
        Assert.True(string.IsNullOrEmpty(pod.Status().Network?.Ip), $"host-network pod got an address: {pod.Status().Network}");
        var id = pod.Start(CriClient.ContainerConfig("hostnet", Images.Busybox, CriFixture.NativeSleep));
        var pid = f.Client.ContainerPid(id) ?? 0;
        Assert.Equal(NetNs.Of(f.Containerd.Pid), NetNs.Of(pid));
    }

    [Fact]
    public void Exec_stats_and_resource_updates_work_on_a_running_container()
    {
        using var pod = f.RunPod("ops");
        var id = pod.Start(CriClient.ContainerConfig("ops", Images.Busybox, CriFixture.NativeSleep, env: new Dictionary<string, string> { ["GREETING"] = "hi" }));
        var exec = f.Client.ExecSync(id, ["/bin/sh", "-c", "echo $GREETING; echo err >&2; exit 3"]);
        Assert.Equal(("hi\n", "err\n", 3), (exec.Stdout.ToStringUtf8(), exec.Stderr.ToStringUtf8(), exec.ExitCode));

        var stats = f.Client.ContainerStats(id);
        Assert.Equal(id, stats.Attributes.Id);
        Assert.NotNull(stats.Memory);
        Assert.Contains(f.Client.ListContainerStats(pod.Id), s => s.Attributes.Id == id);

        // PodSandboxStats is in containerd 1.7 and later.
        if (ContainerdVersions.ServerVersion(f.Containerd) is (>= 2, _) or (1, >= 7))
            Assert.Equal(pod.Id, f.Client.PodStats(pod.Id).Attributes.Id);

        const long limit = 64L << 20;
        f.Client.UpdateContainerResources(id, new Cri.LinuxContainerResources { MemoryLimitInBytes = limit, CpuShares = 512 });
        var seen = f.Client.ExecSync(id, ["/bin/cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]).Stdout.ToStringUtf8().Trim();
        var status = f.Client.ContainerStatus(id);
        f.Check(status.Resources?.Linux?.MemoryLimitInBytes == limit || seen == limit.ToString(),
            $"memory limit after UpdateContainerResources: status {status.Resources}, cgroup {seen}", id);
    }

    [Fact]
    public void StopContainer_kills_after_its_timeout_a_process_that_ignores_SIGTERM()
    {
        using var pod = f.RunPod("stop");
        var id = pod.Start(CriClient.ContainerConfig("stop", Images.Busybox, ["/bin/sh", "-c", "trap '' TERM; sleep inf"]));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        f.Client.StopContainer(id, 1);
        var status = f.Client.ContainerStatus(id);
        f.Check(status.State == Cri.ContainerState.ContainerExited && status.ExitCode == 137,
            $"after StopContainer: {status.State}, exit code {status.ExitCode} ({status.Reason})", id);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 15);
        f.Client.RemoveContainer(id);
        Assert.Empty(f.Client.ListContainers(pod.Id));
    }

    [Fact]
    public void Stopping_and_removing_a_pod_leaves_no_task_shim_mount_netns_or_ip_lease()
    {
        var pod = f.RunPod("gone");
        string[] ids;
        string netns, ip, lease, cniResult;
        try
        {
            ids = [pod.Id, pod.Start(CriClient.ContainerConfig("a", Images.Busybox, CriFixture.NativeSleep)),
                   pod.Start(CriClient.ContainerConfig("b", Images.Busybox, ["/bin/true"]))];
            netns = f.Client.PodNetnsPath(pod.Id) ?? "";
            ip = pod.Status().Network.Ip;
            lease = Path.Combine(f.Containerd.BaseDir, "cni", "ipam", f.Containerd.CniNetwork, ip);
            cniResult = $"/var/lib/cni/results/{f.Containerd.CniNetwork}-{pod.Id}-eth0";
            // While the pod runs, each of these exists: their absence afterwards means something.
            f.Check(ProcFs.MountsUnder(f.Containerd.BaseDir).Contains(netns), $"pod netns {netns} is not a mount", pod.Id);
            f.Check(File.Exists(lease), $"no host-local lease {lease}", pod.Id);
            f.Check(File.Exists(cniResult), $"no CNI result {cniResult}", pod.Id);
            f.Check(f.Shims("containerd-shim-runc-v2", [pod.Id]).Count == 1, "no runc shim for the pod", pod.Id);
            f.Client.StopContainer(ids[1], 0);
        }
        finally
        {
            pod.Dispose();
        }

        Assert.DoesNotContain(f.Client.ListPods(), p => p.Id == pod.Id);
        Assert.DoesNotContain(f.Client.ListContainers(), c => ids.Contains(c.Id));
        ContainerdFixture.Eventually(() => f.Shims("containerd-shim-runc-v2", ids).Count == 0, TimeSpan.FromSeconds(5));
        var shims = f.Shims("containerd-shim-runc-v2", ids);
        f.Check(shims.Count == 0, $"shims left: {string.Join("; ", shims.Select(s => s.CommandLine))}", pod.Id);
        var tasks = f.CtrK8s("tasks", "ls").Stdout;
        f.Check(!ids.Any(tasks.Contains), $"tasks left:\n{tasks}", pod.Id);
        var containers = f.CtrK8s("containers", "ls", "-q").Stdout;
        f.Check(!ids.Any(containers.Contains), $"containers left:\n{containers}", pod.Id);
        var mounts = ProcFs.MountsUnder(f.Containerd.BaseDir).Where(m => m == netns || ids.Any(id => m.Contains(id, StringComparison.Ordinal))).ToList();
        f.Check(mounts.Count == 0, $"mounts left: {string.Join(", ", mounts)}", pod.Id);
        f.Check(!File.Exists(netns), $"netns file {netns} left", pod.Id);
        f.Check(!File.Exists(lease), $"IP lease {lease} left", pod.Id);
        f.Check(!File.Exists(cniResult), $"CNI result {cniResult} left", pod.Id);
    }

    private static bool InPodSubnet(IPAddress address) =>
        IPNetwork.Parse(PrivateContainerd.PodSubnet).Contains(address);
}

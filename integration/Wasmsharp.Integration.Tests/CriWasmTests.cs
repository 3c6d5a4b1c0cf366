using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Pods with RuntimeClass handler "wasmsharp", as kubelet runs them: containerd then runs the sandbox (pause)
// container and every container of the pod with our shim (the sandbox in-process, native sidecars with runc).
[Collection(CriCollection.Name)]
public sealed class CriWasmTests(CriFixture f)
{
    [Fact]
    public void A_wasm_containers_output_is_in_the_cri_log_and_its_exit_code_in_its_status()
    {
        using var pod = f.RunPod("wasm-hello", CriFixture.WasmHandler);
        var hello = pod.Start(CriClient.ContainerConfig("hello", Images.WasmTests, ["/hello.wasm", "an argument"]));
        var status = f.Client.WaitExited(hello, CriFixture.RunTimeout);
        f.Check(status.ExitCode == 0, $"hello: exit code {status.ExitCode} ({status.Reason}: {status.Message})", hello);
        Assert.Equal("hello from wasm\nan argument\n", CriClient.LogText(pod.LogPath("hello")));
        Assert.Equal("hello on stderr\n", CriClient.LogText(pod.LogPath("hello"), "stderr"));

        var exit = pod.Start(CriClient.ContainerConfig("exit", Images.WasmTests, ["/exit.wasm", "3"]));
        status = f.Client.WaitExited(exit, CriFixture.RunTimeout);
        f.Check(status.ExitCode == 3, $"exit: exit code {status.ExitCode} ({status.Reason}: {status.Message})", exit);
    }

    // A pod's sysctls (securityContext.sysctls) are set in its network namespace, as runc's pause would have them:
    // its Wasm containers and native sidecars see them; a sysctl that is not namespaced is refused, naming it.
    [Fact]
    public void A_pods_sysctls_are_set_in_its_network_namespace()
    {
        var config = f.Client.PodConfig(f.Client.NewPodName("wasm-sysctl"));
        config.Linux.Sysctls.Add("net.core.somaxconn", "77");
        config.Linux.Sysctls.Add("net.ipv4.ip_local_port_range", "40000 40010");
        using var pod = f.Client.RunPod(config, CriFixture.WasmHandler);
        var sleeper = pod.Start(CriClient.ContainerConfig("sleeper", Images.WasmTests, ["/sleep.wasm", "600"]));
        var netns = f.Client.PodNetnsPath(pod.Id) ?? "";
        string Read(string key) => ProcessRunner.Run("nsenter", [$"--net={netns}", "cat", "/proc/sys/" + key.Replace('.', '/')]).Stdout.Trim();
        f.Check(Read("net.core.somaxconn") == "77" && Read("net.ipv4.ip_local_port_range") == "40000\t40010",
            $"the pod's namespace should have its sysctls: somaxconn {Read("net.core.somaxconn")}, port range {Read("net.ipv4.ip_local_port_range")}", sleeper);

        var bad = f.Client.PodConfig(f.Client.NewPodName("wasm-sysctl-bad"));
        bad.Linux.Sysctls.Add("vm.swappiness", "1");
        var e = Assert.ThrowsAny<global::Grpc.Core.RpcException>(() => f.Client.RunPod(bad, CriFixture.WasmHandler).Dispose());
        Assert.Contains("linux.sysctl: \"vm.swappiness\" is not in a separate kernel namespace", e.Status.Detail, StringComparison.Ordinal);
    }

    // What kubelet and CRI mount into a container is there as runc's process sees it: the pod's /etc/hostname and
    // /etc/hosts (CRI's files), a ConfigMap key mounted with subPath (a single file, read-only) and a writable emptyDir.
    [Fact]
    public void A_pods_files_and_a_subpath_file_mount_are_the_containers()
    {
        using var pod = f.RunPod("wasm-files", CriFixture.WasmHandler);
        var dir = Directory.CreateDirectory(Path.Combine(f.Containerd.BaseDir, "host", pod.Config.Metadata.Name)).FullName;
        var key = Path.Combine(dir, "app.conf");
        File.WriteAllText(key, "mode=production");
        var emptyDir = Directory.CreateDirectory(Path.Combine(dir, "empty-dir")).FullName;
        string Read(string name, string path, params Cri.Mount[] mounts)
        {
            var config = CriClient.ContainerConfig(name, Images.WasmTests, ["/fs.wasm", "read", path]);
            config.Mounts.AddRange(mounts);
            var id = pod.Start(config);
            var status = f.Client.WaitExited(id, CriFixture.RunTimeout);
            f.Check(status.ExitCode == 0, $"{name}: exit code {status.ExitCode}: {CriClient.LogText(pod.LogPath(name), "stderr")}", id);
            return CriClient.LogText(pod.LogPath(name));
        }
        Assert.Equal(pod.Config.Hostname + "\n", Read("hostname", "/etc/hostname"));
        Assert.Equal(File.ReadAllText("/etc/hosts"), Read("hosts", "/etc/hosts")); // CRI's copy of the node's (the image has none)
        var subPath = new Cri.Mount { ContainerPath = "/etc/app/app.conf", HostPath = key, Readonly = true };
        Assert.Equal("mode=production", Read("subpath", "/etc/app/app.conf", subPath));

        var write = CriClient.ContainerConfig("writer", Images.WasmTests, ["/fs.wasm", "write", "/cache/out", "from the pod"]);
        write.Mounts.Add(new Cri.Mount { ContainerPath = "/cache", HostPath = emptyDir });
        write.Mounts.Add(subPath);
        var writer = pod.Start(write);
        f.Check(f.Client.WaitExited(writer, CriFixture.RunTimeout).ExitCode == 0 && File.ReadAllText(Path.Combine(emptyDir, "out")) == "from the pod",
            "the emptyDir is writable", writer);
    }

    [Fact]
    public void A_native_sidecar_fetches_from_a_wasm_server_over_the_pods_localhost()
    {
        using var pod = f.RunPod("wasm-web", CriFixture.WasmHandler);
        var server = pod.Start(CriClient.ContainerConfig("server", Images.WasmTests, ["/httpd.wasm", "8080"]));
        // Retries while the server starts; only the pod's own loopback.
        var sidecar = pod.Start(CriClient.ContainerConfig("sidecar", Images.Busybox, ["/bin/sh", "-c",
            "i=0; while [ $i -lt 100 ]; do wget -q -O - http://127.0.0.1:8080/ && exit 0; i=$((i+1)); sleep 0.1; done; exit 1"]));
        var status = f.Client.WaitExited(sidecar, CriFixture.RunTimeout);
        f.Check(status.ExitCode == 0, $"sidecar: exit code {status.ExitCode} ({status.Reason}: {status.Message}), stderr:\n{CriClient.LogText(pod.LogPath("sidecar"), "stderr")}", sidecar);
        Assert.Equal("hello from wasmsharp\n", CriClient.LogText(pod.LogPath("sidecar")));
        Assert.Matches(@"(?m)^GET / 200 \d+ 127\.0\.0\.1:\d+$", CriClient.LogText(pod.LogPath("server"))); // the request came over the pod's loopback
        Assert.Equal(Cri.ContainerState.ContainerRunning, f.Client.ContainerStatus(server).State);
    }

    [Fact]
    public void Two_pods_run_in_two_shims_and_leave_none_when_removed()
    {
        using var a = f.RunPod("wasm-a", CriFixture.WasmHandler);
        using var b = f.RunPod("wasm-b", CriFixture.WasmHandler);
        string[] containers = [a.Start(CriClient.ContainerConfig("a", Images.WasmTests, CriFixture.WasmSleep)), b.Start(CriClient.ContainerConfig("b", Images.WasmTests, CriFixture.WasmSleep))];
        foreach (var id in containers)
            f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, $"{id} is not running", id);
        var shims = f.Shims(RepoLayout.ShimBinary, [a.Id, b.Id]);
        f.Check(shims.Count == 2 && shims.Any(s => s.HasArgPair("-id", a.Id)) && shims.Any(s => s.HasArgPair("-id", b.Id)),
            $"expected one shim per pod: {string.Join("; ", shims.Select(s => $"{s.Pid}: {s.CommandLine}"))}", a.Id);
        a.Dispose();
        b.Dispose();
        ContainerdFixture.Eventually(() => f.Shims(RepoLayout.ShimBinary, [a.Id, b.Id]).Count == 0, TimeSpan.FromSeconds(5));
        f.Check(f.Shims(RepoLayout.ShimBinary, [a.Id, b.Id]).Count == 0, "a shim is left after both pods were removed", a.Id);
    }

    [Fact]
    public void Twenty_wasm_containers_of_one_pod_run_in_one_shim()
    {
        using var pod = f.RunPod("wasm-20", CriFixture.WasmHandler);
        var ids = Enumerable.Range(0, 20).Select(i => pod.Start(CriClient.ContainerConfig($"c{i}", Images.WasmTests, CriFixture.WasmSleep))).ToList();
        var notRunning = ids.Where(id => f.Client.ContainerStatus(id).State != Cri.ContainerState.ContainerRunning).ToList();
        f.Check(notRunning.Count == 0, $"{notRunning.Count} of 20 containers are not running", notRunning.FirstOrDefault());
        // Of the shims that serve the pod or any of its containers (another test's pod may still be compiling a module
        // for the cache).
        var shims = f.Shims(RepoLayout.ShimBinary, [pod.Id, .. ids]);
        f.Check(shims.Count == 1 && shims[0].HasArgPair("-id", pod.Id),
            $"expected the pod's one shim: {string.Join("; ", shims.Select(s => $"{s.Pid}: {s.CommandLine}"))}", pod.Id);
    }
}

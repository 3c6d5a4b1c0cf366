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
        var shims = f.Shims(RepoLayout.ShimBinary);
        f.Check(shims.Count == 1 && shims[0].HasArgPair("-id", pod.Id),
            $"expected the pod's one shim: {string.Join("; ", shims.Select(s => $"{s.Pid}: {s.CommandLine}"))}", pod.Id);
    }
}

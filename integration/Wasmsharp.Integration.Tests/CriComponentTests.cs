using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// WASI preview 2 components (/p2.wasm, integration/programs/p2/p2.c) in a wasmsharp pod, as kubelet drives
// them: the same image and handler as modules, nothing that tells them apart. Exit codes are what jco's
// adapter can give (0, 1; a trap 134), see ComponentContainerTests.
// A component blocked in one long p2 call (a sleep of minutes) keeps its WASI context, and Wasmtime's descriptors
// on its stdio, after a kill until that call returns; CRI on 1.7+ waits for end-of-file on the stdout/stderr FIFOs
// before it deletes the task, so the shim writes a component's FIFOs through its own pumps and closes them at the
// exit it reports (the last test).
[Collection(CriCollection.Name)]
public sealed class CriComponentTests(CriFixture f)
{
    private const long MiB = 1 << 20;
    private const string Component = "/p2.wasm";

    private static Cri.ContainerConfig P2(string name, IReadOnlyDictionary<string, string>? env = null, params string[] args) =>
        CriClient.ContainerConfig(name, Images.WasmTests, [Component, .. args], env: env);

    // Removes the pod as kubelet would (StopPodSandbox, RemovePodSandbox); a failure shows the shim's log.
    private void Remove(CriPod pod)
    {
        try
        {
            pod.Dispose();
        }
        catch (global::Grpc.Core.RpcException e)
        {
            f.Check(false, $"removing pod {pod.Id} failed: {e.Status}", pod.Id);
        }
    }

    private static string Describe(Cri.ContainerStatus s) => $"{s.State}, exit code {s.ExitCode}, reason {s.Reason} ({s.Message})";

    [Fact]
    public void A_components_lines_are_in_the_cri_log_and_its_exit_code_and_reason_in_its_status()
    {
        using var pod = f.RunPod("p2-log", CriFixture.WasmHandler);
        var hello = pod.Start(P2("hello", new Dictionary<string, string> { ["GREETING"] = "hi there" }, "hello", "an argument"));
        var status = f.Client.WaitExited(hello, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 0, Reason: "Completed" }, Describe(status), hello);
        var log = CriClient.ReadLog(pod.LogPath("hello"));
        f.Check(log.Count >= 3 && log.All(l => l is { Stream: "stdout", Partial: false })
                && log.Take(4).Select(l => l.Message).SequenceEqual(["argc=3", $"arg[0]={Component}", "arg[1]=hello", "arg[2]=an argument"])
                && log.Any(l => l.Message == "env:GREETING=hi there"),
            $"CRI log {pod.LogPath("hello")}:\n{string.Join("\n", log)}", hello);

        var failed = pod.Start(P2("failed", null, "return", "1"));
        status = f.Client.WaitExited(failed, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 1, Reason: "Error" }, Describe(status), failed);

        var trap = pod.Start(P2("trap", null, "trap"));
        status = f.Client.WaitExited(trap, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 134, Reason: "Error" }, Describe(status), trap);
        f.Check(CriClient.LogText(pod.LogPath("trap")) == "about to trap\n", $"the trap's output before it:\n{CriClient.LogText(pod.LogPath("trap"))}", trap);
    }

    [Fact]
    public void ExecSync_runs_a_component_in_a_running_component_container()
    {
        var pod = f.RunPod("p2-exec", CriFixture.WasmHandler);
        var id = pod.Start(P2("main", null, "tick", "50", "/ticks"));
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the component should be running", id);

        var hello = f.Client.ExecSync(id, [Component, "hello", "from exec"]);
        var lines = ContainerdFixture.Lines(hello.Stdout.ToStringUtf8());
        f.Check(hello.ExitCode == 0 && lines.Take(4).SequenceEqual(["argc=3", $"arg[0]={Component}", "arg[1]=hello", "arg[2]=from exec"]),
            $"exec {Component} hello: exit {hello.ExitCode}, stdout {hello.Stdout.ToStringUtf8()}, stderr {hello.Stderr.ToStringUtf8()}", id);
        var failed = f.Client.ExecSync(id, [Component, "return", "1"]);
        f.Check(failed.ExitCode == 1, $"exec {Component} return 1: exit {failed.ExitCode}", id);
        var module = f.Client.ExecSync(id, ["/exit.wasm", "5"]);
        f.Check(module.ExitCode == 5, $"a module exec'd into the component's container: exit {module.ExitCode}", id);
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the container keeps running after its execs", id);
        Stop(id);
        Remove(pod);
    }

    // StopContainer (SIGTERM, SIGKILL after the grace period) of a component sleeping in short p2 calls: it has
    // no handler, so SIGTERM ends it (143) without waiting for the grace period.
    private void Stop(string id)
    {
        try
        {
            f.Client.StopContainer(id, 30);
        }
        catch (global::Grpc.Core.RpcException e)
        {
            f.Check(false, $"StopContainer of a sleeping component failed: {e.Status}", id);
        }
        var status = f.Client.ContainerStatus(id);
        f.Check(status is { State: Cri.ContainerState.ContainerExited, ExitCode: 143 }, $"after StopContainer: {Describe(status)}", id);
    }

    // ContainerStats of a component that holds 20 MiB: its own guest's memory, as for a module.
    // Without pumped output, containerd 1.7/2.1 waited for end-of-file on the FIFOs that the lingering call's WASI
    // context still held open: StopContainer and StopPodSandbox ran past their deadlines.
    [Fact]
    public void A_component_blocked_in_one_long_p2_call_stops_and_its_pod_is_removed()
    {
        var pod = f.RunPod("p2-blocked", CriFixture.WasmHandler);
        var id = pod.Start(P2("sleeper", null, "sleep", "600000"));
        f.Check(ContainerdFixture.Eventually(() => CriClient.LogText(pod.LogPath("sleeper")) == "sleeping\n", CriFixture.RunTimeout), "the component should be asleep in its p2 call", id);
        Stop(id);
        f.Check(CriClient.LogText(pod.LogPath("sleeper")) == "sleeping\n", $"its log:\n{CriClient.LogText(pod.LogPath("sleeper"))}", id);
        Remove(pod);
    }

    [Fact]
    public void Stats_report_a_components_memory_and_a_limit_ends_it_OOMKilled()
    {
        using var pod = f.RunPod("p2-mem", CriFixture.WasmHandler);
        var holder = pod.Start(P2("holder", null, "alloc", "20", "1000"));
        var sleeper = pod.Start(P2("sleeper", null, "tick", "50", "/ticks"));
        f.CheckHolderAndSleeperStats(pod, holder, sleeper);
        Stop(sleeper);

        var config = P2("oom", null, "alloc", "forever");
        config.Linux.Resources = new Cri.LinuxContainerResources { MemoryLimitInBytes = 32 * MiB };
        var oom = pod.Start(config);
        var status = f.Client.WaitExited(oom, CriFixture.RunTimeout);
        f.Check(status is { ExitCode: 137, Reason: "OOMKilled" }, Describe(status), oom);
        var log = CriClient.LogText(pod.LogPath("oom"));
        f.Check(log.Contains("24 MiB", StringComparison.Ordinal) && !log.Contains("malloc failed", StringComparison.Ordinal),
            $"killed near its limit, before malloc failed:\n{log}", oom);
    }
}

using System.Diagnostics;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// A guest that serves (httpd.c, built against WasmEdge's socket ABI) through `ctr run`: it listens in its
// container's namespace and only there, with --net-host in the host's (here: containerd's throwaway
// namespace), and a kill stops it while it waits in accept.
[Collection(ContainerdCollection.Name)]
public sealed class GuestServerTests(ContainerdFixture f)
{
    private const int Port = 8080;

    private (string Id, int Pid) StartServer(string what, string[] options, params string[] args)
    {
        var id = f.NewId(what);
        var run = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. options, Images.WasmTests, id, "/httpd.wasm", .. args]);
        f.Check(run.ExitCode == 0, "ctr run -d of the server should succeed", id, run);
        var pid = f.Containerd.Task(id)?.Pid ?? 0;
        f.Check(pid > 0, "the server's task should be running", id, run);
        return (id, pid);
    }

    [Fact]
    public void Server_answers_inside_its_namespace_and_is_not_on_the_hosts_loopback()
    {
        var (id, pid) = StartServer("httpd", [], Port.ToString());
        try
        {
            var inside = NetNs.HttpGetWhenUp($"/proc/{pid}/ns/net", Port);
            f.Check(inside.StartsWith("HTTP/1.0 200 OK", StringComparison.Ordinal) && inside.EndsWith("hello from wasmsharp\n", StringComparison.Ordinal),
                $"GET / from the container's namespace should be answered, got: {inside}", id);
            var outside = NetNs.HttpGet(f.Containerd.NetnsPath, Port);
            f.Check(outside == "error: ConnectionRefused", $"127.0.0.1:{Port} of containerd's namespace must not reach the guest, got: {outside}", id);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void Net_host_server_listens_in_the_hosts_namespace()
    {
        const int port = 18081;
        var (id, _) = StartServer("httpd-host", ["--net-host"], port.ToString());
        try
        {
            var response = NetNs.HttpGetWhenUp(f.Containerd.NetnsPath, port);
            f.Check(response.StartsWith("HTTP/1.0 200 OK", StringComparison.Ordinal), $"with --net-host the server should be on the host's 127.0.0.1:{port}, got: {response}", id);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    [Fact]
    public void Kill_stops_a_server_blocked_in_accept_at_once()
    {
        var (id, pid) = StartServer("httpd-kill", [], Port.ToString());
        try
        {
            NetNs.HttpGetWhenUp($"/proc/{pid}/ns/net", Port); // it is in accept now
            using var attach = f.Containerd.StartCtr(TimeSpan.FromSeconds(30), ["task", "attach", id]);
            Thread.Sleep(200);
            var clock = Stopwatch.StartNew();
            var kill = f.Ctr("task", "kill", "--signal", "SIGTERM", id);
            var exit = attach.Wait();
            f.Check(kill.ExitCode == 0 && exit.ExitCode == 143, $"SIGTERM should end the server with 143, got {exit.ExitCode}", id, kill, exit);
            f.Check(clock.Elapsed < TimeSpan.FromSeconds(1), $"the kill took {clock.Elapsed.TotalMilliseconds:0} ms (limit 1 s)", id, kill, exit);
            var log = f.Containerd.LogTail(200, id);
            f.Check(!log.Contains("blocked in a host call", StringComparison.Ordinal), "the guest should stop, not be abandoned in accept", id, kill, exit);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }
}

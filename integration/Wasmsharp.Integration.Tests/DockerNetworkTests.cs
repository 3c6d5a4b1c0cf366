using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Docker's network modes with its default bridge network (dockerd and containerd in a throwaway namespace):
// the container's namespace is where Docker wired it (Docker 26 through the libnetwork-setkey prestart hook,
// Docker 28 through /proc/PID/ns/net after create), and nothing of it is left after `docker rm -f`.
public abstract partial class DockerTests
{
    private string RunDetachedWith(string name, string[] options, params string[] args)
    {
        var run = f.D(["run", "-d", "--name", name, "--pull", "never", Runtime, .. options, DockerImages.Wasm, .. args]);
        f.Check(run.ExitCode == 0, $"docker run -d {string.Join(' ', options)} should start the container", name, run);
        return run.Stdout.Trim();
    }

    private ulong DockerdNamespace => NetNs.Of(int.Parse(File.ReadAllText(f.Docker.PidFile).Trim()))!.Value;

    private ProcessResult InContainerNs(int pid, params string[] command) =>
        ProcessRunner.Run("nsenter", [$"--net=/proc/{pid}/ns/net", .. command], TimeSpan.FromSeconds(10));

    // The veth ends in dockerd's namespace (each container on the bridge has one there).
    private IReadOnlyList<string> Veths() => Lines(ProcessRunner.Run("ip", ["-n", Path.GetFileName(f.Docker.NetnsPath), "-o", "link", "show", "type", "veth"],
        TimeSpan.FromSeconds(10)).Stdout);

    [DockerFact]
    public void Default_bridge_network_wires_eth0_in_the_task_namespace_and_rm_f_leaves_nothing()
    {
        var name = f.NewName("bridge");
        var before = Veths().Count;
        ulong ns = 0;
        try
        {
            RunDetachedWith(name, [], "/sleep.wasm", "60");
            var pid = InspectState(name).Pid;
            var ip = f.Inspect(name, "{{.NetworkSettings.IPAddress}}");
            ns = NetNs.Of(pid) ?? 0;
            f.Check(ns != 0 && ns != DockerdNamespace, $"task pid {pid} should have a namespace of its own", name);
            var addr = InContainerNs(pid, "ip", "-o", "-4", "addr", "show", "dev", "eth0");
            f.Check(ip.Length > 0 && addr.ExitCode == 0 && addr.Stdout.Contains($" {ip}/"),
                $"docker inspect's IP {ip} should be on eth0 inside /proc/{pid}/ns/net", name, addr);
            f.Check(Veths().Count == before + 1, "the container's veth peer should be on dockerd's side", name);
        }
        finally
        {
            f.Remove(name);
        }
        ContainerdFixture.Eventually(() => Veths().Count == before && NetNs.Holders(ns).Count == 0, TimeSpan.FromSeconds(10));
        f.Check(Veths().Count == before, $"veths left after docker rm -f: {string.Join("; ", Veths())}", name);
        f.Check(NetNs.Holders(ns).Count == 0, $"net:[{ns}] still held after docker rm -f: {string.Join("; ", NetNs.Holders(ns))}", name);
    }

    [DockerFact]
    public void Network_none_has_only_lo()
    {
        var name = f.NewName("net-none");
        try
        {
            RunDetachedWith(name, ["--network", "none"], "/sleep.wasm", "60");
            var pid = InspectState(name).Pid;
            f.Check(NetNs.Of(pid) != DockerdNamespace, "--network none is a namespace of the container's own", name);
            var links = InContainerNs(pid, "ip", "-o", "link");
            var lines = Lines(links.Stdout);
            f.Check(links.ExitCode == 0 && lines.Count == 1 && lines[0].Contains(" lo: "), "--network none should have only lo", name, links);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Network_host_shares_dockerds_namespace()
    {
        var name = f.NewName("net-host");
        try
        {
            RunDetachedWith(name, ["--network", "host"], "/sleep.wasm", "60");
            var pid = InspectState(name).Pid;
            f.Check(NetNs.Of(pid) == DockerdNamespace, "--network host should be dockerd's (the node's) namespace", name);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Network_container_joins_the_other_containers_namespace()
    {
        var owner = f.NewName("net-owner");
        var joiner = f.NewName("net-joiner");
        try
        {
            RunDetachedWith(owner, [], "/sleep.wasm", "60");
            RunDetachedWith(joiner, ["--network", "container:" + owner], "/sleep.wasm", "60");
            var ownerNs = NetNs.Of(InspectState(owner).Pid);
            f.Check(ownerNs is not null && NetNs.Of(InspectState(joiner).Pid) == ownerNs, "--network container:X should share X's namespace", joiner);
            f.Remove(joiner);
            f.Check(NetNs.Of(InspectState(owner).Pid) == ownerNs, "the owner keeps its namespace when the joiner goes", owner);
        }
        finally
        {
            f.Remove(joiner);
            f.Remove(owner);
        }
    }

    // The seed's scenario: a Wasm web server with a bind-mounted docroot, published with -p, reached from the
    // node's loopback (dockerd's namespace) through docker-proxy; the guest's own port is not on that loopback.
    [DockerFact]
    public void Published_port_reaches_a_guest_server_and_docker_stop_ends_it_at_once()
    {
        const int published = 18082;
        var name = f.NewName("httpd");
        var docroot = f.HostDir(name);
        File.WriteAllText(Path.Combine(docroot, "index.html"), "<h1>served by a wasm guest</h1>\n");
        var veths = Veths().Count;
        ulong ns = 0;
        try
        {
            RunDetachedWith(name, ["-p", $"127.0.0.1:{published}:8080", "-v", $"{docroot}:/docroot:ro"], "/httpd.wasm", "8080", "/docroot");
            ns = NetNs.Of(InspectState(name).Pid) ?? 0;
            var response = NetNs.HttpGetWhenUp(f.Docker.NetnsPath, published, "/");
            f.Check(response.StartsWith("HTTP/1.0 200 OK", StringComparison.Ordinal) && response.EndsWith("<h1>served by a wasm guest</h1>\n", StringComparison.Ordinal),
                $"GET 127.0.0.1:{published}/ should serve the docroot's index.html, got: {response}", name);
            var missing = NetNs.HttpGet(f.Docker.NetnsPath, published, "/nope.html");
            f.Check(missing.StartsWith("HTTP/1.0 404", StringComparison.Ordinal), $"a missing file should be 404, got: {missing}", name);
            var direct = NetNs.HttpGet(f.Docker.NetnsPath, 8080);
            f.Check(direct == "error: ConnectionRefused", $"the guest's 8080 must not be on the node's loopback, got: {direct}", name);
            var logs = f.D("logs", name);
            f.Check(logs.Stdout.Contains("GET / 200", StringComparison.Ordinal), "docker logs should show the request", name, logs);

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var stop = f.D("stop", name); // default grace 10 s: a guest without handlers dies of SIGTERM at once
            f.Check(stop.ExitCode == 0 && clock.Elapsed < TimeSpan.FromSeconds(3), $"docker stop should end the server at once (took {clock.Elapsed.TotalMilliseconds:0} ms)", name, stop);
            f.Check(InspectState(name) is { ExitCode: 143, Running: false }, $"a stopped server exits 143: {InspectState(name)}", name, stop);
        }
        finally
        {
            f.Remove(name);
        }
        // Nothing of it is left: no veth, no namespace (and so no socket), nothing on the published port.
        ContainerdFixture.Eventually(() => Veths().Count == veths && NetNs.Holders(ns).Count == 0, TimeSpan.FromSeconds(10));
        f.Check(Veths().Count == veths && NetNs.Holders(ns).Count == 0,
            $"left after docker rm: veths {string.Join("; ", Veths())}; net:[{ns}] held by {string.Join("; ", NetNs.Holders(ns))}", name);
        var gone = NetNs.HttpGet(f.Docker.NetnsPath, published);
        f.Check(gone == "error: ConnectionRefused", $"nothing should answer on {published} after docker rm, got: {gone}", name);
    }
}

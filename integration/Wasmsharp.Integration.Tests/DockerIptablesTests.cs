using System.Net;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Docker as users run it, with its iptables rules (the shared harness turns them off; this is the case that keeps
// them): a published port is then also DNATed by Docker's rules, not only served by docker-proxy. A request to the
// bridge's gateway address (an address of dockerd's throwaway namespace) is rewritten to the container's eth0, where
// the guest's socket listens in the container's namespace.
[DockerSuite(DockerSuites.Docker28, Iptables = true)]
public sealed class DockerIptablesTests(Docker28IptablesFixture f) : IClassFixture<Docker28IptablesFixture>
{
    [DockerFact]
    public void With_iptables_a_published_port_reaches_the_guest_through_dockers_nat()
    {
        const int published = 18083;
        var name = f.NewName("nat");
        var docroot = f.HostDir(name);
        File.WriteAllText(Path.Combine(docroot, "index.html"), "<h1>through docker's nat</h1>\n");
        try
        {
            var run = f.D("run", "-d", "--name", name, "--pull", "never", "--runtime=" + RepoLayout.Runtime, "-p", $"{published}:8080",
                "-v", $"{docroot}:/docroot:ro", DockerImages.Wasm, "/httpd.wasm", "8080", "/docroot");
            f.Check(run.ExitCode == 0, "the server starts with Docker's iptables rules in place", name, run);
            var nat = ProcessRunner.Run("nsenter", [$"--net={f.Docker.NetnsPath}", "iptables", "-t", "nat", "-S", "DOCKER"], TimeSpan.FromSeconds(10));
            f.Check(nat.Stdout.Contains($"--dport {published}", StringComparison.Ordinal) && nat.Stdout.Contains("DNAT", StringComparison.Ordinal),
                $"Docker made its DNAT rule for the port: {nat.Stdout}{nat.Stderr}", name, run);
            var gateway = IPAddress.Parse(PrivateDocker.BridgeCidr.Split('/')[0]);
            var before = DnatPackets();
            var response = NetNs.HttpGetWhenUp(f.Docker.NetnsPath, published, "/", address: gateway);
            f.Check(response.StartsWith("HTTP/1.0 200 OK", StringComparison.Ordinal) && response.EndsWith("<h1>through docker's nat</h1>\n", StringComparison.Ordinal),
                $"GET {gateway}:{published}/ should reach the guest, got: {response}", name);
            f.Check(DnatPackets() > before, $"the request went through Docker's DNAT rule (packets {before} -> {DnatPackets()})", name);
            var local = NetNs.HttpGetWhenUp(f.Docker.NetnsPath, published, "/");
            f.Check(local.StartsWith("HTTP/1.0 200 OK", StringComparison.Ordinal), $"and 127.0.0.1:{published} too, got: {local}", name);
        }
        finally
        {
            f.Remove(name);
        }

        // The packets Docker's DNAT rule for the port has rewritten (`iptables -t nat -L DOCKER -v -x`).
        long DnatPackets()
        {
            var list = ProcessRunner.Run("nsenter", [$"--net={f.Docker.NetnsPath}", "iptables", "-t", "nat", "-L", "DOCKER", "-n", "-v", "-x"], TimeSpan.FromSeconds(10));
            var line = list.Stdout.Split('\n').FirstOrDefault(l => l.Contains("DNAT", StringComparison.Ordinal) && l.Contains($"dpt:{published}", StringComparison.Ordinal));
            return line is null ? -1 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

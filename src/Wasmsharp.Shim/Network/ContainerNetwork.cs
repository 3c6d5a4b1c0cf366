using Wasmsharp.Linux;
using Wasmsharp.Oci;

namespace Wasmsharp.Shim.Network;

/// <summary>
/// The network namespace a container's guests live in, read from <c>linux.namespaces</c> as runc reads it: a
/// "network" entry with a path joins that namespace (CRI pods, <c>docker run --network container:X</c>); one
/// without a path gets a new namespace with only <c>lo</c>, up (Docker's bridge and <c>none</c>, ctr's
/// default); no entry shares the host's (<c>--network host</c>, <c>ctr run --net-host</c>).
/// </summary>
/// <remarks>
/// Namespaces are per thread. Each guest thread (init and execs) enters the namespace once its instance is
/// made, before its id is reported as the task's pid: so <c>/proc/PID/ns/net</c> is the container's from
/// Create on (Docker 28 configures it there, Docker 26's prestart hook too), and every socket the guest
/// opens, on that thread, is made in it. Nothing else of the shim ever enters it. The namespace lives while
/// this object or a guest thread holds it: a new one goes away with the container (Delete), a joined one is
/// its owner's.
/// </remarks>
internal sealed class ContainerNetwork : IDisposable
{
    private readonly NetworkNamespace? ns;

    private ContainerNetwork(NetworkNamespace? ns, string mode)
    {
        this.ns = ns;
        Mode = mode;
    }

    /// <summary>"host", "new" or "joined PATH": for logs.</summary>
    public string Mode { get; }

    /// <summary>The container's own namespace; null when it shares the host's.</summary>
    public NetworkNamespace? Namespace => ns;

    /// <summary>For <see cref="Wasm.WasiSpec.ThreadSetup"/>: moves a guest thread into the namespace.</summary>
    public Action? ThreadSetup => ns is null ? null : ns.Enter;

    /// <summary>The namespace types of the runtime spec; what each means for a Wasm guest is in the README.</summary>
    private static readonly HashSet<string> KnownTypes = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

    /// <exception cref="BundleException">a namespace list runc would refuse, or a path that is not a network
    /// namespace; the message names <paramref name="configPath"/>.</exception>
    public static ContainerNetwork FromSpec(Spec spec, string configPath)
    {
        var entries = spec.Linux?.Namespaces ?? [];
        Namespace? network = null;
        var seen = new HashSet<string>();
        foreach (var entry in entries)
        {
            if (!KnownTypes.Contains(entry.Type))
                throw new BundleException($"{configPath}: linux.namespaces: unknown namespace type \"{entry.Type}\"");
            if (!seen.Add(entry.Type))
                throw new BundleException($"{configPath}: linux.namespaces: \"{entry.Type}\" is given twice");
            if (entry.Type == "network") network = entry;
        }
        if (network is null) return new ContainerNetwork(null, "host");
        if (string.IsNullOrEmpty(network.Path))
        {
            try
            {
                return new ContainerNetwork(NetworkNamespace.CreateNew(), "new");
            }
            catch (LinuxException e)
            {
                throw new BundleException($"{configPath}: cannot create the container's network namespace: {e.Message}");
            }
        }
        try
        {
            return new ContainerNetwork(NetworkNamespace.Open(network.Path), "joined " + network.Path);
        }
        catch (LinuxException e)
        {
            throw new BundleException($"{configPath}: linux.namespaces: cannot join the network namespace: {e.Message}");
        }
    }

    public void Dispose() => ns?.Dispose();
}

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

    // Namespaced sysctls runc accepts with an IPC or UTS namespace: nothing of a Wasm guest uses them.
    private static bool IsIpcOrUts(string key) =>
        key is "kernel.msgmax" or "kernel.msgmnb" or "kernel.msgmni" or "kernel.sem" or "kernel.shmall" or "kernel.shmmax"
            or "kernel.shmmni" or "kernel.shm_rmid_forced" or "kernel.hostname" or "kernel.domainname"
        || key.StartsWith("fs.mqueue.", StringComparison.Ordinal);

    /// <summary>
    /// <c>linux.sysctl</c> checked as runc checks it, before anything is made: <c>net.*</c> only in a network namespace
    /// of the container's (not the host's), the IPC and UTS ones accepted and left (no guest uses them), any other
    /// refused as not namespaced. Returns the ones <see cref="ApplySysctls"/> writes.
    /// </summary>
    /// <exception cref="BundleException">a sysctl runc would refuse; the message names <paramref name="configPath"/> and the key.</exception>
    public IReadOnlyList<KeyValuePair<string, string>> CheckSysctls(Spec spec, string configPath)
    {
        var net = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in spec.Linux?.Sysctl ?? [])
        {
            if (key.Split('.').Any(part => part.Length == 0 || part == ".." || part.Contains('/')))
                throw new BundleException($"{configPath}: linux.sysctl: \"{key}\" is not a sysctl name");
            if (key.StartsWith("net.", StringComparison.Ordinal))
            {
                if (ns is null || ns.Inode == NetworkNamespace.CurrentInode())
                    throw new BundleException($"{configPath}: linux.sysctl: \"{key}\" not allowed in host network namespace");
                net.Add(new(key, value));
            }
            else if (!IsIpcOrUts(key))
            {
                throw new BundleException($"{configPath}: linux.sysctl: \"{key}\" is not in a separate kernel namespace");
            }
        }
        return net;
    }

    /// <summary>Writes <paramref name="sysctls"/> (from <see cref="CheckSysctls"/>) in the container's network namespace.</summary>
    /// <exception cref="BundleException">one the kernel does not take, named with <paramref name="configPath"/>.</exception>
    public void ApplySysctls(IReadOnlyList<KeyValuePair<string, string>> sysctls, string configPath)
    {
        if (sysctls.Count == 0) return;
        // /proc/sys/net is the namespace of the thread that opens it.
        ns!.RunInside(() =>
        {
            foreach (var (key, value) in sysctls)
            {
                try
                {
                    File.WriteAllText("/proc/sys/" + key.Replace('.', '/'), value);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new BundleException($"{configPath}: linux.sysctl: cannot set \"{key}\" to \"{value}\": {e.Message}");
                }
            }
            return 0;
        });
    }

    public void Dispose() => ns?.Dispose();
}

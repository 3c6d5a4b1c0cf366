using System.Collections.Concurrent;

namespace Wasmsharp.Shim;

/// <summary>
/// A container this shim runs: its bundle (with mounted rootfs), its init process and its execs; Wasm guests in
/// the shim, or, for a native entrypoint, processes runc runs (<see cref="Native"/>).
/// </summary>
internal sealed class Container(string id, Bundle bundle, TaskProcess init)
{
    public string Id { get; } = id;
    public Bundle Bundle { get; } = bundle;
    public TaskProcess Init { get; } = init;
    public ConcurrentDictionary<string, TaskProcess> Execs { get; } = new();

    /// <summary>Orders the init's exit against an exec's start (see TaskService.Start).</summary>
    public object ExecGate { get; } = new();

    /// <summary>Its cgroup (null: the spec names none, or the host has none).</summary>
    public ContainerCgroup? Cgroup { get; init; }

    /// <summary>The network namespace its guests live in (the host's when the spec asks for none); null for a
    /// native container (runc makes or joins its namespaces).</summary>
    public Network.ContainerNetwork? Network { get; init; }

    /// <summary>The runc container of a native entrypoint; null for Wasm guests and pod sandboxes.</summary>
    public Native.NativeContainer? Native { get; init; }

    /// <summary>Its OCI hooks; null when config.json has none.</summary>
    public Hooks.OciHooks? Hooks { get; init; }

    /// <summary>Memory limit of each of its guests (linux.resources.memory.limit, or the last Update); null = none.</summary>
    public long? MemoryLimit { get; set; }

    public IEnumerable<TaskProcess> All => Execs.Values.Prepend(Init);
}

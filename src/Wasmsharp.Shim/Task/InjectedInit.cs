using Wasmsharp.Oci;

namespace Wasmsharp.Shim;

/// <summary>
/// `docker run --init` (or <c>"init": true</c> in daemon.json) wraps the command as
/// <c>[/sbin/docker-init, "--", command...]</c> and bind-mounts the engine's native init (tini) there.
/// A native init cannot run here and has nothing to do for a Wasm guest (no child processes to reap;
/// signals already reach the guest), so the shim runs the command it wraps. Recognised by shape, not by
/// name: args[0] is the destination of a bind mount of a host file and args[1] is "--".
/// </summary>
internal static class InjectedInit
{
    /// <summary>Drops the injected init from <paramref name="process"/>'s args; true if there was one.</summary>
    public static bool Unwrap(Process process, IReadOnlyList<Mount> mounts)
    {
        var args = process.Args;
        if (args.Count < 3 || args[1] != "--") return false;
        var init = args[0];
        if (!mounts.Any(m => m.IsBind && m.Destination == init && m.Source is { } source && File.Exists(source))) return false;
        process.Args = args[2..];
        return true;
    }
}

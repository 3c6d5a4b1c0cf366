namespace Wasmsharp.Oci;

/// <summary>
/// The checks runc makes of config.json before it creates anything (its process-spec validation and its mount
/// set-up), with runc's wording prefixed by the file and the field, so a bad bundle fails Create as it would
/// under runc instead of failing later, elsewhere, or not at all.
/// </summary>
public static class SpecValidation
{
    /// <summary>What runc says of a process without args, after "config.json: process.".</summary>
    public const string EmptyArgs = "args must not be empty: nothing to run (set an entrypoint or command)";

    /// <summary>A process (config.json's, or an exec's): args, cwd.</summary>
    /// <param name="where">how the user knows it: "config.json: process" or "exec X: process".</param>
    /// <param name="argsMayBeEmpty">An OCI Wasm artifact image may have no entrypoint: its module layer is the
    /// program (runwasi's rule). Only where the caller can look the image up; it reports empty args itself otherwise.</param>
    /// <exception cref="OciSpecException">the first rule it breaks.</exception>
    public static void Process(Process? process, string where, bool argsMayBeEmpty = false)
    {
        if (process is null)
            throw new OciSpecException($"{where} property must not be empty");
        if (process.Args.Count == 0 && !argsMayBeEmpty)
            throw new OciSpecException($"{where}.{EmptyArgs}");
        if (process.Args.Any(a => a is null))
            throw new OciSpecException($"{where}.args must not contain null");
        if (string.IsNullOrEmpty(process.Cwd))
            throw new OciSpecException($"{where}.cwd property must not be empty");
        if (!process.Cwd.StartsWith('/'))
            throw new OciSpecException($"{where}.cwd must be an absolute path (got {process.Cwd})");
    }

    /// <summary>
    /// Bind mounts need a source that exists, as runc's mount set-up does (it stats the source and fails the
    /// create); other mount types (proc, tmpfs, …) mean nothing to a Wasm guest and are not looked at.
    /// </summary>
    public static void BindSources(Spec spec, string configName = "config.json")
    {
        for (int i = 0; i < spec.Mounts.Count; i++)
        {
            var m = spec.Mounts[i];
            if (!m.IsBind) continue;
            if (string.IsNullOrEmpty(m.Source))
                throw new OciSpecException($"{configName}: mounts[{i}]: bind mount to {m.Destination} has no source");
            if (!File.Exists(m.Source) && !Directory.Exists(m.Source))
                throw new OciSpecException($"{configName}: mounts[{i}]: error mounting \"{m.Source}\" to rootfs at \"{m.Destination}\": stat {m.Source}: no such file or directory");
        }
    }
}

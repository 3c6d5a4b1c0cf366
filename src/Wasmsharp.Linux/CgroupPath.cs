namespace Wasmsharp.Linux;

/// <summary>
/// Turns an OCI <c>linux.cgroupsPath</c> into the cgroup path (inside a hierarchy) runc would use.
/// <list type="bullet">
/// <item>"/ns/id" (cgroupfs driver: ctr, Docker's cgroupfs driver) → used as is, from the hierarchy's root;</item>
/// <item>"a/b" (relative) → below the caller's own cgroup in that hierarchy, as runc's cgroupfs driver does;</item>
/// <item>"slice:prefix:name" (systemd driver: Docker's and kubelet's systemd cgroup driver) → the directory
/// systemd would give the transient scope runc asks it for: the slice expanded into its parents
/// ("kubepods-besteffort.slice" → "/kubepods.slice/kubepods-besteffort.slice"), then "prefix-name.scope".
/// We create that directory ourselves (no D-Bus call to systemd): tools looking for the container's cgroup
/// where the systemd driver would have put it (kubelet, cAdvisor, Docker stats) find it there.</item>
/// </list>
/// </summary>
public static class CgroupPath
{
    /// <summary>Whether the path is in the systemd driver's "slice:prefix:name" form.</summary>
    public static bool IsSystemdStyle(string cgroupsPath)
    {
        if (cgroupsPath.StartsWith('/')) return false;
        var parts = cgroupsPath.Split(':');
        return parts.Length == 3 && parts[2].Length > 0 && !parts.Any(p => p.Contains('/'));
    }

    /// <summary>
    /// The path inside a hierarchy; <paramref name="ownPath"/> is the caller's cgroup in that hierarchy (for
    /// relative paths). Null when <paramref name="cgroupsPath"/> is empty: the container gets no cgroup.
    /// </summary>
    /// <exception cref="ArgumentException">a malformed systemd path or one that leaves its root ("..").</exception>
    public static string? Resolve(string? cgroupsPath, string ownPath = "/")
    {
        if (string.IsNullOrEmpty(cgroupsPath)) return null;
        string path;
        if (IsSystemdStyle(cgroupsPath))
        {
            path = Systemd(cgroupsPath);
        }
        else if (cgroupsPath.StartsWith('/'))
        {
            path = cgroupsPath;
        }
        else
        {
            path = ownPath.TrimEnd('/') + "/" + cgroupsPath;
        }
        return Clean(path, cgroupsPath);
    }

    /// <summary>"slice:prefix:name" → "/a.slice/a-b.slice/prefix-name.scope" (the slice defaults to system.slice).</summary>
    public static string Systemd(string cgroupsPath)
    {
        var parts = cgroupsPath.Split(':');
        if (parts.Length != 3 || parts[2].Length == 0) throw new ArgumentException($"cgroupsPath {cgroupsPath}: expected slice:prefix:name");
        var (slice, prefix, name) = (parts[0], parts[1], parts[2]);
        // A slice as the container's unit (runc allows it) nests below its own parents, not the given slice.
        if (name.EndsWith(".slice", StringComparison.Ordinal)) return ExpandSlice(name);
        var parent = ExpandSlice(slice.Length == 0 ? "system.slice" : slice);
        var unit = prefix.Length == 0 ? name + ".scope" : $"{prefix}-{name}.scope";
        return parent == "/" ? "/" + unit : $"{parent}/{unit}";
    }

    /// <summary>
    /// systemd's slice nesting: "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root.
    /// </summary>
    public static string ExpandSlice(string slice)
    {
        if (!slice.EndsWith(".slice", StringComparison.Ordinal) || slice.Contains('/'))
            throw new ArgumentException($"invalid slice name {slice}");
        if (slice == "-.slice") return "/";
        var stem = slice[..^".slice".Length];
        if (stem.Length == 0 || stem.StartsWith('-') || stem.EndsWith('-') || stem.Contains("--", StringComparison.Ordinal))
            throw new ArgumentException($"invalid slice name {slice}");
        var path = "";
        var prefix = "";
        foreach (var component in stem.Split('-'))
        {
            prefix = prefix.Length == 0 ? component : prefix + "-" + component;
            path += "/" + prefix + ".slice";
        }
        return path;
    }

    private static string Clean(string path, string original)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") throw new ArgumentException($"cgroupsPath {original} must not contain \"..\"");
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }
}

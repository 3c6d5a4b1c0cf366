using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

/// <summary>A mount to perform, as containerd describes rootfs mounts (type, source, options).</summary>
public sealed record MountSpec(string Type, string Source, IReadOnlyList<string> Options);

/// <summary>mount(2) options split the way mount(8) does: flags for the kernel, the rest as fs data.</summary>
public readonly record struct ParsedMountOptions(ulong Flags, ulong PropagationFlags, string Data)
{
    public bool IsBind => (Flags & MS_BIND) != 0;
    public bool IsReadOnly => (Flags & MS_RDONLY) != 0;
}

public static class Mounts
{
    // Option names mount(8) and containerd translate to flags; "clear" options remove a flag.
    private static readonly Dictionary<string, (bool Clear, ulong Flag)> FlagOptions = new()
    {
        ["async"] = (true, MS_SYNCHRONOUS), ["atime"] = (true, MS_NOATIME), ["bind"] = (false, MS_BIND),
        ["defaults"] = (false, 0), ["dev"] = (true, MS_NODEV), ["diratime"] = (true, MS_NODIRATIME),
        ["dirsync"] = (false, MS_DIRSYNC), ["exec"] = (true, MS_NOEXEC), ["mand"] = (false, MS_MANDLOCK),
        ["noatime"] = (false, MS_NOATIME), ["nodev"] = (false, MS_NODEV), ["nodiratime"] = (false, MS_NODIRATIME),
        ["noexec"] = (false, MS_NOEXEC), ["nomand"] = (true, MS_MANDLOCK), ["norelatime"] = (true, MS_RELATIME),
        ["nostrictatime"] = (true, MS_STRICTATIME), ["nosuid"] = (false, MS_NOSUID), ["rbind"] = (false, MS_BIND | MS_REC),
        ["relatime"] = (false, MS_RELATIME), ["remount"] = (false, MS_REMOUNT), ["ro"] = (false, MS_RDONLY),
        ["rw"] = (true, MS_RDONLY), ["strictatime"] = (false, MS_STRICTATIME), ["suid"] = (true, MS_NOSUID),
        ["sync"] = (false, MS_SYNCHRONOUS),
    };

    private static readonly Dictionary<string, ulong> PropagationOptions = new()
    {
        ["private"] = MS_PRIVATE, ["rprivate"] = MS_PRIVATE | MS_REC, ["shared"] = MS_SHARED,
        ["rshared"] = MS_SHARED | MS_REC, ["slave"] = MS_SLAVE, ["rslave"] = MS_SLAVE | MS_REC,
        ["unbindable"] = MS_UNBINDABLE, ["runbindable"] = MS_UNBINDABLE | MS_REC,
    };

    public static ParsedMountOptions ParseOptions(IEnumerable<string> options)
    {
        ulong flags = 0, propagation = 0;
        var data = new List<string>();
        foreach (var option in options)
        {
            if (FlagOptions.TryGetValue(option, out var f))
            {
                flags = f.Clear ? flags & ~f.Flag : flags | f.Flag;
            }
            else if (PropagationOptions.TryGetValue(option, out var p))
            {
                propagation |= p;
            }
            else
            {
                data.Add(option);
            }
        }
        return new ParsedMountOptions(flags, propagation, string.Join(',', data));
    }

    /// <summary>Mounts <paramref name="spec"/> at <paramref name="target"/>, the way containerd's mount.Mount does.</summary>
    public static void Mount(MountSpec spec, string target)
    {
        var options = ParseOptions(spec.Options);
        // A bind mount ignores MS_RDONLY on the first call: remount to make it read-only.
        var flags = options.Flags;
        Call(spec.Source, target, spec.Type, flags & ~(options.IsBind ? MS_RDONLY : 0), options.Data);
        if (options.IsBind && options.IsReadOnly)
        {
            Call("", target, "", flags | MS_REMOUNT, null);
        }
        if (options.PropagationFlags != 0)
        {
            Call("", target, "", options.PropagationFlags, null);
        }
    }

    /// <summary>Detaches every mount stacked on <paramref name="target"/>; a path that is not a mount point is fine.</summary>
    public static unsafe void UnmountAll(string target)
    {
        var path = Encode(target);
        fixed (byte* p = path)
        {
            // Stacked mounts (several rootfs layers, or a mount made twice) come off one at a time.
            for (var i = 0; i < 64; i++)
            {
                if (umount2(p, MNT_DETACH) == 0) continue;
                var errno = LibC.errno;
                if (errno == EINVAL || errno == ENOENT) return;
                throw new LinuxException($"umount {target}", errno);
            }
        }
    }

    /// <summary>True when something is mounted exactly at <paramref name="path"/> (per /proc/self/mountinfo).</summary>
    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        return MountPoints().Any(p => p == full);
    }

    /// <summary>Every mount point of this mount namespace (/proc/self/mountinfo's fifth field), in its order.</summary>
    public static IEnumerable<string> MountPoints()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4) yield return Unescape(fields[4]);
        }
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string field) =>
        field.Contains('\\') ? field.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\") : field;

    /// <summary>mount(2); the error names <paramref name="name"/> (the user's path) when given, else the target.</summary>
    internal static unsafe void Call(string source, string target, string type, ulong flags, string? data, string? name = null)
    {
        var s = Encode(source);
        var t = Encode(target);
        var ty = Encode(type);
        var d = data is { Length: > 0 } ? Encode(data) : null;
        fixed (byte* ps = s, pt = t, pty = ty, pd = d)
        {
            if (mount(ps, pt, pty, (ulong_t)flags, pd) != 0)
            {
                throw LinuxException.Last(source.Length > 0 ? $"mount {type} {source} on {name ?? target} ({data})" : $"remount {name ?? target}");
            }
        }
    }

    internal static byte[] Encode(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }
}

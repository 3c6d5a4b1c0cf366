using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;
using Wasmsharp.Oci;
using Wasmsharp.Wasm;
using ContainerdMount = Wasmsharp.Containerd.Api.Types.Mount;

namespace Wasmsharp.Shim;

/// <summary>An OCI bundle on disk: config.json, the rootfs we mount, and what the spec asks the guest to see.</summary>
internal sealed class Bundle
{
    public string Path { get; }
    public Spec Spec { get; }
    public string RootfsPath { get; }
    public string ConfigPath => System.IO.Path.Combine(Path, "config.json");

    private Bundle(string path, Spec spec)
    {
        Path = path;
        Spec = spec;
        var root = spec.Root?.Path ?? "rootfs";
        RootfsPath = System.IO.Path.IsPathRooted(root) ? root : System.IO.Path.Combine(path, root);
    }

    public static Bundle Load(string path) => new(path, Spec.Load(System.IO.Path.Combine(path, "config.json")));

    /// <summary>The rootfs of the bundle at <paramref name="path"/> when it lies outside it (root.path absolute, its
    /// client's own mount); null when it is the bundle's, or config.json cannot be read.</summary>
    public static string? ClientRootfs(string path)
    {
        try
        {
            var bundle = Load(path);
            return bundle.RootfsPath != System.IO.Path.Combine(path, "rootfs") ? bundle.RootfsPath : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OciSpecException)
        {
            return null;
        }
    }

    /// <summary>Mounts the rootfs containerd prepared (snapshot mounts) at the bundle's rootfs directory.</summary>
    public void MountRootfs(IEnumerable<ContainerdMount> mounts)
    {
        Directory.CreateDirectory(RootfsPath);
        _rootfsMounted = true; // also after a partial failure: whatever did get mounted is ours to undo
        foreach (var m in mounts)
        {
            Mounts.Mount(new MountSpec(m.Type, m.Source, m.Options), RootfsPath);
        }
    }

    /// <summary>
    /// Undoes <see cref="MountSpecMounts"/>, then <see cref="MountRootfs"/>. A rootfs the client mounted itself (Docker
    /// with the containerd image store passes no mounts and an absolute root.path to its own overlay) is the
    /// client's: left alone, or `docker restart` finds it gone.
    /// </summary>
    public void Unmount()
    {
        List<Exception>? errors = null;
        for (var i = _specMounts.Count - 1; i >= 0; i--)
        {
            try
            {
                _specMounts[i].Unmount();
            }
            catch (LinuxException e)
            {
                (errors ??= []).Add(e);
            }
        }
        _specMounts.Clear();
        _mountPreopens.Clear();
        if (_rootfsMounted) Mounts.UnmountAll(RootfsPath);
        if (errors is not null) throw new AggregateException(errors);
    }

    private readonly List<RootfsMounts.MountPoint> _specMounts = [];
    private readonly List<Preopen> _mountPreopens = [];

    // The devices runc makes in every container's /dev (less tty: a shim's controlling terminal is no guest's).
    private static readonly (string Name, uint Major, uint Minor)[] DefaultDevices =
        [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9)];

    /// <summary>
    /// Makes the spec's bind and tmpfs mounts in the rootfs, in its order, as runc makes them in the container's
    /// mount namespace: files (Docker's and CRI's /etc/hosts, a Kubernetes subPath or secret file) are there, a
    /// mount's parents list it, a bind inside another lands in that mount, not in its host source; a tmpfs /dev gets
    /// runc's default devices. The other types (proc, sysfs, devpts, mqueue, cgroup) mean nothing to a WASI guest.
    /// A directory whose mount point cannot be made (a read-only rootfs on disk: `ctr run --read-only`) is still
    /// reached through its host source, and such a tmpfs left out; a file cannot be, and fails the create as runc's.
    /// </summary>
    public void MountSpecMounts()
    {
        for (var i = 0; i < Spec.Mounts.Count; i++)
        {
            var m = Spec.Mounts[i];
            var tmpfs = m.Type == "tmpfs" && !m.IsBind;
            if (!(m.IsBind && m.Source is not null) && !tmpfs) continue;
            var spec = new MountSpec(m.Type ?? "bind", m.Source ?? "tmpfs", m.Options);
            try
            {
                var point = RootfsMounts.Mount(RootfsPath, spec, m.Destination);
                _specMounts.Add(point);
                if (point.IsDirectory) _mountPreopens.Add(new Preopen(point.Path, m.Destination, m.IsReadOnly));
                if (tmpfs && m.Destination.TrimEnd('/') == "/dev")
                {
                    foreach (var (name, major, minor) in DefaultDevices) RootfsMounts.MakeDevice(point, name, major, minor);
                }
            }
            catch (LinuxException e) when (e.Errno == Tmds.Linux.LibC.EROFS && (tmpfs || Directory.Exists(m.Source)))
            {
                if (!tmpfs) _mountPreopens.Add(new Preopen(m.Source!, m.Destination, m.IsReadOnly));
            }
            catch (LinuxException e)
            {
                throw new BundleException($"{ConfigPath}: mounts[{i}] ({m.Destination}): {e.Message}");
            }
        }
    }

    private bool _rootfsMounted;

    // Written by the daemon once a deleted container's rootfs is unmounted and its cgroup removed: the
    // `shim delete` containerd runs next then need not look for a leftover cgroup (~1 ms of every delete).
    private const string ReleasedMarker = "wasmsharp-released";

    public void MarkReleased()
    {
        try
        {
            File.WriteAllBytes(System.IO.Path.Combine(Path, ReleasedMarker), []);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // `shim delete` then looks for itself
        }
    }

    public static bool WasReleased(string bundlePath) => File.Exists(System.IO.Path.Combine(bundlePath, ReleasedMarker));

    /// <summary>
    /// Finds the file named by argv[0] inside the rootfs (never outside it: the image is untrusted) and tells what
    /// it is: a WebAssembly module, or a native program (ELF, or a <c>#!</c> script) for runc. Anything else is
    /// refused. "path#export" selects an export other than _start, as runwasi does.
    /// </summary>
    public Entrypoint OpenEntrypoint(Oci.Process process)
    {
        if (process.Args.Count == 0 || process.Args[0].Length == 0)
        {
            throw new EntrypointNotFoundException($"config.json: process.{SpecValidation.EmptyArgs}");
        }
        var (file, export) = SplitExport(process.Args[0]);
        foreach (var candidate in Candidates(file, process))
        {
            SafeFileHandle handle;
            try
            {
                handle = Files.OpenInRoot(RootfsPath, candidate);
            }
            catch (LinuxException e) when (e.Errno is 2 /* ENOENT */ or 20 /* ENOTDIR */)
            {
                continue;
            }
            catch (LinuxException e)
            {
                throw new BundleException($"cannot open entrypoint {candidate}: {e.Message}");
            }
            var kind = Classify(handle);
            if (kind is null)
            {
                handle.Dispose();
                throw new BundleException($"entrypoint {candidate} is not a WebAssembly module or component (no \\0asm magic) nor a native program (ELF or #! script)");
            }
            return new Entrypoint(candidate, export, handle, kind.Value);
        }
        // runc's words for a missing program, which Docker maps to exit 127.
        throw new EntrypointNotFoundException($"entrypoint {file}: no such file or directory in the container's rootfs");
    }

    /// <summary>Directories the guest sees: the rootfs at "/" and every directory mount made in it (each through its
    /// own root, with its own read-only flag), or its host source where none could be made.</summary>
    public IReadOnlyList<Preopen> Preopens()
    {
        List<Preopen> result = [new(RootfsPath, "/", Spec.Root?.Readonly ?? false)];
        result.AddRange(_mountPreopens);
        return result;
    }

    /// <summary>
    /// Host path of the container's /etc/<paramref name="name"/> (hosts, resolv.conf), for the guest's name lookups:
    /// the file Docker and CRI bind-mount there, else the rootfs's own when it is a regular file (never a symlink,
    /// which could lead out of the rootfs); null when there is none.
    /// </summary>
    public string? EtcFile(string name)
    {
        var guestPath = "/etc/" + name;
        var mount = Spec.Mounts.LastOrDefault(m => m.IsBind && m.Destination.TrimEnd('/') == guestPath && m.Source is not null);
        if (mount is not null) return File.Exists(mount.Source) ? mount.Source : null;
        var own = System.IO.Path.Combine(RootfsPath, "etc", name);
        var info = new FileInfo(own);
        return info.Exists && info.LinkTarget is null && new FileInfo(System.IO.Path.Combine(RootfsPath, "etc")).LinkTarget is null ? own : null;
    }

    internal static (string File, string Export) SplitExport(string arg0)
    {
        var hash = arg0.LastIndexOf('#');
        return hash > 0 && hash < arg0.Length - 1 ? (arg0[..hash], arg0[(hash + 1)..]) : (arg0, "_start");
    }

    private static IEnumerable<string> Candidates(string file, Oci.Process process)
    {
        if (file.StartsWith('/'))
        {
            yield return file;
        }
        else if (file.Contains('/'))
        {
            yield return System.IO.Path.Combine(process.Cwd, file);
        }
        else
        {
            var path = process.EnvPairs().FirstOrDefault(p => p.Key == "PATH").Value;
            foreach (var dir in (string.IsNullOrEmpty(path) ? "/usr/local/bin:/usr/bin:/bin" : path).Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return System.IO.Path.Combine(dir, file);
            }
        }
    }

    // What argv[0] is, from its first bytes (the Wasm header is WasmBinary's to read); null: neither Wasm nor
    // something runc can exec.
    private static EntrypointKind? Classify(SafeFileHandle handle)
    {
        if (WasmBinary.KindOf(handle) is WasmBinaryKind.Module or WasmBinaryKind.Component) return EntrypointKind.Wasm;
        Span<byte> magic = stackalloc byte[4];
        var n = RandomAccess.Read(handle, magic, 0);
        if (n == 4 && magic.SequenceEqual("\u007fELF"u8)) return EntrypointKind.Native;
        if (n >= 2 && magic[..2].SequenceEqual("#!"u8)) return EntrypointKind.Native;
        return null;
    }
}

/// <summary>What argv[0] names: a module for the Wasm host, or a program runc runs.</summary>
internal enum EntrypointKind
{
    Wasm,
    Native,
}

/// <summary>The resolved entrypoint: its path in the container, its kind, the export to call (Wasm), and an open handle to it.</summary>
internal sealed record Entrypoint(string GuestPath, string Export, SafeFileHandle Handle, EntrypointKind Kind) : IDisposable
{
    public string HostPath => Files.ProcPath(Handle);
    public void Dispose() => Handle.Dispose();
}

/// <summary>A problem with what the user asked to run: reported to them as InvalidArgument.</summary>
internal class BundleException(string message) : Exception(message);

/// <summary>No module in the rootfs for argv[0] (or no argv): the image may be a Wasm artifact instead.</summary>
internal sealed class EntrypointNotFoundException(string message) : BundleException(message);

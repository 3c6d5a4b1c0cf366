using Microsoft.Win32.SafeHandles;
using Wasmsharp.Linux;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Turns a <see cref="WasiSpec"/> into a Wasmtime <see cref="WasiConfiguration"/>.
/// </summary>
/// <remarks>
/// <para><b>Working directory.</b> WASI preview1 has no cwd; each guest libc invents one.
/// wasi-libc (C, C++, Rust, TinyGo) always starts at "/" and matches paths against preopen names after
/// stripping leading "/" and "./": "/" and "." both become the empty prefix, which matches every path, and
/// among equally long matches the LAST registered preopen wins. So a "." preopen registered after "/" would
/// capture absolute paths too ("/etc/hosts" → cwd/etc/hosts). We therefore register the cwd as "." FIRST
/// (fd 3): wasi-libc then ignores it (the later "/" wins the tie) and absolute paths stay correct, but
/// relative paths of wasi-libc guests resolve against "/", not the cwd — a host cannot change that
/// without the guest's cooperation. Toolchains that treat fd 3 as the cwd (Zig) do see the cwd. Go's
/// wasip1 port takes its cwd from the PWD environment variable (the spec's Env; this class adds nothing).</para>
/// <para><b>Files.</b> Stdio files are opened by Wasmtime when the configuration is applied to the store
/// (open(O_WRONLY|O_CREAT|O_TRUNC) for stdout/stderr): a FIFO without a reader blocks there.</para>
/// </remarks>
internal static class WasiSetup
{
    /// <param name="cwd">the working directory, opened (null when it is "/"): Wasmtime is given its
    /// /proc/self/fd path, so the caller must keep it open until the configuration is applied to a store.</param>
    public static WasiConfiguration Build(WasiSpec spec, out SafeFileHandle? cwd)
    {
        cwd = null;
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Args is null)
            throw new WasmModuleException("WASI args must not be null");

        var config = new WasiConfiguration();
        foreach (var arg in spec.Args)
        {
            if (arg is null || arg.Contains('\0'))
                throw new WasmModuleException("WASI arguments must not be null or contain NUL characters");
            config.WithArg(arg);
        }

        foreach (var (name, value) in spec.Env)
        {
            if (string.IsNullOrEmpty(name) || name.Contains('=') || name.Contains('\0') || value is null || value.Contains('\0'))
                throw new WasmModuleException($"invalid environment variable '{name}': names must be non-empty without '=' or NUL, values without NUL");
            config.WithEnvironmentVariable(name, value);
        }

        var preopens = new List<(string Host, string Guest, bool ReadOnly)>();
        foreach (var p in spec.Preopens)
        {
            if (p is null || string.IsNullOrEmpty(p.HostPath) || string.IsNullOrEmpty(p.GuestPath))
                throw new WasmModuleException("preopens need a host path and a guest path");
            if (!Directory.Exists(p.HostPath))
                throw new WasmModuleException($"preopen {p.GuestPath}: host directory {p.HostPath} does not exist");
            preopens.Add((p.HostPath, NormalizeGuestPath(p.GuestPath), p.ReadOnly));
        }

        if (spec.Cwd is { } guestCwd && NormalizeGuestPath(guestCwd) != "/")
        {
            var (handle, readOnly) = OpenCwd(NormalizeGuestPath(guestCwd), preopens, spec.CreateCwd);
            cwd = handle;
            config.WithPreopenedDirectory(Files.ProcPath(handle), ".", mutable: !readOnly);
        }
        foreach (var (host, guest, readOnly) in preopens)
            config.WithPreopenedDirectory(host, guest, mutable: !readOnly);

        if (spec.StdinPath is { } stdin)
        {
            if (!File.Exists(stdin))
                throw new WasmModuleException($"stdin {stdin} does not exist");
            config.WithStandardInput(stdin);
        }
        if (spec.StdoutPath is { } stdout)
            config.WithStandardOutput(stdout);
        if (spec.StderrPath is { } stderr)
            config.WithStandardError(stderr);
        return config;
    }

    /// <summary>"/a//b/./c/" → "/a/b/c"; ".." is resolved lexically and never climbs above "/".</summary>
    internal static string NormalizeGuestPath(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
                continue;
            if (part == "..")
            {
                if (parts.Count > 0)
                    parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>
    /// The guest directory <paramref name="cwd"/> (normalized, absolute), opened below the preopen that holds it as
    /// if that preopen were "/" (symlinks and ".." cannot leave it), and its writability. Opened once, in one walk of
    /// the kernel's: a guest swapping a directory of a shared writable mount for a symlink can make the open fail,
    /// never make it land outside (a check by name followed by Wasmtime's own open by name could).
    /// </summary>
    internal static (SafeFileHandle Directory, bool ReadOnly) OpenCwd(string cwd, IReadOnlyList<(string Host, string Guest, bool ReadOnly)> preopens, bool create = false)
    {
        int best = -1, bestLength = -1;
        for (int i = 0; i < preopens.Count; i++)
        {
            var guest = preopens[i].Guest;
            bool covers = guest == "/" || cwd == guest || cwd.StartsWith(guest + "/", StringComparison.Ordinal);
            if (covers && guest.Length >= bestLength) // later preopens win ties, as in wasi-libc
            {
                best = i;
                bestLength = guest.Length;
            }
        }
        if (best < 0)
            throw new WasmModuleException($"working directory {cwd} is not inside any preopened directory");

        var (root, mount, readOnly) = preopens[best];
        var relative = mount == "/" ? cwd[1..] : cwd[mount.Length..].TrimStart('/');
        try
        {
            try
            {
                return (Files.OpenDirectoryInRoot(root, relative), readOnly);
            }
            catch (LinuxException e) when (e.Errno == 2 && create && (!readOnly || mount == "/"))
            {
                Files.CreateDirectoryInRoot(root, relative);
                return (Files.OpenDirectoryInRoot(root, relative), readOnly);
            }
        }
        catch (LinuxException e)
        {
            var why = e.Errno switch { 2 => "does not exist", 20 or 22 => "is not a directory", 40 => "has too many levels of symbolic links", _ => $"cannot be opened (errno {e.Errno})" };
            throw new WasmModuleException($"working directory {cwd} {why}");
        }
    }
}

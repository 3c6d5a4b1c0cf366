using Microsoft.Win32.SafeHandles;
using Serilog;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// A container whose entrypoint is a native program, run by the system's runc from the bundle's config.json as it
/// is: runc makes its namespaces and cgroup, mounts what the spec asks inside the rootfs (which we mount, as
/// runc's shim does) and runs its hooks. The shim only passes the process's stdio (a terminal's master, which runc
/// sends to a <see cref="ConsoleSocket"/>, is copied to and from the client's FIFOs) and reports its exit.
/// </summary>
internal sealed class NativeContainer
{
    public string Id { get; }
    public Runc Runc { get; }
    public ILogger Log { get; }
    public Bundle Bundle { get; }

    /// <summary>The cgroup runc made (read for Stats and OOM kills); null when the spec names none.</summary>
    public ContainerCgroup? Cgroup { get; }

    /// <summary>Its OOM kills, reported as they happen; null without a cgroup.</summary>
    public OomWatch? Oom { get; }

    public NativeProcess Init { get; }

    private NativeContainer(string id, Runc runc, Bundle bundle, ILogger log, int initPid, Action onOom)
    {
        Id = id;
        Runc = runc;
        Bundle = bundle;
        Log = log;
        Cgroup = ContainerCgroup.Existing(bundle.Spec, log);
        Oom = Cgroup is null ? null : new OomWatch(Cgroup, onOom, id, log);
        Init = new NativeProcess(this, initPid);
    }

    /// <summary>runc create with the bundle's rootfs already mounted; the init waits for Start.</summary>
    /// <exception cref="BundleException">no runc on PATH.</exception>
    /// <exception cref="RuncException">runc refused the bundle; nothing of the container is left.</exception>
    /// <param name="onOom">called when the kernel's OOM killer has ended a process of the container.</param>
    public static NativeContainer Create(string id, Bundle bundle, string ns, Stdio stdio, Action onOom, ILogger log)
    {
        var binary = Runc.Find() ?? throw new BundleException(
            $"entrypoint {bundle.Spec.Process?.Args.FirstOrDefault()} is a native program, which this runtime runs with runc, but no runc was found on PATH ({Environment.GetEnvironmentVariable("PATH")}): install runc, or run a WebAssembly module");
        var cgroupsPath = bundle.Spec.Linux?.CgroupsPath ?? "";
        var runc = new Runc(binary, Runc.RootFor(ns), Path.Combine(bundle.Path, "runc-log.json"),
            systemdCgroup: cgroupsPath.Length > 0 && !cgroupsPath.StartsWith('/') && cgroupsPath.Count(c => c == ':') == 2);
        var pid = 0;
        using (var fds = StdioFds.Open(stdio))
        using (var console = stdio.Terminal ? new ConsoleSocket() : null)
        {
            try
            {
                // The init, our child once runc has exited, is tracked before an orphan sweep could take it.
                using (Processes.HoldReaping())
                {
                    pid = runc.Create(id, bundle.Path, Path.Combine(bundle.Path, "init.pid"), fds.Map, console?.Path);
                    Processes.Track(pid);
                }
                if (console is not null) stdio.AttachConsole(console.ReceiveMaster());
            }
            catch (Exception e) when (e is RuncException or LinuxException)
            {
                TryDelete(runc, id, log); // runc may leave a half-made container (its state, its cgroup) behind
                if (pid > 0) Processes.Untrack(pid); // killed by runc delete: an orphan for the reaper now
                throw;
            }
        }
        log.Information("{Id}: native container created by {Runc} (root {Root}), init pid {Pid}", id, binary, runc.Root, pid);
        return new NativeContainer(id, runc, bundle, log, pid, onOom);
    }

    /// <summary>An exec, run by runc exec at its Start with <paramref name="processJson"/> (containerd's spec, as is).</summary>
    public NativeProcess PrepareExec(string execId, ReadOnlyMemory<byte> processJson, Stdio stdio) => new(this, () =>
    {
        var processFile = Path.Combine(Bundle.Path, $"exec-{execId}.json");
        var pidFile = Path.Combine(Bundle.Path, $"exec-{execId}.pid");
        try
        {
            File.WriteAllBytes(processFile, processJson.ToArray());
            using var fds = StdioFds.Open(stdio);
            using var console = stdio.Terminal ? new ConsoleSocket() : null;
            var pid = Runc.Exec(Id, processFile, pidFile, fds.Map, console?.Path);
            if (console is null) return pid;
            try
            {
                stdio.AttachConsole(console.ReceiveMaster());
            }
            catch (Exception e) when (e is RuncException or LinuxException)
            {
                // Without its terminal nobody could reach it: it ends here, its start fails.
                Processes.Signal(pid, Signals.SIGKILL);
                Processes.WaitForExitStatus(pid);
                throw e as RuncException ?? new RuncException($"exec {execId}: its terminal: {e.Message}");
            }
            return pid;
        }
        finally
        {
            File.Delete(processFile);
            File.Delete(pidFile);
        }
    });

    /// <summary>kill --all: every process in the container's cgroup, execs and their children included.</summary>
    public void KillAll(int signal)
    {
        try
        {
            Runc.Kill(Id, signal, all: true);
        }
        catch (RuncException e)
        {
            Log.Debug("{Id}: {Message}", Id, e.Message);
        }
    }

    public IReadOnlyList<int> Pids() => Runc.Ps(Id);

    /// <summary>New linux.resources (containerd's JSON) for runc update to write to the cgroup.</summary>
    public void Update(ReadOnlySpan<byte> resources) => Runc.Update(Id, resources);

    /// <summary>runc delete --force: what is left of it is killed, its cgroup and runc's state removed. False if runc failed.</summary>
    public bool Delete()
    {
        Oom?.Dispose();
        return TryDelete(Runc, Id, Log);
    }

    private static bool TryDelete(Runc runc, string id, ILogger log)
    {
        try
        {
            runc.Delete(id);
            return true;
        }
        catch (RuncException e)
        {
            log.Warning("{Id}: {Message}", id, e.Message);
            return false;
        }
    }

    /// <summary>
    /// `shim delete` after the shim died: a native container it left (runc still has its state) is deleted by runc,
    /// which kills what still runs in it, before its rootfs is unmounted.
    /// </summary>
    public static void DeleteLeftover(string ns, string id, string bundlePath, ILogger log)
    {
        var root = Runc.RootFor(ns);
        if (!Directory.Exists(Path.Combine(root, id)) || Runc.Find() is not { } binary) return;
        var runc = new Runc(binary, root, Path.Combine(bundlePath, "runc-log.json"), systemdCgroup: false);
        if (TryDelete(runc, id, log)) log.Information("{Id}: leftover native container deleted", id);
    }

    // The process's stdio as Stdio set it up for a guest, opened again for runc to hand to the container (runc's own
    // copies go away with it; the container's stay with its processes).
    private sealed class StdioFds : IDisposable
    {
        private readonly List<SafeFileHandle> handles = [];
        public Dictionary<int, int> Map { get; } = [];

        public static StdioFds Open(Stdio stdio)
        {
            var fds = new StdioFds();
            try
            {
                fds.Add(0, stdio.GuestStdin, write: false);
                fds.Add(1, stdio.GuestStdout, write: true);
                fds.Add(2, stdio.GuestStderr, write: true);
            }
            catch
            {
                fds.Dispose();
                throw;
            }
            return fds;
        }

        private void Add(int target, string? path, bool write)
        {
            if (path is null) return; // /dev/null, as runc's shim gives a process without that stream
            var handle = Files.Open(path, write);
            handles.Add(handle);
            Map[target] = (int)handle.DangerousGetHandle();
        }

        public void Dispose()
        {
            foreach (var h in handles) h.Dispose();
        }
    }
}

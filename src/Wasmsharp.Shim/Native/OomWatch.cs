using Serilog;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// OOM kills in a native container's cgroup while it lives, as containerd's runc shim reports them: a thread waits
/// for the kernel's notification (<see cref="CgroupOomEvents"/>) and, each time the cgroup's oom_kill counter has
/// moved, calls <c>onKill</c> (the task service publishes /tasks/oom), also when the init lives on (a child was
/// killed). <see cref="Check"/> at the init's exit catches a kill whose notification is still on its way, so the
/// event comes before /tasks/exit.
/// </summary>
internal sealed class OomWatch : IDisposable
{
    private static readonly TimeSpan StopCheck = TimeSpan.FromSeconds(1);
    private readonly object _gate = new();
    private readonly ContainerCgroup _cgroup;
    private readonly Action _onKill;
    private readonly CgroupOomEvents? _events;
    private ulong _seen;
    private volatile bool _stopped;

    public OomWatch(ContainerCgroup cgroup, Action onKill, string id, ILogger log)
    {
        _cgroup = cgroup;
        _onKill = onKill;
        _seen = cgroup.KernelOomKills();
        try
        {
            _events = cgroup.OpenOomEvents();
        }
        catch (LinuxException e)
        {
            log.Warning("{Id}: no OOM notifications for cgroup {Path} ({Error}): OOM kills are reported at the exit only", id, cgroup.Path, e.Message);
            return;
        }
        new Thread(Run, 128 * 1024) { IsBackground = true, Name = $"oom {id}" }.Start();
    }

    private void Run()
    {
        try
        {
            while (!_stopped)
            {
                if (!_events!.Wait(StopCheck)) continue;
                // v1 signals when the cgroup runs out of memory, which may be before the killer has counted its kill.
                foreach (var ms in (ReadOnlySpan<int>)[0, 50, 250, 1000])
                {
                    Thread.Sleep(ms);
                    if (Check()) break;
                }
            }
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            // disposed: the container is being deleted
        }
    }

    /// <summary>Reports kills counted since the last look; true if there were any.</summary>
    public bool Check()
    {
        // Reported under the gate: a kill the watcher has seen is published before Check at the exit returns.
        lock (_gate)
        {
            var now = _cgroup.KernelOomKills();
            if (now <= _seen) return false;
            _seen = now;
            _onKill();
            return true;
        }
    }

    public void Dispose()
    {
        _stopped = true;
        _events?.Dispose();
    }
}

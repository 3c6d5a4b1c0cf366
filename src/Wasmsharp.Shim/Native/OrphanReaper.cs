using System.Runtime.InteropServices;
using Serilog;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim.Native;

/// <summary>
/// The shim is a child subreaper, as containerd's runc shim is: a process of a native container without a pid
/// namespace of its own that loses its parent (a daemon's double fork) is re-parented to the shim. runc's shim
/// reaps every child on SIGCHLD; here children are waited for one pid at a time (runc, hooks, container
/// processes, .NET's own), so on each SIGCHLD only zombies nobody tracks are reaped
/// (<see cref="Processes.ReapOrphans"/>). A periodic sweep catches a signal that came while one ran.
/// </summary>
internal static class OrphanReaper
{
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(30);
    private static readonly SemaphoreSlim Wake = new(0, 1);
    private static PosixSignalRegistration? s_sigchld;

    public static void Start(ILogger log)
    {
        if (s_sigchld is not null) return;
        // Not cancelled: .NET's own handling of SIGCHLD (for its Process class) runs as well.
        s_sigchld = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ =>
        {
            try
            {
                Wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // a sweep is due already
            }
        });
        new Thread(() =>
        {
            while (true)
            {
                Wake.Wait(Sweep);
                try
                {
                    foreach (var pid in Processes.ReapOrphans()) log.Debug("reaped orphan {Pid}", pid);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException)
                {
                    log.Warning("reaping orphans: {Error}", e.Message);
                }
            }
        }, 128 * 1024) { IsBackground = true, Name = "orphan reaper" }.Start();
    }
}

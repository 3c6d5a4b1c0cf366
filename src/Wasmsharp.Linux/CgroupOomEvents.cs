using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Wasmsharp.Linux;

/// <summary>
/// The kernel's word that something happened to a cgroup's memory, as containerd's runc shim listens for it:
/// v1 an eventfd registered for memory.oom_control through cgroup.event_control (signalled when the cgroup runs
/// out of memory), v2 inotify on memory.events (modified when a counter there, oom_kill among them, moves).
/// <see cref="Wait"/> only says "look now": the caller reads the oom_kill counter to know whether a process was
/// killed.
/// </summary>
public sealed partial class CgroupOomEvents : IDisposable
{
    private const int EFD_CLOEXEC = 0x80000, IN_CLOEXEC = 0x80000, IN_MODIFY = 0x2;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int inotify_init1(int flags);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int inotify_add_watch(int fd, string path, uint mask);

    private readonly SafeFileHandle _events;
    private readonly SafeFileHandle? _watched; // v1: memory.oom_control, open for as long as the registration lives
    private readonly byte[] _buffer = new byte[4096];

    private CgroupOomEvents(SafeFileHandle events, SafeFileHandle? watched)
    {
        _events = events;
        _watched = watched;
    }

    /// <exception cref="LinuxException">the cgroup has no memory controller here, or the kernel refused.</exception>
    public static CgroupOomEvents Open(Cgroup cgroup)
    {
        var memory = cgroup.Directory("memory") ?? throw new LinuxException($"cgroup {cgroup.Path}: no memory controller", 2);
        if (cgroup.Mode == CgroupMode.V2)
        {
            var path = Path.Combine(memory, "memory.events");
            var fd = inotify_init1(IN_CLOEXEC);
            if (fd < 0) throw new LinuxException("inotify_init1", Marshal.GetLastPInvokeError());
            var inotify = new SafeFileHandle(fd, ownsHandle: true);
            if (inotify_add_watch(fd, path, IN_MODIFY) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                inotify.Dispose();
                throw new LinuxException($"inotify_add_watch {path}", errno);
            }
            return new CgroupOomEvents(inotify, null);
        }
        var efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0) throw new LinuxException("eventfd", Marshal.GetLastPInvokeError());
        var events = new SafeFileHandle(efd, ownsHandle: true);
        SafeFileHandle? control = null;
        try
        {
            control = File.OpenHandle(Path.Combine(memory, "memory.oom_control"));
            File.WriteAllText(Path.Combine(memory, "cgroup.event_control"), $"{efd} {control.DangerousGetHandle()}");
            return new CgroupOomEvents(events, control);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            events.Dispose();
            control?.Dispose();
            throw new LinuxException($"register for OOM events of {memory}: {e.Message}", 5);
        }
    }

    /// <summary>Up to <paramref name="timeout"/> for a notification; true when one came (consumed), false when none did
    /// or the cgroup is gone (v1 then reports end-of-file).</summary>
    public bool Wait(TimeSpan timeout) => Descriptors.Read(_events, _buffer, timeout) > 0;

    public void Dispose()
    {
        _events.Dispose();
        _watched?.Dispose();
    }
}

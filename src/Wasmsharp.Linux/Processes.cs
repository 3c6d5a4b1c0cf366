using System.Runtime.InteropServices;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

public static partial class Processes
{
    private const int PR_SET_CHILD_SUBREAPER = 36;
    private const int SYS_gettid = 186;
    private const short POSIX_SPAWN_SETSID = 0x80;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_init(void* actions);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_destroy(void* actions);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawn_file_actions_addopen(void* actions, int fd, byte* path, int flags, uint mode);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_init(void* attr);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_destroy(void* attr);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);

    /// <summary>
    /// Returns freed native heap (e.g. what Cranelift used while compiling a module) to the kernel, so
    /// an idle shim does not keep its peak.
    /// </summary>
    public static void TrimNativeHeap() => malloc_trim(0);

    /// <summary>Makes orphaned descendants re-parent to us, as containerd expects of a shim.</summary>
    public static void SetChildSubreaper()
    {
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        {
            throw new LinuxException("prctl(PR_SET_CHILD_SUBREAPER)", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>The calling thread's kernel id (what /proc/&lt;tid&gt; and ps -L show).</summary>
    public static int GetThreadId() => (int)(long)syscall(SYS_gettid);

    public static int GetParentProcessId() => getppid();

    /// <summary>
    /// Starts <paramref name="path"/> detached from us: its own session, stdio on /dev/null, and
    /// <paramref name="inheritFd"/> as its fd 3 — how a shim hands its listening socket to its daemon.
    /// </summary>
    public static unsafe int SpawnDaemon(string path, IReadOnlyList<string> args, int inheritFd)
    {
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336: leave headroom.
        var actions = stackalloc byte[512];
        var attr = stackalloc byte[1024];
        var devNull = Mounts.Encode("/dev/null");
        var file = Mounts.Encode(path);
        var argv = ToCStrings(args, out var argHandles);
        var envp = ToCStrings(EnvironmentStrings(), out var envHandles);
        try
        {
            posix_spawn_file_actions_init(actions);
            posix_spawnattr_init(attr);
            posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID);
            fixed (byte* dn = devNull)
            {
                posix_spawn_file_actions_addopen(actions, 0, dn, O_RDONLY, 0);
                posix_spawn_file_actions_addopen(actions, 1, dn, O_WRONLY, 0);
                posix_spawn_file_actions_addopen(actions, 2, dn, O_WRONLY, 0);
            }
            // dup2 clears close-on-exec on the new descriptor, so fd 3 survives exec.
            posix_spawn_file_actions_adddup2(actions, inheritFd, 3);
            fixed (byte* f = file)
            fixed (byte** a = argv)
            fixed (byte** e = envp)
            {
                var rc = posix_spawn(out var pid, f, actions, attr, a, e);
                if (rc != 0) throw new LinuxException($"posix_spawn {path}", rc);
                return pid;
            }
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attr);
            foreach (var h in argHandles) h.Free();
            foreach (var h in envHandles) h.Free();
        }
    }

    private static IEnumerable<string> EnvironmentStrings()
    {
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            yield return $"{e.Key}={e.Value}";
        }
    }

    private static unsafe byte*[] ToCStrings(IEnumerable<string> values, out List<GCHandle> handles)
    {
        handles = [];
        var list = new List<nint>();
        foreach (var value in values)
        {
            var h = GCHandle.Alloc(Mounts.Encode(value), GCHandleType.Pinned);
            handles.Add(h);
            list.Add(h.AddrOfPinnedObject());
        }
        var result = new byte*[list.Count + 1];
        for (var i = 0; i < list.Count; i++) result[i] = (byte*)list[i];
        return result;
    }
}

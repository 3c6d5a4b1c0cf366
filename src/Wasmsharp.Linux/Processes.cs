using System.Runtime.InteropServices;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

public static partial class Processes
{
    private const int PR_SET_CHILD_SUBREAPER = 36;
    private const int SYS_gettid = 186;
    private const short POSIX_SPAWN_SETPGROUP = 0x02;

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

    private const int F_DUPFD_CLOEXEC_ = 1030;
    private const int WNOHANG_ = 1;

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int fcntl_int(int fd, int cmd, int arg);
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int sys_kill(int pid, int signal);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);
    [LibraryImport("libc")]
    private static unsafe partial int posix_spawnattr_setsigmask(void* attr, void* sigset);
    [LibraryImport("libc")]
    private static unsafe partial int sigfillset(void* sigset);
    [LibraryImport("libc")]
    private static unsafe partial int sigemptyset(void* sigset);
    private const short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08;
    private const int SCHED_OTHER_ = 0, SCHED_BATCH_ = 3, SCHED_IDLE_ = 5;
    private const int PRIO_PROCESS_ = 0;
    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int sys_setpriority(int which, int who, int priority);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int sched_setscheduler(int pid, int policy, int* param);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static unsafe partial int sys_waitpid(int pid, int* status, int options);

    private const int PR_SET_MM = 35, PR_SET_MM_ARG_START = 8, PR_SET_MM_ARG_END = 9;

    /// <summary>
    /// Makes /proc/self/cmdline (what ps and pkill -f see) read <paramref name="args"/>: for a process that
    /// becomes something its command line does not say. With CAP_SYS_RESOURCE the kernel is pointed at a new
    /// block (never freed); without it, the new arguments are written over the original ones, which works when
    /// they fit (start such a process with a padding argument). False when neither is possible.
    /// </summary>
    public static unsafe bool SetCommandLine(IReadOnlyList<string> args)
    {
        var bytes = args.SelectMany(a => System.Text.Encoding.UTF8.GetBytes(a).Append((byte)0)).ToArray();
        // /proc/self/stat fields 48 and 49 (counted after the parenthesised command name, which may hold spaces).
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        if (fields.Length < 48 || !nuint.TryParse(fields[45], out var oldStart) || !nuint.TryParse(fields[46], out var oldEnd)) return false;

        var block = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(block, bytes.Length));
        nuint start = (nuint)block, end = start + (nuint)bytes.Length;
        // The kernel wants start <= end after each step: above the old block, move the end first; below, the start.
        var (first, firstValue, firstOld, second, secondValue) = start >= oldEnd
            ? (PR_SET_MM_ARG_END, end, oldEnd, PR_SET_MM_ARG_START, start)
            : (PR_SET_MM_ARG_START, start, oldStart, PR_SET_MM_ARG_END, end);
        if (prctl(PR_SET_MM, (nuint)first, firstValue, 0, 0) == 0)
        {
            if (prctl(PR_SET_MM, (nuint)second, secondValue, 0, 0) == 0) return true;
            prctl(PR_SET_MM, (nuint)first, firstOld, 0, 0); // back to the old command line
        }
        NativeMemory.Free(block);

        // In place: the original arguments live on the initial stack, writable. The rest is zeroed, and the last
        // byte stays 0 so the kernel keeps reading the area as NUL-separated arguments.
        var room = (int)(oldEnd - oldStart);
        if (bytes.Length > room) return false;
        var area = new Span<byte>((void*)oldStart, room);
        bytes.CopyTo(area);
        area[bytes.Length..].Clear();
        return true;
    }

    /// <summary>Lowest nice value: with CFS/EEVDF a nice-19 thread gets 15/1039 of a CPU beside one nice-0 thread
    /// that wants it all, and little else; the thread still makes progress, unlike SCHED_IDLE's share (3/1027)
    /// which starves long work on a loaded machine.</summary>
    public const int LowestNice = 19;

    /// <summary>
    /// Puts the calling thread (and threads it starts) on SCHED_BATCH at nice <paramref name="nice"/>: long CPU work
    /// that never preempts a waking thread and yields the CPU to normal threads by its weight, yet always makes
    /// progress. Best effort.
    /// </summary>
    public static unsafe void SetCurrentThreadBatch(int nice = LowestNice)
    {
        var priority = 0;
        sched_setscheduler(0, SCHED_BATCH_, &priority);
        sys_setpriority(PRIO_PROCESS_, GetThreadId(), nice); // Linux: nice is per thread
    }

    /// <summary>
    /// Puts every thread of this process on SCHED_IDLE (they run only when no other thread wants the CPU; threads
    /// they start inherit it), or back on the normal policy. Twice over: a thread started meanwhile by a thread
    /// not yet moved would otherwise keep the old policy.
    /// </summary>
    public static unsafe void SetIdleScheduling(bool idle)
    {
        var priority = 0;
        for (var pass = 0; pass < 2; pass++)
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                if (int.TryParse(Path.GetFileName(task), out var tid)) sched_setscheduler(tid, idle ? SCHED_IDLE_ : SCHED_OTHER_, &priority);
            }
        }
    }

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
    /// Starts <paramref name="path"/> detached from us: its own process group, stdio on /dev/null, and
    /// <paramref name="inheritFd"/> as its fd 3 — how a shim hands its listening socket to its daemon.
    /// </summary>
    public static int SpawnDaemon(string path, IReadOnlyList<string> args, int inheritFd) =>
        Spawn(path, args, EnvironmentStrings().ToList(), new Dictionary<int, int> { [3] = inheritFd }, newProcessGroup: true);

    /// <summary>
    /// Starts <paramref name="path"/> with exactly <paramref name="env"/> ("K=V" strings) and the
    /// descriptors of <paramref name="fds"/> (child fd → our fd) open in it; fds 0–2 not in the map are
    /// /dev/null, and nothing else of ours is inherited (all our descriptors are close-on-exec).
    /// <paramref name="resetSignals"/>: every signal at its default action and none blocked, as a Go
    /// parent's exec gives (the .NET runtime ignores SIGPIPE, which a child would otherwise inherit).
    /// </summary>
    public static unsafe int Spawn(string path, IReadOnlyList<string> args, IReadOnlyList<string> env,
        IReadOnlyDictionary<int, int> fds, bool newProcessGroup = false, bool resetSignals = false)
    {
        var sigsets = stackalloc byte[256];   // two sigset_t (128 bytes each on glibc)
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336: leave headroom.
        var actions = stackalloc byte[512];
        var attr = stackalloc byte[1024];
        var devNull = Mounts.Encode("/dev/null");
        var file = Mounts.Encode(path);
        var argv = ToCStrings(args, out var argHandles);
        var envp = ToCStrings(env, out var envHandles);
        // dup2 in the child could overwrite a source that is also a target (our fd 4 → child fd 3
        // while our fd 3 → child fd 4): first copy every source above the highest target.
        var above = fds.Count == 0 ? 3 : Math.Max(3, fds.Keys.Max() + 1);
        var copies = new List<(int Target, int Copy)>();
        try
        {
            foreach (var (target, source) in fds)
            {
                var copy = fcntl_int(source, F_DUPFD_CLOEXEC_, above);
                if (copy < 0) throw new LinuxException($"fcntl(F_DUPFD_CLOEXEC, {source})", Marshal.GetLastPInvokeError());
                copies.Add((target, copy));
            }
            posix_spawn_file_actions_init(actions);
            posix_spawnattr_init(attr);
            short flags = 0;
            // A process group, not a session (as containerd's shims): a daemon that led a session would take the first
            // terminal it opens without O_NOCTTY (Wasmtime opens a guest's pty slave so) as its controlling terminal,
            // and ^C, ^\ or ^Z typed to a container would signal the whole shim.
            if (newProcessGroup) flags |= POSIX_SPAWN_SETPGROUP; // the attribute's group 0: the child's own pid
            if (resetSignals)
            {
                flags |= POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
                sigfillset(sigsets);
                sigemptyset(sigsets + 128);
                posix_spawnattr_setsigdefault(attr, sigsets);
                posix_spawnattr_setsigmask(attr, sigsets + 128);
            }
            if (flags != 0) posix_spawnattr_setflags(attr, flags);
            fixed (byte* dn = devNull)
            {
                if (!fds.ContainsKey(0)) posix_spawn_file_actions_addopen(actions, 0, dn, O_RDONLY, 0);
                if (!fds.ContainsKey(1)) posix_spawn_file_actions_addopen(actions, 1, dn, O_WRONLY, 0);
                if (!fds.ContainsKey(2)) posix_spawn_file_actions_addopen(actions, 2, dn, O_WRONLY, 0);
            }
            // dup2 clears close-on-exec on the new descriptor, so the targets survive exec.
            foreach (var (target, copy) in copies) posix_spawn_file_actions_adddup2(actions, copy, target);
            fixed (byte* f = file)
            fixed (byte** a = argv)
            fixed (byte** e = envp)
            {
                // Tracked before an orphan sweep can see it: whoever spawns it waits for it (or it is a daemon).
                lock (ChildGate)
                {
                    var rc = posix_spawn(out var pid, f, actions, attr, a, e);
                    if (rc != 0) throw new LinuxException($"posix_spawn {path}", rc);
                    OwnChildren.Add(pid);
                    return pid;
                }
            }
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attr);
            foreach (var (_, copy) in copies) close(copy);
            foreach (var h in argHandles) h.Free();
            foreach (var h in envHandles) h.Free();
        }
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false if it no longer exists.</summary>
    public static bool Signal(int pid, int signal) => sys_kill(pid, signal) == 0;

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for our child <paramref name="pid"/> to end and reaps it.
    /// True when it ended (or is not our child any more).
    /// </summary>
    public static unsafe bool WaitForExit(int pid, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            int status;
            var r = sys_waitpid(pid, &status, WNOHANG_);
            if (r == pid || (r < 0 && Marshal.GetLastPInvokeError() != EINTR))   // else ECHILD: reaped elsewhere
            {
                Untrack(pid);
                return true;
            }
            if (Environment.TickCount64 >= deadline) return false;
            Thread.Sleep(10);
        }
    }

    /// <summary>This process's environment as "K=V" strings (the managed view, which Environment.SetEnvironmentVariable changes).</summary>
    public static IEnumerable<string> EnvironmentStrings()
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

using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

/// <summary>How a program run by <see cref="Processes.Run"/> ended.</summary>
/// <param name="ExitCode">its exit status, or null when a signal ended it.</param>
/// <param name="Signal">the signal that ended it, or null.</param>
/// <param name="TimedOut">it ran past the timeout and was killed.</param>
public sealed record RunResult(int? ExitCode, int? Signal, string Stdout, string Stderr, bool TimedOut)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>"exit status 3" or "signal: killed", as Go's exec reports it.</summary>
    public string Status => ExitCode is { } code ? $"exit status {code}" : $"signal: {Processes.SignalName(Signal ?? 0)}";
}

public static partial class Processes
{
    private const int SYS_pidfd_open = 434;
    private const int WaitSlice = 1000;
    private const int OutputCap = 64 * 1024;

    /// <summary>
    /// Completes when the process <paramref name="pid"/> (not a child of ours) exits, watched through a pidfd on a
    /// background thread; at once when it is gone already. The caller must know the pid is the process it means
    /// (e.g. its parent, alive while it waits for us). Never completes where pidfds do not exist (Linux &lt; 5.3).
    /// </summary>
    public static unsafe Task WhenExited(int pid)
    {
        var pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
            return Marshal.GetLastPInvokeError() == ESRCH ? Task.CompletedTask : new TaskCompletionSource().Task;
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            var pfd = new pollfd { fd = pidfd, events = POLLIN };
            while (Descriptors.Poll(&pfd, 1, -1) < 0 && errno == EINTR)
            {
            }
            close(pidfd);
            exited.SetResult();
        }) { IsBackground = true, Name = $"pidfd {pid}" }.Start();
        return exited.Task;
    }

    [LibraryImport("libc", EntryPoint = "strsignal")]
    private static partial nint sys_strsignal(int signal);

    /// <summary>The C library's description of a signal in lower case ("killed", "terminated"), as Go prints it.</summary>
    public static string SignalName(int signal) =>
        Marshal.PtrToStringUTF8(sys_strsignal(signal))?.ToLowerInvariant() ?? $"signal {signal}";


    /// <summary>
    /// Runs <paramref name="path"/> with argv <paramref name="args"/> and exactly <paramref name="env"/>, feeds it
    /// <paramref name="stdin"/>, collects its output (the first 64 KiB of each stream) and waits for it to end;
    /// past <paramref name="timeout"/> it is killed (SIGKILL). Output still held open by a child it left behind is
    /// read for a moment after it ended, not waited for. The process starts in the calling thread's namespaces.
    /// One poll loop on the calling thread does it all: no thread-pool thread blocks on it.
    /// <paramref name="stdio"/> (child fd → our fd), when given, replaces the pipes as the child's fds 0–2 (those
    /// not in it are /dev/null): for a program whose stdio outlives it (runc create hands its own to the
    /// container); nothing is then fed or collected.
    /// </summary>
    public static unsafe RunResult Run(string path, IReadOnlyList<string> args, IReadOnlyList<string> env,
        ReadOnlySpan<byte> stdin, TimeSpan? timeout, IReadOnlyDictionary<int, int>? stdio = null)
    {
        var (inRead, inWrite) = Files.CreatePipe();
        var (outRead, outWrite) = Files.CreatePipe();
        var (errRead, errWrite) = Files.CreatePipe();
        using var _in = inWrite;
        using var _out = outRead;
        using var _err = errRead;
        int pid;
        using (inRead)
        using (outWrite)
        using (errWrite)
        {
            // Without stdio the child holds no end of our pipes: they read as ended at once.
            pid = Spawn(path, args, env,
                stdio ?? new Dictionary<int, int>
                {
                    [0] = (int)inRead.DangerousGetHandle(),
                    [1] = (int)outWrite.DangerousGetHandle(),
                    [2] = (int)errWrite.DangerousGetHandle(),
                }, resetSignals: true);
        }
        var pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            sys_kill(pid, SIGKILL);
            Reap(pid);
            throw new LinuxException($"pidfd_open({pid})", errno);
        }
        var output = new[] { new MemoryStream(), new MemoryStream() };
        var timedOut = false;
        try
        {
            var fds = new[] { (int)inWrite.DangerousGetHandle(), (int)outRead.DangerousGetHandle(), (int)errRead.DangerousGetHandle() };
            foreach (var fd in fds) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
            var input = stdio is null ? stdin.ToArray() : [];
            var written = 0;
            if (input.Length == 0) { inWrite.Dispose(); fds[0] = -1; }
            var deadline = timeout is { } t ? Environment.TickCount64 + (long)Math.Ceiling(t.TotalMilliseconds) : long.MaxValue;
            long drainUntil = long.MaxValue; // once it ended: a moment for output a leftover child still holds
            var buffer = stackalloc byte[4096];
            var set = stackalloc pollfd[4];
            while (fds[1] >= 0 || fds[2] >= 0 || pidfd >= 0)
            {
                var now = Environment.TickCount64;
                if (pidfd >= 0 && now >= deadline)
                {
                    sys_kill(pid, SIGKILL);
                    timedOut = true;
                    deadline = long.MaxValue;
                }
                if (now >= drainUntil) break;
                var n = 0;
                for (var i = 0; i < 3; i++)
                    if (fds[i] >= 0) set[n++] = new pollfd { fd = fds[i], events = (short)(i == 0 ? POLLOUT : POLLIN) };
                if (pidfd >= 0) set[n++] = new pollfd { fd = pidfd, events = POLLIN };
                var wait = Math.Min(Math.Min(deadline, drainUntil) - now, WaitSlice);
                var ready = Descriptors.Poll(set, (nuint)n, (int)Math.Max(0, wait));
                if (ready < 0 && Marshal.GetLastPInvokeError() != EINTR) throw LinuxException.Last("poll");
                for (var k = 0; k < n && ready > 0; k++)
                {
                    if (set[k].revents == 0) continue;
                    var fd = set[k].fd;
                    if (fd == pidfd)
                    {
                        close(pidfd);
                        pidfd = -1;
                        drainUntil = Environment.TickCount64 + DrainMs;
                    }
                    else if (fd == fds[0])
                    {
                        fixed (byte* data = input)
                        {
                            var w = write(fd, data + written, input.Length - written);
                            if (w > 0) written += (int)w;
                            if (w < 0 && !Retry(errno) || written == input.Length)
                            {
                                inWrite.Dispose(); // end of input (or it closed its stdin: EPIPE)
                                fds[0] = -1;
                            }
                        }
                    }
                    else
                    {
                        var which = fd == fds[1] ? 1 : 2;
                        var r = read(fd, buffer, 4096);
                        if (r > 0)
                        {
                            var keep = (int)Math.Min(r, OutputCap - output[which - 1].Length);
                            if (keep > 0) output[which - 1].Write(new ReadOnlySpan<byte>(buffer, keep));
                        }
                        else if (r == 0 || !Retry(errno))
                        {
                            fds[which] = -1; // its end: closed by dispose below
                        }
                    }
                }
            }
        }
        finally
        {
            if (pidfd >= 0) { sys_kill(pid, SIGKILL); close(pidfd); }
        }
        var status = Reap(pid);
        return new RunResult(
            (status & 0x7f) == 0 ? (status >> 8) & 0xff : null,
            (status & 0x7f) != 0 ? status & 0x7f : null,
            Encoding.UTF8.GetString(output[0].ToArray()), Encoding.UTF8.GetString(output[1].ToArray()),
            timedOut);
    }

    private const int DrainMs = 200;

    private static bool Retry(int errno) => errno == EAGAIN || errno == EINTR;

    /// <summary>
    /// Waits (blocking the calling thread) for our child <paramref name="pid"/> to end and reaps it: its exit status
    /// as a shell reports it (128+n when signal n ended it); null when it is not our child (reaped elsewhere).
    /// Waits for this pid alone, so it never takes the exit of a child someone else waits for.
    /// </summary>
    public static int? WaitForExitStatus(int pid)
    {
        if (!TryReap(pid, out var status, out _)) return null;
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    }

    // waitpid for our child: its wait status.
    private static int Reap(int pid) =>
        TryReap(pid, out var status, out var errno) ? status : throw new LinuxException($"waitpid({pid})", errno);

    // One blocking waitpid of this pid alone, retried on EINTR: false (with errno) when it is not our child.
    private static unsafe bool TryReap(int pid, out int status, out int errno)
    {
        int s;
        while (sys_waitpid(pid, &s, 0) < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                status = 0;
                return false;
            }
        }
        status = s;
        errno = 0;
        Untrack(pid);
        return true;
    }
}

using System.Runtime.InteropServices;
using static Tmds.Linux.LibC;

namespace Wasmsharp.Linux;

// A subreaper's children: those this process made and waits for (each by its own pid, see TryReap), and orphans
// the kernel re-parented to it, which nobody here waits for and which stay zombies unless reaped.
public static partial class Processes
{
    private static readonly object ChildGate = new();
    private static readonly HashSet<int> OwnChildren = [];

    /// <summary>
    /// Keeps <see cref="ReapOrphans"/> away while a child is made and <see cref="Track"/>ed, so one that ends at
    /// once is not taken for an orphan: around a runc that leaves a process behind, or a .NET Process.Start.
    /// </summary>
    public static IDisposable HoldReaping()
    {
        Monitor.Enter(ChildGate);
        return new ReapingHold();
    }

    private sealed class ReapingHold : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Monitor.Exit(ChildGate);
        }
    }

    /// <summary>A child someone here waits for by its pid: <see cref="ReapOrphans"/> leaves it alone.</summary>
    public static void Track(int pid)
    {
        lock (ChildGate) OwnChildren.Add(pid);
    }

    /// <summary>The child was reaped (or is no concern of ours any more).</summary>
    public static void Untrack(int pid)
    {
        lock (ChildGate) OwnChildren.Remove(pid);
    }

    /// <summary>
    /// Reaps every zombie child that is not <see cref="Track"/>ed: orphans re-parented to us. Children are read from
    /// /proc/self/task/*/children (the kernel gives an orphan to one of our threads), their state from /proc/PID/stat;
    /// each is reaped by its own pid, never with a wait for any child, so no exit someone waits for is taken.
    /// Returns the pids reaped.
    /// </summary>
    public static unsafe IReadOnlyList<int> ReapOrphans()
    {
        var reaped = new List<int>();
        lock (ChildGate)
        {
            foreach (var pid in Children())
            {
                if (OwnChildren.Contains(pid) || !IsZombie(pid)) continue;
                int status;
                if (sys_waitpid(pid, &status, WNOHANG_) == pid) reaped.Add(pid);
            }
        }
        return reaped;
    }

    private static HashSet<int> Children()
    {
        var children = new HashSet<int>();
        IEnumerable<string> tasks;
        try
        {
            tasks = Directory.EnumerateDirectories("/proc/self/task").ToList();
        }
        catch (IOException)
        {
            return children;
        }
        foreach (var task in tasks)
        {
            string text;
            try
            {
                text = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // the thread ended meanwhile
            }
            foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                if (int.TryParse(word, out var pid)) children.Add(pid);
        }
        return children;
    }

    // State is the field after the command name, which is in parentheses and may itself hold ") ".
    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            return end > 0 && end + 2 < stat.Length && stat[end + 2] == 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary><see cref="System.Diagnostics.Process.Start(System.Diagnostics.ProcessStartInfo)"/>, with the child
    /// tracked until the returned value is disposed: .NET waits for it by pid and fails hard if someone else took it.</summary>
    public static TrackedProcess StartTracked(System.Diagnostics.ProcessStartInfo startInfo)
    {
        using (HoldReaping())
        {
            var process = System.Diagnostics.Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot run {startInfo.FileName}");
            Track(process.Id);
            return new TrackedProcess(process);
        }
    }
}

/// <summary>A .NET child process tracked against <see cref="Processes.ReapOrphans"/>.</summary>
public sealed class TrackedProcess(System.Diagnostics.Process process) : IDisposable
{
    private readonly int _pid = process.Id;

    public System.Diagnostics.Process Process { get; } = process;

    public void Dispose()
    {
        // Still tracked when .NET has not reaped it yet: a later orphan sweep must not take it.
        var reaped = false;
        try
        {
            reaped = Process.HasExited;
        }
        catch (InvalidOperationException)
        {
        }
        Process.Dispose();
        if (reaped) Processes.Untrack(_pid);
    }
}

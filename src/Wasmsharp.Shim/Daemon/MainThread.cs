using System.Collections.Concurrent;

namespace Wasmsharp.Shim;

/// <summary>
/// Work that must run on the process's first thread. On cgroup v1, memory is charged to the cgroup of that
/// thread (the kernel's mm owner), and the cheap way to move a thread is for the thread to move itself
/// (see <see cref="Linux.Cgroup.JoinCurrentThread"/>): so the daemon keeps its first thread free to do it.
/// </summary>
internal static class MainThread
{
    private static readonly BlockingCollection<Action> Queue = new();
    private static int running;

    /// <summary>
    /// Runs <paramref name="body"/> on the thread pool while the calling (first) thread executes what
    /// <see cref="InvokeAsync"/> queues, until the body has finished. Returns the body's result.
    /// </summary>
    public static int Run(Func<Task<int>> body)
    {
        if (Interlocked.Exchange(ref running, 1) != 0) throw new InvalidOperationException("the main thread already runs a loop");
        var task = Task.Run(body);
        _ = task.ContinueWith(_ => Queue.CompleteAdding(), TaskScheduler.Default);
        foreach (var work in Queue.GetConsumingEnumerable()) work();
        return task.GetAwaiter().GetResult();
    }

    /// <summary>True when <see cref="Run"/> is pumping on the first thread (false in tests and short commands).</summary>
    public static bool IsAvailable => Volatile.Read(ref running) == 1 && !Queue.IsAddingCompleted;

    /// <summary>Runs <paramref name="work"/> on the first thread when it pumps, else on the calling thread.</summary>
    public static Task<T> InvokeAsync<T>(Func<T> work)
    {
        if (!IsAvailable) return Task.FromResult(work());
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            Queue.Add(() =>
            {
                try
                {
                    done.SetResult(work());
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            });
        }
        catch (InvalidOperationException)
        {
            return Task.FromResult(work()); // the loop has just ended
        }
        return done.Task;
    }
}

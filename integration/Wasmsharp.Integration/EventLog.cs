using System.Collections.Concurrent;
using System.Diagnostics;

namespace Wasmsharp.Integration;

// `ctr events` running for the fixture's lifetime: the task events containerd received from shims
// (Docker learns of exits only from /tasks/exit, so tests check what was published).
public sealed class EventLog : IDisposable
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly PrivateContainerd _containerd;
    private RunningProcess _process;

    public EventLog(PrivateContainerd containerd)
    {
        _containerd = containerd;
        _process = Subscribe();
    }

    private RunningProcess Subscribe() =>
        _containerd.StartCtr(Timeout.InfiniteTimeSpan, ["events"], line => _lines.Enqueue(line));

    /// <summary>After containerd restarted: `ctr events` ended with it, so subscribe again.</summary>
    public void Resubscribe()
    {
        _process.Kill();
        _process.Dispose();
        _process = Subscribe();
        Thread.Sleep(200); // let the subscription reach containerd before events are expected
    }

    public IReadOnlyList<string> Lines => [.. _lines];

    // Lines look like: `2024-01-01 00:00:00.0 +0000 UTC NS /tasks/exit {"container_id":"x",...}`.
    public IReadOnlyList<string> For(string containerId, string? topic = null) =>
        Lines.Where(l => l.Contains($"\"container_id\":\"{containerId}\"", StringComparison.Ordinal) &&
                         (topic is null || l.Contains($" {topic} ", StringComparison.Ordinal))).ToList();

    /// <summary>The topics of a container's events so far, in order ("/tasks/create", ...).</summary>
    public IReadOnlyList<string> Topics(string containerId) =>
        For(containerId).Select(l => l.Split(' ').FirstOrDefault(w => w.StartsWith("/tasks/", StringComparison.Ordinal)) ?? "?").ToList();

    public string? WaitFor(string containerId, string topic, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        do
        {
            if (For(containerId, topic).FirstOrDefault() is { } line) return line;
            Thread.Sleep(20);
        } while (clock.Elapsed < timeout);
        return null;
    }

    public void Dispose()
    {
        _process.Kill();
        _process.Dispose();
    }
}

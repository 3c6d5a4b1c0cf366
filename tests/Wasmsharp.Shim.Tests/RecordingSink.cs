using Google.Protobuf;
using Wasmsharp.Containerd.Api.Events;

namespace Wasmsharp.Shim.Tests;

// The task service's events as it hands them on, in order: "topic" or "topic id" for exits and execs.
internal sealed class RecordingSink : IEventSink
{
    private readonly List<(string Topic, IMessage Event)> _events = [];

    public void Publish(string topic, IMessage evt)
    {
        lock (_events) _events.Add((topic, evt));
    }

    /// <summary>The container's events: "/tasks/exit e1" names the process that exited, exec events name the exec.</summary>
    public IReadOnlyList<string> For(string containerId)
    {
        lock (_events)
        {
            return _events.Select(e => e.Event switch
            {
                TaskCreate c when c.ContainerId == containerId => e.Topic,
                TaskStart c when c.ContainerId == containerId => e.Topic,
                TaskExit c when c.ContainerId == containerId => $"{e.Topic} {c.Id}",
                TaskDelete c when c.ContainerId == containerId => e.Topic,
                TaskOOM c when c.ContainerId == containerId => e.Topic,
                TaskExecAdded c when c.ContainerId == containerId => $"{e.Topic} {c.ExecId}",
                TaskExecStarted c when c.ContainerId == containerId => $"{e.Topic} {c.ExecId}",
                TaskPaused c when c.ContainerId == containerId => e.Topic,
                TaskResumed c when c.ContainerId == containerId => e.Topic,
                _ => null,
            }).OfType<string>().ToList();
        }
    }

    public async Task<bool> WaitFor(string containerId, string line, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!For(containerId).Contains(line))
        {
            if (clock.Elapsed > timeout) return false;
            await Task.Delay(5);
        }
        return true;
    }
}

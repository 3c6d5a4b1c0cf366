using Google.Protobuf;

namespace Wasmsharp.Shim;

/// <summary>
/// Where the task service sends its events (/tasks/create, /tasks/exit, ...), in the order it means them to reach
/// containerd: <see cref="EventPublisher"/> forwards them over containerd's socket; a unit test records them.
/// </summary>
internal interface IEventSink
{
    void Publish(string topic, IMessage evt);
}

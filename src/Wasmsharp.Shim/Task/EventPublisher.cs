using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Serilog;
using Wasmsharp.Containerd.Api.EventsService;
using Wasmsharp.Ttrpc;

namespace Wasmsharp.Shim;

/// <summary>
/// Forwards task events to containerd over its ttrpc socket, in order, from one background loop.
/// containerd may restart at any time: a failed forward reconnects and retries, so an exit is not lost.
/// </summary>
internal sealed class EventPublisher : IEventSink, IAsyncDisposable
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(2);

    private readonly string _address;
    private readonly string _namespace;
    private readonly ILogger _log;
    private readonly Channel<Envelope> _queue = Channel.CreateUnbounded<Envelope>(new() { SingleReader = true });
    private readonly Task _loop;
    private TtrpcClient? _client;
    private Events.EventsClient? _events;

    public EventPublisher(string ttrpcAddress, string ns, ILogger log)
    {
        _address = ShimAddress.FromUri(ttrpcAddress);
        _namespace = ns;
        _log = log;
        _loop = Task.Run(RunAsync);
    }

    public void Publish(string topic, IMessage evt)
    {
        var envelope = new Envelope
        {
            Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
            Namespace = _namespace,
            Topic = topic,
            // containerd 1.6 resolves bare type names only, not type.googleapis.com/ URLs.
            Event = new Any { TypeUrl = evt.Descriptor.FullName, Value = evt.ToByteString() },
        };
        _queue.Writer.TryWrite(envelope);
    }

    /// <summary>Waits until everything queued so far has been forwarded (or the timeout passes).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _queue.Writer.TryComplete();
        await Task.WhenAny(_loop, Task.Delay(timeout)).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        await foreach (var envelope in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            var started = DateTime.UtcNow;
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var events = await ConnectAsync().ConfigureAwait(false);
                    await events.ForwardAsync(new ForwardRequest { Envelope = envelope }, deadline: DateTime.UtcNow.AddSeconds(10)).ConfigureAwait(false);
                    _log.Debug("event {Topic} forwarded", envelope.Topic);
                    break;
                }
                catch (Exception e) when (e is RpcException or IOException or System.Net.Sockets.SocketException)
                {
                    await ResetAsync().ConfigureAwait(false);
                    if (DateTime.UtcNow - started > GiveUpAfter)
                    {
                        _log.Error(e, "dropping event {Topic} after {Attempts} attempts", envelope.Topic, attempt + 1);
                        break;
                    }
                    _log.Warning("forwarding event {Topic} failed ({Error}); retrying", envelope.Topic, e.Message);
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5)))).ConfigureAwait(false);
                }
            }
        }
        await ResetAsync().ConfigureAwait(false);
    }

    private async Task<Events.EventsClient> ConnectAsync()
    {
        if (_events is not null && _client is { IsConnected: true }) return _events;
        await ResetAsync().ConfigureAwait(false);
        _client = await TtrpcClient.ConnectAsync(_address).ConfigureAwait(false);
        _events = new Events.EventsClient(_client.CreateCallInvoker());
        return _events;
    }

    private async Task ResetAsync()
    {
        if (_client is not null) await _client.DisposeAsync().ConfigureAwait(false);
        _client = null;
        _events = null;
    }

    public async ValueTask DisposeAsync()
    {
        await DrainAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
    }
}

using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using ContainersApi = Wasmsharp.Containerd.Api.Containers;
using ContentApi = Wasmsharp.Containerd.Api.Content;
using ImagesApi = Wasmsharp.Containerd.Api.Images;

namespace Wasmsharp.Containerd.Client;

/// <summary>
/// The few calls of containerd's gRPC API (on its -address Unix socket) we need, in one namespace. The
/// connection is made on the first call, so a shim that never needs containerd never pays for it.
/// </summary>
public sealed class ContainerdClient(string socketPath, string ns) : IDisposable
{
    /// <summary>containerd reads the namespace of every call from this gRPC metadata key.</summary>
    public const string NamespaceHeader = "containerd-namespace";

    private readonly Metadata _headers = new() { { NamespaceHeader, ns } };
    private readonly Lock _gate = new();
    private GrpcChannel? _channel;

    public string SocketPath => socketPath;
    public string Namespace => ns;

    private GrpcChannel Channel()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _channel ??= GrpcChannel.ForAddress("http://containerd", new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler
                {
                    // HTTP/2 without TLS over the Unix socket; the authority is a placeholder.
                    ConnectCallback = ConnectAsync,
                    ConnectTimeout = TimeSpan.FromSeconds(10),
                },
                // Blobs come in chunks (containerd sends 1 MiB); documents are small.
                MaxReceiveMessageSize = 16 * 1024 * 1024,
            });
        }
    }

    private bool _disposed;

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private CallOptions Options(CancellationToken cancellationToken) => new(_headers, cancellationToken: cancellationToken);

    public async Task<ContainersApi.Container> GetContainerAsync(string id, CancellationToken cancellationToken = default)
    {
        var client = new ContainersApi.Containers.ContainersClient(Channel());
        var reply = await Call($"container {id}", async () => await client.GetAsync(new ContainersApi.GetContainerRequest { Id = id }, Options(cancellationToken))).ConfigureAwait(false);
        return reply.Container ?? throw new ContainerdClientException(StatusCode.NotFound, $"containerd returned no container for {id}");
    }

    public async Task<ImagesApi.Image> GetImageAsync(string name, CancellationToken cancellationToken = default)
    {
        var client = new ImagesApi.Images.ImagesClient(Channel());
        var reply = await Call($"image {name}", async () => await client.GetAsync(new ImagesApi.GetImageRequest { Name = name }, Options(cancellationToken))).ConfigureAwait(false);
        return reply.Image ?? throw new ContainerdClientException(StatusCode.NotFound, $"containerd returned no image for {name}");
    }

    /// <summary>
    /// Reads a blob of known size from the content store into one array (what a module compiler needs),
    /// checking that containerd sends exactly <paramref name="size"/> bytes. The digest is not re-hashed
    /// here: the content store verified it on write, and whoever caches by it verifies before compiling.
    /// </summary>
    public async Task<byte[]> ReadBlobAsync(string digest, long size, CancellationToken cancellationToken = default)
    {
        if (size < 0 || size > Array.MaxLength)
            throw new ContainerdClientException(StatusCode.InvalidArgument, $"blob {digest}: size {size} cannot be read into memory");
        var client = new ContentApi.Content.ContentClient(Channel());
        var buffer = new byte[size];
        long received = 0;
        await Call($"content {digest}", async () =>
        {
            using var call = client.Read(new ContentApi.ReadContentRequest { Digest = digest }, Options(cancellationToken));
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (chunk.Offset != received || chunk.Data.Length > size - received)
                    throw new ContainerdClientException(StatusCode.DataLoss, $"content {digest}: containerd sent bytes {chunk.Offset}..{chunk.Offset + chunk.Data.Length} of a {size}-byte blob");
                chunk.Data.Span.CopyTo(buffer.AsSpan((int)received));
                received += chunk.Data.Length;
            }
            return 0;
        }).ConfigureAwait(false);
        if (received != size)
            throw new ContainerdClientException(StatusCode.DataLoss, $"content {digest}: containerd sent {received} of {size} bytes");
        return buffer;
    }

    // One place that turns transport and RPC failures into messages naming what was asked for.
    private async Task<T> Call<T>(string what, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new ContainerdClientException(StatusCode.NotFound, $"{what}: not found in containerd (namespace {ns}): {e.Status.Detail}", e);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
        {
            throw new ContainerdClientException(StatusCode.Unavailable, $"cannot reach containerd at {socketPath} (asking for {what}): {e.Status.Detail}", e);
        }
        catch (RpcException e)
        {
            throw new ContainerdClientException(e.StatusCode, $"containerd failed on {what}: {e.Status.StatusCode}: {e.Status.Detail}", e);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _channel?.Dispose();
            _channel = null;
        }
    }
}

/// <summary>A failed call to containerd; <see cref="Code"/> is gRPC's (NotFound: missing container, image or content).</summary>
public sealed class ContainerdClientException(StatusCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public StatusCode Code { get; } = code;
}

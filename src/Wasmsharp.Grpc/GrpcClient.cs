using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;

namespace Wasmsharp.Grpc;

/// <summary>A client for a gRPC server on a Unix socket (HTTP/2 without TLS).</summary>
public static class GrpcClient
{
    public static GrpcChannel Connect(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancel) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The authority is not used to connect; "localhost" is what Go clients send for Unix sockets.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    /// <summary>Calls generated clients' methods under other service names (the server side's ServiceNames).</summary>
    public static CallInvoker WithServiceNames(this CallInvoker inner, IReadOnlyDictionary<string, string> serviceNames) =>
        new RenamingCallInvoker(inner, serviceNames);

    private sealed class RenamingCallInvoker(CallInvoker inner, IReadOnlyDictionary<string, string> names) : CallInvoker
    {
        private Method<TRequest, TResponse> Rename<TRequest, TResponse>(Method<TRequest, TResponse> m)
            where TRequest : class where TResponse : class =>
            names.TryGetValue(m.ServiceName, out var name) ? new(m.Type, name, m.Name, m.RequestMarshaller, m.ResponseMarshaller) : m;

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            inner.BlockingUnaryCall(Rename(method), host, options, request);

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            inner.AsyncUnaryCall(Rename(method), host, options, request);

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            inner.AsyncServerStreamingCall(Rename(method), host, options, request);

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
            inner.AsyncClientStreamingCall(Rename(method), host, options);

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
            inner.AsyncDuplexStreamingCall(Rename(method), host, options);
    }
}

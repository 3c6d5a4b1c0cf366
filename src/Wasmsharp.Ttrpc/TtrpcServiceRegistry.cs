using Grpc.Core;
using Wasmsharp.Ttrpc.Wire;

namespace Wasmsharp.Ttrpc;

/// <summary>
/// The unary methods a <see cref="TtrpcServer"/> serves, collected from gRPC-generated
/// bindings: <c>Foo.BindService(registry, impl)</c>. ttrpc addresses a method by the gRPC
/// full service name (e.g. <c>containerd.task.v2.Task</c>) and the bare method name.
/// Streaming methods are ignored, so calls to them answer Unimplemented.
/// </summary>
public sealed class TtrpcServiceRegistry : ServiceBinderBase
{
    private readonly Dictionary<string, Dictionary<string, ServerMethod>> _services = new(StringComparer.Ordinal);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
    {
        ArgumentNullException.ThrowIfNull(method);
        if (handler is null)
            return;
        if (!_services.TryGetValue(method.ServiceName, out var methods))
            _services.Add(method.ServiceName, methods = new(StringComparer.Ordinal));
        if (!methods.TryAdd(method.Name, new UnaryHandler<TRequest, TResponse>(method, handler)))
            throw new InvalidOperationException($"ttrpc: method {method.FullName} registered twice");
    }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) { }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) { }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) { }

    /// <summary>Finds the handler for a request, or explains (naming it) why there is none.</summary>
    internal ServerMethod? Find(Request request, out string? error)
    {
        if (!_services.TryGetValue(request.Service, out var methods))
        {
            error = $"service {request.Service} is not implemented";
            return null;
        }
        if (!methods.TryGetValue(request.Method, out var handler))
        {
            error = $"method {request.Service}/{request.Method} is not implemented";
            return null;
        }
        error = null;
        return handler;
    }
}

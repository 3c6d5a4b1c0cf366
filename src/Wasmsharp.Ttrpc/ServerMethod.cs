using Grpc.Core;

namespace Wasmsharp.Ttrpc;

/// <summary>A registered unary handler with its message types erased, so the server can dispatch by name.</summary>
internal abstract class ServerMethod
{
    /// <summary>Runs the handler on a serialized request; the caller disposes the returned response payload.</summary>
    public abstract Task<PayloadSerializer> InvokeAsync(ReadOnlyMemory<byte> request, ServerCallContext context);
}

internal sealed class UnaryHandler<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
    : ServerMethod
    where TRequest : class
    where TResponse : class
{
    public override async Task<PayloadSerializer> InvokeAsync(ReadOnlyMemory<byte> payload, ServerCallContext context)
    {
        TRequest request;
        try
        {
            request = PayloadDeserializer.Deserialize(method.RequestMarshaller, payload);
        }
        catch (Exception e)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"ttrpc: error unmarshalling payload: {e.Message}"));
        }

        var response = await handler(request, context).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Internal, $"ttrpc: {method.FullName} returned no response"));
        return PayloadSerializer.Serialize(method.ResponseMarshaller, response);
    }
}

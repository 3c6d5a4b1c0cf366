using Grpc.Core;
using Serilog;
using Wasmsharp.Linux;
using Wasmsharp.Oci;
using Wasmsharp.Wasm;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Shim;

/// <summary>
/// The task API's one error boundary: every exception a call ends with becomes its reply here (<see cref="Bind"/>
/// wraps each method, for ttrpc and gRPC alike), by type (<see cref="From"/>), in one line worded as Go shims word
/// theirs — "what happened: cause: class", where class is containerd's errdefs text for the status code ("not
/// found", "already exists", ...). containerd 1.x re-appends the class itself, but 2.x shows the message as sent,
/// so without the suffix `ctr` would print "process already finished" where runc's shim gives "process already
/// finished: not found". One line, because ctr prints the message inside its own ("ctr: ...: unknown"): a
/// multi-line text (Wasmtime's causes and backtraces) would leave the cause on lines a log or a caller drops.
/// </summary>
internal static class RpcErrors
{
    public static RpcException Create(StatusCode code, string message) => new(new Status(code, Message(code, message)));

    /// <summary>
    /// The reply for an exception. runc reports a process it cannot create or start (missing, not executable, bad
    /// spec, a failing hook) and a refused state change as Unknown ("OCI runtime create failed: ...: unknown");
    /// clients see the same code from us, with our message.
    /// </summary>
    public static RpcException From(Exception e) => e switch
    {
        RpcException rpc => rpc.Status.Detail.Contains('\n') ? Create(rpc.StatusCode, rpc.Status.Detail) : rpc,
        LifecycleException lifecycle => Create(lifecycle.Code, lifecycle.Message),
        BundleException or WasmModuleException or OciSpecException or WasmArtifactException or Native.RuncException
            or Hooks.HookException => Create(StatusCode.Unknown, e.Message),
        NotSupportedException => Create(StatusCode.Unimplemented, e.Message),
        LinuxException => Create(StatusCode.Internal, e.Message),
        _ => Create(StatusCode.Unknown, e.Message),
    };

    /// <summary>Binds the task service behind the boundary; an exception of no expected type is logged in full.</summary>
    public static void Bind(ServiceBinderBase binder, TaskService service, ILogger log) =>
        TaskApi.Task.BindService(new Boundary(binder, log), service);

    public static string Message(StatusCode code, string message)
    {
        message = OneLine(message);
        var cls = ClassText(code);
        if (cls is null) return message;
        if (message.Length == 0) return cls;
        return message.EndsWith(cls, StringComparison.Ordinal) ? message : $"{message}: {cls}";
    }

    // Wasmtime's error chains read context first, cause last (WasmErrorText); anything else multi-line keeps its
    // order, joined as Go joins wrapped errors.
    private static string OneLine(string message) =>
        message.Contains('\n') ? WasmErrorText.OneLine(message) : message;

    // errdefs' texts; Unknown is what Go sends for a plain error, with no suffix.
    private static string? ClassText(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument => "invalid argument",
        StatusCode.NotFound => "not found",
        StatusCode.AlreadyExists => "already exists",
        StatusCode.PermissionDenied => "permission denied",
        StatusCode.ResourceExhausted => "resource exhausted",
        StatusCode.FailedPrecondition => "failed precondition",
        StatusCode.Aborted => "aborted",
        StatusCode.OutOfRange => "out of range",
        StatusCode.Unimplemented => "not implemented",
        StatusCode.Internal => "internal",
        StatusCode.Unavailable => "unavailable",
        StatusCode.DataLoss => "data loss",
        StatusCode.Unauthenticated => "unauthorized",
        _ => null,
    };

    private static bool Expected(Exception e) => e is RpcException or LifecycleException or BundleException or WasmModuleException
        or OciSpecException or WasmArtifactException or Native.RuncException or Hooks.HookException or NotSupportedException;

    // Wraps each unary handler; the servers' own handling of a cancelled call (deadline, client gone) stays theirs.
    private sealed class Boundary(ServiceBinderBase inner, ILogger log) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            inner.AddMethod(method, async (request, context) =>
            {
                try
                {
                    return await handler(request, context).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !context.CancellationToken.IsCancellationRequested)
                {
                    if (!Expected(e)) log.Error(e, "{Method} failed", method.Name);
                    else if (e is not RpcException and not LifecycleException) log.Warning("{Method} failed: {Error}", method.Name, e.Message);
                    throw From(e);
                }
            });
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            inner.AddMethod(method, handler);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            inner.AddMethod(method, handler);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            inner.AddMethod(method, handler);
    }
}

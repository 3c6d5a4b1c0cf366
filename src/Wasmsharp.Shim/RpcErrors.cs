using Grpc.Core;

namespace Wasmsharp.Shim;

/// <summary>
/// Task API errors worded as Go shims word them: "what happened: class", where class is containerd's
/// errdefs text for the status code ("not found", "already exists", ...). containerd 1.x re-appends the
/// class itself, but 2.x shows the message as sent, so without the suffix `ctr` would print
/// "process already finished" where runc's shim gives "process already finished: not found".
/// </summary>
internal static class RpcErrors
{
    public static RpcException Create(StatusCode code, string message) => new(new Status(code, Message(code, message)));

    public static string Message(StatusCode code, string message)
    {
        var cls = ClassText(code);
        if (cls is null) return message;
        if (message.Length == 0) return cls;
        return message.EndsWith(cls, StringComparison.Ordinal) ? message : $"{message}: {cls}";
    }

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
}

using Grpc.Core;
using Wasmsharp.Linux;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim.Tests;

// The task API's one error boundary: typed errors to codes, messages in one line that ends in the cause.
public sealed class RpcErrorsTests
{
    public static TheoryData<Exception, StatusCode, string> Cases => new()
    {
        { new LifecycleException("cannot delete a paused process"), StatusCode.Unknown, "cannot delete a paused process" },
        { new LifecycleException("process already finished", StatusCode.NotFound), StatusCode.NotFound, "process already finished: not found" },
        { new BundleException("config.json: no process"), StatusCode.Unknown, "config.json: no process" },
        { new NotSupportedException("a terminal for a native container is not supported yet"), StatusCode.Unimplemented, "a terminal for a native container is not supported yet: not implemented" },
        { new LinuxException("mount", 1), StatusCode.Internal, $"{new LinuxException("mount", 1).Message}: internal" },
        { new InvalidOperationException("unexpected"), StatusCode.Unknown, "unexpected" },
        // Wasmtime's chain and a trap's backtrace, as its errors read: one line, outermost first, the cause last.
        {
            new WasmModuleException("/m.wasm: failed to compile WebAssembly module: failed to parse WebAssembly module\n\nCaused by:\n    0: section out of bounds\n    1: unexpected end-of-file (at offset 0x8)"),
            StatusCode.Unknown,
            "/m.wasm: failed to compile WebAssembly module: failed to parse WebAssembly module: section out of bounds: unexpected end-of-file (at offset 0x8)"
        },
        {
            new RpcException(new Status(StatusCode.FailedPrecondition, "error while executing at wasm backtrace:\n    0:     0x1c - m!boom\nnote: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed")),
            StatusCode.FailedPrecondition,
            "error while executing: wasm trap: wasm `unreachable` instruction executed: failed precondition"
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_error_becomes_its_code_and_one_line(Exception error, StatusCode code, string detail)
    {
        var rpc = RpcErrors.From(error);
        Assert.Equal((code, detail), (rpc.StatusCode, rpc.Status.Detail));
    }
}

using Wasmtime;

namespace Wasmsharp.Wasm.Tests;

public sealed class ExitStatusTests
{
    [Fact]
    public void NormalReturn_Is0() => Assert.Equal(new WasmExit(0, null), ExitStatus.FromOutcome(null, 0));

    [Theory]
    [InlineData(0, 0)]
    [InlineData(3, 3)]
    [InlineData(126, 126)]
    [InlineData(200, 200)]
    [InlineData(256, 0)]
    [InlineData(-1, 255)]
    public void ProcExit_IsTheStatusLow8Bits(int status, int expected)
    {
        // As thrown by our proc_exit and wrapped by the binding.
        var error = new WasmtimeException("guest called proc_exit", new ProcExitException(status));
        Assert.Equal(new WasmExit(expected, null), ExitStatus.FromOutcome(error, 0));
    }

    [Fact]
    public void WasmtimesInvalidExitStatusError_Is255()
    {
        var exit = ExitStatus.FromOutcome(new WasmtimeException("exit with invalid exit status outside of [0..126)"), 0);
        Assert.Equal(255, exit.ExitCode);
        Assert.Contains("invalid exit status", exit.Message);
    }

    [Fact]
    public void Trap_Is134WithMessage()
    {
        var exit = ExitStatus.FromOutcome(new TrapException("wasm trap: wasm `unreachable` instruction executed"), 0);
        Assert.Equal(134, exit.ExitCode);
        Assert.Contains("unreachable", exit.Message);
    }

    [Theory]
    [InlineData(9, 137)]
    [InlineData(15, 143)]
    [InlineData(2, 130)]
    public void Kill_WinsOverEverything(int signal, int expected)
    {
        Assert.Equal(expected, ExitStatus.FromOutcome(new TrapException("interrupt"), signal).ExitCode);
        Assert.Equal(expected, ExitStatus.FromOutcome(new WasmtimeException("killed", new GuestKilledException(signal)), signal).ExitCode);
        Assert.Equal(expected, ExitStatus.FromOutcome(new WasmtimeException("x", new ProcExitException(0)), signal).ExitCode);
        Assert.Equal(expected, ExitStatus.FromOutcome(null, signal).ExitCode);
    }

    [Fact]
    public void HostErrors_Are1()
    {
        var wasmtime = ExitStatus.FromOutcome(new WasmtimeException("failed to open file", new IOException("disk on fire")), 0);
        Assert.Equal(1, wasmtime.ExitCode);
        Assert.Contains("failed to open file", wasmtime.Message);
        Assert.Contains("disk on fire", wasmtime.Message);

        var other = ExitStatus.FromOutcome(new InvalidOperationException("boom"), 0);
        Assert.Equal(1, other.ExitCode);
        Assert.Contains("boom", other.Message);
    }

    [Fact]
    public void WasmtimeMessages_PutTheCauseFirst()
    {
        const string message = "error while executing at wasm backtrace:\n    0:     0x93 - <unknown>!crash_here\n    1:     0x7c - <unknown>!_start\n" +
            "note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n";
        Assert.Equal("wasm trap: wasm `unreachable` instruction executed\nwasm backtrace:\n    0:     0x93 - <unknown>!crash_here\n    1:     0x7c - <unknown>!_start",
            ExitStatus.CauseFirst(message));
        Assert.Equal("plain message", ExitStatus.CauseFirst("plain message\n"));
    }
}

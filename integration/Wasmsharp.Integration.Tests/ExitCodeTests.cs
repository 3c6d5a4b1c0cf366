namespace Wasmsharp.Integration.Tests;

// The exit status `ctr run` returns is the one a user scripts against.
[Collection(ContainerdCollection.Name)]
public sealed class ExitCodeTests(ContainerdFixture f)
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(42)]
    public void Guest_exit_code_is_the_task_exit_code(int code)
    {
        var id = f.NewId($"exit{code}");
        var run = f.RunWasm(id, "/exit.wasm", code.ToString(System.Globalization.CultureInfo.InvariantCulture));
        f.Check(run.ExitCode == code, $"exit code should be {code}", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Exit_code_matches_runc()
    {
        var wasmId = f.NewId("exit3-wasm");
        var wasm = f.RunWasm(wasmId, "/exit.wasm", "3");
        var runcId = f.NewId("exit3-runc");
        var runc = f.RunRunc(runcId, [], "sh", "-c", "exit 3");
        f.Check(runc.ExitCode == 3, "runc: sh -c 'exit 3' should give 3", runcId, runc);
        f.Check(wasm.ExitCode == runc.ExitCode, "wasm and runc exit codes should match", wasmId, wasm, runc);
    }

    [Fact]
    public void Runc_native_abort_exits_134()
    {
        // The reference for the trap test. As PID 1 of its own namespace the signal would be ignored
        // (exit 0); in a shared PID namespace the process dies of SIGABRT, as a native program does.
        var id = f.NewId("abrt-runc");
        var runc = f.RunRunc(id, f.HostPidNamespace, "sh", "-c", "kill -ABRT $$");
        f.Check(runc.ExitCode == 134, "runc: a process killed by SIGABRT should give 134", id, runc);
    }

    [Fact]
    public void Trap_exits_134_like_a_native_abort()
    {
        var id = f.NewId("trap");
        var wasm = f.RunWasm(id, "/trap.wasm");
        f.Check(wasm.ExitCode == 134, "a trap should give 134 (128 + SIGABRT), as runc shows for a native abort", id, wasm);
        f.Check(wasm.Stdout.Contains("about to trap", StringComparison.Ordinal), "output before the trap should be kept", id, wasm);
        // As Wasmtime's CLI says it: the user sees why, not only 134.
        f.Check(wasm.Stderr.StartsWith("Error: wasm trap: wasm `unreachable` instruction executed\n", StringComparison.Ordinal) && wasm.Stderr.Contains("wasm backtrace:", StringComparison.Ordinal),
            "the trap and its backtrace are on the container's stderr", id, wasm);
        f.AssertNothingLeft(id, wasm);
    }
}

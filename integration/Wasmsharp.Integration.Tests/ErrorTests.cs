namespace Wasmsharp.Integration.Tests;

// Mistakes a user makes: the error must say what is wrong, and nothing may be left behind.
[Collection(ContainerdCollection.Name)]
public sealed class ErrorTests(ContainerdFixture f)
{
    [Fact]
    public void Non_wasm_entrypoint_fails_naming_the_problem()
    {
        var id = f.NewId("not-wasm");
        var run = f.RunWasm(id, "/not-wasm.txt");
        f.Check(run.ExitCode != 0, "ctr run should fail", id, run);
        f.Check(run.Stderr.Contains("WebAssembly", StringComparison.OrdinalIgnoreCase),
            "the error should say the entrypoint is not a WebAssembly module", id, run);
        CleanAndAssertNothingLeft(id, run);
    }

    [Fact]
    public void Missing_entrypoint_fails_naming_the_path()
    {
        var id = f.NewId("missing");
        var run = f.RunWasm(id, "/nope.wasm");
        f.Check(run.ExitCode != 0, "ctr run should fail", id, run);
        f.Check(run.Stderr.Contains("/nope.wasm", StringComparison.Ordinal), "the error should name /nope.wasm", id, run);
        CleanAndAssertNothingLeft(id, run);
    }

    // A module built for another host (JavaScript imports) is refused at create, naming it as the user wrote it
    // and what it imports, before a compile (seconds for a large module) and with none in the background after.
    [Fact]
    public void A_module_that_cannot_link_is_refused_naming_it_and_its_imports()
    {
        var id = f.NewId("needs-js");
        var run = f.RunWasm(id, "/needsjs.wasm");
        f.Check(run.ExitCode != 0 && run.Stderr.Contains("/needsjs.wasm cannot run here: it imports env.js_call (function)", StringComparison.Ordinal),
            "the error should name the module and its missing import", id, run);
        f.Check(!run.Stderr.Contains("/proc/self/fd", StringComparison.Ordinal), "the error should not name a /proc path", id, run);
        CleanAndAssertNothingLeft(id, run);
    }

    // Wasmtime's error texts are several lines (a trap's backtrace, "Caused by:" chains); ctr prints the message
    // inside its own line ("ctr: ...: unknown"), so it must be one line that ends in the cause.
    [Fact]
    public void A_module_that_traps_while_instantiating_is_refused_in_one_line_ending_in_the_trap()
    {
        var id = f.NewId("start-traps");
        var run = f.RunWasm(id, "/start-traps.wasm");
        var lines = ContainerdFixture.Lines(run.Stderr).Where(l => l.Trim().Length > 0).ToList();
        var ctrLine = lines.LastOrDefault(l => l.StartsWith("ctr: ", StringComparison.Ordinal)) ?? "";
        f.Check(run.ExitCode != 0, "ctr run should fail", id, run);
        f.Check(ctrLine.Contains("/start-traps.wasm: cannot prepare the instance: ", StringComparison.Ordinal)
                && ctrLine.Contains("wasm trap: wasm `unreachable` instruction executed", StringComparison.Ordinal),
            "ctr's error line should name the module and end in the trap", id, run);
        f.Check(lines.All(l => l.StartsWith("ctr: ", StringComparison.Ordinal) || l.Contains("level=", StringComparison.Ordinal)),
            "nothing of the message should spill onto lines of its own (\": unknown\", a backtrace)", id, run);
        CleanAndAssertNothingLeft(id, run);
    }

    // ctr run --rm deletes the container itself after a failed create; deleting again must be harmless.
    private void CleanAndAssertNothingLeft(string id, params Wasmsharp.Integration.ProcessResult[] context)
    {
        var tasks = f.Containerd.Task(id);
        f.Check(tasks is null, $"no task should exist for {id}", id, context);
        var delete = f.Ctr("containers", "delete", id);
        f.Check(delete.ExitCode == 0 || delete.Stderr.Contains("not found", StringComparison.Ordinal),
            "the container should be deletable (or already gone)", id, [.. context, delete]);
        f.AssertNothingLeft(id, [.. context, delete]);
    }

    // A module whose wasm start function never returns (a hostile loop; an AssemblyScript program's top level runs
    // there too) used to hold Create for ever: `docker run` and `docker kill` hung, only killing the shim helped. Now
    // create returns once the start function has run for a while, and the loop runs on under the kill path.
    [Fact]
    public void A_start_function_that_never_returns_does_not_hold_create_and_is_killable()
    {
        var id = f.NewId("start-loops");
        using var run = f.Containerd.StartCtr(TimeSpan.FromMinutes(2), ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/start-loops.wasm"]);
        var running = ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "RUNNING" }, TimeSpan.FromSeconds(60));
        var kill = f.Ctr("task", "kill", "-s", "SIGKILL", id);
        var result = run.Wait();
        f.Check(running && kill.ExitCode == 0, "the task is created and started while its start function loops, and accepts a kill", id, kill, result);
        f.Check(!result.TimedOut && result.ExitCode == 137, "the kill ends it with 137", id, kill, result);
        f.AssertNothingLeft(id, result);
    }
}

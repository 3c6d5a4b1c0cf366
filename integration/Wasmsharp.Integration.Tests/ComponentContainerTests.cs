using System.Diagnostics;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// A WASI preview 2 component (/p2.wasm, integration/programs/p2/p2.c) through the ctr verbs a module goes
// through: same image, same runtime, no flag to tell them apart. Known limits are asserted as users see them:
// exit(n) comes out as 1 (jco's adapter), and a kill while the guest is blocked in a p2 call is reported
// after about 0.5 s while its thread lingers until the call returns.
[Collection(ContainerdCollection.Name)]
public sealed class ComponentContainerTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(5);
    private const string Component = "/p2.wasm";

    private string StartDetached(string id, params string[] args)
    {
        var run = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, .. args]);
        f.Check(run.ExitCode == 0 && f.Containerd.Task(id) is { Status: "RUNNING" }, "ctr run -d should leave a running task", id, run);
        return id;
    }

    [Fact]
    public void Run_rm_prints_the_specs_argv_and_env_only()
    {
        var id = f.NewId("p2-hello");
        string[] options = ["--env", "FOO=bar", "--env", "EMPTY="];
        var run = f.RunWasm(id, options, Component, "hello", "two words", "ünï");
        f.Check(run.ExitCode == 0, "exit code should be 0", id, run);
        var lines = ContainerdFixture.Lines(run.Stdout);
        f.Check(lines.Take(5).SequenceEqual(["argc=4", $"arg[0]={Component}", "arg[1]=hello", "arg[2]=two words", "arg[3]=ünï"]),
            "argv should be the spec's, verbatim", id, run);
        // The environment a module (env.wasm) gets from the same spec: config.json's, none of the shim's.
        var moduleId = f.NewId("p2-hello-env");
        var module = f.RunWasm(moduleId, options, "/env.wasm");
        var env = lines.Where(l => l.StartsWith("env:", StringComparison.Ordinal)).Select(l => l["env:".Length..]).ToList();
        f.Check(module.ExitCode == 0 && env.Order().SequenceEqual(ContainerdFixture.Lines(module.Stdout).Order()) && env.Contains("FOO=bar"),
            "the component's environment should be the spec's, as a module's", id, run, module);
        f.AssertNothingLeft(id, run);
    }

    [Theory]
    [InlineData("return", "0", 0)]
    [InlineData("return", "1", 1)]
    [InlineData("exit", "1", 1)]
    // jco's adapter imports only wasi:cli/exit.exit(result): any failure is 1.
    [InlineData("exit", "3", 1)]
    public void Run_rm_exit_status(string how, string code, int expected)
    {
        var id = f.NewId($"p2-{how}{code}");
        var run = f.RunWasm(id, Component, how, code);
        f.Check(run.ExitCode == expected, $"{how} {code} should end ctr run with {expected}", id, run);
        f.Check(f.Events.WaitFor(id, "/tasks/exit", Shortly) is { } exit &&
                (expected == 0 ? !exit.Contains("\"exit_status\"", StringComparison.Ordinal) : exit.Contains($"\"exit_status\":{expected}", StringComparison.Ordinal)),
            $"the /tasks/exit event should carry {expected}", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void A_trap_is_134_after_the_output_before_it()
    {
        var id = f.NewId("p2-trap");
        var run = f.RunWasm(id, Component, "trap");
        f.Check(run.ExitCode == 134, "a trap should end like SIGABRT (134)", id, run);
        f.Check(run.Stdout == "about to trap\n", "the output before the trap should reach ctr", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Sigterm_while_sleeping_in_a_p2_call_is_143_within_a_second()
    {
        var id = StartDetached(f.NewId("p2-kill"), Component, "sleep", "1000000");
        Thread.Sleep(200); // into the sleep
        var clock = Stopwatch.StartNew();
        var kill = f.Ctr("tasks", "kill", "--signal", "SIGTERM", id);
        var exit = f.Events.WaitFor(id, "/tasks/exit", Shortly);
        var reported = clock.Elapsed;
        f.Check(kill.ExitCode == 0 && exit is not null && exit.Contains("\"exit_status\":143", StringComparison.Ordinal),
            $"the /tasks/exit event should carry 143: {exit ?? "(none)"}", id, kill);
        // The host gives up waiting for the blocked call after 0.5 s (its thread lingers until the call returns).
        f.Check(reported < TimeSpan.FromSeconds(1.5), $"the exit should be reported within about a second, took {reported.TotalMilliseconds:0} ms", id, kill);
        f.Check(f.Containerd.Task(id) is { Status: "STOPPED" }, "`ctr task ls` should show STOPPED", id, kill);
        var delete = f.Ctr("tasks", "delete", id);
        var deleteContainer = f.Ctr("containers", "delete", id);
        f.Check(delete.ExitCode == 0 && deleteContainer.ExitCode == 0, "task and container delete should succeed", id, delete, deleteContainer);
        f.AssertNothingLeft(id, kill, delete, deleteContainer);
    }

    [Fact]
    public void Piped_stdin_reaches_it_to_the_end()
    {
        var id = f.NewId("p2-stdin");
        var command = $"printf 'one\\ntwo\\n' | {f.Containerd.CtrCommandLine(["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, Component, "catin"])}";
        var run = ProcessRunner.Run("/bin/sh", ["-c", command], ContainerdFixture.RunTimeout);
        f.Check(run.ExitCode == 0 && run.Stdout == "one\ntwo\n", "the component should copy its stdin, then end at end-of-file", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Sigkill_while_blocked_reading_stdin_is_137_within_a_second()
    {
        // `ctr run -d` keeps the stdin FIFO open with no writer: the guest waits in a p2 read.
        var id = StartDetached(f.NewId("p2-kill-stdin"), Component, "stdin");
        Thread.Sleep(200);
        f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the component should be waiting for stdin", id);
        var clock = Stopwatch.StartNew();
        var kill = f.Ctr("tasks", "kill", "--signal", "SIGKILL", id);
        var exit = f.Events.WaitFor(id, "/tasks/exit", Shortly);
        var reported = clock.Elapsed;
        try
        {
            f.Check(exit is not null && exit.Contains("\"exit_status\":137", StringComparison.Ordinal), $"the /tasks/exit event should carry 137: {exit ?? "(none)"}", id, kill);
            f.Check(reported < TimeSpan.FromSeconds(1.5), $"the exit should be reported within about a second, took {reported.TotalMilliseconds:0} ms", id, kill);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id, kill);
    }

    [Fact]
    public void Pause_holds_a_ticking_component_and_resume_continues_it()
    {
        var id = f.NewId("p2-pause");
        var host = f.HostDir(id);
        var tick = Path.Combine(host, "tick");
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--mount", $"type=bind,src={host},dst=/data,options=rbind:rw",
                Images.WasmTests, id, Component, "tick", "20", "/data/tick");
            f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
            f.Check(ContainerdFixture.Eventually(() => PauseTests.Counter(tick) > 2, Shortly), "the component should tick", id, run);
            var pause = f.Ctr("tasks", "pause", id);
            f.Check(pause.ExitCode == 0 && f.Containerd.Task(id) is { Status: "PAUSED" }, "ctr task pause should leave it PAUSED", id, pause);
            Thread.Sleep(100); // a tick already past its check may still land
            var held = PauseTests.Counter(tick);
            Thread.Sleep(600);
            f.Check(PauseTests.Counter(tick) == held, $"while paused the counter should stay at {held}, is {PauseTests.Counter(tick)}", id, pause);
            var resume = f.Ctr("tasks", "resume", id);
            f.Check(resume.ExitCode == 0 && f.Containerd.Task(id) is { Status: "RUNNING" }, "ctr task resume should leave it RUNNING", id, resume);
            f.Check(ContainerdFixture.Eventually(() => PauseTests.Counter(tick) > held + 2, Shortly), "after resume it should tick again", id, resume);
            f.Check(f.Events.WaitFor(id, "/tasks/paused", Shortly) is not null && f.Events.WaitFor(id, "/tasks/resumed", Shortly) is not null,
                "/tasks/paused and /tasks/resumed events", id, pause, resume);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void Exec_of_a_component_in_a_module_container_and_of_a_module_in_a_component_container()
    {
        var moduleHost = StartDetached(f.NewId("p2-exec-in-module"), "/sleep.wasm", "1000");
        var componentHost = StartDetached(f.NewId("p2-exec-in-component"), Component, "sleep", "1000000");
        try
        {
            var component = f.Ctr("tasks", "exec", "--exec-id", "c", moduleHost, Component, "hello", "x");
            f.Check(component.ExitCode == 0 && ContainerdFixture.Lines(component.Stdout).Take(3).SequenceEqual(["argc=3", $"arg[0]={Component}", "arg[1]=hello"]),
                "a component exec'd into a module's container should print to its ctr and exit 0", moduleHost, component);
            var failing = f.Ctr("tasks", "exec", "--exec-id", "c1", moduleHost, Component, "return", "1");
            f.Check(failing.ExitCode == 1, "its exit status should reach ctr", moduleHost, failing);
            var module = f.Ctr("tasks", "exec", "--exec-id", "m", componentHost, "/hello.wasm", "y");
            f.Check(module.ExitCode == 0 && ContainerdFixture.Lines(module.Stdout).SequenceEqual(["hello from wasm", "y"]),
                "a module exec'd into a component's container should print to its ctr and exit 0", componentHost, module);
            var moduleExit = f.Ctr("tasks", "exec", "--exec-id", "m7", componentHost, "/exit.wasm", "7");
            f.Check(moduleExit.ExitCode == 7, "its exit status should reach ctr", componentHost, moduleExit);
            f.Check(f.Containerd.Task(moduleHost) is { Status: "RUNNING" } && f.Containerd.Task(componentHost) is { Status: "RUNNING" },
                "both containers keep running after their execs", moduleHost, component, module);
        }
        finally
        {
            f.RemoveContainer(moduleHost);
            f.RemoveContainer(componentHost);
        }
        f.AssertNothingLeft(moduleHost);
        f.AssertNothingLeft(componentHost);
    }

    [Fact]
    public void Over_its_memory_limit_it_is_oom_killed_137_with_oom_before_exit()
    {
        var id = f.NewId("p2-oom");
        var run = f.Ctr("run", "--rm", "--memory-limit", (32L << 20).ToString(), "--runtime", RepoLayout.Runtime, Images.WasmTests, id, Component, "alloc", "forever");
        f.Check(run.ExitCode == 137, "over 32 MiB the component should be killed as the OOM killer would (137)", id, run);
        f.Check(!run.Stdout.Contains("malloc failed", StringComparison.Ordinal) && run.Stdout.Contains("16 MiB", StringComparison.Ordinal),
            "it should get near the limit and not see malloc fail", id, run);
        ContainerdFixture.Eventually(() => f.Events.Topics(id).Contains("/tasks/exit"), Shortly);
        var topics = f.Events.Topics(id).ToList();
        var oom = topics.IndexOf("/tasks/oom");
        f.Check(oom >= 0 && oom < topics.IndexOf("/tasks/exit"), $"/tasks/oom should come before /tasks/exit: {string.Join(", ", topics)}", id, run);
        f.AssertNothingLeft(id, run);
    }

    // Not provided (ComponentRun's remarks): outgoing wasi:http would connect outside the container's namespace,
    // and a proxy cannot be served through Wasmtime 50's C API. Create fails naming the component and why.
    [Theory]
    [InlineData("/http-client.wasm", "/http-client.wasm imports wasi:http/types@0.2.0: this runtime does not provide wasi:http")]
    [InlineData("/http-proxy.wasm", "/http-proxy.wasm is a wasi:http proxy (it exports wasi:http/incoming-handler, not wasi:cli/run): this runtime cannot serve it")]
    public void A_wasi_http_component_is_refused_at_create_saying_why(string component, string message)
    {
        var id = f.NewId("p2-http");
        var run = f.RunWasm(id, component);
        f.Check(run.ExitCode != 0 && run.Stderr.Contains(message, StringComparison.Ordinal), $"ctr run should fail with \"{message}\"", id, run);
        f.Check(f.Containerd.Task(id) is null, "no task should be left", id, run);
        var delete = f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run, delete);
    }
}

using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Scenario by scenario, the same ctr verbs against runc (busybox) and against our runtime (a wasm
// program that behaves the same), through the same containerd. Each records both outcomes in
// out/differential.md and asserts they agree, except where a row says we differ by design and why.
[Collection(ContainerdCollection.Name)]
public sealed class DifferentialScenarioTests(ContainerdFixture f)
{
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(5);

    // One side of a comparison: how to start a long-running task and how to run a given behaviour.
    private sealed record Side(string Name, string Id, string[] RunOptions, string Image, string[] Sleeper);

    private (Side Runc, Side Ours) Sides(string what) => (
        new Side("runc", f.NewId($"{what}-runc"), f.HostPidNamespace, Images.Busybox, ["/bin/busybox", "sleep", "1000"]),
        new Side("ours", f.NewId($"{what}-wasm"), ["--runtime", RepoLayout.Runtime], Images.WasmTests, ["/sleep.wasm", "1000"]));

    private void StartSleeper(Side s)
    {
        var run = f.Ctr(["run", "-d", .. s.RunOptions, s.Image, s.Id, .. s.Sleeper]);
        f.Check(run.ExitCode == 0 && f.Containerd.Task(s.Id) is { Status: "RUNNING" }, $"{s.Name}: ctr run -d should leave a running task", s.Id, run);
    }

    // What a user reads off a ctr command: success, or the error's gRPC code. containerd 1.x prints the
    // code last ("ctr: <message>: not found"); 2.x prints the shim's message as sent, so there only codes
    // a message ends with count (Go shims end theirs that way for NotFound and the like) and the rest is
    // just "error". The message itself is recorded beside it.
    private static readonly string[] Codes = ["not found", "already exists", "failed precondition", "unknown",
        "invalid argument", "unimplemented", "unavailable", "deadline exceeded", "canceled", "internal"];

    private static string Outcome(ProcessResult r)
    {
        if (r.TimedOut) return "hangs";
        if (r.ExitCode == 0) return "ok";
        var line = ContainerdFixture.Lines(r.Stderr).LastOrDefault(l => l.StartsWith("ctr: ", StringComparison.Ordinal)) ?? "";
        var last = line.LastIndexOf(": ", StringComparison.Ordinal) is var at and > 3 ? line[(at + 2)..] : "";
        return Codes.Contains(last) ? $"error ({last})" : "error";
    }

    private static string Message(ProcessResult r) =>
        ContainerdFixture.Lines(r.Stderr).LastOrDefault(l => l.StartsWith("ctr: ", StringComparison.Ordinal)) ?? r.Stderr.Trim();

    private string ExitStatus(string id)
    {
        var exit = f.Events.WaitFor(id, "/tasks/exit", Shortly);
        if (exit is null) return "no exit event";
        var at = exit.IndexOf("\"exit_status\":", StringComparison.Ordinal);
        if (at < 0) return "exit 0";
        var digits = new string(exit[(at + 14)..].TakeWhile(char.IsDigit).ToArray());
        return $"exit {digits}";
    }

    private void Agree(string scenario, string runc, string ours, string id, params ProcessResult[] context)
    {
        ScenarioTable.Record(scenario, runc, ours);
        f.Check(runc == ours, $"{scenario}: runc gives `{runc}`, we give `{ours}`", id, context);
    }

    [Fact]
    public void Run_rm_exit_statuses_agree()
    {
        foreach (var code in new[] { 0, 1, 3, 42, 126, 255 })
        {
            var (runc, ours) = Sides($"exit{code}");
            var r = f.RunRunc(runc.Id, [], "/bin/busybox", "sh", "-c", $"exit {code}");
            var o = f.RunWasm(ours.Id, "/exit.wasm", code.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Agree($"`ctr run --rm` of a process exiting {code}", $"exit {r.ExitCode}", $"exit {o.ExitCode}", ours.Id, r, o);
        }
    }

    // The same rows for a WASI preview 2 component (/p2.wasm) beside the module's: output, exit statuses, a kill.
    [Fact]
    public void Component_run_rm_output_exit_statuses_and_kill_agree()
    {
        var (runcHello, oursHello) = Sides("p2-echo");
        var echo = f.RunRunc(runcHello.Id, [], "/bin/busybox", "echo", "argc=3");
        var hello = f.RunWasm(oursHello.Id, "/p2.wasm", "hello", "x");
        Agree("`ctr run --rm` printing `argc=3` (busybox echo; component `/p2.wasm hello x`): first line, status",
            $"{ContainerdFixture.Lines(echo.Stdout).FirstOrDefault()}; exit {echo.ExitCode}", $"{ContainerdFixture.Lines(hello.Stdout).FirstOrDefault()}; exit {hello.ExitCode}",
            oursHello.Id, echo, hello);
        foreach (var code in new[] { 0, 1, 3 })
        {
            var (runc, ours) = Sides($"p2-exit{code}");
            var r = f.RunRunc(runc.Id, [], "/bin/busybox", "sh", "-c", $"exit {code}");
            var o = f.RunWasm(ours.Id, "/p2.wasm", "exit", code.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var scenario = $"`ctr run --rm` of a component exiting {code}";
            if (code > 1)
            {
                // Known: jco's preview 1 adapter imports only wasi:cli/exit.exit(result), so any failure is 1.
                ScenarioTable.Record(scenario, $"exit {r.ExitCode}", $"exit {o.ExitCode}",
                    knownLimit: "a component built with jco's adapter can only fail with 1 (it imports only wasi:cli/exit.exit(result), no code)");
                f.Check(o.ExitCode == 1, $"{scenario}: the adapter's failure is 1, we give {o.ExitCode}", ours.Id, o);
            }
            else
            {
                Agree(scenario, $"exit {r.ExitCode}", $"exit {o.ExitCode}", ours.Id, r, o);
            }
        }
        var (runcKill, oursKill) = Sides("p2-sigterm");
        oursKill = oursKill with { Sleeper = ["/p2.wasm", "sleep", "1000000"] };
        var results = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runcKill, oursKill })
            {
                StartSleeper(s);
                var kill = f.Ctr("tasks", "kill", "--signal", "SIGTERM", s.Id);
                f.Check(kill.ExitCode == 0, $"{s.Name}: kill should be accepted", s.Id, kill);
                results[s.Name] = ExitStatus(s.Id);
            }
            Agree("`ctr task kill --signal SIGTERM` of a component sleeping in a p2 call → /tasks/exit", results["runc"], results["ours"], oursKill.Id);
        }
        finally
        {
            f.RemoveContainer(runcKill.Id);
            f.RemoveContainer(oursKill.Id);
        }
    }

    [Theory]
    [InlineData("SIGTERM")]
    [InlineData("SIGINT")]
    [InlineData("SIGHUP")]
    [InlineData("SIGQUIT")]
    [InlineData("SIGUSR1")]
    [InlineData("SIGKILL")]
    public void Kill_of_a_sleeping_task_reports_the_same_status(string signal)
    {
        var (runc, ours) = Sides($"sig-{signal.ToLowerInvariant()}");
        var results = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runc, ours })
            {
                StartSleeper(s);
                var kill = f.Ctr("tasks", "kill", "--signal", signal, s.Id);
                f.Check(kill.ExitCode == 0, $"{s.Name}: kill should be accepted", s.Id, kill);
                results[s.Name] = ExitStatus(s.Id);
            }
            Agree($"`ctr task kill --signal {signal}` of a sleeping task → /tasks/exit", results["runc"], results["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }

    [Fact]
    public void Kill_of_a_task_blocked_writing_to_a_client_that_stopped_reading()
    {
        // The client (`ctr run`) is stopped, so the task's stdout FIFO fills and the task blocks inside
        // a write: out of reach of a Wasm epoch check. The kill must still stop it.
        var (runc, ours) = Sides("blocked-write");
        var seen = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runc, ours })
            {
                string[] flood = s.Name == "runc" ? ["/bin/busybox", "yes"] : ["/output.wasm", "1000000000"];
                using var client = f.Containerd.StartCtr(ContainerdFixture.RunTimeout, ["run", "--rm", .. s.RunOptions, s.Image, s.Id, .. flood], onLine: _ => { });
                var running = ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is { Status: "RUNNING" }, Shortly);
                ProcFs.Signal(client.Pid, ProcFs.SIGSTOP);
                var pid = f.Containerd.Task(s.Id)?.Pid ?? 0;
                Thread.Sleep(500); // the FIFO fills up
                var kill = f.Ctr("tasks", "kill", s.Id);
                var stopped = ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is null or { Status: "STOPPED" }, Shortly);
                var status = ExitStatus(s.Id);
                // Our task's pid is the guest thread's id: /proc/<tid> exists while the thread does.
                var gone = ContainerdFixture.Eventually(() => pid > 0 && !Directory.Exists($"/proc/{pid}"), Shortly);
                ProcFs.Signal(client.Pid, ProcFs.SIGCONT);
                var result = client.Wait();
                seen[s.Name] = $"running {running}; kill {Outcome(kill)}; stopped {stopped}, {status}; its process/thread gone before delete: {gone}; ctr run then ends with {(result.TimedOut ? "a timeout" : result.ExitCode)}";
            }
            Agree("`ctr task kill` of a task blocked writing to a stopped `ctr run`", seen["runc"], seen["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }

    [Fact]
    public void Task_status_follows_the_same_states()
    {
        var (runc, ours) = Sides("states");
        var seen = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runc, ours })
            {
                var states = new List<string>();
                void Note() => states.Add(f.Containerd.Task(s.Id)?.Status ?? "(none)");
                StartSleeper(s);
                Note();
                f.Ctr("tasks", "pause", s.Id);
                Note();
                f.Ctr("tasks", "resume", s.Id);
                Note();
                f.Ctr("tasks", "kill", s.Id);
                ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is { Status: "STOPPED" }, Shortly);
                Note();
                var delete = f.Ctr("tasks", "delete", s.Id);
                var warning = delete.Stderr.IndexOf("exit code", StringComparison.Ordinal) is var w and >= 0 ? $" ({delete.Stderr[w..].Split('"')[0].Trim()})" : "";
                states.Add($"delete {Outcome(delete)}{warning}");
                Note();
                seen[s.Name] = string.Join(" → ", states);
            }
            Agree("`ctr task ls` through run -d, pause, resume, kill, delete", seen["runc"], seen["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }

    // Rows of verbs on one sleeper per side, in turn (runc's, then ours): each row's outcomes recorded and compared.
    private void RunRows(Side runc, Side ours, List<(string Scenario, Func<Side, string> Act)> rows, Dictionary<string, string> messages)
    {
        try
        {
            StartSleeper(runc);
            StartSleeper(ours);
            var failures = new List<string>();
            foreach (var (scenario, act) in rows)
            {
                messages.Clear();
                var r = act(runc);
                var o = act(ours);
                ScenarioTable.Record(scenario, r, o);
                if (r != o) failures.Add($"{scenario}: runc `{r}` ({messages.GetValueOrDefault("runc")}), ours `{o}` ({messages.GetValueOrDefault("ours")})");
            }
            f.Check(failures.Count == 0, "outcomes differ:\n" + string.Join("\n", failures), ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }
    [Fact]
    public void Error_cases_agree()
    {
        var (runc, ours) = Sides("errs");
        var messages = new Dictionary<string, string>();
        string O(Side s, ProcessResult r) { messages[s.Name] = Message(r); return Outcome(r); }
        var rows = new List<(string Scenario, Func<Side, string> Act)>
        {
            ("`ctr task delete` of a running task", s => O(s, f.Ctr("tasks", "delete", s.Id))),
            ("`ctr task kill --exec-id nope`", s => O(s, f.Ctr("tasks", "kill", "--exec-id", "nope", s.Id))),
            ("`ctr task exec` with an exec id already running", s =>
            {
                var exec = s.Name == "runc" ? new[] { "/bin/busybox", "sleep", "1000" } : ["/sleep.wasm", "1000"];
                var first = f.Ctr(["tasks", "exec", "--detach", "--exec-id", "dup", s.Id, .. exec]);
                return first.ExitCode != 0 ? $"first exec failed: {O(s, first)}" : O(s, f.Ctr(["tasks", "exec", "--detach", "--exec-id", "dup", s.Id, .. exec]));
            }),
            ("`ctr task exec` of a program that is not there", s => O(s, f.Ctr("tasks", "exec", "--exec-id", "missing", s.Id, "/no/such/program"))),
            ("`ctr task pause` twice", s => { f.Ctr("tasks", "pause", s.Id); var again = O(s, f.Ctr("tasks", "pause", s.Id)); f.Ctr("tasks", "resume", s.Id); return again; }),
            ("`ctr task resume` of a running task", s => O(s, f.Ctr("tasks", "resume", s.Id))),
            ("after all that, the task", s => f.Containerd.Task(s.Id)?.Status ?? "(gone)"),
            ("`ctr task kill` of an exited task", s =>
            {
                f.Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", s.Id);
                ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is { Status: "STOPPED" }, Shortly);
                return O(s, f.Ctr("tasks", "kill", s.Id));
            }),
            ("`ctr task pause` of an exited task", s => O(s, f.Ctr("tasks", "pause", s.Id))),
            ("`ctr task delete` of an exited task", s => O(s, f.Ctr("tasks", "delete", s.Id))),
            ("`ctr task delete` again", s => O(s, f.Ctr("tasks", "delete", s.Id))),
        };
        RunRows(runc, ours, rows, messages);
    }

    // The lifecycle table (created/running/paused/stopped × start/kill/pause/resume/delete/exec, for the init and
    // an exec) as far as ctr reaches it, row by row on both sides: the outcome class must agree (the message is
    // recorded beside it; runc's shim answers refusals as Unknown in its own words, which ours reuses).
    [Fact]
    public void Lifecycle_table_rows_agree()
    {
        var (runc, ours) = Sides("table");
        var messages = new Dictionary<string, string>();
        string O(Side s, ProcessResult r) { messages[s.Name] = Message(r); return Outcome(r); }
        string[] Sleep(Side s) => s.Name == "runc" ? ["/bin/busybox", "sleep", "1000"] : ["/sleep.wasm", "1000"];
        string[] Quick(Side s) => s.Name == "runc" ? ["/bin/busybox", "true"] : ["/exit.wasm", "0"];
        void Until(Side s, string status) => ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is { } t && t.Status == status, Shortly);
        var rows = new List<(string Scenario, Func<Side, string> Act)>
        {
            ("`ctr task start` of a running task", s => O(s, f.Ctr("tasks", "start", s.Id))),
            ("`ctr task exec --detach` of a sleeper in a running task", s => O(s, f.Ctr(["tasks", "exec", "--detach", "--exec-id", "side", s.Id, .. Sleep(s)]))),
            ("`ctr task pause` of a running task with an exec", s => O(s, f.Ctr("tasks", "pause", s.Id))),
            ("`ctr task delete` of a paused task", s => O(s, f.Ctr("tasks", "delete", s.Id))),
            ("`ctr task delete --exec-id` of a running exec in a paused task", s => O(s, f.Ctr("tasks", "delete", "--exec-id", "side", s.Id))),
            ("`ctr task exec` into a paused task", s => O(s, f.Ctr(["tasks", "exec", "--exec-id", "late", s.Id, .. Quick(s)]))),
            ("`ctr task start` of a paused task", s => O(s, f.Ctr("tasks", "start", s.Id))),
            ("`ctr task resume` of a paused task", s => O(s, f.Ctr("tasks", "resume", s.Id))),
            ("`ctr task kill --exec-id` of a running exec", s =>
            {
                var kill = O(s, f.Ctr("tasks", "kill", "--signal", "SIGKILL", "--exec-id", "side", s.Id));
                ContainerdFixture.Eventually(() => f.Events.For(s.Id, "/tasks/exit").Count >= 1, Shortly);
                return kill;
            }),
            ("`ctr task kill --exec-id` of an exited exec", s => O(s, f.Ctr("tasks", "kill", "--exec-id", "side", s.Id))),
            ("`ctr task delete --exec-id` of an exited exec", s => O(s, f.Ctr("tasks", "delete", "--exec-id", "side", s.Id))),
            ("`ctr task kill --signal SIGKILL` of a running task", s =>
            {
                var kill = O(s, f.Ctr("tasks", "kill", "--signal", "SIGKILL", s.Id));
                Until(s, "STOPPED");
                return kill;
            }),
            ("`ctr task exec` into a stopped task", s => O(s, f.Ctr(["tasks", "exec", "--exec-id", "dead", s.Id, .. Quick(s)]))),
            ("`ctr task resume` of a stopped task", s => O(s, f.Ctr("tasks", "resume", s.Id))),
            ("`ctr task start` of a stopped task", s => O(s, f.Ctr("tasks", "start", s.Id))),
            ("`ctr task kill` of a stopped task", s => O(s, f.Ctr("tasks", "kill", s.Id))),
            ("`ctr task delete` of a stopped task", s => O(s, f.Ctr("tasks", "delete", s.Id))),
            ("`ctr task pause` of a deleted task", s => O(s, f.Ctr("tasks", "pause", s.Id))),
        };
        RunRows(runc, ours, rows, messages);
    }

    [Fact]
    public void Pids_and_kill_all_agree()
    {
        var (runc, ours) = Sides("pids");
        var seen = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runc, ours })
            {
                StartSleeper(s);
                var exec = s.Name == "runc" ? new[] { "/bin/busybox", "sleep", "1000" } : ["/sleep.wasm", "1000"];
                var e = f.Ctr(["tasks", "exec", "--detach", "--exec-id", "side", s.Id, .. exec]);
                f.Check(e.ExitCode == 0, $"{s.Name}: exec --detach", s.Id, e);
                // `ctr task ps` prints a header then one line per process.
                var ps = f.Ctr("tasks", "ps", s.Id);
                var processes = ContainerdFixture.Lines(ps.Stdout).Count - 1;
                var kill = f.Ctr("tasks", "kill", "--all", s.Id);
                var exitStatus = ExitStatus(s.Id);
                var execExit = ContainerdFixture.Eventually(() => f.Events.For(s.Id, "/tasks/exit").Count >= 2, Shortly);
                seen[s.Name] = $"ps: {processes} processes; kill --all: {Outcome(kill)}, init {exitStatus}, exec exit event {(execExit ? "yes" : "no")}";
            }
            Agree("`ctr task ps` with one exec running, then `ctr task kill --all`", seen["runc"], seen["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }

    [Fact]
    public void Piped_stdin_reaches_the_task_and_ends_it()
    {
        // The input stays open a moment after its last byte, so ctr's CloseIO comes after the task
        // exists (ctr 1.6 loses it otherwise, and runc's cat would wait forever: see StdinTests).
        ProcessResult Piped(string[] ctrArgs) => ProcessRunner.Run("/bin/sh",
            ["-c", $"{{ printf 'one\\ntwo\\n'; sleep 0.5; }} | {f.Containerd.CtrCommandLine(ctrArgs)}"],
            ContainerdFixture.RunTimeout);
        var (runc, ours) = Sides("stdin");
        var r = Piped(["run", "--rm", Images.Busybox, runc.Id, "/bin/busybox", "cat"]);
        var o = Piped(["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, ours.Id, "/cat.wasm"]);
        Agree("`… | ctr run --rm IMAGE cat`: stdin copied to stdout, EOF ends it",
            $"{Outcome(r)}, stdout {r.Stdout.Replace("\n", "⏎", StringComparison.Ordinal)}", $"{Outcome(o)}, stdout {o.Stdout.Replace("\n", "⏎", StringComparison.Ordinal)}", ours.Id, r, o);
    }

    [Fact]
    public void Terminal_echoes_typed_input_and_passes_it_on()
    {
        ProcessResult Typed(string id, string[] ctrArgs) => InTerminal.Run(f, id, "typed line\r", ctrArgs);
        static string Lines(ProcessResult r) => string.Join(" ", ContainerdFixture.Lines(r.Stdout).Where(l => l.Contains("typed line", StringComparison.Ordinal)));
        var (runc, ours) = Sides("tty");
        var r = Typed(runc.Id, ["run", "-t", "--rm", Images.Busybox, runc.Id, "/bin/busybox", "sh", "-c", "read l; echo \"got: $l\""]);
        var o = Typed(ours.Id, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, ours.Id, "/tty.wasm", "echo"]);
        f.Check(Lines(r).Contains("got: typed line", StringComparison.Ordinal), "runc's task should get the typed line", runc.Id, r);
        Agree("`ctr run -t`: a typed line is echoed by the pty and read by the task", $"{Outcome(r)}: {Lines(r)}", $"{Outcome(o)}: {Lines(o)}", ours.Id, r, o);

        // isatty() in the task.
        var rtId = f.NewId("isatty-runc");
        var otId = f.NewId("isatty-wasm");
        var rt = InTerminal.Run(f, rtId, null, ["run", "-t", "--rm", Images.Busybox, rtId, "/bin/busybox", "sh", "-c", "[ -t 1 ] && echo 'stdout tty=1' || echo 'stdout tty=0'"]);
        var ot = InTerminal.Run(f, otId, null, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, otId, "/tty.wasm"]);
        string Tty(ProcessResult p) => p.Stdout.Contains("stdout tty=1", StringComparison.Ordinal) ? "isatty(1) = 1" : "isatty(1) = 0";
        f.Check(Tty(rt) == "isatty(1) = 1", "runc's process sees a terminal", ours.Id, rt);
        Agree("`ctr run -t`: isatty(stdout) in the task", Tty(rt), Tty(ot), ours.Id, rt, ot);
    }

    [Fact]
    public void Tasks_survive_a_containerd_restart_alike()
    {
        var (runc, ours) = Sides("restart");
        var seen = new Dictionary<string, string>();
        try
        {
            StartSleeper(runc);
            StartSleeper(ours);
            var before = new[] { runc, ours }.ToDictionary(s => s.Name, s => f.Containerd.Task(s.Id)!.Pid);
            f.Containerd.Restart();
            f.Events.Resubscribe();
            foreach (var s in new[] { runc, ours })
            {
                var after = f.Containerd.Task(s.Id);
                var kill = f.Ctr("tasks", "kill", s.Id);
                seen[s.Name] = $"after restart: {after?.Status ?? "(gone)"}, same pid {after?.Pid == before[s.Name]}; kill: {Outcome(kill)}, {ExitStatus(s.Id)}";
            }
            Agree("containerd restarted under a running task, then `ctr task kill`", seen["runc"], seen["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
        }
    }

    [Fact]
    public void Killing_the_shim_is_reported_alike()
    {
        var (runc, ours) = Sides("shimkill");
        var seen = new Dictionary<string, string>();
        try
        {
            foreach (var s in new[] { runc, ours })
            {
                StartSleeper(s);
                var shim = ProcFs.Processes().Single(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim", StringComparison.Ordinal) && p.HasArgPair("-id", s.Id));
                ProcFs.Signal(shim.Pid, ProcFs.SIGKILL);
                var status = ExitStatus(s.Id);
                var gone = ContainerdFixture.Eventually(() => f.Containerd.Task(s.Id) is null, Shortly);
                seen[s.Name] = $"/tasks/exit {status}; task then {(gone ? "gone" : f.Containerd.Task(s.Id)?.Status)}";
            }
            Agree("`kill -9` of the task's shim", seen["runc"], seen["ours"], ours.Id);
        }
        finally
        {
            f.RemoveContainer(runc.Id);
            f.RemoveContainer(ours.Id);
            // runc's killed shim could not remove its socket, and containerd's cleanup of it does not either.
            File.Delete(PrivateContainerd.RuncShimSocket(f.Containerd.Address, ContainerdFixture.Namespace, runc.Id));
        }
        f.AssertNothingLeft(ours.Id); // the rootfs and the tmpfs mounts made in it are gone with the shim
    }
}

using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr run -t`: the shim gives the guest a pty (stdin, stdout and stderr on its slave) and copies the
// master to ctr's stdout FIFO, ctr's stdin FIFO into the master. ctr needs a terminal of its own for -t:
// `script` gives it one, and what ctr prints to that terminal comes out on script's stdout.
[Collection(ContainerdCollection.Name)]
public sealed class TerminalTests(ContainerdFixture f)
{
    private ProcessResult RunInTerminal(string id, string? keys, string[] ctrArgs) => InTerminal.Run(f, id, keys, ctrArgs);

    private static string Escaped(string s) => s.Replace("\r", "\\r").Replace("\n", "\\n\n");

    // The guest sees a terminal (isatty() = 1 on fds 0–2: the shim reports its stdio as a character device, as
    // wasi-libc's isatty asks), and its output passes the pty's line discipline (\n → \r\n) and input is echoed
    // and cooked (\r → \n), as these tests check. script's own terminal adds one more \r (its ONLCR), so a
    // guest line ends "\r\r\n" on script's stdout; without our pty it would end "\r\n".
    [Fact]
    public void Guest_output_reaches_ctr_through_the_pty()
    {
        var id = f.NewId("tty");
        var run = RunInTerminal(id, null, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/tty.wasm"]);
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("stdin tty=1 stdout tty=1 stderr tty=1\r\r\n", StringComparison.Ordinal),
            $"with -t the guest should be on a terminal (isatty) and its output reach ctr through it (our ONLCR, then script's: \\r\\r\\n); got:\n{Escaped(run.Stdout)}", id, run);
        f.AssertNothingLeft(id, run);
    }

    // WASI's view of a terminal vs a regular file (README "WASI preview 1 conformance"): the pty's fds are a character
    // device without seek/tell rights wherever the guest renumbers them; a file has seek/tell rights and is no
    // terminal, also once renumbered onto a stdio number.
    [Fact]
    public void Terminal_and_files_keep_their_kind_when_renumbered()
    {
        var id = f.NewId("tty-files");
        var run = RunInTerminal(id, null, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/tty.wasm", "files"]);
        const string expected = "stdin tty=1 stdout tty=1 stderr tty=1\r\r\n" +
            "stdout seek/tell=0 file tty=0 seek/tell=1\r\r\n" +
            "stdin renumbered rc=0 tty=1\r\r\n" +
            "file renumbered onto 2 rc=0 tty=0 seek/tell=1\r\r\n";
        f.Check(run.ExitCode == 0 && run.Stdout.Contains(expected, StringComparison.Ordinal),
            $"under -t the terminal is a tty wherever it is renumbered and a file never is; got:\n{Escaped(run.Stdout)}", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Typed_input_reaches_the_guest()
    {
        var id = f.NewId("tty-input");
        var run = RunInTerminal(id, "typed line\r", ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/tty.wasm", "echo"]);
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("typed line\r\r\ngot: typed line\r\r\n", StringComparison.Ordinal),
            $"a line typed into ctr's terminal should be echoed by the pty and reach the guest (\\r becomes \\n by ICRNL); got:\n{Escaped(run.Stdout)}", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Guest_blocked_reading_the_terminal_can_be_killed()
    {
        // The input stays open and empty (a FIFO script holds open itself): the guest blocks reading
        // the pty until the kill wakes it (the shim sends the terminal an end-of-file).
        var id = f.NewId("tty-kill");
        var (ctr, _) = InTerminal.Start(f, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/tty.wasm", "echo"]);
        using var running = ctr;
        var started = ContainerdFixture.Eventually(() => f.Containerd.Task(id)?.Status == "RUNNING", TimeSpan.FromSeconds(10));
        Thread.Sleep(300);   // let the guest reach its read
        var kill = f.Ctr("task", "kill", id);
        var run = running.Wait();
        f.Check(started && kill.ExitCode == 0, "the task should run and accept the kill", id, kill, run);
        f.Check(!run.TimedOut && run.ExitCode == 143, "ctr run -t should end with the guest's SIGTERM status (143)", id, kill, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Exec_with_t_gets_its_own_terminal()
    {
        var id = f.NewId("tty-exec");
        var start = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "1000"]);
        f.Check(start.ExitCode == 0, "ctr run -d should succeed", id, start);
        try
        {
            var run = RunInTerminal(id, null, ["tasks", "exec", "-t", "--exec-id", "t1", id, "/tty.wasm"]);
            f.Check(run.ExitCode == 0 && run.Stdout.Contains("stdout tty=1 stderr tty=1\r\r\n", StringComparison.Ordinal),
                $"ctr task exec -t should show the exec's output through its pty; got:\n{Escaped(run.Stdout)}", id, run);
            f.Check(f.Containerd.Task(id) is { Status: "RUNNING" }, "the container keeps running after its exec ends", id, run);
        }
        finally
        {
            f.RemoveContainer(id);
        }
        f.AssertNothingLeft(id);
    }

    // ^C and ^\ typed into a terminal reach that terminal's process as runc's would: an exec ends with 130 (131), a
    // PID 1 without handlers ignores them. Never the shim: it used to lead a session, so the first pty it opened
    // for a guest became its controlling terminal, and ^C in any `-t` session (docker exec -it, kubectl exec -it)
    // ended the shim and every container it served.
    [Fact]
    public void Interrupt_keys_end_an_exec_as_runc_would_and_never_reach_the_shim()
    {
        var id = f.NewId("tty-intr");
        var (init, initInput) = InTerminal.Start(f, ["run", "-t", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/tty.wasm", "echo"]);
        using (init)
        {
            var started = ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "RUNNING" }, TimeSpan.FromSeconds(30));
            f.Check(started, "the container runs", id);
            var shim = f.Containerd.Shims(RepoLayout.ShimBinary, [id]).Single().Pid;
            var pid = shim.ToString(System.Globalization.CultureInfo.InvariantCulture);
            f.Check(ProcFs.StatFields(pid)[3] != pid, $"the shim {shim} should lead no session", id);

            var (exec, execInput) = InTerminal.Start(f, ["tasks", "exec", "-t", "--exec-id", "intr", id, "/tty.wasm", "echo"]);
            ProcessResult execRun;
            using (exec)
            {
                var execRunning = ContainerdFixture.Eventually(() => ContainerdFixture.Lines(f.Containerd.Ctr("tasks", "ps", id).Stdout).Count() >= 3, TimeSpan.FromSeconds(30));
                f.Check(execRunning, "the exec runs", id);
                Thread.Sleep(500); // the exec reaches its read
                Type(execInput, "\u0003");
                execRun = exec.Wait();
            }
            File.Delete(execInput);
            f.Check(!execRun.TimedOut && execRun.ExitCode == 130, $"^C ends the exec with 130, as SIGINT a process without handlers; got {execRun.ExitCode}", id, execRun);

            Thread.Sleep(300);
            Type(initInput, "\u0003\u001c");
            Thread.Sleep(1000);
            f.Check(ProcFs.IsRunning(shim) && f.Containerd.Task(id) is { Status: "RUNNING" }, "the shim and the container live on: ^C and ^\\ to a PID 1 without handlers do nothing", id, execRun);
            Type(initInput, "typed line\r");
            var run = init.Wait();
            f.Check(run.ExitCode == 0 && run.Stdout.Contains("got: typed line", StringComparison.Ordinal), $"the init still reads its terminal; got:\n{Escaped(run.Stdout)}", id, run);
        }
        File.Delete(initInput);
        f.AssertNothingLeft(id);
    }

    // Into a terminal's input FIFO without ever blocking (read-write: a FIFO whose reader has gone takes it anyway).
    private static void Type(string fifo, string keys)
    {
        using var stream = new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(keys));
    }

    [Fact]
    public void Without_t_the_guest_has_no_terminal()
    {
        var id = f.NewId("no-tty");
        var run = f.RunWasm(id, "/tty.wasm");
        f.Check(run.ExitCode == 0 && run.Stdout == "stdin tty=0 stdout tty=0 stderr tty=0\n", "without -t nothing is a terminal", id, run);
    }
}

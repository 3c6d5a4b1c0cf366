using System.Diagnostics;
using System.Text;
using Wasmsharp.Linux;

// Processes.Run, which runs OCI hooks: argv[0] as given (Docker's libnetwork-setkey dispatches on it), exactly
// the environment given, stdin fed, output kept, the exit as Go reports it, the timeout, and no wait for output a
// leftover child still holds.
public class ProcessRunTests
{
    private static readonly string[] NoEnv = [];

    [Fact]
    public void Feeds_stdin_keeps_output_and_reports_the_exit_status()
    {
        var result = Processes.Run("/bin/sh", ["hook-name", "-c", "echo \"$0\"; cat; echo oops >&2; exit 3"], ["A=1"], "state"u8, TimeSpan.FromSeconds(10));
        Assert.Equal(3, result.ExitCode);
        Assert.Equal("hook-name\nstate", result.Stdout);
        Assert.Equal("oops\n", result.Stderr);
        Assert.Equal("exit status 3", result.Status);
        Assert.False(result.TimedOut);
    }

    // A signal to the waiting thread (the runtime's own, SIGCHLD of another container's child) ends poll with EINTR,
    // which must be waited through: read from a stale errno it failed the hook ("poll: Success", seen under
    // concurrent `docker run`s, whose libnetwork prestart hook runs here).
    [Fact]
    public void A_signal_to_the_waiting_thread_does_not_fail_the_run()
    {
        using var handler = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGCONT, c => c.Cancel = true);
        var tid = 0;
        RunResult? result = null;
        Exception? error = null;
        var waiter = new Thread(() =>
        {
            Volatile.Write(ref tid, Processes.GetThreadId());
            try
            {
                result = Processes.Run("/bin/sleep", ["sleep", "0.5"], NoEnv, [], TimeSpan.FromSeconds(10));
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        waiter.Start();
        while (Volatile.Read(ref tid) == 0) Thread.Yield();
        var clock = Stopwatch.StartNew();
        var sent = 0;
        while (waiter.IsAlive && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            if ((long)Tmds.Linux.LibC.syscall(234 /* tgkill */, Environment.ProcessId, tid, Signals.SIGCONT) == 0) sent++;
            Thread.Sleep(5);
        }
        waiter.Join();
        Assert.Null(error);
        Assert.True(sent > 10, $"only {sent} signals sent");
        Assert.Equal(0, result!.ExitCode);
    }

    [Fact]
    public void The_environment_is_exactly_the_one_given()
    {
        var result = Processes.Run("/usr/bin/env", ["env"], ["ONLY=this"], [], null);
        Assert.Equal("ONLY=this\n", result.Stdout);
        Assert.Equal(0, Processes.Run("/usr/bin/env", ["env"], NoEnv, [], null).Stdout.Length);
    }

    [Fact]
    public void A_program_past_its_timeout_is_killed()
    {
        var clock = Stopwatch.StartNew();
        var result = Processes.Run("/bin/sleep", ["sleep", "30"], NoEnv, [], TimeSpan.FromMilliseconds(300));
        Assert.True(result.TimedOut);
        Assert.Equal(9, result.Signal);
        Assert.Equal("signal: killed", result.Status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Output_held_by_a_leftover_child_is_not_waited_for_and_unread_stdin_does_not_block()
    {
        var big = Encoding.ASCII.GetBytes(new string('x', 1 << 20)); // more than a pipe holds, never read
        var clock = Stopwatch.StartNew();
        var result = Processes.Run("/bin/sh", ["sh", "-c", "sleep 3 & echo started"], NoEnv, big, TimeSpan.FromSeconds(10));
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("started\n", result.Stdout);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_missing_program_is_an_error_naming_it()
    {
        var e = Assert.Throws<LinuxException>(() => Processes.Run("/nonexistent/hook", ["hook"], NoEnv, [], null));
        Assert.Contains("/nonexistent/hook", e.Message);
    }
}

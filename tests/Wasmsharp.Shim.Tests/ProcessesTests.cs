using Wasmsharp.Linux;

public class ProcessesTests
{
    // A spare shim takes the command line of the daemon it becomes (ps and pkill -f find shims by -id). Here the
    // test runner's own: its arguments (a path to a dll at least) leave room for these short ones.
    [Fact]
    public void A_process_can_show_another_command_line()
    {
        var before = File.ReadAllText("/proc/self/cmdline");
        string[] wanted = ["shim", "-id", "c1"];
        Assert.True(Processes.SetCommandLine(wanted));
        Assert.Equal(wanted, File.ReadAllText("/proc/self/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries));
        // Longer than the original: only by pointing the kernel elsewhere, which takes CAP_SYS_RESOURCE.
        var capabilities = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal))[7..].Trim();
        var canRepoint = (Convert.ToUInt64(capabilities, 16) & (1UL << 24)) != 0;
        string[] longer = [new string('x', before.Length + 4096)];
        Assert.Equal(canRepoint, Processes.SetCommandLine(longer));
        if (canRepoint) Assert.Equal(longer, File.ReadAllText("/proc/self/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries));
    }

    // How a shim learns that containerd (not its parent by then) has exited: a pidfd.
    [Fact]
    public async Task WhenExited_completes_when_the_process_exits_and_at_once_for_one_gone()
    {
        using var sleeper = System.Diagnostics.Process.Start("sleep", "600");
        var exited = Processes.WhenExited(sleeper.Id);
        await Task.Delay(200);
        Assert.False(exited.IsCompleted);
        sleeper.Kill();
        await exited.WaitAsync(TimeSpan.FromSeconds(10));
        await sleeper.WaitForExitAsync();
        Assert.True(Processes.WhenExited(sleeper.Id).IsCompleted); // reaped: no such process
    }
}

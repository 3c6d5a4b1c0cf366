using System.Diagnostics;
using System.IO.Pipes;
using Xunit.Abstractions;

namespace Wasmsharp.Wasm.Tests;

/// <summary>Killing sleeping guests, our poll_oneoff against Wasmtime's, Pause/Resume.</summary>
[Collection(GuestCollection.Name)]
public sealed class SleepPauseTests(GuestModules guests, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-sleep-case-").FullName;
    private readonly List<WasmInstance> instances = [];

    public void Dispose()
    {
        foreach (var i in instances)
            i.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private string WorkPath(string name) => Path.Combine(work, name);

    private (WasmInstance Instance, string Stdout) Prepare(params string[] args) => Prepare(guests.Host, "sleeper", args);

    private (WasmInstance Instance, string Stdout) Prepare(WasmHost host, string module, string[] args,
        IReadOnlyList<Preopen>? preopens = null, string? stdin = null)
    {
        var stdout = WorkPath($"{module}-{Guid.NewGuid():N}.out");
        var instance = host.Prepare(host.LoadModule(guests.Wasm(module)), new WasiSpec
        {
            Args = [module, .. args],
            Preopens = preopens ?? [],
            StdinPath = stdin,
            StdoutPath = stdout,
        });
        instances.Add(instance);
        return (instance, stdout);
    }

    private static string Read(string path) => GuestOutput.Read(path);

    private static int Lines(string path) => Read(path).Count(c => c == '\n');

    private static Task WaitForOutput(string stdout, Func<string, bool> condition) => GuestOutput.WaitFor(stdout, condition, Timeout);

    private async Task<TimeSpan> KillAndMeasure(WasmInstance instance, int signal, int expected)
    {
        var clock = Stopwatch.StartNew();
        Assert.True(instance.Kill(signal));
        var exit = await instance.Completion.WaitAsync(Timeout);
        var took = clock.Elapsed;
        output.WriteLine($"Kill({signal}) → exit {exit.ExitCode} after {took.TotalMilliseconds:F1} ms");
        Assert.Equal(expected, exit.ExitCode);
        Assert.Contains($"signal {signal}", exit.Message);
        Assert.True(took < TimeSpan.FromSeconds(2), $"kill took {took.TotalMilliseconds:F0} ms");
        return took;
    }

    [Theory]
    [InlineData(15, 143)]
    [InlineData(9, 137)]
    public async Task Kill_EndsAGuestSleepingInSleep1000(int signal, int expected)
    {
        var (instance, stdout) = Prepare("sleep", "1000");
        instance.Start();
        await WaitForOutput(stdout, s => s == "sleeping\n");
        await Task.Delay(50); // inside poll_oneoff by now
        await KillAndMeasure(instance, signal, expected);
        Assert.Equal("sleeping\n", Read(stdout)); // never woke up
    }

    [Fact]
    public async Task Kill_EndsAGuestLoopingOnShortSleeps()
    {
        var (instance, stdout) = Prepare("usleep_loop", "100000"); // 100 ms sleeps
        instance.Start();
        await WaitForOutput(stdout, s => s == "looping\n");
        await Task.Delay(130);
        await KillAndMeasure(instance, 15, 143);
    }

    [Theory]
    [InlineData("nanosleep")]
    [InlineData("abs")]
    [InlineData("realabs")]
    public async Task Sleep_TakesItsTimeAndReturnsNormally(string mode)
    {
        var (instance, stdout) = Prepare(mode, "200");
        var clock = Stopwatch.StartNew();
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        var took = clock.Elapsed;
        output.WriteLine($"{mode} 200 ms: {took.TotalMilliseconds:F1} ms, guest says {Read(stdout).Trim().Replace('\n', ' ')}");
        Assert.True(exit.ExitCode == 0, $"exit {exit.ExitCode}: {Read(stdout)}"); // the guest checks its own clock
        Assert.True(took >= TimeSpan.FromMilliseconds(200), $"took {took.TotalMilliseconds} ms");
        Assert.True(took < TimeSpan.FromSeconds(2), $"took {took.TotalMilliseconds} ms");
        if (mode == "nanosleep")
            Assert.Matches(@"^sleeping\nslept 2\d\d rc=0\n$", Read(stdout));
        else
            Assert.Matches(@"^rc=0 late_us=\d+\n$", Read(stdout));
    }

    [Fact]
    public async Task Sleep_OfAnotherInstanceIsNotDisturbedByKillAndPause()
    {
        var (sleeper, stdout) = Prepare("nanosleep", "300");
        var (busy, _) = Prepare("busy", "1000", "10");
        var clock = Stopwatch.StartNew();
        sleeper.Start();
        busy.Start();
        await Task.Delay(50);
        busy.Pause();
        busy.Resume();
        busy.Kill(9);
        Assert.Equal(0, (await sleeper.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(300));
        Assert.Matches(@"^sleeping\nslept 3\d\d rc=0\n$", Read(stdout));
        Assert.Equal(137, (await busy.Completion.WaitAsync(Timeout)).ExitCode);
    }

    /// <summary>Everything a guest can observe of poll_oneoff is what Wasmtime's own implementation gives.</summary>
    [Fact]
    public async Task PollOneoff_BehavesExactlyLikeWasmtimes()
    {
        using var reference = new WasmHost(null, shadowPollOneoff: false);
        var data = Directory.CreateDirectory(WorkPath("data")).FullName;
        File.WriteAllText(Path.Combine(data, "f.txt"), "abc");
        var stdin = WorkPath("stdin.txt");
        File.WriteAllText(stdin, "input\n");

        async Task<(int Exit, string Stdout)> Run(WasmHost host, string mode)
        {
            var (instance, stdout) = Prepare(host, "poll_raw", [mode], [new(data, "/data", ReadOnly: true)], stdin);
            instance.Start();
            var exit = await instance.Completion.WaitAsync(Timeout);
            return (exit.ExitCode, Read(stdout));
        }

        var (ourExit, ours) = await Run(guests.Host, "cases");
        var (theirExit, theirs) = await Run(reference, "cases");
        output.WriteLine(ours);
        Assert.Equal(0, ourExit);
        Assert.Equal(0, theirExit);
        Assert.Equal(theirs, ours);

        // and it is not vacuous:
        Assert.Contains("zero_subscriptions: errno=28 nevents=57005\n", ours);
        Assert.Contains("mono_rel_1ms: errno=0 nevents=1\n  ev0 ud=7 err=0 type=0 nbytes=0 flags=0 raw=0700000000000000000000aaaaaaaaaa00000000000000000000aaaaaaaaaaaa\n", ours);
        Assert.Contains("first_of_two: errno=0 nevents=1\n  ev0 ud=22 ", ours);
        Assert.Contains("two_of_three_ready: errno=0 nevents=2\n  ev0 ud=31 err=0 type=0 nbytes=0 flags=0 raw=1f00000000000000000000aaaaaaaaaa00000000000000000000aaaaaaaaaaaa\n  ev1 ud=33 ", ours);
        foreach (var einval in new[] { "process_cputime", "thread_cputime", "bad_clock_id", "bad_flags", "bad_tag", "bad_second" })
            Assert.Contains($"{einval}: errno=28 nevents=57005\n", ours);
        Assert.Contains("fd_read_stdin_and_clock: errno=0 nevents=1\n  ev0 ud=52 err=0 type=1 nbytes=1", ours);
        Assert.Contains("bad_fd: errno=8 nevents=57005\n", ours);
        Assert.Contains("file_at_eof: errno=0 nevents=1\n  ev0 ud=59 err=0 type=1 nbytes=1 flags=1 ", ours);

        // Invalid pointers end the guest (a trap in Wasmtime, a host error here: both exit 1).
        foreach (var mode in new[] { "oob_subs", "misaligned_subs", "oob_events", "oob_nevents" })
        {
            (ourExit, _) = await Run(guests.Host, mode);
            (theirExit, _) = await Run(reference, mode);
            output.WriteLine($"{mode}: ours {ourExit}, Wasmtime's {theirExit}");
            Assert.Equal(theirExit, ourExit);
            Assert.NotEqual(0, ourExit);
        }
    }

    [Fact]
    public async Task Pause_HoldsABusyGuest_AndResumeLetsItFinish()
    {
        // A line every 10 ms for 2 s: long enough that a loaded machine still pauses it mid-run.
        var (instance, stdout) = Prepare("busy", "200", "10");
        instance.Start();
        await WaitForOutput(stdout, s => s.Count(c => c == '\n') >= 5);

        var clock = Stopwatch.StartNew();
        instance.Pause();
        output.WriteLine($"Pause returned after {clock.Elapsed.TotalMilliseconds:F2} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"Pause took {clock.Elapsed}");
        Assert.True(instance.IsPaused);
        Assert.True(instance.IsRunning);

        int before = Lines(stdout);
        await Task.Delay(300);
        Assert.Equal(before, Lines(stdout));
        Assert.False(instance.Completion.IsCompleted);

        instance.Resume();
        Assert.False(instance.IsPaused);
        await WaitForOutput(stdout, s => s.Count(c => c == '\n') > before);
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(new WasmExit(0, null), exit);
        Assert.Equal(string.Concat(Enumerable.Range(0, 200).Select(i => $"{i}\n")), Read(stdout));
        Assert.False(instance.IsPaused);
    }

    [Fact]
    public async Task Kill_EndsAPausedBusyGuest()
    {
        var (instance, stdout) = Prepare("busy", "100000", "10");
        instance.Start();
        await WaitForOutput(stdout, s => s.Length > 0);
        instance.Pause();
        await Task.Delay(50);
        await KillAndMeasure(instance, 9, 137);
        Assert.False(instance.IsPaused);
    }

    [Fact]
    public async Task Pause_HoldsASleepingGuest_EvenAfterItsSleepEnds()
    {
        var (instance, stdout) = Prepare("nanosleep", "600");
        instance.Start();
        await WaitForOutput(stdout, s => s == "sleeping\n");
        await Task.Delay(50);

        var clock = Stopwatch.StartNew();
        instance.Pause();
        output.WriteLine($"Pause of a sleeper returned after {clock.Elapsed.TotalMilliseconds:F2} ms");
        // at once: the sleeper parks itself, it does not first finish its sleep (≥ 500 ms to go)
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(300), $"Pause took {clock.Elapsed}");
        await Task.Delay(800); // the 600 ms sleep ends meanwhile, but the guest must not go on
        Assert.Equal("sleeping\n", Read(stdout));
        Assert.False(instance.Completion.IsCompleted);

        clock.Restart();
        instance.Resume();
        var exit = await instance.Completion.WaitAsync(Timeout);
        output.WriteLine($"finished {clock.Elapsed.TotalMilliseconds:F1} ms after Resume; guest: {Read(stdout).Trim().Replace('\n', ' ')}");
        Assert.Equal(0, exit.ExitCode);
        // The sleep kept counting wall-clock time while paused, like SIGSTOP: it had ended before Resume
        // (a sleep frozen while paused would still have ≥ 500 ms to go).
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(300), $"took {clock.Elapsed} after Resume: the sleep had already ended");
        var slept = int.Parse(Read(stdout).Split(' ')[1]);
        Assert.InRange(slept, 850, 3000);
    }

    [Fact]
    public async Task Pause_SleepingGuest_ThenKill_Gives137Promptly()
    {
        var (instance, stdout) = Prepare("sleep", "1000");
        instance.Start();
        await WaitForOutput(stdout, s => s == "sleeping\n");
        await Task.Delay(50);
        var clock = Stopwatch.StartNew();
        instance.Pause();
        output.WriteLine($"Pause of a sleeper returned after {clock.Elapsed.TotalMilliseconds:F2} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"Pause took {clock.Elapsed}");
        Assert.True(instance.IsPaused);
        await KillAndMeasure(instance, 9, 137);
    }

    [Fact]
    public async Task Pause_Errors()
    {
        var (instance, _) = Prepare("busy", "100000", "10");
        var e = Assert.Throws<InvalidOperationException>(instance.Pause);
        Assert.Contains("not been started", e.Message);
        Assert.Contains("not paused", Assert.Throws<InvalidOperationException>(instance.Resume).Message);
        Assert.False(instance.IsPaused);

        instance.Start();
        instance.Pause();
        Assert.Contains("already paused", Assert.Throws<InvalidOperationException>(instance.Pause).Message);
        instance.Resume();
        Assert.Contains("not paused", Assert.Throws<InvalidOperationException>(instance.Resume).Message);
        instance.Pause();
        instance.Resume();

        instance.Kill(9);
        Assert.Equal(137, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.Contains("ended", Assert.Throws<InvalidOperationException>(instance.Pause).Message);
        Assert.Contains("ended", Assert.Throws<InvalidOperationException>(instance.Resume).Message);

        var (ended, _) = Prepare("nanosleep", "1");
        ended.Start();
        Assert.Equal(0, (await ended.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.Contains("ended", Assert.Throws<InvalidOperationException>(ended.Pause).Message);

        var (disposed, _) = Prepare("sleep", "1000");
        disposed.Start();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(disposed.Pause);
    }

    [Fact]
    public async Task Pause_GuestBlockedInFdRead_StopsItWhenTheCallReturns()
    {
        using var stdinPipe = new AnonymousPipeServerStream(PipeDirection.Out);
        var stdout = WorkPath("cat.out");
        var instance = guests.Host.Prepare(guests.Load("cat"), new WasiSpec
        {
            Args = ["cat"],
            StdinPath = $"/proc/self/fd/{stdinPipe.ClientSafePipeHandle.DangerousGetHandle()}",
            StdoutPath = stdout,
        });
        instances.Add(instance);
        stdinPipe.DisposeLocalCopyOfClientHandle();
        instance.Start();
        await Task.Delay(100); // blocked reading stdin

        var clock = Stopwatch.StartNew();
        instance.Pause(); // cannot reach a safe point: returns after the hold timeout, the guest counting as held
        output.WriteLine($"Pause of a guest blocked in fd_read returned after {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.InRange(clock.Elapsed, WasmInstance.PauseHoldTimeout - TimeSpan.FromMilliseconds(50), WasmInstance.PauseHoldTimeout * 3);
        Assert.True(instance.IsPaused);

        await stdinPipe.WriteAsync("data\n"u8.ToArray());
        stdinPipe.Dispose(); // EOF: cat would finish at once if it could run
        await Task.Delay(300);
        Assert.False(instance.Completion.IsCompleted);
        Assert.Equal("", Read(stdout));

        instance.Resume();
        Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.Equal("data\n", Read(stdout));
    }

    [Fact]
    public async Task Dispose_EndsAPausedGuest()
    {
        var (instance, stdout) = Prepare("busy", "100000", "10");
        instance.Start();
        await WaitForOutput(stdout, s => s.Length > 0);
        instance.Pause();
        instance.Dispose();
        Assert.Equal(137, (await instance.Completion.WaitAsync(TimeSpan.FromSeconds(2))).ExitCode);
    }
}

using System.Diagnostics;
using System.IO.Pipes;

namespace Wasmsharp.Wasm.Tests;

[Collection(GuestCollection.Name)]
public sealed class WasmHostTests(GuestModules guests) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-wasm-case-").FullName;
    private readonly List<WasmInstance> instances = [];

    public void Dispose()
    {
        foreach (var i in instances)
            i.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private string WorkPath(string name) => Path.Combine(work, name);

    private WasmInstance Prepare(string module, WasiSpec spec)
    {
        var instance = guests.Host.Prepare(guests.Load(module), spec);
        instances.Add(instance);
        return instance;
    }

    private async Task<(WasmExit Exit, string Stdout, string Stderr)> Run(string module, IReadOnlyList<string> args,
        IReadOnlyList<KeyValuePair<string, string>>? env = null, IReadOnlyList<Preopen>? preopens = null, string? cwd = null, string? stdin = null)
    {
        var stdout = WorkPath($"{module}-{Guid.NewGuid():N}.out");
        var stderr = WorkPath($"{module}-{Guid.NewGuid():N}.err");
        var instance = Prepare(module, new WasiSpec
        {
            Args = args,
            Env = env ?? [],
            Preopens = preopens ?? [],
            Cwd = cwd,
            StdinPath = stdin,
            StdoutPath = stdout,
            StderrPath = stderr,
        });
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.False(instance.IsRunning);
        return (exit, File.ReadAllText(stdout), File.ReadAllText(stderr));
    }

    [Fact]
    public async Task Hello_WritesToStdoutAndStderrFiles()
    {
        var (exit, stdout, stderr) = await Run("hello", ["hello"]);
        Assert.Equal(new WasmExit(0, null), exit);
        Assert.Equal("hello stdout\n", stdout);
        Assert.Equal("hello stderr\n", stderr);
    }

    [Fact]
    public async Task NoStdoutPath_DiscardsOutput()
    {
        var instance = Prepare("hello", new WasiSpec { Args = ["hello"] });
        instance.Start();
        Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
    }

    [Fact]
    public async Task ArgsAndEnv_AreExactlyWhatTheSpecSays()
    {
        Environment.SetEnvironmentVariable("WASMSHARP_HOST_SECRET", "must-not-leak");
        var (exit, stdout, _) = await Run("args_env", ["/bin/prog", "one", "two words", ""],
            env: [new("FOO", "bar"), new("EMPTY", ""), new("WITH_EQ", "a=b")]);

        Assert.Equal(0, exit.ExitCode);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            ["argc=4", "arg[0]=/bin/prog", "arg[1]=one", "arg[2]=two words", "arg[3]=", "env:FOO=bar", "env:EMPTY=", "env:WITH_EQ=a=b"],
            lines);
        Assert.DoesNotContain("must-not-leak", stdout);
        Assert.DoesNotContain("PATH=", stdout);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(3, 3)]
    [InlineData(42, 42)]
    [InlineData(125, 125)]
    [InlineData(126, 126)]
    [InlineData(200, 200)]
    [InlineData(255, 255)]
    [InlineData(256, 0)]   // only the low 8 bits survive, as on Linux
    [InlineData(300, 44)]
    [InlineData(-1, 255)]
    public async Task ProcExit_GivesTheStatus(int status, int expected)
    {
        var (exit, _, _) = await Run("exit", ["exit", status.ToString()]);
        Assert.Equal(new WasmExit(expected, null), exit);
    }

    [Fact]
    public async Task Trap_Gives134WithMessageAndBacktrace()
    {
        var (exit, stdout, _) = await Run("trap", ["trap"]);
        Assert.Equal(134, exit.ExitCode);
        Assert.Equal("about to trap\n", stdout);
        Assert.NotNull(exit.Message);
        Assert.StartsWith("wasm trap: wasm `unreachable` instruction executed\n", exit.Message);
        Assert.Contains("crash_here", exit.Message); // backtrace names the function
    }

    [Fact]
    public void NonWasmFile_IsRejectedByMagic()
    {
        var text = WorkPath("app.txt");
        File.WriteAllText(text, "#!/bin/sh\necho hi\n");
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.LoadModule(text));
        Assert.Equal($"{text} is not a WebAssembly module (no \\0asm magic)", e.Message);
        Assert.False(WasmHost.HasWasmMagic(text));
        Assert.True(WasmHost.HasWasmMagic(guests.Wasm("hello")));
        Assert.False(WasmHost.HasWasmMagic(WorkPath("missing.wasm")));
    }

    [Fact]
    public void EmptyFile_IsRejectedByMagic()
    {
        var empty = WorkPath("empty.wasm");
        File.WriteAllBytes(empty, []);
        Assert.Contains("no \\0asm magic", Assert.Throws<WasmModuleException>(() => guests.Host.LoadModule(empty)).Message);
    }

    [Fact]
    public void MissingFile_GivesClearError()
    {
        var missing = WorkPath("missing.wasm");
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.LoadModule(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("no such file", e.Message);
    }

    [Fact]
    public void BrokenModule_FailsToCompileWithClearError()
    {
        var broken = WorkPath("broken.wasm");
        File.WriteAllBytes(broken, [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0, 0xff, 0xff]);
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.LoadModule(broken));
        Assert.Contains("failed to compile", e.Message);
        // One line that ends in Wasmtime's innermost cause (its text is several lines: "Caused by:" and the chain).
        Assert.DoesNotContain('\n', e.Message);
        var inner = ((Wasmtime.WasmtimeException)e.InnerException!).Message;
        Assert.Contains('\n', inner);
        var innermost = inner.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
        Assert.EndsWith(innermost[(innermost.IndexOf(':') + 1)..].Trim(), e.Message, StringComparison.Ordinal);
    }

    // A trap while instantiating (the module's start function) refuses Prepare in one line ending in the trap.
    [Fact]
    public void StartFunctionTrap_RefusesPrepareInOneLineEndingInTheTrap()
    {
        var e = Assert.Throws<WasmModuleException>(() => Prepare("start_traps", new WasiSpec { Args = ["start_traps"] }));
        Assert.DoesNotContain('\n', e.Message);
        Assert.EndsWith("wasm trap: wasm `unreachable` instruction executed", e.Message, StringComparison.Ordinal);
        Assert.Contains("cannot prepare the instance", e.Message, StringComparison.Ordinal);
    }

    // A start function that never returns does not hold Prepare (a container's Create) for ever: past PrepareWait
    // the instance counts as prepared, and the loop stays killable, its kill being the guest's exit.
    [Fact]
    public async Task StartFunctionThatNeverReturns_LetsPrepareReturn_AndIsKilledAsTheGuest()
    {
        var prepare = Task.Run(() => Prepare("start_loops", new WasiSpec { Args = ["start_loops"] }));
        var instance = await prepare.WaitAsync(WasmInstance.PrepareWait + TimeSpan.FromSeconds(60)); // else: Prepare never returned
        Assert.False(instance.Completion.IsCompleted);
        Assert.True(instance.Kill(Wasmsharp.Linux.Signals.SIGKILL));
        var exit = await instance.Completion.WaitAsync(TimeSpan.FromSeconds(30)); // else: the loop did not end at its kill
        Assert.Equal(137, exit.ExitCode);
    }

    [Fact]
    public void Component_WithoutWasiCliRun_IsRefusedByPrepare()
    {
        var component = WorkPath("component.wasm");
        File.WriteAllBytes(component, [0, (byte)'a', (byte)'s', (byte)'m', 0x0d, 0, 1, 0]); // the empty component
        var module = guests.Host.LoadModule(component);
        Assert.True(module.IsComponent);
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.Prepare(module, new WasiSpec { Args = ["c"] }));
        Assert.Contains("does not export wasi:cli/run", e.Message);
    }

    [Fact]
    public void SameFile_GivesTheCachedModule()
    {
        var a = guests.Host.LoadModule(guests.Wasm("hello"));
        var b = guests.Host.LoadModule(guests.Wasm("hello"));
        Assert.Same(a, b);
        Assert.Equal(guests.Wasm("hello"), a.Path);
        Assert.Matches("^[0-9a-f]{64}$", a.Sha256);

        var copy = WorkPath("copy.wasm");
        File.Copy(guests.Wasm("hello"), copy);
        var c = guests.Host.LoadModule(copy);
        Assert.Equal(copy, c.Path);
        Assert.Equal(a.Sha256, c.Sha256);
        Assert.Same(a.Inner, c.Inner); // compiled once

        Assert.NotEqual(a.Sha256, guests.Host.LoadModule(guests.Wasm("exit")).Sha256);
    }

    [Fact]
    public void UnknownImport_IsRefusedAtLoadBeforeCompiling()
    {
        var e = Assert.Throws<WasmModuleException>(() => guests.Load("unknown_import"));
        Assert.Contains("no_such_function", e.Message);
        Assert.Contains("cannot run here", e.Message);
    }

    [Fact]
    public void MissingEntrypoint_FailsAtPrepare()
    {
        var module = guests.Load("no_start");
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.Prepare(module, new WasiSpec { Args = ["x"] }));
        Assert.Contains("'_start'", e.Message);

        // another export works as entrypoint
        using var instance = guests.Host.Prepare(module, new WasiSpec { Args = ["x"], Entrypoint = "something_else" });
    }

    [Fact]
    public void MissingPreopenDirectory_FailsAtPrepare()
    {
        var missing = WorkPath("no-such-dir");
        var e = Assert.Throws<WasmModuleException>(() =>
            guests.Host.Prepare(guests.Load("hello"), new WasiSpec { Args = ["x"], Preopens = [new(missing, "/", false)] }));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void MissingStdin_FailsAtPrepare()
    {
        var missing = WorkPath("no-stdin");
        var e = Assert.Throws<WasmModuleException>(() =>
            guests.Host.Prepare(guests.Load("cat"), new WasiSpec { Args = ["x"], StdinPath = missing }));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public async Task Stdin_IsReadFromTheFile_AndEmptyWithoutOne()
    {
        var stdin = WorkPath("stdin.txt");
        File.WriteAllText(stdin, "line one\nline two\n");
        var (exit, stdout, _) = await Run("cat", ["cat"], stdin: stdin);
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("line one\nline two\n", stdout);

        (exit, stdout, _) = await Run("cat", ["cat"]);
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Stdio_CanBePipesPassedAsProcSelfFd()
    {
        using var stdinPipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var stdoutPipe = new AnonymousPipeServerStream(PipeDirection.In);
        var instance = Prepare("cat", new WasiSpec
        {
            Args = ["cat"],
            StdinPath = $"/proc/self/fd/{stdinPipe.ClientSafePipeHandle.DangerousGetHandle()}",
            StdoutPath = $"/proc/self/fd/{stdoutPipe.ClientSafePipeHandle.DangerousGetHandle()}",
        });
        // Wasmtime opened its own descriptions of both pipes: drop our copies of the guest's ends.
        stdinPipe.DisposeLocalCopyOfClientHandle();
        stdoutPipe.DisposeLocalCopyOfClientHandle();
        instance.Start();

        await stdinPipe.WriteAsync("through a pipe\n"u8.ToArray());
        stdinPipe.Dispose(); // EOF for the guest
        var output = new StreamReader(stdoutPipe).ReadToEndAsync(); // EOF once the store is gone
        Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.Equal("through a pipe\n", await output.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Kill_OfAGuestBlockedWritingToAnUnreadPipe_IsReportedAfterTheGrace_AndTheThreadEndsOnceItCanWrite()
    {
        using var stdoutPipe = new AnonymousPipeServerStream(PipeDirection.In);
        var instance = Prepare("flood", new WasiSpec
        {
            Args = ["flood"],
            StdoutPath = $"/proc/self/fd/{stdoutPipe.ClientSafePipeHandle.DangerousGetHandle()}",
        });
        stdoutPipe.DisposeLocalCopyOfClientHandle();
        var liveBefore = guests.Host.LiveInstances;
        instance.Start();
        await Task.Delay(300); // the pipe fills; the guest blocks inside fd_write, out of the epoch's reach

        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(instance.Kill(15));
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(143, exit.ExitCode);
        Assert.True(instance.Abandoned, "the guest could not stop by itself: its exit is reported without it");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"reported after {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(liveBefore, guests.Host.LiveInstances); // its thread still holds the store

        // Once its write can complete, the guest reaches the epoch check and its thread frees the store.
        var drain = stdoutPipe.CopyToAsync(Stream.Null);
        var ended = System.Diagnostics.Stopwatch.StartNew();
        while (guests.Host.LiveInstances >= liveBefore && ended.Elapsed < Timeout)
            await Task.Delay(10);
        Assert.Equal(liveBefore - 1, guests.Host.LiveInstances);
        await drain.WaitAsync(Timeout); // and closed its end of the pipe
    }

    [Fact]
    public async Task DeepRecursion_TrapsWithStackOverflow()
    {
        var instance = Prepare("recurse", new WasiSpec { Args = ["recurse"] });
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(134, exit.ExitCode);
        Assert.StartsWith("wasm trap: call stack exhausted", exit.Message);
    }

    [Fact]
    public async Task MaxWasmStack_IsConfigurableAndBoundedByTheThreadStack()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { MaxWasmStackBytes = 8 * 1024 * 1024 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { MaxWasmStackBytes = 0 }));
        // Wasmtime would panic (abort the process) on max_wasm_stack > async_stack_size.
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { MaxWasmStackBytes = WasmHostOptions.MaxWasmStackLimit + 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmHost(new WasmHostOptions { GuestThreadStackBytes = 2 * 1024 * 1024, MaxWasmStackBytes = WasmHostOptions.MaxWasmStackLimit }));

        using var host = new WasmHost(new WasmHostOptions { MaxWasmStackBytes = WasmHostOptions.MaxWasmStackLimit });
        using var instance = host.Prepare(host.LoadModule(guests.Wasm("recurse")), new WasiSpec { Args = ["recurse"] });
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(134, exit.ExitCode);
        Assert.StartsWith("wasm trap: call stack exhausted", exit.Message);
        Assert.Equal(0, host.LiveInstances);
    }

    [Fact]
    public async Task ReadWritePreopen_GuestCreatesFile()
    {
        var dir = Directory.CreateDirectory(WorkPath("rw")).FullName;
        var (exit, _, stderr) = await Run("create_file", ["create_file", "/data/new.txt"], preopens: [new(dir, "/data", ReadOnly: false)]);
        Assert.True(exit.ExitCode == 0, $"exit {exit.ExitCode}: {stderr}");
        Assert.Equal("written by guest\n", File.ReadAllText(Path.Combine(dir, "new.txt")));
    }

    [Fact]
    public async Task ReadOnlyPreopen_GuestCannotCreate()
    {
        var dir = Directory.CreateDirectory(WorkPath("ro")).FullName;
        var (exit, _, stderr) = await Run("create_file", ["create_file", "/data/new.txt"], preopens: [new(dir, "/data", ReadOnly: true)]);
        // WASI errno numbers (wasi-libc): EACCES 2, EPERM 63, EROFS 69, ENOTCAPABLE 76.
        Assert.Contains(exit.ExitCode, new[] { 2, 63, 69, 76 });
        Assert.Contains("fopen /data/new.txt", stderr);
        Assert.False(File.Exists(Path.Combine(dir, "new.txt")));
    }

    [Fact]
    public async Task Cwd_IsFd3AndAbsolutePathsStillUseTheRoot()
    {
        var root = Directory.CreateDirectory(WorkPath("rootfs")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc", "marker"), "root marker\n");
        Directory.CreateDirectory(Path.Combine(root, "srv", "app"));
        File.WriteAllText(Path.Combine(root, "srv", "app", "inapp.txt"), "in app\n");
        // /app is an absolute symlink: resolved inside the rootfs, never on the host.
        File.CreateSymbolicLink(Path.Combine(root, "app"), "/srv/app");

        var (exit, stdout, _) = await Run("cwd", ["cwd"], preopens: [new(root, "/", false)], cwd: "/app");

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("abs:root marker\n", stdout);
        Assert.Contains("fd3:.\n", stdout);
        Assert.Contains("fd3file:in app\n", stdout);
        Assert.Contains("rel:ok\n", stdout);
        // wasi-libc starts every program in "/": its relative paths resolve against "/" (see WasiSetup).
        Assert.True(File.Exists(Path.Combine(root, "rel.txt")));
    }

    [Fact]
    public void Cwd_OutsideThePreopens_FailsAtPrepare()
    {
        var root = Directory.CreateDirectory(WorkPath("rootfs2")).FullName;
        var e = Assert.Throws<WasmModuleException>(() =>
            guests.Host.Prepare(guests.Load("hello"), new WasiSpec { Args = ["x"], Preopens = [new(root, "/", false)], Cwd = "/nope" }));
        Assert.Contains("/nope", e.Message);
    }

    [Theory]
    [InlineData("loop", 9, 137)]
    [InlineData("loop", 15, 143)]
    [InlineData("wat_loop", 9, 137)]
    public async Task Kill_StopsABusyLoop(string module, int signal, int expected)
    {
        var stdout = WorkPath("loop.out");
        var instance = Prepare(module, new WasiSpec { Args = [module], StdoutPath = stdout });
        instance.Start();
        await Task.Delay(200);
        Assert.True(instance.IsRunning);
        Assert.False(instance.Completion.IsCompleted);
        if (module == "loop")
            Assert.Equal("looping\n", File.ReadAllText(stdout));

        var clock = Stopwatch.StartNew();
        Assert.True(instance.Kill(signal));
        var exit = await instance.Completion.WaitAsync(TimeSpan.FromSeconds(2));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
        Assert.Equal(expected, exit.ExitCode);
        Assert.Contains($"signal {signal}", exit.Message);
        Assert.False(instance.IsRunning);

        Assert.False(instance.Kill(9)); // already ended: no effect
        Assert.Equal(expected, (await instance.Completion).ExitCode);
    }

    [Fact]
    public async Task Kill_HitsOnlyItsOwnInstance_AndIsIdempotent()
    {
        var a = Prepare("loop", new WasiSpec { Args = ["a"] });
        var b = Prepare("loop", new WasiSpec { Args = ["b"] });
        a.Start();
        b.Start();
        await Task.Delay(100);

        a.Kill(15);
        a.Kill(9); // the first signal wins
        Assert.Equal(143, (await a.Completion.WaitAsync(TimeSpan.FromSeconds(2))).ExitCode);

        await Task.Delay(300); // b has been through the epoch change and keeps running
        Assert.True(b.IsRunning);
        Assert.False(b.Completion.IsCompleted);

        b.Kill(9);
        Assert.Equal(137, (await b.Completion.WaitAsync(TimeSpan.FromSeconds(2))).ExitCode);
    }

    [Fact]
    public async Task NonTerminatingSignals_DoNotKill()
    {
        var instance = Prepare("loop", new WasiSpec { Args = ["loop"] });
        instance.Start();
        Assert.True(instance.Kill(0));
        Assert.False(instance.Kill(28)); // SIGWINCH: ignored by default
        Assert.False(instance.Kill(17)); // SIGCHLD
        await Task.Delay(200);
        Assert.True(instance.IsRunning);
        Assert.Throws<ArgumentOutOfRangeException>(() => instance.Kill(65));
        instance.Kill(2); // SIGINT
        Assert.Equal(130, (await instance.Completion.WaitAsync(TimeSpan.FromSeconds(2))).ExitCode);
    }

    [Fact]
    public async Task KillBeforeStart_EndsWithoutRunning()
    {
        var stdout = WorkPath("never.out");
        var instance = Prepare("hello", new WasiSpec { Args = ["hello"], StdoutPath = stdout });
        Assert.False(instance.IsRunning);
        Assert.True(instance.Kill(9));
        var exit = await instance.Completion.WaitAsync(TimeSpan.FromSeconds(2));
        Assert.Equal(137, exit.ExitCode);
        Assert.Equal("", File.ReadAllText(stdout)); // opened at Prepare, never written
        instance.Start();                           // allowed, does nothing
        Assert.False(instance.IsRunning);
    }

    [Fact]
    public async Task Dispose_KillsARunningGuest()
    {
        var instance = Prepare("loop", new WasiSpec { Args = ["loop"] });
        instance.Start();
        await Task.Delay(50);
        instance.Dispose();
        Assert.Equal(137, (await instance.Completion.WaitAsync(TimeSpan.FromSeconds(2))).ExitCode);
        Assert.Throws<ObjectDisposedException>(instance.Start);
    }

    [Fact]
    public async Task GuestDoesNotRunBeforeStart()
    {
        var stdout = WorkPath("later.out");
        var instance = Prepare("hello", new WasiSpec { Args = ["hello"], StdoutPath = stdout });
        await Task.Delay(200);
        Assert.False(instance.Completion.IsCompleted);
        Assert.Equal("", File.ReadAllText(stdout));
        instance.Start();
        Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.Equal("hello stdout\n", File.ReadAllText(stdout));
    }

    [Fact]
    public async Task ThreadId_IsARealThreadOfThisProcess()
    {
        var instance = Prepare("loop", new WasiSpec { Args = ["loop"] });
        Assert.True(instance.ThreadId > 0);
        Assert.NotEqual(Environment.ProcessId, instance.ThreadId);
        Assert.True(Directory.Exists($"/proc/self/task/{instance.ThreadId}"));
        instance.Start();
        await Task.Delay(100);
        var comm = File.ReadAllText($"/proc/self/task/{instance.ThreadId}/comm").Trim();
        Assert.StartsWith("wasm", comm);

        var other = Prepare("loop", new WasiSpec { Args = ["loop"] });
        Assert.NotEqual(instance.ThreadId, other.ThreadId);
        instance.Kill(9);
        other.Kill(9);
        await Task.WhenAll(instance.Completion, other.Completion).WaitAsync(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public void StartTwice_Throws()
    {
        var instance = Prepare("loop", new WasiSpec { Args = ["loop"] });
        instance.Start();
        Assert.Throws<InvalidOperationException>(instance.Start);
        instance.Kill(9);
    }

    [Fact]
    public async Task ManyInstances_RunInParallelAndEndCleanly()
    {
        var module = guests.Load("exit");
        var all = Enumerable.Range(0, 20).Select(i =>
        {
            var instance = guests.Host.Prepare(module, new WasiSpec { Args = ["exit", i.ToString()] });
            instances.Add(instance);
            return instance;
        }).ToArray();
        foreach (var i in all)
            i.Start();
        var exits = await Task.WhenAll(all.Select(i => i.Completion)).WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 20), exits.Select(e => e.ExitCode));
    }
}

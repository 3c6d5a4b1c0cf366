using System.Diagnostics;
using System.IO.Pipes;
using Xunit.Abstractions;

namespace Wasmsharp.Wasm.Tests;

/// <summary>WASI preview 2 components run through wasi:cli/run with a module's semantics.</summary>
[Collection(ComponentCollection.Name)]
public sealed class ComponentTests(GuestComponents guests, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly GuestWork work = new("wasmsharp-p2-case-");

    public void Dispose() => work.Dispose();

    private string WorkPath(string name) => work.Path(name);

    private (WasmInstance Instance, string Stdout) Prepare(WasiSpec spec, WasmHost? host = null)
    {
        host ??= guests.Host;
        var stdout = WorkPath($"out-{Guid.NewGuid():N}");
        var instance = work.Track(host.Prepare(host.LoadModule(guests.Component), spec with { StdoutPath = stdout }));
        return (instance, stdout);
    }

    private (WasmInstance Instance, string Stdout) Prepare(params string[] args) => Prepare(new WasiSpec { Args = ["p2guest", .. args] });

    private async Task<(WasmExit Exit, string Stdout)> Run(WasiSpec spec)
    {
        var (instance, stdout) = Prepare(spec);
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        return (exit, Read(stdout));
    }

    private Task<(WasmExit Exit, string Stdout)> Run(params string[] args) => Run(new WasiSpec { Args = ["p2guest", .. args] });

    private static string Read(string path) => GuestOutput.Read(path);

    private static Task WaitForOutput(string stdout, Func<string, bool> condition) => GuestOutput.WaitFor(stdout, condition, Timeout);

    /// <summary>Kills a guest blocked in a p2 call (50 ms after it got there) and checks the kill is reported in time:
    /// after KillGrace, with room for a loaded machine (two busy threads took it to 1.03 s), far from the
    /// guest's own end (a 100 s sleep, a stdin nobody writes).</summary>
    private async Task KillReportedPromptly(WasmInstance instance, int signal)
    {
        await Task.Delay(50);
        var clock = Stopwatch.StartNew();
        Assert.True(instance.Kill(signal));
        var exit = await instance.Completion.WaitAsync(Timeout);
        output.WriteLine($"killed after {clock.ElapsedMilliseconds} ms, abandoned {instance.Abandoned}: {exit.Message}");
        Assert.Equal(128 + signal, exit.ExitCode);
        Assert.True(clock.Elapsed < WasmInstance.KillGrace + TimeSpan.FromSeconds(2), $"took {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Header_TellsAComponentFromAModule()
    {
        Assert.Equal(WasmBinaryKind.Component, WasmBinary.KindOf(guests.Component));
        Assert.Equal(WasmBinaryKind.Module, WasmBinary.KindOf("\0asm\u0001\0\0\0"u8));
        Assert.Equal(WasmBinaryKind.NotWasm, WasmBinary.KindOf("\0asm"u8));
        Assert.Equal(WasmBinaryKind.Unknown, WasmBinary.KindOf("\0asm\u000d\0\u0002\0"u8));
        Assert.True(WasmHost.HasWasmMagic(guests.Component));
        Assert.True(guests.Load().IsComponent);
    }

    [Fact]
    public async Task Hello_SeesArgvVerbatimAndOnlyTheSpecsEnvironment()
    {
        var (exit, stdout) = await Run(new WasiSpec { Args = ["p2guest", "hello", "two words", ""], Env = [new("FOO", "bar"), new("EMPTY", "")] });
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("argc=4\narg[0]=p2guest\narg[1]=hello\narg[2]=two words\narg[3]=\nenv:FOO=bar\nenv:EMPTY=\n", stdout);
    }

    [Fact]
    public async Task Preopens_ReadAFileAndRefuseWritesWhenReadOnly()
    {
        var root = Directory.CreateDirectory(WorkPath("rootfs")).FullName;
        File.WriteAllText(Path.Combine(root, "data.txt"), "from the rootfs\n");
        var readOnly = new WasiSpec { Args = ["p2guest", "cat", "/data.txt"], Preopens = [new Preopen(root, "/", ReadOnly: true)] };

        var (exit, stdout) = await Run(readOnly);
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("from the rootfs\n", stdout);

        (exit, stdout) = await Run(readOnly with { Args = ["p2guest", "create", "/new.txt"] });
        Assert.Equal(0, exit.ExitCode);
        Assert.StartsWith("create failed: ", stdout);
        Assert.False(File.Exists(Path.Combine(root, "new.txt")));

        (exit, stdout) = await Run(readOnly with { Args = ["p2guest", "create", "/new.txt"], Preopens = [new Preopen(root, "/", ReadOnly: false)] });
        Assert.Equal("created\n", stdout);
        Assert.Equal("made\n", File.ReadAllText(Path.Combine(root, "new.txt")));
    }

    /// <summary>wasi-libc through jco's preview 1 adapter ends with wasi:cli/exit's exit(result): any status
    /// other than 0 arrives as err, i.e. 1 (the adapter does not use exit-with-code).</summary>
    [Theory]
    [InlineData("return", 0, 0)]
    [InlineData("return", 3, 1)]
    [InlineData("exit", 0, 0)]
    [InlineData("exit", 42, 1)]
    public async Task ExitStatus_ComesFromRunOrWasiCliExit(string how, int status, int expected)
    {
        var (exit, _) = await Run(how, status.ToString());
        Assert.Equal(expected, exit.ExitCode);
    }

    /// <summary>A component that imports <c>wasi:cli/exit.exit-with-code</c> (p2/exitcode.wat) links, and its n is the status.</summary>
    [Fact]
    public async Task ExitWithCode_IsTheStatus()
    {
        var stdout = WorkPath("ewc-out");
        var instance = work.Track(guests.Host.Prepare(guests.Host.LoadModule(guests.ExitWithCode), new WasiSpec { Args = ["exitcode"], StdoutPath = stdout }));
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.True(exit.ExitCode == 42, $"exit {exit.ExitCode}: {exit.Message}");
    }

    [Fact]
    public async Task Trap_Is134WithTheTrap()
    {
        var (exit, stdout) = await Run("trap");
        output.WriteLine(exit.Message);
        Assert.Equal("about to trap\n", stdout);
        Assert.Equal(134, exit.ExitCode);
        Assert.Contains("unreachable", exit.Message);
    }

    /// <summary>A p2 sleep blocks inside Wasmtime (block_on of a tokio timer on the guest thread), where no epoch
    /// check is made: the kill is reported after KillGrace, the thread left to end with its sleep.</summary>
    [Fact]
    public async Task Kill_OfASleeperIsReportedPromptly()
    {
        var (instance, stdout) = Prepare("sleep", "100000");
        instance.Start();
        await WaitForOutput(stdout, s => s == "sleeping\n");
        await KillReportedPromptly(instance, 9);
        Assert.Equal("sleeping\n", Read(stdout));
    }

    [Fact]
    public async Task Kill_OfAStdinReaderIsReportedPromptly_AndClosingStdinEndsItsThread()
    {
        using var stdin = new AnonymousPipeServerStream(PipeDirection.Out);
        var (instance, stdout) = Prepare(new WasiSpec
        {
            Args = ["p2guest", "stdin"],
            StdinPath = $"/proc/self/fd/{stdin.ClientSafePipeHandle.DangerousGetHandle()}",
        });
        stdin.DisposeLocalCopyOfClientHandle();
        instance.Start();
        await WaitForOutput(stdout, s => s == "reading\n");
        await KillReportedPromptly(instance, 15);
        var live = guests.Host.LiveInstances;
        stdin.Dispose(); // EOF: the read returns, the killed guest stops at its next epoch check
        var released = Stopwatch.StartNew();
        while (guests.Host.LiveInstances >= live && released.Elapsed < TimeSpan.FromSeconds(5))
            await Task.Delay(10);
        Assert.True(guests.Host.LiveInstances < live, "the guest thread did not end after its stdin was closed");
        Assert.Equal("reading\n", Read(stdout)); // it never ran guest code after the kill
    }

    [Fact]
    public async Task PauseResume_HoldsAndReleasesATicker()
    {
        var (instance, stdout) = Prepare("tick", "10");
        instance.Start();
        await WaitForOutput(stdout, s => s.Split('\n').Length > 3);
        instance.Pause();
        var clock = Stopwatch.StartNew();
        await Task.Delay(30); // a tick already inside its sleep may still print
        var held = Read(stdout);
        await Task.Delay(300);
        output.WriteLine($"paused in {clock.ElapsedMilliseconds} ms");
        Assert.Equal(held, Read(stdout));
        Assert.True(instance.IsPaused);
        instance.Resume();
        await WaitForOutput(stdout, s => s.Length > held.Length + 6);
        Assert.True(instance.Kill(9));
        Assert.Equal(137, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
    }

    [Fact]
    public async Task MemoryLimit_KillsAnAllocatorAsTheOomKillerWould()
    {
        var (exit, stdout) = await Run(new WasiSpec { Args = ["p2guest", "alloc", "200"], MemoryLimitBytes = 32L << 20 });
        output.WriteLine($"{exit}: {stdout}");
        Assert.Equal(137, exit.ExitCode);
        Assert.True(exit.OutOfMemory);
        (exit, stdout) = await Run(new WasiSpec { Args = ["p2guest", "alloc", "8"], MemoryLimitBytes = 32L << 20 });
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("allocated 8 MiB\n", stdout);
    }

    /// <summary>
    /// Wasmtime ≥ 48 (PR #13936) allows no TCP or UDP socket unless the embedder calls WasiCtxBuilder::allow_tcp /
    /// allow_udp; the C API of 50.0.1 has only wasi_config_inherit_network (the address check), so a p2 guest's
    /// socket() is refused (access-denied → EACCES) whatever the spec says. This fails, on purpose, once a
    /// libwasmtime lets TCP through: then the server test belongs here.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sockets_AreRefusedEvenWithNetworkAccess_Wasmtime50CApiCannotAllowTcp(bool networkAccess)
    {
        using var ns = new NetNamespace();
        var (instance, stdout) = ns.Run(() => Prepare(new WasiSpec { Args = ["p2guest", "serve", "18081"], NetworkAccess = networkAccess }));
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal("socket failed: Permission denied\n", Read(stdout));
        Assert.Equal(1, exit.ExitCode); // main's 4, through wasi:cli/exit's err
    }

    /// <summary>wasi:http is not provided (ComponentRun's remarks): a component importing it (a client) is refused
    /// at Prepare naming the import and why, not with the linker's "no matching implementation"; a proxy
    /// (incoming-handler, no wasi:cli/run) as a proxy, not as a command lacking run nor as a wasi:http importer.</summary>
    [Theory]
    [InlineData("client", " imports wasi:http/types@0.2.0: this runtime does not provide wasi:http, " +
        "Wasmtime 50's HTTP client connects and resolves names on its own threads, outside the container's network namespace")]
    [InlineData("proxy", " is a wasi:http proxy (it exports wasi:http/incoming-handler, not wasi:cli/run): this runtime cannot serve it")]
    public void WasiHttp_IsRefusedAtPrepare_SayingWhy(string which, string message)
    {
        var path = which == "client" ? guests.HttpClient : guests.HttpProxy;
        var module = guests.Host.LoadModule(path);
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.Prepare(module, new WasiSpec { Args = [which] }));
        output.WriteLine(e.Message);
        Assert.StartsWith(path + message, e.Message);
    }

    [Fact]
    public async Task DiskCache_CompilesAComponentOnceAndLoadsItAfterwards()
    {
        var cache = Directory.CreateDirectory(WorkPath("cache")).FullName;
        using (var first = new WasmHost(new WasmHostOptions { CacheDirectory = cache }))
        {
            var module = first.LoadModule(guests.Component);
            Assert.Equal(ModuleOrigin.CacheMiss, module.Origin);
            Assert.True(module.IsComponent);
        }
        using var second = new WasmHost(new WasmHostOptions { CacheDirectory = cache });
        var cached = second.LoadModule(guests.Component);
        Assert.Equal(ModuleOrigin.CacheHit, cached.Origin);
        Assert.True(cached.IsComponent);
        var (instance, stdout) = Prepare(new WasiSpec { Args = ["p2guest", "hello"] }, second);
        instance.Start();
        Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
        Assert.StartsWith("argc=2\n", Read(stdout));

        // Known by digest (an image layer's): a hit reads no byte, so the kind comes from the entry itself.
        using var third = new WasmHost(new WasmHostOptions { CacheDirectory = cache });
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(guests.Component)));
        var byDigest = third.LoadModule("layer", sha, () => throw new InvalidOperationException("read on a cache hit"));
        Assert.Equal(ModuleOrigin.CacheHit, byDigest.Origin);
        Assert.True(byDigest.IsComponent);
    }

    [Fact]
    public async Task BaselineFirstRun_RunsAComponentAndCachesTheOptimisedCode()
    {
        var cache = Directory.CreateDirectory(WorkPath("cache-baseline")).FullName;
        using (var first = new WasmHost(new WasmHostOptions { CacheDirectory = cache, BaselineFirstRun = true }))
        {
            var module = first.LoadModule(guests.Component);
            output.WriteLine($"first run: baseline {module.Baseline}, origin {module.Origin}, compile {module.CompileTime.TotalMilliseconds:F0} ms");
            var (instance, stdout) = Prepare(new WasiSpec { Args = ["p2guest", "hello"] }, first);
            instance.Start();
            Assert.Equal(0, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
            Assert.StartsWith("argc=2\n", Read(stdout));
            await first.CacheWrites.WaitAsync(Timeout);
        }
        using var second = new WasmHost(new WasmHostOptions { CacheDirectory = cache, BaselineFirstRun = true });
        var cached = second.LoadModule(guests.Component);
        Assert.Equal(ModuleOrigin.CacheHit, cached.Origin);
        Assert.False(cached.Baseline);
    }
}

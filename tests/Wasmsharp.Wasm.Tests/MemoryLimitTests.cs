namespace Wasmsharp.Wasm.Tests;

// A guest's memory limit: growth past it ends the guest as the OOM killer ends a process (SIGKILL, 137),
// before the guest can act on the failed allocation.
[Collection(GuestCollection.Name)]
public sealed class MemoryLimitTests(GuestModules guests) : IDisposable
{
    private const long MiB = 1 << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-memlimit-").FullName;
    private readonly List<WasmInstance> instances = [];

    public void Dispose()
    {
        foreach (var i in instances)
            i.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private WasmInstance Prepare(long? limit, params string[] args)
    {
        var instance = guests.Host.Prepare(guests.Load("alloc"), new WasiSpec
        {
            Args = ["alloc", .. args],
            StdoutPath = Path.Combine(work, "out"),
            MemoryLimitBytes = limit,
        });
        instances.Add(instance);
        return instance;
    }

    private async Task<(WasmExit Exit, string Stdout)> Run(WasmInstance instance)
    {
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        return (exit, File.ReadAllText(Path.Combine(work, "out")));
    }

    [Fact]
    public async Task Growing_past_the_limit_kills_with_137_before_the_guest_sees_malloc_fail()
    {
        var (exit, stdout) = await Run(Prepare(16 * MiB, "64"));
        Assert.Equal(137, exit.ExitCode);
        Assert.True(exit.OutOfMemory, exit.Message);
        Assert.Contains("memory limit", exit.Message);
        Assert.DoesNotContain("malloc failed", stdout);
        Assert.DoesNotContain("allocated", stdout);
    }

    [Fact]
    public async Task Within_the_limit_the_guest_runs_normally()
    {
        var instance = Prepare(64 * MiB, "16");
        var (exit, stdout) = await Run(instance);
        Assert.Equal(new WasmExit(0, null), exit);
        Assert.Equal("allocated 16 MiB\n", stdout);
    }

    [Fact]
    public async Task Without_a_limit_memory_grows_far()
    {
        var (exit, stdout) = await Run(Prepare(null, "200"));
        Assert.Equal(0, exit.ExitCode);
        Assert.False(exit.OutOfMemory);
        Assert.Equal("allocated 200 MiB\n", stdout);
    }

    [Fact]
    public async Task A_limit_set_after_prepare_applies()
    {
        var instance = Prepare(null, "64");
        Assert.Null(instance.MemoryLimitBytes);
        instance.MemoryLimitBytes = 16 * MiB;
        Assert.Equal(16 * MiB, instance.MemoryLimitBytes);
        var (exit, _) = await Run(instance);
        Assert.True(exit.OutOfMemory);
        Assert.Equal(137, exit.ExitCode);
    }

    [Fact]
    public async Task A_user_kill_is_not_reported_as_out_of_memory()
    {
        var instance = Prepare(16 * MiB, "1");
        instance.Kill(9);
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        Assert.Equal(137, exit.ExitCode);
        Assert.False(exit.OutOfMemory);
    }

    [Fact]
    public void A_limit_below_the_initial_memory_fails_prepare_with_a_clear_message()
    {
        var e = Assert.Throws<WasmModuleException>(() => Prepare(64 * 1024, "1"));
        Assert.Contains("exceeds the memory limit", e.Message);
    }
}

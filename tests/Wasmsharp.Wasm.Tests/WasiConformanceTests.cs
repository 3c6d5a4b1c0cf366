using Xunit.Abstractions;

namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// The WASI preview 1 rules of the calls the host shadows (README "WASI preview 1 conformance"), one rule per
/// case, checked by the guest itself (<see cref="WasiRulesGuest"/>). Each runs as a plain module (Wasmtime's fd
/// functions, our poll_oneoff and fd_fdstat_get) and as a module importing preview 1's sock_* calls (our
/// socket-aware fd_* shadows in front of Wasmtime's); the poll rules also under Wasmtime's own poll_oneoff, so a
/// rule that holds here but not there (or the reverse) shows.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class WasiConformanceTests(GuestModules guests, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-wasi-rules-").FullName;
    private readonly List<IDisposable> owned = [];

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(owned))
            d.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private async Task Check(WasmHost host, string module, string[] args, bool terminal = false)
    {
        var scratch = Directory.CreateDirectory(Path.Combine(work, Guid.NewGuid().ToString("N"))).FullName;
        var stdout = Path.Combine(work, $"{module}-{Guid.NewGuid():N}.out");
        var instance = host.Prepare(host.LoadModule(guests.Wasm(module)), new WasiSpec
        {
            Args = [module, .. args],
            Preopens = [new Preopen(scratch, "/", ReadOnly: false)],
            StdoutPath = stdout,
            StdioIsTerminal = terminal,
        });
        owned.Add(instance);
        instance.Start();
        var exit = await instance.Completion.WaitAsync(Timeout);
        var text = File.ReadAllText(stdout);
        output.WriteLine($"{module} {string.Join(' ', args)}: exit {exit.ExitCode}\n{text}");
        Assert.True(exit.ExitCode == 0 && text == "ok\n", $"exit {exit.ExitCode} {exit.Message}\n{text}");
    }

    public static TheoryData<string, string> Rules() => new()
    {
        { "wasi_rules", "renumber_open_target" },
        { "wasi_rules", "renumber_closed_target" },
        { "wasi_rules_sock", "renumber_open_target" },
        { "wasi_rules_sock", "renumber_closed_target" },
        { "wasi_rules_sock", "sock_on_non_sockets" },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public Task Rule_Holds(string module, string rule) => Check(guests.Host, module, [rule]);

    public static TheoryData<string, string, bool> PollRules()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var rule in new[] { "poll_zero_subscriptions", "poll_clock_relative", "poll_clock_absolute", "poll_invalid_subscriptions" })
        {
            data.Add("wasi_rules", rule, true);
            data.Add("wasi_rules_sock", rule, true);
            data.Add("wasi_rules", rule, false);
        }
        return data;
    }

    /// <param name="ours">Our poll_oneoff; false: Wasmtime's own (the reference).</param>
    [Theory]
    [MemberData(nameof(PollRules))]
    public Task PollRule_Holds(string module, string rule, bool ours)
    {
        var host = guests.Host;
        if (!ours)
            owned.Add(host = new WasmHost(null, shadowPollOneoff: false));
        return Check(host, module, [rule]);
    }

    /// <summary>A terminal's stdio is a character device without seek/tell rights wherever it is renumbered to, a
    /// regular file is one wherever it is renumbered to (also onto a stdio number), with or without a terminal.</summary>
    [Theory]
    [InlineData("wasi_rules", true)]
    [InlineData("wasi_rules", false)]
    [InlineData("wasi_rules_sock", true)]
    [InlineData("wasi_rules_sock", false)]
    public Task FdstatOfTerminalAndFiles(string module, bool terminal) =>
        Check(guests.Host, module, ["fdstat_terminal", terminal ? "1" : "0"], terminal);
}

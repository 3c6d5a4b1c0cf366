using System.Text;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The differential suite's side-by-side record: each scenario appends what runc did and what we did
// to out/differential.md, so a run documents itself (the README's and the table come from it).
public static class ScenarioTable
{
    private static readonly Lock Gate = new();
    private static bool _started;

    // One file per containerd the suite ran against (make test runs it on 1.6, 1.7 and 2.1).
    public static string FilePath { get; } = Path.Combine(RepoLayout.Root, "out", $"differential-containerd-{ContainerdVersion()}.md");

    private static string ContainerdVersion()
    {
        var exe = Path.Combine(RepoLayout.ContainerdDir ?? "/usr/bin", "containerd");
        var version = ProcessRunner.Run(exe, ["--version"], TimeSpan.FromSeconds(10)).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return version.Length >= 3 ? version[2].Split('~', '+')[0].TrimStart('v') : "unknown";
    }

    /// <param name="difference">Why we differ by design.</param>
    /// <param name="knownLimit">Why we differ where we would rather not (a limit of a dependency, said in the README).</param>
    public static void Record(string scenario, string runc, string ours, string? difference = null, string? knownLimit = null)
    {
        lock (Gate)
        {
            if (!_started)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
                File.WriteAllText(FilePath,
                    "| scenario | runc (busybox) | wasmsharp (wasm) | |\n|---|---|---|---|\n");
                _started = true;
            }
            var verdict = knownLimit is not null ? $"known difference: {knownLimit}"
                : difference is null ? (runc == ours ? "same" : "**differs**") : $"differs by design: {difference}";
            File.AppendAllText(FilePath, $"| {Cell(scenario)} | {Cell(runc)} | {Cell(ours)} | {Cell(verdict)} |\n");
        }
    }

    private static string Cell(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in s)
            b.Append(c switch { '|' => "\\|", '\n' => "⏎", '\r' => "␍", _ => c.ToString() });
        return b.ToString();
    }
}

// Comparing event sequences: runc's shim on containerd 2.x sometimes exits after Shutdown before its
// queue has forwarded the last /tasks/delete (the event is then lost); ours drains its queue first.
// That one trailing event is the only difference allowed.
public static class EventSequences
{
    public const string RuncDropsDelete =
        "runc's shim sometimes exits before forwarding its last /tasks/delete (seen on containerd 2.1); ours drains its events before exiting";

    /// <summary>Whether ours agrees with runc's, and the by-design difference when runc lost its delete.</summary>
    public static (bool Agree, string? Difference) Compare(IReadOnlyList<string> runc, IReadOnlyList<string> ours)
    {
        if (runc.SequenceEqual(ours)) return (true, null);
        if (ours.Count == runc.Count + 1 && ours[^1] == "/tasks/delete" && ours.Take(runc.Count).SequenceEqual(runc))
            return (true, RuncDropsDelete);
        return (false, null);
    }
}

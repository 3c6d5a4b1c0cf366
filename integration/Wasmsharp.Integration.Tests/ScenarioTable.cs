using System.Text;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The differential suite's side-by-side record: each scenario appends what runc did and what we did
// to out/differential.md, so a run documents itself (the README's and the table come from it).
public static class ScenarioTable
{
    private static readonly Lock Gate = new();
    private static bool _started;

    public static string FilePath => Path.Combine(RepoLayout.Root, "out", "differential.md");

    public static void Record(string scenario, string runc, string ours, string? difference = null)
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
            var verdict = difference is null ? (runc == ours ? "same" : "**differs**") : $"differs by design: {difference}";
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

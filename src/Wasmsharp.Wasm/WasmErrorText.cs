namespace Wasmsharp.Wasm;

/// <summary>
/// Wasmtime's errors as one line that ends in the cause. Wasmtime (anyhow) writes a chain as
/// "context\n\nCaused by:\n    0: outer cause\n    1: inner cause", and a trap's context as
/// "error while executing at wasm backtrace:\n    0: 0x1c - m!f\nnote: ...". A log keeps the full text
/// (<see cref="ExitStatus.Describe"/>); a message a user reads inside another tool's (ctr prints
/// "ctr: ...: unknown") needs the chain on one line, outermost first, as Go joins wrapped errors.
/// </summary>
public static class WasmErrorText
{
    private const string CausedBy = "Caused by:";

    public static string OneLine(string message)
    {
        var parts = new List<string>();
        var inBacktrace = false;
        foreach (var raw in message.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line == CausedBy || line.StartsWith("note: ", StringComparison.Ordinal)) continue;
            if (line.EndsWith("wasm backtrace:", StringComparison.Ordinal))
            {
                // "error while executing at wasm backtrace:" keeps its words; the frames go.
                var context = line[..^"wasm backtrace:".Length].Trim();
                if (context.EndsWith(" at", StringComparison.Ordinal)) context = context[..^3];
                if (context.Length > 0) parts.Add(context);
                inBacktrace = true;
                continue;
            }
            var numbered = NumberedLine(line);
            if (inBacktrace && numbered is not null && (numbered.StartsWith("0x", StringComparison.Ordinal) || numbered.Contains('!'))) continue;
            inBacktrace = false;
            parts.Add((numbered ?? line).TrimEnd(':'));
        }
        return string.Join(": ", parts.Where((p, i) => i == 0 || p != parts[i - 1]));
    }

    // "0: text" (a chain's or a backtrace's numbering) → "text"; null for an unnumbered line.
    private static string? NumberedLine(string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !line.AsSpan(0, colon).Trim().ToString().All(char.IsAsciiDigit)) return null;
        return line[(colon + 1)..].Trim();
    }
}

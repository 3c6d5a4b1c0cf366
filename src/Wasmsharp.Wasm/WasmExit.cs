using System.Text;
using Wasmsharp.Linux;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>How a guest ended.</summary>
/// <param name="ExitCode">POSIX-style status: 0..255, 128+signal when killed, 134 for a trap.</param>
/// <param name="Message">Trap text with backtrace, kill or host error description; null on a normal exit.</param>
/// <param name="OutOfMemory">Killed for growing its memory past its limit (ExitCode 137).</param>
/// <param name="Killed">Ended by a signal (a kill, the memory limit's SIGKILL), which a process does not explain.</param>
public readonly record struct WasmExit(int ExitCode, string? Message, bool OutOfMemory = false, bool Killed = false)
{
    /// <summary>Why the guest failed, for its stderr (a trap and its backtrace, a host error): none for an exit
    /// or a kill.</summary>
    public string? Failure => Killed ? null : Message;
}

/// <summary>Thrown by our <c>proc_exit</c> so the exact status survives (Wasmtime drops statuses ≥ 126).</summary>
internal sealed class ProcExitException(int status) : Exception($"guest called proc_exit({status})")
{
    public int Status { get; } = status;
}

/// <summary>Thrown from the epoch-deadline callback of a store whose instance is being killed.</summary>
internal sealed class GuestKilledException(int signal) : Exception($"killed by signal {signal}")
{
    public int Signal { get; } = signal;
}

/// <summary>
/// The one place that turns the way a guest ended into an exit status.
/// <list type="bullet">
/// <item>killed (a kill was requested before the guest ended) → 128+signal; wins over the trap the kill causes
/// and over whatever else the guest did meanwhile (a real process hit by SIGKILL also reports the signal);</item>
/// <item>entrypoint returned → 0;</item>
/// <item>proc_exit(n) → n &amp; 0xFF (Linux keeps the low 8 bits of the status). The host shadows WASI's
/// proc_exit, so n is exact for every value. Wasmtime's own proc_exit reports n ≥ 126 only as the
/// error "exit with invalid exit status outside of [0..126)" without the number (ExitCode null); if such an
/// error still shows up the status is 255;</item>
/// <item>trap (TrapException; tested before WasmtimeException, its base; from a component's call an error whose
/// text says "wasm trap: ") → 134 (like SIGABRT), message + backtrace;</item>
/// <item>anything else (a host function failed with an error rather than an errno, an unexpected exception)
/// → 1 with the error text.</item>
/// </list>
/// </summary>
internal static class ExitStatus
{
    public const int Trap = 134;
    public const int HostError = 1;
    public const int UnknownProcExit = 255;

    // Text of wasmtime-wasi's error for proc_exit(n ≥ 126) (crates/wasi preview1 proc_exit).
    internal const string InvalidExitStatusText = "exit with invalid exit status";

    // How Wasmtime's Trap displays itself ("wasm trap: wasm `unreachable` instruction executed").
    internal const string TrapText = "wasm trap: ";

    /// <param name="error">What the entrypoint threw; null when it returned.</param>
    /// <param name="killSignal">Signal of a kill requested before the guest ended; 0 = none.</param>
    public static WasmExit FromOutcome(Exception? error, int killSignal)
    {
        if (killSignal > 0)
            return new WasmExit(Signals.ExitStatus(killSignal), $"killed by signal {killSignal} ({Signals.Name(killSignal)})", Killed: true);
        if (error is null)
            return new WasmExit(0, null);
        if (Find<ProcExitException>(error) is { } exit)
            return new WasmExit(exit.Status & 0xFF, null);
        if (error is TrapException trap)
            return new WasmExit(Trap, Describe(trap));
        if (error is WasmtimeException wasmtime)
        {
            if (wasmtime.ExitCode is int code)
                return new WasmExit(code & 0xFF, null);
            if (wasmtime.Message.Contains(InvalidExitStatusText, StringComparison.Ordinal))
                return new WasmExit(UnknownProcExit, wasmtime.Message);
            // A component's call reports a trap as an error, not as a wasm_trap_t: only its text tells.
            if (wasmtime.Message.Contains(TrapText, StringComparison.Ordinal))
                return new WasmExit(Trap, Describe(wasmtime));
            return new WasmExit(HostError, Describe(wasmtime));
        }
        return new WasmExit(HostError, $"host error: {error}");
    }

    private static T? Find<T>(Exception error) where T : Exception
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
            if (e is T t)
                return t;
        return null;
    }

    internal static string Describe(WasmtimeException error)
    {
        var text = new StringBuilder(CauseFirst(error.Message));
        var frames = error.Frames;
        if (frames is { Count: > 0 } && !error.Message.Contains("backtrace", StringComparison.Ordinal))
        {
            text.Append("\nwasm backtrace:");
            for (int i = 0; i < frames.Count; i++)
            {
                var f = frames[i];
                text.Append($"\n  {i,3}: {f.ModuleName ?? "<module>"}!{f.FunctionName ?? "<unknown>"}+0x{f.FunctionOffset:x}");
            }
        }
        if (error is not TrapException && error.InnerException is { } inner)
            text.Append($"\ncaused by: {inner.GetType().Name}: {inner.Message}");
        return text.ToString();
    }

    /// <summary>
    /// Wasmtime formats errors as "error while executing at wasm backtrace:\n  0: ...\nnote: ...\n\nCaused by:\n    wasm trap: ...".
    /// Put the cause on the first line (what a log line or an event shows), then the backtrace; drop the note
    /// about WASMTIME_BACKTRACE_DETAILS. Any other format is returned unchanged.
    /// </summary>
    internal static string CauseFirst(string message)
    {
        const string causedBy = "\nCaused by:\n";
        int at = message.IndexOf(causedBy, StringComparison.Ordinal);
        if (at < 0)
            return message.TrimEnd();
        var cause = string.Join("\n", message[(at + causedBy.Length)..]
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var context = message[..at]
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => !line.StartsWith("note: ", StringComparison.Ordinal))
            .Select(line => line.Replace("error while executing at wasm backtrace:", "wasm backtrace:", StringComparison.Ordinal));
        return cause + "\n" + string.Join("\n", context).TrimEnd();
    }
}

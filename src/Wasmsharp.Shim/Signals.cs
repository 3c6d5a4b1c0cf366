namespace Wasmsharp.Shim;

/// <summary>What a signal does to a process that installed no handlers — the situation of every Wasm guest.</summary>
internal static class Signals
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    // Default action "ignore" (SIGCHLD, SIGCONT, SIGURG, SIGWINCH) or "stop" (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
    private static readonly HashSet<int> DoesNotTerminate = [0, 17, 18, 19, 20, 21, 22, 23, 28];

    public static bool Terminates(int signal) => signal is > 0 and < 65 && !DoesNotTerminate.Contains(signal);

    /// <summary>The exit status a shell reports for a process killed by <paramref name="signal"/>.</summary>
    public static int ExitStatus(int signal) => 128 + signal;
}

namespace Wasmsharp.Linux;

/// <summary>
/// Linux's signals (x86-64 and arm64 numbering) and what each does to a process that installed no handlers —
/// the situation of every Wasm guest. The one home of signal numbers and names for the host and the shim.
/// </summary>
public static class Signals
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGTERM = 15, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19;

    /// <summary>The highest real-time signal number: signals are 1..Max (0 only probes).</summary>
    public const int Max = 64;

    private static readonly string[] Names =
    [
        "0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
        "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
    ];

    /// <summary>Whether the default action of <paramref name="signal"/> ends a process. It does not for
    /// "ignore" (SIGCHLD, SIGCONT, SIGURG, SIGWINCH), for "stop" (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU: stopping a
    /// guest is not supported), for 0 (a probe) and for numbers that are no signal.</summary>
    public static bool Terminates(int signal) => signal switch
    {
        <= 0 or > Max => false,
        17 or 18 or 23 or 28 => false,
        19 or 20 or 21 or 22 => false,
        _ => true,
    };

    /// <summary>The exit status a shell reports for a process killed by <paramref name="signal"/>.</summary>
    public static int ExitStatus(int signal) => 128 + signal;

    /// <summary>"SIGTERM", "SIGRTMIN+3", or the number for what is no signal.</summary>
    public static string Name(int signal) => signal switch
    {
        > 0 and < 32 => Names[signal],
        >= 34 and <= Max => signal == 34 ? "SIGRTMIN" : $"SIGRTMIN+{signal - 34}",
        _ => signal.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

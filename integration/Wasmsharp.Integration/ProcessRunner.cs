using System.Diagnostics;
using System.Text;

namespace Wasmsharp.Integration;

// What a command printed and how it ended; ToString() is written for assertion messages.
public sealed record ProcessResult(string Command, int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
{
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"$ {Command}");
        sb.AppendLine(TimedOut ? $"(timed out after {Elapsed.TotalSeconds:0.0} s, killed)" : $"(exit code {ExitCode}, {Elapsed.TotalMilliseconds:0} ms)");
        if (Stdout.Length > 0) sb.AppendLine("--- stdout ---").AppendLine(Stdout.TrimEnd());
        if (Stderr.Length > 0) sb.AppendLine("--- stderr ---").AppendLine(Stderr.TrimEnd());
        return sb.ToString();
    }
}

// A started command: its result once it ends, and a way to stop it early.
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new(), _stderr = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _stdoutPump, _stderrPump;
    private volatile bool _timedOut;

    public string Command { get; }
    public int Pid => _process.Id;
    public Task<ProcessResult> Completion { get; }

    internal RunningProcess(string file, IReadOnlyList<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment, Action<string>? onLine)
    {
        Command = string.Join(' ', new[] { file }.Concat(args).Select(ProcessRunner.ShellQuote));
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) psi.ArgumentList.Add(arg);
        if (environment is not null)
            foreach (var (key, value) in environment) psi.Environment[key] = value;

        _process = new Process { StartInfo = psi };
        _process.Start();
        // Commands here never read stdin: give them EOF at once (ctr attach would otherwise wait on us).
        _process.StandardInput.Close();
        // Raw reads, not line events: tests compare output byte for byte (a missing final newline counts).
        _stdoutPump = Pump(_process.StandardOutput, _stdout, onLine);
        _stderrPump = Pump(_process.StandardError, _stderr, onLine);
        Completion = Finish(timeout);
    }

    private static async Task Pump(StreamReader reader, StringBuilder into, Action<string>? onLine)
    {
        var buffer = new char[4096];
        var line = new StringBuilder();
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            lock (into) into.Append(buffer, 0, n);
            if (onLine is null) continue;
            for (var i = 0; i < n; i++)
            {
                if (buffer[i] != '\n') { line.Append(buffer[i]); continue; }
                onLine(line.ToString());
                line.Clear();
            }
        }
        if (onLine is not null && line.Length > 0) onLine(line.ToString());
    }

    private async Task<ProcessResult> Finish(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _timedOut = true;
            Kill();
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
        // Children that inherited the pipes (a shim daemon must not, but if it does) would hold them open:
        // do not wait for EOF forever.
        await Task.WhenAny(Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(2000)).ConfigureAwait(false);
        string stdout, stderr;
        lock (_stdout) stdout = _stdout.ToString();
        lock (_stderr) stderr = _stderr.ToString();
        return new ProcessResult(Command, _timedOut ? -1 : _process.ExitCode, stdout, stderr, _timedOut, _clock.Elapsed);
    }

    public void Kill()
    {
        try { _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // already exited
    }

    public ProcessResult Wait() => Completion.GetAwaiter().GetResult();

    public void Dispose()
    {
        if (!_process.HasExited) Kill();
        _process.Dispose();
    }
}

public static class ProcessRunner
{
    /// <summary>The argument as one POSIX shell word (quoted only when it needs to be).</summary>
    public static string ShellQuote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,@+%".Contains(c)) ? arg : $"'{arg.Replace("'", "'\\''")}'";

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static RunningProcess Start(string file, IReadOnlyList<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null, Action<string>? onLine = null) =>
        new(file, args, timeout ?? DefaultTimeout, environment, onLine);

    public static ProcessResult Run(string file, IReadOnlyList<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        using var process = Start(file, args, timeout, environment);
        return process.Wait();
    }

    // Run and throw with everything it printed if it fails: for set-up steps, not for assertions.
    public static ProcessResult RunChecked(string file, IReadOnlyList<string> args, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var result = Run(file, args, timeout, environment);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"command failed:\n{result}");
        return result;
    }
}

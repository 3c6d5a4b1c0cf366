using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Runs ctr inside a terminal of its own (ctr -t requires one): `script` provides it, and what ctr
// prints there comes out on script's stdout. script's input is a FIFO held open for as long as script
// runs, so script never sees end-of-file and ends only when ctr does, however slow the machine is.
public static class InTerminal
{
    /// <summary>Starts ctr in its terminal; <c>Input</c> is the FIFO that feeds the terminal (inside the base dir).</summary>
    public static (RunningProcess Ctr, string Input) Start(ContainerdFixture f, string[] ctrArgs)
    {
        var ctr = f.Containerd.CtrCommandLine(ctrArgs);
        var fifo = Path.Combine(f.Containerd.BaseDir, $"tty-in-{Guid.NewGuid():N}");
        var running = ProcessRunner.Start("/bin/sh",
            ["-c", $"set -e; mkfifo {ProcessRunner.ShellQuote(fifo)}; exec 3<>{ProcessRunner.ShellQuote(fifo)}; exec script -qec {ProcessRunner.ShellQuote(ctr)} /dev/null <&3"],
            ContainerdFixture.RunTimeout);
        return (running, fifo);
    }

    /// <summary>Runs ctr to its end; <paramref name="keys"/> are typed once task <paramref name="id"/> runs and has had a moment to reach its read.</summary>
    public static ProcessResult Run(ContainerdFixture f, string id, string? keys, string[] ctrArgs)
    {
        var (running, fifo) = Start(f, ctrArgs);
        try
        {
            if (keys is not null &&
                ContainerdFixture.Eventually(() => f.Containerd.Task(id) is { Status: "RUNNING" } || running.Completion.IsCompleted, ContainerdFixture.RunTimeout))
            {
                Thread.Sleep(500);
                File.AppendAllText(fifo, keys);
            }
            return running.Wait();
        }
        finally
        {
            running.Dispose();
            File.Delete(fifo);
        }
    }
}

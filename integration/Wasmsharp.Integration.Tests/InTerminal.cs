using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Runs ctr inside a terminal of its own (ctr -t requires one): `script` provides it, and what ctr
// prints there comes out on script's stdout. script's input is a FIFO held open for as long as script
// runs, so script never sees end-of-file and ends only when ctr does, however slow the machine is.
// Keys are typed once the task runs and has had a moment to reach its read.
public static class InTerminal
{
    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    public static ProcessResult Run(ContainerdFixture f, string id, string? keys, string[] ctrArgs)
    {
        var ctr = $"{f.Containerd.CtrExe} {string.Join(' ', f.Containerd.CtrArgs(ctrArgs).Select(Quote))}";
        var fifo = Path.Combine(f.Containerd.BaseDir, $"tty-in-{Guid.NewGuid():N}");
        try
        {
            using var running = ProcessRunner.Start("/bin/sh", ["-c", $"set -e; mkfifo {Quote(fifo)}; exec 3<>{Quote(fifo)}; exec script -qec {Quote(ctr)} /dev/null <&3"],
                ContainerdFixture.RunTimeout);
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
            File.Delete(fifo);
        }
    }
}

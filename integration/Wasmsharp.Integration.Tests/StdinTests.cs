using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// ctr attaches its own stdin to every task: the guest reads it and sees end-of-file when the input ends.
// Intentional difference from runc: runc's shim holds the stdin FIFO open itself and passes EOF on only
// at CloseIO, which ctr 1.6 skips when its input ends before the task is created (a race in ctr: with
// `printf x | ctr run ... cat` the runc container never ends). We also pass EOF on when every writer has
// closed the FIFO, so piping into ctr works; Docker and CRI keep their writer open and use CloseIO.
[Collection(ContainerdCollection.Name)]
public sealed class StdinTests(ContainerdFixture f)
{
    private ProcessResult Piped(string input, string[] ctrArgs)
    {
        // The shell feeds ctr's stdin, as a user's pipeline would.
        var command = $"{input} | {f.Containerd.CtrCommandLine(ctrArgs)}";
        return ProcessRunner.Run("/bin/sh", ["-c", command], ContainerdFixture.RunTimeout);
    }

    [Fact]
    public void Guest_reads_piped_stdin_to_the_end()
    {
        var id = f.NewId("stdin");
        var run = Piped("printf 'one\\ntwo\\n'", ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/cat.wasm"]);
        f.Check(run.ExitCode == 0 && run.Stdout == "one\ntwo\n", "the wasm cat should echo its stdin, then end at end-of-file", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Large_stdin_arrives_whole()
    {
        // Several times a pipe's capacity, so the shim's pump must keep feeding a slow reader.
        var id = f.NewId("stdin-large");
        var run = Piped("head -c 1000000 /dev/zero", ["run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/cat.wasm", "count"]);
        f.Check(run.ExitCode == 0 && run.Stdout == "1000000\n", "the guest should read all 1000000 bytes, then end-of-file", id, run);
    }
}

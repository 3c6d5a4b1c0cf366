using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr run --log-uri`: containerd's cio.LogURI puts the same URI in stdout and stderr of Create.
// file:// appends both streams to one file (never truncating it); binary:// starts a logging binary
// with the pipes on fds 3 and 4 (nerdctl's way). Like runc's shim, Delete returns only once the output
// has been delivered, so the files are complete when `ctr run --rm` returns.
[Collection(ContainerdCollection.Name)]
public sealed class LogUriTests(ContainerdFixture f)
{
    private static readonly string[] OutLines = ["out 1", "out 2", "out 3"];
    private static readonly string[] ErrLines = ["err 1", "err 2", "err 3"];

    [Fact]
    public void File_uri_appends_stdout_and_stderr_to_the_file()
    {
        var id = f.NewId("log-file");
        var dir = f.HostDir(id);
        var log = Path.Combine(dir, "logs", "nested", "c.log");   // parents do not exist yet
        var run = f.RunWasm(id, ["--log-uri", "file://" + log], "/output.wasm", "3");
        f.Check(run.ExitCode == 0, "the run should succeed", id, run);
        f.Check(File.Exists(log), $"{log} should have been created", id, run);
        var lines = ContainerdFixture.Lines(File.ReadAllText(log));
        f.Check(lines.Where(l => l.StartsWith("out ")).SequenceEqual(OutLines) && lines.Where(l => l.StartsWith("err ")).SequenceEqual(ErrLines) && lines.Count == 6,
            $"the log file should hold the guest's 3 stdout and 3 stderr lines, each stream in order; it has:\n{string.Join("\n", lines)}", id, run);
        f.Check(run.Stdout.Length == 0, "nothing should reach ctr's own stdout", id, run);
        f.AssertNothingLeft(id, run);

        // A second container logging to the same file appends.
        var id2 = f.NewId("log-file");
        var run2 = f.RunWasm(id2, ["--log-uri", "file://" + log], "/hello.wasm");
        f.Check(run2.ExitCode == 0, "the second run should succeed", id2, run2);
        var all = ContainerdFixture.Lines(File.ReadAllText(log));
        f.Check(all.Count == 8 && all.Take(6).SequenceEqual(lines) && all.Skip(6).Order().SequenceEqual(["hello from wasm", "hello on stderr"]),
            $"the second run should append, not truncate; the file has:\n{string.Join("\n", all)}", id2, run2);
        f.AssertNothingLeft(id2, run2);
    }

    [Fact]
    public void Binary_uri_runs_the_logger_with_the_guest_output_on_fds_3_and_4()
    {
        var id = f.NewId("log-binary");
        var dir = f.HostDir(id);
        var logger = Path.Combine(dir, "logger.sh");
        // Ignores SIGTERM so it exits only when both pipes reached end-of-file: all output copied.
        File.WriteAllText(logger, """
            #!/bin/sh
            trap '' TERM
            dir=$2
            echo "id=$CONTAINER_ID ns=$CONTAINER_NAMESPACE args=$*" > "$dir/env"
            exec 5>&-
            cat <&3 > "$dir/stdout" &
            cat <&4 > "$dir/stderr" &
            wait
            """);
        File.SetUnixFileMode(logger, (UnixFileMode)0b111_101_101);
        var run = f.RunWasm(id, ["--log-uri", $"binary://{logger}?dir={dir}"], "/output.wasm", "3");
        f.Check(run.ExitCode == 0, "the run should succeed", id, run);
        string Read(string name) => File.Exists(Path.Combine(dir, name)) ? File.ReadAllText(Path.Combine(dir, name)) : "(missing)";
        f.Check(Read("env").Trim() == $"id={id} ns={ContainerdFixture.Namespace} args=dir {dir}",
            $"the logger should get CONTAINER_ID, CONTAINER_NAMESPACE and the query as arguments; it wrote: {Read("env")}", id, run);
        f.Check(Read("stdout") == "out 1\nout 2\nout 3\n", $"fd 3 should carry the guest's stdout; got: {Read("stdout")}", id, run);
        f.Check(Read("stderr") == "err 1\nerr 2\nerr 3\n", $"fd 4 should carry the guest's stderr; got: {Read("stderr")}", id, run);
        f.AssertNothingLeft(id, run);
        var loggers = ProcFs.Processes().Where(p => p.CommandLine.Contains(logger, StringComparison.Ordinal)).ToList();
        f.Check(loggers.Count == 0, $"the logger should have exited: {string.Join("; ", loggers.Select(p => p.CommandLine))}", id, run);
    }

    [Fact]
    public void Unknown_log_uri_scheme_fails_the_create()
    {
        var id = f.NewId("log-bad");
        var run = f.RunWasm(id, ["--log-uri", "syslog:///dev/log"], "/hello.wasm");
        f.Check(run.ExitCode != 0 && (run.Stderr + run.Stdout).Contains("unknown STDIO scheme syslog", StringComparison.Ordinal),
            "an unknown scheme should fail with a clear error", id, run);
        f.AssertNothingLeft(id, run);
    }
}

using System.Text;
using Wasmsharp.Shim;

public class StdioUriTests
{
    [Fact]
    public void PlainPathIsAFifo()
    {
        var u = StdioUri.Parse("/run/containerd/fifo/1/c-stdout");
        Assert.Equal(StdioUri.Fifo, u.Scheme);
        Assert.Equal("/run/containerd/fifo/1/c-stdout", u.Path);
        Assert.Empty(u.Args);
        Assert.Equal(("fifo", "/x/y"), (StdioUri.Parse("fifo:///x/y").Scheme, StdioUri.Parse("fifo:///x/y").Path));
    }

    [Fact]
    public void FileUriNamesAFile()
    {
        var u = StdioUri.Parse("file:///var/log/my%20app/c.log");
        Assert.Equal(StdioUri.File, u.Scheme);
        Assert.Equal("/var/log/my app/c.log", u.Path);
        // A host part is ignored, as Go's url.URL.Path does not include it.
        Assert.Equal("/c.log", StdioUri.Parse("file://localhost/c.log").Path);
    }

    [Fact]
    public void BinaryUriArgsAreKeyThenFirstValueInQueryOrder()
    {
        var u = StdioUri.Parse("binary:///usr/local/bin/logger?_NERDCTL_INTERNAL_LOGGING=/var/lib/nerdctl/1935db59&b=two+words&flag&b=ignored&c=%2Fx%3D1");
        Assert.Equal(StdioUri.Binary, u.Scheme);
        Assert.Equal("/usr/local/bin/logger", u.Path);
        Assert.Equal(["_NERDCTL_INTERNAL_LOGGING", "/var/lib/nerdctl/1935db59", "b", "two words", "flag", "", "c", "/x=1"], u.Args);
        Assert.Empty(StdioUri.Parse("binary:///bin/logger").Args);
    }

    [Fact]
    public void UnknownSchemeIsAClearError()
    {
        var e = Assert.Throws<NotSupportedException>(() => StdioUri.Parse("syslog:///dev/log"));
        Assert.Contains("unknown STDIO scheme syslog", e.Message);
        Assert.Throws<NotSupportedException>(() => StdioUri.Parse("binary://"));
        Assert.Throws<NotSupportedException>(() => StdioUri.Parse("file://"));
    }
}

// Stdio against real files, pipes and processes, without containerd: the guest's side is played by
// writing to the paths Stdio hands out, as Wasmtime would open them (O_WRONLY|O_CREAT|O_TRUNC).
public class StdioOutputTests
{
    private static void GuestWrite(string path, string text)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);   // O_TRUNC, like Wasmtime
        f.Write(Encoding.UTF8.GetBytes(text));
    }

    [Fact]
    public void FileUriAppendsBothStreamsAndCreatesParents()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-file-").FullName;
        try
        {
            var log = Path.Combine(dir, "a", "b", "c.log");
            Directory.CreateDirectory(Path.GetDirectoryName(log)!);
            File.WriteAllText(log, "before\n");
            var uri = "file://" + log;
            using (var stdio = new Stdio("", uri, uri, terminal: false, "c1"))
            {
                Assert.StartsWith("/proc/self/fd/", stdio.GuestStdout);
                Assert.StartsWith("/proc/self/fd/", stdio.GuestStderr);
                GuestWrite(stdio.GuestStdout!, string.Concat(Enumerable.Range(0, 20000).Select(i => $"out {i}\n")));
                GuestWrite(stdio.GuestStderr!, "err 1\n");
            }
            // Each stream arrives whole and in order; the two may interleave anywhere (as with runc).
            var text = File.ReadAllText(log);
            var at = text.IndexOf("err 1\n", StringComparison.Ordinal);
            Assert.True(at >= 0, "stderr's line is missing");
            Assert.Equal("before\n" + string.Concat(Enumerable.Range(0, 20000).Select(i => $"out {i}\n")), text.Remove(at, "err 1\n".Length));

            var fresh = Path.Combine(dir, "new", "dir", "x.log");                    // parents made for us
            using (var stdio = new Stdio("", "file://" + fresh, "file://" + fresh, terminal: false, "c1"))
            {
                GuestWrite(stdio.GuestStdout!, "hi\n");
            }
            Assert.Equal("hi\n", File.ReadAllText(fresh));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BinaryUriStartsTheLoggerWithPipesEnvAndArgs()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-binary-").FullName;
        try
        {
            var script = Path.Combine(dir, "logger.sh");
            File.WriteAllText(script, $$"""
                #!/bin/sh
                grep -E '^SigIgn' /proc/self/status > {{dir}}/signals
                trap '' TERM
                echo "$CONTAINER_ID $CONTAINER_NAMESPACE $# $1 $2 $(env | grep -c .)" > {{dir}}/env
                exec 5>&-
                cat <&3 > {{dir}}/out &
                cat <&4 > {{dir}}/err &
                wait
                """);
            File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
            using (var stdio = new Stdio("", $"binary://{script}?dir={dir}", $"binary://{script}?dir={dir}", terminal: false, "c7", "ns7"))
            {
                // Readiness was awaited: the logger is running and has set up its copies.
                Assert.True(File.Exists(Path.Combine(dir, "env")));
                GuestWrite(stdio.GuestStdout!, "to stdout\n");
                GuestWrite(stdio.GuestStderr!, "to stderr\n");
            }
            // Dispose waited for the logger to exit, after it copied everything.
            Assert.Equal("to stdout\n", File.ReadAllText(Path.Combine(dir, "out")));
            Assert.Equal("to stderr\n", File.ReadAllText(Path.Combine(dir, "err")));
            var env = File.ReadAllText(Path.Combine(dir, "env")).Trim().Split(' ');
            Assert.Equal("c7", env[0]);
            Assert.Equal("ns7", env[1]);
            Assert.Equal(["2", "dir", dir], env[2..5]);
            // No standard signal ignored (the .NET runtime ignores SIGPIPE; the logger must not inherit
            // that; an ignored disposition survives fork and exec, so grep sees it). glibc's internal
            // signals 32 and 33 are outside what sigfillset covers.
            var signals = File.ReadAllLines(Path.Combine(dir, "signals")).ToDictionary(l => l.Split(':')[0], l => Convert.ToUInt64(l.Split('\t')[1], 16));
            Assert.Equal(0UL, signals["SigIgn"] & 0x7FFF_FFFF);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MissingLoggerFailsCreate()
    {
        Assert.ThrowsAny<Exception>(() => new Stdio("", "binary:///nonexistent/logger", "", terminal: false, "c1"));
    }
}

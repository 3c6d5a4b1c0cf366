using System.Diagnostics;
using System.Text;
using Wasmsharp.Linux;
using Wasmsharp.Shim;

// terminal=true: a pty whose slave is the guest's stdio; the master is copied to the stdout FIFO and
// the stdin FIFO into the master. The guest's side is played by opening the slave path, as Wasmtime does.
public class TerminalTests
{
    private static string ReadUntil(FileStream stream, string expected, TimeSpan timeout)
    {
        var got = new StringBuilder();
        var buffer = new byte[256];
        var clock = Stopwatch.StartNew();
        while (!got.ToString().Contains(expected) && clock.Elapsed < timeout)
        {
            var task = stream.ReadAsync(buffer, 0, buffer.Length);
            if (!task.Wait(timeout)) break;
            if (task.Result == 0) break;
            got.Append(Encoding.UTF8.GetString(buffer, 0, task.Result));
        }
        return got.ToString();
    }

    [Fact]
    public async Task PtyCarriesOutputToStdoutFifoAndStdinFifoToTheGuest()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-tty-").FullName;
        try
        {
            var stdin = Path.Combine(dir, "stdin");
            var stdout = Path.Combine(dir, "stdout");
            StdioFifoTests.MkFifo(stdin);
            StdioFifoTests.MkFifo(stdout);
            // The client begins reading stdout before Create, as ctr does (the shim waits for that).
            var opening = Task.Run(() => new FileStream(stdout, FileMode.Open, FileAccess.Read));
            using var stdio = new Stdio(stdin, stdout, "", terminal: true, "c1");
            Assert.StartsWith("/dev/pts/", stdio.GuestStdout);
            Assert.Equal(stdio.GuestStdout, stdio.GuestStdin);
            Assert.Equal(stdio.GuestStdout, stdio.GuestStderr);

            // The client: reads stdout, writes stdin.
            using var client = await opening.WaitAsync(TimeSpan.FromSeconds(5));
            using var input = new FileStream(stdin, FileMode.Open, FileAccess.Write);

            using (var guestOut = new FileStream(stdio.GuestStdout!, FileMode.Open, FileAccess.Write))
            {
                guestOut.Write("hello tty\n"u8);
                guestOut.Flush();
            }
            // The line discipline's ONLCR turns \n into \r\n, as on any terminal.
            Assert.Contains("hello tty\r\n", ReadUntil(client, "hello tty\r\n", TimeSpan.FromSeconds(5)));

            input.Write("typed\n"u8);
            input.Flush();
            using var guestIn = new FileStream(stdio.GuestStdin!, FileMode.Open, FileAccess.Read);
            Assert.Equal("typed\n", ReadUntil(guestIn, "typed\n", TimeSpan.FromSeconds(5)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void ResizeSetsTheWindowSize()
    {
        using var pty = Pty.Open();
        pty.Resize(132, 43);
        Assert.Equal(((ushort)132, (ushort)43), pty.Size());
        using var stdio = new Stdio("", "", "", terminal: true, "c1");
        Assert.True(stdio.Resize(80, 25));
        using var plain = new Stdio("", "", "", terminal: false, "c1");
        Assert.False(plain.Resize(80, 25));
    }
}

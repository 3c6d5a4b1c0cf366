using System.Diagnostics;
using Wasmsharp.Linux;
using Wasmsharp.Shim;

// Output FIFOs as ctr, Docker and the CRI plugin use them: the client starts a blocking read open in the
// background before it sends Create, and if the task is deleted before that open returned, releases it
// by opening the FIFO's other side (containerd's fifo package), after which it reads end-of-file.
public class StdioFifoTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    internal static void MkFifo(string path)
    {
        using var p = Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    // A thread of its own, as the client is another process: a busy thread pool must not delay its open.
    private static Task<string> Client(string fifo, TimeSpan late) => Task.Factory.StartNew(() =>
    {
        Thread.Sleep(late);
        using var stream = new FileStream(fifo, FileMode.Open, FileAccess.Read);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }, TaskCreationOptions.LongRunning);

    private static async Task<string> Collect(Task<string> client, string fifo)
    {
        if (await Task.WhenAny(client, Task.Delay(Timeout)) != client) new FifoReader(fifo).ReleaseOpen();
        return await client.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Output_of_a_guest_that_ended_before_its_client_began_to_read_reaches_the_client()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-fifo-").FullName;
        try
        {
            var stdout = Path.Combine(dir, "stdout");
            var stderr = Path.Combine(dir, "stderr");
            MkFifo(stdout);
            MkFifo(stderr);
            // The stdout client is slow to start (a loaded machine); the stderr one is already waiting.
            var outClient = Client(stdout, TimeSpan.FromMilliseconds(300));
            var errClient = Client(stderr, TimeSpan.Zero);
            using (var stdio = new Stdio("", stdout, stderr, terminal: false, "c1"))
            {
                File.WriteAllText(stdio.GuestStdout!, "hello\n");
                File.WriteAllText(stdio.GuestStderr!, "oops\n");
                stdio.CloseOutput(); // the guest has ended
                Assert.Empty(stdio.FifosWithoutReader);
            }
            Assert.Equal("hello\n", await Collect(outClient, stdout));
            Assert.Equal("oops\n", await Collect(errClient, stderr));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ctr 2.x cancels its copy of the FIFOs once it has the exit. The client here has opened the FIFO at once (its
    // open is what Create waits for) but reads only later, as a descheduled reader on a busy node does; the exit,
    // which CloseOutput precedes, must not go out before the guest's last output has been read.
    [Fact]
    public async Task The_exit_waits_until_a_client_that_opened_the_fifo_has_read_the_output()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-fifo-").FullName;
        try
        {
            var stdout = Path.Combine(dir, "stdout");
            MkFifo(stdout);
            var opened = new ManualResetEventSlim();
            long readAt = 0;
            var client = Task.Factory.StartNew(() =>
            {
                using var stream = new FileStream(stdout, FileMode.Open, FileAccess.Read);
                opened.Set();
                Thread.Sleep(150);
                var buffer = new byte[64];
                var n = stream.Read(buffer);
                Interlocked.Exchange(ref readAt, Stopwatch.GetTimestamp());
                var text = System.Text.Encoding.UTF8.GetString(buffer, 0, n);
                using var reader = new StreamReader(stream);
                return text + reader.ReadToEnd();
            }, TaskCreationOptions.LongRunning);
            long closedAt;
            using (var stdio = new Stdio("", stdout, "", terminal: false, "c1"))
            {
                Assert.True(opened.Wait(Timeout));
                File.WriteAllText(stdio.GuestStdout!, "last words\n");
                stdio.CloseOutput(); // the guest has ended; its exit is published after this
                closedAt = Stopwatch.GetTimestamp();
            }
            Assert.Equal("last words\n", await Collect(client, stdout));
            Assert.True(Interlocked.Read(ref readAt) != 0 && Interlocked.Read(ref readAt) <= closedAt,
                "CloseOutput returned before the client had read the output");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_fifo_nobody_reads_is_still_opened_after_the_wait_and_said_so()
    {
        var dir = Directory.CreateTempSubdirectory("stdio-fifo-").FullName;
        try
        {
            var fifo = Path.Combine(dir, "stdout");
            MkFifo(fifo);
            using var handle = Files.OpenFifoForOutput(fifo, TimeSpan.FromMilliseconds(100), out var readerArrived);
            Assert.False(readerArrived);
            // Read-write: writing does not block or fail for want of a reader.
            Pipes.WriteAll(handle, "kept\n"u8);
            var buffer = new byte[16];
            Assert.Equal(5, Descriptors.Read(handle, buffer, Timeout));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_regular_file_is_opened_without_waiting()
    {
        var file = Path.GetTempFileName();
        try
        {
            using var handle = Files.OpenFifoForOutput(file, Timeout, out var readerArrived);
            Assert.True(readerArrived);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

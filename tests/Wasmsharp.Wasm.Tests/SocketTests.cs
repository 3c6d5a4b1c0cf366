using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Wasmsharp.Wasm.Tests;

/// <summary>WasmEdge's socket extension, in a network namespace each test makes (127.0.0.1 only).</summary>
[Collection(SocketCollection.Name)]
public sealed class SocketTests(SocketGuests guests, ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly NetNamespace ns = new();
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-socket-case-").FullName;
    private readonly List<WasmInstance> instances = [];
    private readonly List<Socket> clients = [];

    public void Dispose()
    {
        foreach (var c in clients)
            c.Dispose();
        foreach (var i in instances)
            i.Dispose();
        ns.Dispose();
        Directory.Delete(work, recursive: true);
    }

    private (WasmInstance Instance, string Stdout) Start(string module, string[] args, bool network = true,
        long? limit = null, bool preopen = true, string? hosts = null, string? resolv = null)
    {
        var stdout = Path.Combine(work, $"{module}-{Guid.NewGuid():N}.out");
        var loaded = guests.Load(module);
        var spec = new WasiSpec
        {
            Args = [module, .. args],
            StdoutPath = stdout,
            Preopens = preopen ? [new Preopen(work, "/data", ReadOnly: false)] : [],
            NetworkAccess = network,
            DescriptorLimit = limit,
            HostsFile = hosts,
            ResolvConf = resolv,
        };
        var instance = ns.Run(() => guests.Host.Prepare(loaded, spec)); // the guest thread inherits the namespace
        instances.Add(instance);
        instance.Start();
        return (instance, stdout);
    }

    private Socket Connect(int port)
    {
        var socket = ns.Connect(port);
        clients.Add(socket);
        return socket;
    }

    private static string Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(file).ReadToEnd();
    }

    private static async Task WaitForOutput(string stdout, Func<string, bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition(File.Exists(stdout) ? Read(stdout) : ""))
        {
            Assert.True(clock.Elapsed < Timeout, $"timed out waiting for output; got: {Read(stdout)}");
            await Task.Delay(5);
        }
    }

    private async Task<string> Finish(WasmInstance instance, string stdout, int expected = 0)
    {
        var exit = await instance.Completion.WaitAsync(Timeout);
        var text = Read(stdout);
        output.WriteLine(text);
        Assert.True(exit.ExitCode == expected, $"exit {exit.ExitCode} ({exit.Message}): {text}");
        return text;
    }

    private static string ReceiveAll(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        socket.ReceiveTimeout = 10_000;
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            received.Write(buffer, 0, n);
        return Encoding.ASCII.GetString(received.ToArray());
    }

    [Fact]
    public async Task Httpd_AnswersRequestsFromTheDocrootAndLogsThem()
    {
        File.WriteAllText(Path.Combine(work, "index.html"), "<h1>it works</h1>\n");
        var (instance, stdout) = Start("httpd", ["8080", "/data"]);
        await WaitForOutput(stdout, s => s.Contains("listening on port 8080"));
        foreach (var (path, status, body) in new[] { ("/", "200 OK", "<h1>it works</h1>\n"), ("/missing", "404 Not Found", "not found\n") })
        {
            var client = Connect(8080);
            client.Send(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"));
            var response = ReceiveAll(client);
            Assert.StartsWith($"HTTP/1.0 {status}\r\n", response);
            Assert.EndsWith("\r\n\r\n" + body, response);
        }
        await WaitForOutput(stdout, s => s.Contains("GET /missing 404"));
        Assert.Matches(@"GET / 200 18 127\.0\.0\.1:\d+\n", Read(stdout));
        Assert.True(instance.Kill(15));
        Assert.Equal(143, (await instance.Completion.WaitAsync(Timeout)).ExitCode);
    }

    [Fact]
    public async Task Httpd_WithoutDocrootAnswersAFixedBody()
    {
        var (_, stdout) = Start("httpd", ["8081"]);
        await WaitForOutput(stdout, s => s.Contains("listening"));
        var client = Connect(8081);
        client.Send("GET /anything HTTP/1.0\r\n\r\n"u8.ToArray());
        Assert.EndsWith("\r\n\r\nhello from wasmsharp\n", ReceiveAll(client));
    }

    [Fact]
    public async Task Client_ResolvesConnectsSendsAndReceives()
    {
        File.WriteAllText(Path.Combine(work, "hosts"), "127.0.0.1 localhost\n10.1.2.3 web.internal web # comment\n");
        var listener = ns.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9000));
            l.Listen();
            return l;
        });
        clients.Add(listener);
        var server = Task.Run(() =>
        {
            using var peer = listener.Accept();
            var buffer = new byte[5];
            int got = 0;
            while (got < 5)
                got += peer.Receive(buffer, got, 5 - got, SocketFlags.None);
            peer.Send(Encoding.ASCII.GetBytes("pong:" + Encoding.ASCII.GetString(buffer)));
            peer.Shutdown(SocketShutdown.Both);
        });
        var (instance, stdout) = Start("sockclient", ["9000"], hosts: Path.Combine(work, "hosts"));
        var text = await Finish(instance, stdout);
        await server.WaitAsync(Timeout);
        Assert.Contains("gai localhost rc=0 n=1 127.0.0.1:9000/t2/p1/l16\n", text);
        Assert.Contains("gai 127.0.0.1 rc=0 n=1 127.0.0.1:80/t2/p1/l16\n", text);
        Assert.Contains("gai web.internal rc=0 n=1 10.1.2.3:8080/t2/p1/l16\n", text);
        Assert.Contains("gai nosuch.example rc=84 n=0\n", text);
        Assert.Contains("connect rc=0\n", text);
        Assert.Contains("local rc=0 type=4 127.0.0.1 port>0=1\n", text);
        Assert.Contains("peer rc=0 type=4 127.0.0.1:9000\n", text);
        Assert.Contains("send rc=0 sent=5\n", text);
        Assert.Contains("recv rc=0 got=pong:ping\n", text);
        Assert.Contains("refused rc=14\n", text);
    }

    // A DNS server of the test's own on 127.0.0.1:53 of the test's namespace: A records for api.cluster.test and
    // db.example (CNAME chain end included), AAAA for api.cluster.test, NXDOMAIN for anything else. Counts queries.
    private sealed class TestDns : IDisposable
    {
        private readonly Socket socket;
        private readonly Thread thread;
        public int Queries;

        public TestDns(NetNamespace ns)
        {
            socket = ns.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 53));
                return s;
            });
            thread = new Thread(Serve) { IsBackground = true };
            thread.Start();
        }

        private void Serve()
        {
            var buffer = new byte[512];
            System.Net.EndPoint from = new System.Net.IPEndPoint(System.Net.IPAddress.Any, 0);
            while (true)
            {
                int n;
                try { n = socket.ReceiveFrom(buffer, ref from); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                Interlocked.Increment(ref Queries);
                // Question name and type.
                var labels = new List<string>();
                int at = 12;
                while (buffer[at] != 0) { labels.Add(Encoding.ASCII.GetString(buffer, at + 1, buffer[at])); at += 1 + buffer[at]; }
                at++;
                var name = string.Join('.', labels);
                int type = buffer[at] << 8 | buffer[at + 1];
                int questionEnd = at + 4;
                var answer = new MemoryStream();
                answer.Write(buffer, 0, questionEnd);
                var reply = answer.GetBuffer();
                reply[2] = 0x81; reply[3] = 0x80; // response, RD, RA, NOERROR
                var records = new List<byte[]>();
                byte[] Record(ushort rrType, byte[] data) =>
                    [0xc0, 12, (byte)(rrType >> 8), (byte)rrType, 0, 1, 0, 0, 0, 60, (byte)(data.Length >> 8), (byte)data.Length, .. data];
                if (name == "api.cluster.test" && type == 1) records.Add(Record(1, [10, 9, 8, 7]));
                else if (name == "api.cluster.test" && type == 28) records.Add(Record(28, [0xfd, 0x00, .. new byte[14]]));
                else if (name == "db.example" && type == 1)
                {
                    records.Add(Record(5, [2, (byte)'d', (byte)'b', 0])); // CNAME db. (skipped: not an address)
                    records.Add(Record(1, [10, 0, 0, 5]));
                }
                else if (name != "api.cluster.test" && name != "db.example") reply[3] = 0x83; // NXDOMAIN
                answer.Position = 0;
                answer.Write(reply, 0, questionEnd);
                answer.Position = questionEnd;
                foreach (var record in records) answer.Write(record);
                var bytes = answer.ToArray();
                bytes[6] = 0; bytes[7] = (byte)records.Count;
                socket.SendTo(bytes, from);
            }
        }

        public void Dispose() => socket.Dispose();
    }

    [Fact]
    public async Task Getaddrinfo_AsksTheContainersDnsServersInItsNamespaceWithItsSearchList()
    {
        using var dns = new TestDns(ns);
        File.WriteAllText(Path.Combine(work, "hosts"), "127.0.0.1 localhost\n10.1.2.3 web.internal\n");
        File.WriteAllText(Path.Combine(work, "resolv.conf"), "# as Docker or kubelet writes it\nnameserver 127.0.0.1\nsearch cluster.test\noptions ndots:2 timeout:1\n");
        var (instance, stdout) = Start("resolve", ["api", "db.example", "web.internal", "nosuch", "10.0.0.1"],
            hosts: Path.Combine(work, "hosts"), resolv: Path.Combine(work, "resolv.conf"));
        var text = await Finish(instance, stdout);
        Assert.Contains("gai api rc=0 n=2 10.9.8.7:80/t2/p1/l16 v6(last=0):80/t2/p1/l28\n", text); // via the search list, A then AAAA
        Assert.Contains("gai db.example rc=0 n=1 10.0.0.5:80/", text);  // one dot < ndots 2: cluster.test first (NXDOMAIN), then as is
        Assert.Contains("gai web.internal rc=0 n=1 10.1.2.3:80/", text); // the hosts file first: no query
        Assert.Contains("gai nosuch rc=84 n=0\n", text);
        Assert.Contains("gai 10.0.0.1 rc=0 n=1 10.0.0.1:80/", text);
        Assert.Equal(2 + 4 + 4, dns.Queries); // api: A+AAAA; db.example and nosuch: two names × A+AAAA; none for the rest
    }

    [Fact]
    public async Task PollServer_ServesTwoClientsAtOnce()
    {
        var (instance, stdout) = Start("pollserver", ["9100"]);
        await WaitForOutput(stdout, s => s.Contains("ready"));
        var a = Connect(9100);
        var b = Connect(9100);
        b.Send("from b\n"u8.ToArray()); // b first, while a is connected and silent
        Assert.Equal("echo: from b\n", Receive(b, 13));
        a.Send("from a\n"u8.ToArray());
        Assert.Equal("echo: from a\n", Receive(a, 13));
        a.Shutdown(SocketShutdown.Send);
        b.Shutdown(SocketShutdown.Send);
        var text = await Finish(instance, stdout);
        Assert.Contains("both done", text);
    }

    private static string Receive(Socket socket, int bytes)
    {
        var buffer = new byte[bytes];
        socket.ReceiveTimeout = 10_000;
        int got = 0;
        while (got < bytes)
        {
            int n = socket.Receive(buffer, got, bytes - got, SocketFlags.None);
            if (n == 0)
                break;
            got += n;
        }
        return Encoding.ASCII.GetString(buffer, 0, got);
    }

    [Fact]
    public async Task Descriptors_BehaveAsSocketsAndInterleaveWithFiles()
    {
        var (instance, stdout) = Start("sockmisc", ["9200"]);
        var text = await Finish(instance, stdout);
        Assert.Contains("fdstat type=6 flags=0\n", text);
        Assert.Contains("nonblock flags=4 filestat type=6\n", text);
        Assert.Contains("accept_v1 nonblocking rc=6\n", text); // EAGAIN, older generation of sock_accept
        Assert.Contains("local_v2 rc=0 family=1 127.0.0.1:9200\n", text);
        Assert.Contains("idle+clock rc=0 n=1 [ud=2 type=0 err=0 nbytes=0 hup=0]\n", text);
        Assert.Matches(@"idle\+file rc=0 n=1 \[ud=3 type=1 err=0 nbytes=\d+ hup=\d\]\n", text); // the file: Wasmtime's answer
        Assert.Contains("connect rc=0\n", text);
        Assert.Contains("pending rc=0 n=1 [ud=1 type=1 err=0 nbytes=1 hup=0]\n", text);
        Assert.Contains("accept rc=0\n", text);
        Assert.Matches(@"data\+writable rc=0 n=2 \[ud=4 type=1 err=0 nbytes=2 hup=0\] \[ud=5 type=2 err=0 nbytes=\d+ hup=0\]\n", text);
        Assert.Contains("read 2\n", text);
        Assert.Contains("hangup rc=0 n=1 [ud=4 type=1 err=0 nbytes=0 hup=1]\n", text);
        Assert.Contains("read after hangup 0\n", text);
        // One numbering for files and sockets: Wasmtime reuses the highest freed number first, so the socket
        // opened after closing f1 gets f1's number.
        var numbers = System.Text.RegularExpressions.Regex.Match(text, @"numbers f1=(\d+) s1=(\d+) s2=(\d+) f2=(\d+) types 5 5 4\n");
        Assert.True(numbers.Success, text);
        int f1 = int.Parse(numbers.Groups[1].Value), s1 = int.Parse(numbers.Groups[2].Value);
        int s2 = int.Parse(numbers.Groups[3].Value), f2 = int.Parse(numbers.Groups[4].Value);
        Assert.Equal(f1, s2);
        Assert.Equal(4, new[] { f1, s1, f2, 3 }.Distinct().Count());
        Assert.True(f2 > s1, text);
        Assert.Contains("file says file ok\n", text);
        Assert.Contains("renumber rc=0 types 5 -8\n", text); // the socket moved over the file; its old number is free
        Assert.Contains("seek on socket rc=70\n", text);
    }

    /// <summary>WASI's EBADF for every fd_* and sock_* call on a socket number that is closed, and for fd_renumber
    /// onto or from a closed number (the wasi-testsuite's renumber rule, as for files); with sockets numbered
    /// through Wasmtime's table (a preopen exists) and by us (none). fd_fdstat_set_rights is ENOTSUP on a socket
    /// as Wasmtime answers it on files (so a guest's "rights supported?" probe agrees for both).</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClosedSocketDescriptors_AreEbadf(bool preopen)
    {
        var (instance, stdout) = Start("sockclosed", [], preopen: preopen);
        var text = await Finish(instance, stdout);
        Assert.Equal("""
            close rc=0
            renumber onto closed rc=8 onto never-opened rc=8 from closed rc=8; source type=6
            open socket: set_rights=58
            close rc=0
            closed socket: read=8 write=8 fdstat=8 filestat=8 seek=8 close=8 recv=8 send=8 shutdown=8 accept=8 renumber=8 poll=8
            other socket type=6

            """, text);
    }

    [Theory]
    [InlineData("accept", 15)]
    [InlineData("recv", 9)]
    [InlineData("poll", 15)]
    public async Task Kill_EndsAGuestBlockedOnASocketAtOnce(string mode, int signal)
    {
        var (instance, stdout) = Start("blocker", ["9300", mode]);
        await WaitForOutput(stdout, s => s.Contains("ready"));
        if (mode == "recv")
        {
            Connect(9300);
            await WaitForOutput(stdout, s => s.Contains("accepted rc=0"));
        }
        await Task.Delay(100); // blocked by now
        var clock = Stopwatch.StartNew();
        Assert.True(instance.Kill(signal));
        var exit = await instance.Completion.WaitAsync(Timeout);
        output.WriteLine($"{mode}: exit {exit.ExitCode} after {clock.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal(128 + signal, exit.ExitCode);
        Assert.False(instance.Abandoned);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Pause_HoldsABlockedAcceptUntilResumed()
    {
        var (instance, stdout) = Start("blocker", ["9400", "accept"]);
        await WaitForOutput(stdout, s => s.Contains("ready"));
        await Task.Delay(50);
        var clock = Stopwatch.StartNew();
        instance.Pause();
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"Pause took {clock.Elapsed.TotalMilliseconds} ms");
        Connect(9400); // queued by the kernel; the paused guest must not take it
        await Task.Delay(300);
        Assert.Equal("ready\n", Read(stdout));
        instance.Resume();
        await WaitForOutput(stdout, s => s.Contains("accepted rc=0"));
        await Finish(instance, stdout);
    }

    [Fact]
    public async Task Sockets_AreRefusedWithoutNetworkAccess()
    {
        var (instance, stdout) = Start("manysockets", [], network: false);
        Assert.Contains("opened 0 rc=2 last=-1\n", await Finish(instance, stdout)); // EACCES
    }

    [Theory]
    [InlineData(true, 6)]  // preopen at fd 3: sockets 4..9
    [InlineData(false, 7)] // no preopen: sockets numbered by us, 3..9
    public async Task Sockets_StopAtTheDescriptorLimit(bool preopen, int expected)
    {
        var (instance, stdout) = Start("manysockets", [], limit: 10, preopen: preopen);
        Assert.Contains($"opened {expected} rc=33 last=9\n", await Finish(instance, stdout)); // EMFILE
    }

    [Fact]
    public async Task Sockets_AreClosedWhenTheInstanceEnds()
    {
        var (instance, stdout) = Start("blocker", ["9500", "exit"]); // listens, then returns without closing
        await Finish(instance, stdout);
        // Bindable again (no SO_REUSEADDR) only if the guest's listener was closed.
        ns.Run(() =>
        {
            using var again = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            again.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9500));
            again.Listen();
            return 0;
        });
    }

    [Fact]
    public void Import_OfASocketCallWithAWrongTypeFailsInstantiation()
    {
        var module = guests.Load("wrongtype");
        var e = Assert.Throws<WasmModuleException>(() => guests.Host.Prepare(module, new WasiSpec { Args = ["wrongtype"] }));
        output.WriteLine(e.Message);
        Assert.Contains("wasi_snapshot_preview1.sock_accept", e.Message);
        Assert.Contains("(i32) -> (i32)", e.Message);
    }
}

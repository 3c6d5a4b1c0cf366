using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Wasmsharp.Integration;

// Network namespaces seen from outside, as a user inspects a container: which namespace a task's pid is in,
// who still holds one, and talking to a server inside one (only on addresses inside namespaces tests made).
public static partial class NetNs
{
    private const int CLONE_NEWNET = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    /// <summary>The namespace of a process or thread id: the inode of /proc/ID/ns/net ("net:[INODE]").</summary>
    public static ulong? Of(int pid)
    {
        try
        {
            var link = new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
            return link is not null && link.StartsWith("net:[", StringComparison.Ordinal) ? ulong.Parse(link[5..^1]) : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Every thread of every process (and every nsfs bind mount) that holds network namespace <paramref name="inode"/>.</summary>
    public static IReadOnlyList<string> Holders(ulong inode)
    {
        var holders = new List<string>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid)) continue;
            IEnumerable<string> tasks;
            try { tasks = Directory.EnumerateDirectories(Path.Combine(proc, "task")).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var task in tasks)
                if (int.TryParse(Path.GetFileName(task), out var tid) && Of(tid) == inode)
                    holders.Add($"thread {tid} of {pid} ({Comm(pid)})");
        }
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
            if (line.Contains($"net:[{inode}]", StringComparison.Ordinal)) holders.Add("mount " + line);
        return holders;
    }

    private static string Comm(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim(); }
        catch (IOException) { return "?"; }
    }

    /// <summary>Runs <paramref name="work"/> on a thread of its own inside the namespace at <paramref name="path"/>
    /// (e.g. /proc/PID/ns/net): sockets it makes live there.</summary>
    public static T Inside<T>(string path, Func<T> work)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle(path);
                if (setns((int)ns.DangerousGetHandle(), CLONE_NEWNET) != 0)
                    throw new IOException($"setns {path}: errno {Marshal.GetLastPInvokeError()}");
                result = work();
            }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result;
    }

    /// <summary>An HTTP/1.0 GET to 127.0.0.1:<paramref name="port"/> (or <paramref name="address"/>, one that lives
    /// in the namespace) from inside a namespace: the whole response, or "error: ..." when nothing answers.</summary>
    public static string HttpGet(string nsPath, int port, string path = "/", TimeSpan? timeout = null, IPAddress? address = null) =>
        Inside(nsPath, () => HttpGet(port, path, timeout, address));

    /// <summary>
    /// GET until a server answers HTTP (up to <paramref name="wait"/>): the answer, or the last attempt's result. A
    /// plain connect is not enough: docker-proxy accepts before the guest listens and then closes with nothing.
    /// </summary>
    public static string HttpGetWhenUp(string nsPath, int port, string path = "/", TimeSpan? wait = null, IPAddress? address = null)
    {
        var deadline = Environment.TickCount64 + (long)(wait ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
        while (true)
        {
            var response = HttpGet(nsPath, port, path, address: address);
            if (response.StartsWith("HTTP/", StringComparison.Ordinal) || Environment.TickCount64 > deadline) return response;
            Thread.Sleep(25);
        }
    }

    /// <summary>The same from the calling thread's namespace.</summary>
    public static string HttpGet(int port, string path = "/", TimeSpan? timeout = null, IPAddress? address = null)
    {
        var limit = (int)(timeout ?? TimeSpan.FromSeconds(5)).TotalMilliseconds;
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            {
                SendTimeout = limit,
                ReceiveTimeout = limit,
            };
            socket.Connect(new IPEndPoint(address ?? IPAddress.Loopback, port));
            socket.Send(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
            var response = new MemoryStream();
            var buffer = new byte[8192];
            int n;
            while ((n = socket.Receive(buffer)) > 0) response.Write(buffer, 0, n);
            return Encoding.UTF8.GetString(response.ToArray());
        }
        catch (SocketException e)
        {
            return $"error: {e.SocketErrorCode}";
        }
    }
}

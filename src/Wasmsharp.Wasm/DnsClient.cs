using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using static Wasmsharp.Wasm.LinuxSockets;

namespace Wasmsharp.Wasm;

/// <summary>
/// A stub resolver for <c>sock_getaddrinfo</c>, as glibc's reads the container's resolv.conf
/// (<see cref="WasiSpec.ResolvConf"/>): <c>nameserver</c> (up to 3), <c>search</c>/<c>domain</c>, and the options
/// <c>ndots</c>, <c>timeout</c>, <c>attempts</c>. A and AAAA queries over UDP, made from the guest's thread — so in
/// its container's network namespace, to the servers the container was given (Docker's embedded DNS, the cluster
/// DNS) — and waited for through the socket table, so a kill or pause takes effect at once.
/// </summary>
/// <remarks>Not done: TCP fallback for truncated answers (the addresses a UDP answer holds are used), EDNS,
/// DNSSEC, <c>rotate</c>; answers are not cached (every lookup asks, as glibc without nscd does).</remarks>
internal sealed class DnsClient(SocketTable table, DnsClient.Config config)
{
    private const int MaxServers = 3, MaxMessage = 1232, MaxResolvConfBytes = 64 * 1024;
    private const ushort TypeA = 1, TypeAaaa = 28, ClassIn = 1;

    public sealed record Config(IReadOnlyList<IPAddress> Servers, IReadOnlyList<string> Search, int Ndots, TimeSpan Timeout, int Attempts);

    /// <summary>The resolver settings of a resolv.conf; null when it is missing, unreadable or names no server.</summary>
    public static Config? Read(string? path)
    {
        string text;
        try
        {
            if (path is null || new FileInfo(path) is not { Exists: true, Length: <= MaxResolvConfBytes })
                return null;
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        var servers = new List<IPAddress>();
        IReadOnlyList<string> search = [];
        int ndots = 1, timeout = 5, attempts = 2;
        foreach (var raw in text.Split('\n'))
        {
            var fields = raw.Split(['#', ';'])[0].Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
                continue;
            switch (fields[0])
            {
                case "nameserver" when servers.Count < MaxServers && IPAddress.TryParse(fields[1], out var server):
                    servers.Add(server);
                    break;
                case "search" or "domain":
                    search = fields.Skip(1).Select(d => d.TrimEnd('.')).Where(d => d.Length > 0).ToList(); // the last line wins
                    break;
                case "options":
                    foreach (var option in fields.Skip(1))
                    {
                        var (name, value) = option.IndexOf(':') is var colon and > 0 ? (option[..colon], option[(colon + 1)..]) : (option, "");
                        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                            continue;
                        if (name == "ndots") ndots = Math.Min(n, 15);
                        else if (name == "timeout") timeout = Math.Clamp(n, 1, 30);
                        else if (name == "attempts") attempts = Math.Clamp(n, 1, 5);
                    }
                    break;
            }
        }
        return servers.Count == 0 ? null : new Config(servers, search, ndots, TimeSpan.FromSeconds(timeout), attempts);
    }

    /// <summary>The addresses of <paramref name="name"/> (A then AAAA, as <paramref name="family"/> allows), trying the
    /// search list as glibc does; empty when no name is found.</summary>
    public List<IPAddress> Lookup(string name, byte family)
    {
        var found = new List<IPAddress>();
        foreach (var candidate in Candidates(name))
        {
            if (family != WasmEdgeAbi.FamilyInet6)
                Query(candidate, TypeA, found);
            if (family != WasmEdgeAbi.FamilyInet4)
                Query(candidate, TypeAaaa, found);
            if (found.Count > 0)
                break;
        }
        return found;
    }

    // glibc's order: a name with at least ndots dots (or a trailing dot) as it is first, else the search list first.
    private IEnumerable<string> Candidates(string name)
    {
        if (name.EndsWith('.'))
        {
            yield return name.TrimEnd('.');
            yield break;
        }
        bool asIsFirst = name.Count(c => c == '.') >= config.Ndots;
        if (asIsFirst)
            yield return name;
        foreach (var domain in config.Search)
            yield return name + "." + domain;
        if (!asIsFirst)
            yield return name;
    }

    /// <summary>Asks the servers in turn, <c>attempts</c> rounds, until one answers (a name that does not exist is
    /// an answer); adds the answer's addresses.</summary>
    private void Query(string name, ushort type, List<IPAddress> found)
    {
        byte[] question;
        try
        {
            question = Question(name, type, out _);
        }
        catch (ArgumentException)
        {
            return; // not a valid DNS name
        }
        var response = new byte[MaxMessage];
        for (int attempt = 0; attempt < config.Attempts; attempt++)
        {
            foreach (var server in config.Servers)
            {
                ushort id = (ushort)RandomNumberGenerator.GetInt32(ushort.MaxValue + 1);
                BinaryPrimitives.WriteUInt16BigEndian(question, id);
                int length = Exchange(server, question, response);
                if (length < 0)
                    continue;
                if (Parse(response.AsSpan(0, length), id, type, found) != Answer.Failed)
                    return; // refused, server failure, garbage: the next server
            }
        }
    }

    // One UDP exchange on a socket made on this (the guest's) thread: the length of the answer, or -1.
    private unsafe int Exchange(IPAddress server, byte[] question, byte[] response)
    {
        bool v4 = server.AddressFamily == AddressFamily.InterNetwork;
        int fd = LinuxSockets.Socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        try
        {
            Span<byte> address = stackalloc byte[28];
            address.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(address, (ushort)(v4 ? AF_INET : AF_INET6));
            BinaryPrimitives.WriteUInt16BigEndian(address[2..], 53);
            server.TryWriteBytes(address[(v4 ? 4 : 8)..], out _);
            fixed (byte* a = address)
                if (LinuxSockets.Connect(fd, a, v4 ? 16u : 28u) != 0)
                    return -1;
            fixed (byte* q = question)
            {
                var iov = new IoVec { Base = q, Length = (nuint)question.Length };
                var message = new MsgHdr { Iov = &iov, IovLength = 1 };
                if (SendMsg(fd, &message, MSG_NOSIGNAL) != question.Length)
                    return -1;
            }
            long deadline = Stopwatch.GetTimestamp() + (long)(config.Timeout.TotalSeconds * Stopwatch.Frequency);
            Span<PollFd> fds = stackalloc PollFd[2];
            while (true)
            {
                fds[0] = new PollFd { Fd = fd, Events = POLLIN };
                if (!table.Wait(fds, deadline)) // throws when the guest is killed
                    return -1;
                fixed (byte* r = response)
                {
                    var iov = new IoVec { Base = r, Length = (nuint)response.Length };
                    var message = new MsgHdr { Iov = &iov, IovLength = 1 };
                    nint n = RecvMsg(fd, &message, 0);
                    if (n >= 12 && BinaryPrimitives.ReadUInt16BigEndian(response) == BinaryPrimitives.ReadUInt16BigEndian(question))
                        return (int)n;
                    if (n < 0 && LastError != EAGAIN && LastError != EINTR)
                        return -1; // e.g. ECONNREFUSED: nothing listens there
                }
            }
        }
        finally
        {
            LinuxSockets.Close(fd);
        }
    }

    /// <summary>A query for <paramref name="name"/> (recursion desired); its id is written by the caller.</summary>
    internal static byte[] Question(string name, ushort type, out int length)
    {
        var labels = name.Split('.');
        if (name.Length == 0 || name.Length > 253 || labels.Any(l => l.Length is 0 or > 63) || !Ascii.IsValid(name))
            throw new ArgumentException($"not a DNS name: {name}");
        var message = new byte[12 + name.Length + 2 + 4];
        message[2] = 0x01; // RD
        message[5] = 1;    // QDCOUNT
        int at = 12;
        foreach (var label in labels)
        {
            message[at++] = (byte)label.Length;
            at += Encoding.ASCII.GetBytes(label, message.AsSpan(at));
        }
        message[at++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(at + 2), ClassIn);
        length = at + 4;
        return message;
    }

    internal enum Answer { Found, NoSuchName, Failed }

    /// <summary>Reads an answer: the addresses of records of <paramref name="type"/> in its answer section (the
    /// CNAME chain's end included). Bounds-checked: a malformed answer is <see cref="Answer.Failed"/>.</summary>
    internal static Answer Parse(ReadOnlySpan<byte> m, ushort id, ushort type, List<IPAddress> found)
    {
        if (m.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(m) != id || (m[2] & 0x80) == 0)
            return Answer.Failed;
        int rcode = m[3] & 0x0f;
        if (rcode == 3)
            return Answer.NoSuchName;
        if (rcode != 0)
            return Answer.Failed;
        int questions = BinaryPrimitives.ReadUInt16BigEndian(m[4..]), answers = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        int at = 12;
        for (int i = 0; i < questions; i++)
        {
            if (!SkipName(m, ref at) || (at += 4) > m.Length)
                return Answer.Failed;
        }
        for (int i = 0; i < answers; i++)
        {
            if (!SkipName(m, ref at) || at + 10 > m.Length)
                return Answer.Failed;
            ushort rrType = BinaryPrimitives.ReadUInt16BigEndian(m[at..]), rrClass = BinaryPrimitives.ReadUInt16BigEndian(m[(at + 2)..]);
            int size = BinaryPrimitives.ReadUInt16BigEndian(m[(at + 8)..]);
            at += 10;
            if (at + size > m.Length)
                return Answer.Failed;
            if (rrClass == ClassIn && rrType == type && size == (type == TypeA ? 4 : 16))
                found.Add(new IPAddress(m.Slice(at, size)));
            at += size;
        }
        return Answer.Found;
    }

    // Past a (possibly compressed) name: labels end at a zero byte or a two-byte pointer.
    private static bool SkipName(ReadOnlySpan<byte> m, ref int at)
    {
        while (at < m.Length)
        {
            byte length = m[at];
            if (length == 0) { at++; return true; }
            if ((length & 0xc0) == 0xc0) { at += 2; return at <= m.Length; }
            if ((length & 0xc0) != 0) return false;
            at += 1 + length;
        }
        return false;
    }
}

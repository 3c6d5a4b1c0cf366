using System.Net.Sockets;
using System.Text;

namespace Wasmsharp.Shim;

/// <summary>Where a shim (group) listens: derived from containerd's address, the namespace and the group as
/// containerd's shim kit derives it (with another digest), so that every shim binary start for the same group
/// lands on the same socket.</summary>
public static class ShimAddress
{
    private const string SocketRoot = "/run/containerd/s";

    /// <param name="socketDir">containerd 2.3+ may name the directory (bootstrap socket_dir).</param>
    public static string SocketPath(string containerdAddress, string ns, string groupId, string? socketDir = null)
    {
        // Go: filepath.Join(address, namespace, id) — cleaned, '/'-separated.
        var joined = CleanJoin(containerdAddress, ns, groupId);
        // Any stable 128-bit digest will do (containerd only reads the address we print). XxHash128 is in
        // process already; SHA-256 would load OpenSSL into `start`, ~3 ms of every container's start.
        var hash = Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(Encoding.UTF8.GetBytes(joined)));
        return $"{SocketDirectory(socketDir)}/{hash}";
    }

    /// <summary>Where shim sockets go: the directory containerd 2.3+ may name (bootstrap socket_dir), else containerd's.</summary>
    public static string SocketDirectory(string? socketDir) => string.IsNullOrEmpty(socketDir) ? SocketRoot : socketDir.TrimEnd('/');

    public static string ToUri(string socketPath) => "unix://" + socketPath;

    /// <summary>What `start` printed (and wrote to the bundle's address file).</summary>
    public sealed record Reply(string SocketPath, ShimProtocol Protocol);

    /// <summary>A plain address ("unix:///run/...") or the JSON form {"version":N,"address":...,"protocol":...}.</summary>
    public static Reply ParseReply(string text)
    {
        text = text.Trim();
        if (!text.StartsWith('{')) return new Reply(FromUri(text), ShimProtocol.Ttrpc);
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(text);
            var address = json.RootElement.GetProperty("address").GetString() ?? "";
            var protocol = json.RootElement.TryGetProperty("protocol", out var p) && p.GetString() == "grpc" ? ShimProtocol.Grpc : ShimProtocol.Ttrpc;
            return new Reply(FromUri(address), protocol);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"unreadable shim address {text}: {e.Message}");
        }
    }

    public static string FromUri(string address) => address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;

    /// <summary>Group id: containers of one pod (or one runc-style group) share a shim.</summary>
    public static string GroupId(string id, IReadOnlyDictionary<string, string> annotations) =>
        annotations.TryGetValue("io.containerd.runc.v2.group", out var g) && g.Length > 0 ? g
        : annotations.TryGetValue("io.kubernetes.cri.sandbox-id", out var s) && s.Length > 0 ? s
        : id;

    /// <summary>True if a shim is already serving on <paramref name="socketPath"/>.</summary>
    public static bool IsLive(string socketPath)
    {
        if (!File.Exists(socketPath)) return false;
        try
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string CleanJoin(params string[] parts)
    {
        var segments = new List<string>();
        var absolute = parts.Length > 0 && parts[0].StartsWith('/');
        foreach (var part in parts)
        {
            foreach (var seg in part.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (seg == ".") continue;
                if (seg == ".." && segments.Count > 0 && segments[^1] != "..") { segments.RemoveAt(segments.Count - 1); continue; }
                segments.Add(seg);
            }
        }
        return (absolute ? "/" : "") + string.Join('/', segments);
    }
}

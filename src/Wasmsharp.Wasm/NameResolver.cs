using System.Globalization;
using System.Net;
using System.Net.Sockets;
using static Wasmsharp.Wasm.WasmEdgeAbi;

namespace Wasmsharp.Wasm;

/// <summary>
/// Name resolution for <c>sock_getaddrinfo</c> without glibc (whose getaddrinfo would read the SHIM's
/// /etc/hosts, nsswitch.conf and resolv.conf): numeric addresses, the container's hosts file
/// (<see cref="WasiSpec.HostsFile"/>), "localhost" (127.0.0.1, ::1) when the hosts file does not name it, then
/// the container's DNS servers (<see cref="DnsClient"/>). Services: numbers and a few well-known names (the
/// container's /etc/services is not read).
/// </summary>
internal static class NameResolver
{
    private const int MaxHostsFileBytes = 1 << 20;
    public const int AiAddrFamily = 77;

    private static readonly Dictionary<string, ushort> Services = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ftp"] = 21, ["ssh"] = 22, ["smtp"] = 25, ["domain"] = 53, ["http"] = 80, ["pop3"] = 110,
        ["imap"] = 143, ["https"] = 443, ["mysql"] = 3306, ["postgresql"] = 5432, ["redis"] = 6379,
    };

    /// <summary>Resolves <paramref name="node"/> and <paramref name="service"/> (either may be empty, not both);
    /// returns 0 or a WasmEdge getaddrinfo errno. Addresses: (family, 4 or 16 bytes), in lookup order.</summary>
    public static int Resolve(string node, string service, ushort flags, byte family, string? hostsFile, DnsClient? dns,
        out List<(byte Family, byte[] Address)> addresses, out ushort port)
    {
        addresses = [];
        port = 0;
        if (service.Length > 0)
        {
            if (ushort.TryParse(service, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                port = number;
            else if ((flags & AiNumericServ) != 0)
                return AiNoName;
            else if (!Services.TryGetValue(service, out port))
                return AiService;
        }

        var found = new List<IPAddress>();
        if (node.Length == 0)
        {
            bool passive = (flags & AiPassive) != 0;
            found.Add(passive ? IPAddress.Any : IPAddress.Loopback);
            found.Add(passive ? IPAddress.IPv6Any : IPAddress.IPv6Loopback);
        }
        else if (IPAddress.TryParse(node, out var numeric))
        {
            found.Add(numeric);
            if (Keep(found, family).Count == 0)
                return AiAddrFamily;
        }
        else if ((flags & AiNumericHost) != 0)
        {
            return AiNoName;
        }
        else
        {
            found.AddRange(FromHostsFile(hostsFile, node));
            if (found.Count == 0 && (node.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                || node.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)))
                found.AddRange([IPAddress.Loopback, IPAddress.IPv6Loopback]);
            if (found.Count == 0 && dns is not null)
                found.AddRange(dns.Lookup(node, family));
        }

        foreach (var address in Keep(found, family).Distinct())
            addresses.Add((address.AddressFamily == AddressFamily.InterNetwork ? FamilyInet4 : FamilyInet6, address.GetAddressBytes()));
        return addresses.Count > 0 ? 0 : AiNoName;
    }

    private static List<IPAddress> Keep(List<IPAddress> found, byte family) => found.Where(a => family switch
    {
        FamilyInet4 => a.AddressFamily == AddressFamily.InterNetwork,
        FamilyInet6 => a.AddressFamily == AddressFamily.InterNetworkV6,
        _ => true,
    }).ToList();

    private static string? ReadHostsFile(string? path)
    {
        try
        {
            return path is not null && new FileInfo(path) is { Exists: true, Length: <= MaxHostsFileBytes } ? File.ReadAllText(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Addresses the hosts file gives <paramref name="name"/> (as canonical name or alias), in file order.</summary>
    internal static IEnumerable<IPAddress> FromHostsFile(string? path, string name)
    {
        if (ReadHostsFile(path) is not { } text)
            yield break;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#')[0];
            var fields = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !IPAddress.TryParse(fields[0], out var address))
                continue;
            if (fields.Skip(1).Any(alias => alias.Equals(name, StringComparison.OrdinalIgnoreCase)))
                yield return address;
        }
    }
}

namespace Wasmsharp.Shim;

/// <summary>The command line containerd gives a shim binary (Go flag syntax: -name value, -flag).</summary>
public sealed record ShimOptions
{
    public string Namespace { get; init; } = "";
    public string Address { get; init; } = "";
    public string PublishBinary { get; init; } = "";
    public string Id { get; init; } = "";
    public string Bundle { get; init; } = "";
    public bool Debug { get; init; }
    public bool Version { get; init; }
    public bool Info { get; init; }
    /// <summary>The daemon's task API transport; `start` passes -protocol to the daemon it spawns.</summary>
    public ShimProtocol Protocol { get; init; } = ShimProtocol.Ttrpc;
    /// <summary>containerd's pid, which `start` (its child) passes to the daemon: a daemon left finishing a compile for
    /// the cache after its containers are gone gives it up when containerd exits.</summary>
    public int? ContainerdPid { get; init; }
    /// <summary>"start", "delete", or "" for the long-running daemon.</summary>
    public string Action { get; init; } = "";
    /// <summary>The arguments as given, so the daemon can be re-executed with the same flags.</summary>
    public IReadOnlyList<string> RawArgs { get; init; } = [];

    private static readonly HashSet<string> ValueFlags = ["namespace", "address", "publish-binary", "id", "bundle", "socket", "ttrpc-address", "protocol", "containerd-pid"];

    public static ShimOptions Parse(IReadOnlyList<string> args)
    {
        var o = new ShimOptions { RawArgs = args };
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-') || arg == "-" )
            {
                if (o.Action.Length > 0) throw new ArgumentException($"unexpected argument {arg}");
                o = o with { Action = arg };
                continue;
            }
            var name = arg.TrimStart('-');
            string? value = null;
            var eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            if (ValueFlags.Contains(name) && value is null)
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"flag needs an argument: -{name}");
                value = args[++i];
            }
            o = name switch
            {
                "namespace" => o with { Namespace = value! },
                "address" => o with { Address = value! },
                "publish-binary" => o with { PublishBinary = value! },
                "id" => o with { Id = value! },
                "bundle" => o with { Bundle = value! },
                "debug" => o with { Debug = value is null or "true" },
                "v" or "version" => o with { Version = true },
                "info" => o with { Info = true },
                "protocol" => o with { Protocol = ParseProtocol(value!) },
                "containerd-pid" => o with { ContainerdPid = int.TryParse(value, out var pid) && pid > 0 ? pid : throw new ArgumentException($"invalid -containerd-pid {value}") },
                "socket" or "ttrpc-address" => o,
                _ => throw new ArgumentException($"flag provided but not defined: -{name}"),
            };
        }
        if (o.Action is not ("" or "start" or "delete"))
        {
            throw new ArgumentException($"unknown action {o.Action}: expected start or delete");
        }
        return o;
    }

    /// <summary>The daemon's argv: the same flags without the action, plus the transport when not ttrpc and
    /// containerd's pid when known.</summary>
    public IReadOnlyList<string> DaemonArgs(ShimProtocol protocol = ShimProtocol.Ttrpc, int? containerdPid = null)
    {
        var args = RawArgs.Where(a => a != Action).ToList();
        if (protocol != ShimProtocol.Ttrpc) args.AddRange(["-protocol", protocol.ToString().ToLowerInvariant()]);
        if (containerdPid is { } pid) args.AddRange(["-containerd-pid", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return args;
    }

    private static ShimProtocol ParseProtocol(string value)
    {
        try
        {
            return ShimRuntimeOptions.ParseProtocol(value, "-protocol");
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException(e.Message);
        }
    }
}

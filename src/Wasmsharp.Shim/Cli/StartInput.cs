using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Containerd.Api.Bootstrap;

namespace Wasmsharp.Shim;

/// <summary>
/// What containerd writes to the stdin of `shim start`: nothing; a marshalled google.protobuf.Any of
/// the runtime options (1.6–2.2); or BootstrapParams carrying the options as an extension (2.3+).
/// Both messages start with a string in field 1, so they are told apart by its value: BootstrapParams
/// has the instance id there (equal to -id), an Any a type URL.
/// </summary>
public sealed record StartInput(Any? RuntimeOptions, BootstrapParams? Bootstrap)
{
    public static readonly StartInput None = new(null, null);

    public static StartInput Parse(ReadOnlySpan<byte> data, string id)
    {
        if (data.IsEmpty) return None;
        BootstrapParams? bootstrap = null;
        try
        {
            bootstrap = BootstrapParams.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException)
        {
        }
        if (bootstrap is not null && id.Length > 0 && bootstrap.InstanceId == id)
        {
            return new StartInput(OptionsExtension(bootstrap), bootstrap);
        }

        Any any;
        try
        {
            any = Any.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"malformed start input ({data.Length} bytes): neither runtime options nor bootstrap parameters: {e.Message}");
        }
        if (!LooksLikeTypeUrl(any.TypeUrl))
        {
            var what = bootstrap is { InstanceId.Length: > 0 }
                ? $"bootstrap parameters for instance \"{bootstrap.InstanceId}\", not \"{id}\""
                : $"an Any without a valid type URL (\"{any.TypeUrl}\")";
            throw new InvalidDataException($"malformed start input ({data.Length} bytes): {what}");
        }
        return new StartInput(any, null);
    }

    /// <summary>The runtime options among the extensions: the first one of a type we know, else none.</summary>
    private static Any? OptionsExtension(BootstrapParams bootstrap) =>
        bootstrap.Extensions.Select(e => e.Value).FirstOrDefault(v => v is not null && ShimRuntimeOptions.IsKnownType(v.TypeUrl));

    // containerd's type URLs are bare names ("runtimeoptions.v1.Options") or prefixed ("types.containerd.io/...").
    private static bool LooksLikeTypeUrl(string url) =>
        url.Length > 0 && url.Contains('.') && url.All(c => c > ' ' && c < 0x7f);

    /// <summary>Reads all of stdin (containerd closes it after writing).</summary>
    public static byte[] ReadStdin()
    {
        if (!Console.IsInputRedirected) return [];
        try
        {
            using var stdin = Console.OpenStandardInput();
            using var buffer = new MemoryStream();
            stdin.CopyTo(buffer);
            return buffer.ToArray();
        }
        catch (IOException)
        {
            return [];
        }
    }
}

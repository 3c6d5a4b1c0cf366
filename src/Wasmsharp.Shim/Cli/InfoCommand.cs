using System.Buffers;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Containerd.Api.Types;

namespace Wasmsharp.Shim;

/// <summary>
/// `shim -info` (containerd 2.0+: `ctr plugins inspect-runtime`, CRI's runtime features, and before
/// every task creation in 2.2+): reads the runtime options (a marshalled Any, maybe empty) on stdin and
/// prints a marshalled containerd.types.RuntimeInfo.
/// </summary>
internal static class InfoCommand
{
    public const string RuntimeName = "io.containerd.wasmsharp.v1";
    public const string FeaturesTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

    public static int Run()
    {
        var stdin = StartInput.ReadStdin();
        var options = stdin.Length == 0 ? null : ParseOptions(stdin);
        using var stdout = Console.OpenStandardOutput();
        Build(options).WriteTo(stdout);
        return 0;
    }

    public static Any ParseOptions(byte[] data)
    {
        try
        {
            var any = Any.Parser.ParseFrom(data);
            // Validates the options we understand, as `start` would.
            ShimRuntimeOptions.From(any);
            return any;
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"-info: stdin is not a marshalled google.protobuf.Any of runtime options: {e.Message}");
        }
    }

    public static RuntimeInfo Build(Any? options)
    {
        var (version, revision) = SplitVersion(VersionInfo.Version);
        var info = new RuntimeInfo
        {
            Name = RuntimeName,
            Version = new RuntimeVersion { Version = version, Revision = revision },
            Features = new Any { TypeUrl = FeaturesTypeUrl, Value = ByteString.CopyFrom(FeaturesJson()) },
            Annotations =
            {
                ["io.containerd.wasmsharp.protocols"] = File.Exists(StartCommand.GrpcDaemonPath) ? "ttrpc,grpc" : "ttrpc",
                ["io.containerd.wasmsharp.wasmtime"] = VersionInfo.WasmtimeVersion,
            },
        };
        // Like runc's shim, echo the options we understood; only containerd's own type, since `ctr` fails
        // on a type URL it cannot decode.
        if (options is not null && ShimRuntimeOptions.IsGenericType(options.TypeUrl)) info.Options = options;
        return info;
    }

    // "0.1.0+abcdef" (the SDK appends the source revision) → ("0.1.0", "abcdef").
    private static (string Version, string Revision) SplitVersion(string informational)
    {
        var plus = informational.IndexOf('+');
        return plus < 0 ? (informational, "") : (informational[..plus], informational[(plus + 1)..]);
    }

    /// <summary>
    /// The OCI runtime features document (runtime-spec features.md), as runc's shim reports it. A Wasm
    /// guest gets no Linux namespaces, capabilities or hooks; spec mounts become WASI preopens.
    /// </summary>
    private static ReadOnlySpan<byte> FeaturesJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("ociVersionMin", "1.0.0");
            json.WriteString("ociVersionMax", "1.2.0");
            json.WriteStartArray("hooks");
            json.WriteEndArray();
            json.WriteStartArray("mountOptions");
            foreach (var o in new[] { "bind", "rbind", "ro", "rw" }) json.WriteStringValue(o);
            json.WriteEndArray();
            json.WriteStartObject("linux");
            json.WriteStartArray("namespaces");
            json.WriteEndArray();
            json.WriteStartArray("capabilities");
            json.WriteEndArray();
            json.WriteStartObject("mountExtensions");
            json.WriteStartObject("idmap");
            json.WriteBoolean("enabled", false);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan;
    }
}

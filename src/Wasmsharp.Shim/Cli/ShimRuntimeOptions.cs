using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using WasmsharpOptions = Wasmsharp.Containerd.Api.Options.Options;
using GenericOptions = Wasmsharp.Containerd.Api.RuntimeOptions.Options;

namespace Wasmsharp.Shim;

/// <summary>Task API transports the shim can serve.</summary>
public enum ShimProtocol
{
    Ttrpc,
    Grpc,
}

/// <summary>
/// The runtime options wasmsharp understands, from either of two Any types:
/// <list type="bullet">
/// <item><c>runtimeoptions.v1.Options</c> (CRI for every non-runc runtime; <c>ctr run --runtime-config-path</c>):
/// a TOML file at config_path, else the TOML of config_body (CRI's <c>[...runtimes.wasmsharp.options]</c> table).
/// Keys: <c>protocol = "ttrpc" | "grpc"</c>; other keys are ignored.</item>
/// <item><c>wasmsharp.options.v1.Options</c>, our own message.</item>
/// </list>
/// Options of other types (e.g. runc's) are not for us and are ignored.
/// </summary>
public sealed record ShimRuntimeOptions
{
    public const string GenericTypeName = "runtimeoptions.v1.Options";
    public const string WasmsharpTypeName = "wasmsharp.options.v1.Options";

    public static readonly ShimRuntimeOptions Default = new();

    /// <summary>Null when not set.</summary>
    public ShimProtocol? Protocol { get; init; }

    public static bool IsKnownType(string typeUrl) => TypeName(typeUrl) is GenericTypeName or WasmsharpTypeName;

    public static bool IsGenericType(string typeUrl) => TypeName(typeUrl) == GenericTypeName;

    public static ShimRuntimeOptions From(Any? any)
    {
        if (any is null) return Default;
        try
        {
            switch (TypeName(any.TypeUrl))
            {
                case WasmsharpTypeName:
                    var own = WasmsharpOptions.Parser.ParseFrom(any.Value);
                    return new ShimRuntimeOptions { Protocol = own.Protocol.Length == 0 ? null : ParseProtocol(own.Protocol, "protocol") };
                case GenericTypeName:
                    var generic = GenericOptions.Parser.ParseFrom(any.Value);
                    if (generic.ConfigPath.Length > 0)
                    {
                        string text;
                        try
                        {
                            text = File.ReadAllText(generic.ConfigPath);
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        {
                            throw new InvalidDataException($"runtime options: cannot read config_path {generic.ConfigPath}: {e.Message}");
                        }
                        return FromToml(text, generic.ConfigPath);
                    }
                    return FromToml(generic.ConfigBody.ToStringUtf8(), "config_body");
                default:
                    return Default;
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"runtime options of type {any.TypeUrl} are malformed: {e.Message}");
        }
    }

    /// <summary>
    /// The TOML wasmsharp reads: top-level <c>key = value</c> lines (strings, booleans, numbers) and
    /// comments. Keys are case-insensitive (CRI keeps the user's spelling). Tables are skipped.
    /// </summary>
    public static ShimRuntimeOptions FromToml(string text, string source)
    {
        var result = Default;
        var lineNumber = 0;
        var inTable = false;
        var inArray = false;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = StripComment(raw).Trim();
            if (line.Length == 0) continue;
            if (inArray)
            {
                inArray = !line.EndsWith(']');
                continue;
            }
            if (line.StartsWith('['))
            {
                if (!line.EndsWith(']')) throw Malformed(source, lineNumber, "unterminated table header");
                inTable = true;
                continue;
            }
            var eq = line.IndexOf('=');
            if (eq <= 0) throw Malformed(source, lineNumber, "expected key = value");
            var key = line[..eq].Trim().Trim('"');
            var value = ParseValue(line[(eq + 1)..].Trim(), source, lineNumber);
            if (value.StartsWith('[') && !value.EndsWith(']')) inArray = true; // a multi-line array: not ours
            if (inTable) continue;
            if (key.Equals("protocol", StringComparison.OrdinalIgnoreCase))
            {
                result = result with { Protocol = ParseProtocol(value, $"{source}:{lineNumber}: protocol") };
            }
        }
        return result;
    }

    public static ShimProtocol ParseProtocol(string value, string what) => value.ToLowerInvariant() switch
    {
        "ttrpc" => ShimProtocol.Ttrpc,
        "grpc" => ShimProtocol.Grpc,
        _ => throw new InvalidDataException($"{what}: unknown protocol \"{value}\": expected ttrpc or grpc"),
    };

    private static string TypeName(string typeUrl) => typeUrl[(typeUrl.LastIndexOf('/') + 1)..];

    private static string StripComment(string line)
    {
        var quote = '\0';
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote != '\0')
            {
                if (c == '\\' && quote == '"') i++;
                else if (c == quote) quote = '\0';
            }
            else if (c is '"' or '\'') quote = c;
            else if (c == '#') return line[..i];
        }
        return line;
    }

    private static string ParseValue(string value, string source, int line)
    {
        if (value.Length == 0) throw Malformed(source, line, "missing value");
        var q = value[0];
        if (q is '"' or '\'')
        {
            if (value.Length < 2 || value[^1] != q) throw Malformed(source, line, "unterminated string");
            var inner = value[1..^1];
            if (q == '\'') return inner;
            var sb = new StringBuilder(inner.Length);
            for (var i = 0; i < inner.Length; i++)
            {
                if (inner[i] != '\\') { sb.Append(inner[i]); continue; }
                if (++i >= inner.Length) throw Malformed(source, line, "bad escape");
                sb.Append(inner[i] switch { 'n' => '\n', 't' => '\t', '"' => '"', '\\' => '\\', var c => throw Malformed(source, line, $"unsupported escape \\{c}") });
            }
            return sb.ToString();
        }
        if (value is "true" or "false") return value;
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) return value;
        if (value.StartsWith('[') || value.StartsWith('{')) return value; // arrays/inline tables: not ours, skipped
        throw Malformed(source, line, $"cannot read value {value}");
    }

    private static InvalidDataException Malformed(string source, int line, string what) =>
        new($"runtime options {source}:{line}: {what}");
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wasmsharp.Oci;

// The parts of the OCI runtime spec (config.json) a Wasm runtime acts on. Unknown fields are ignored,
// as every runtime does, so bundles written by any containerd version load.
public sealed class Spec
{
    public string? OciVersion { get; set; }
    public Process? Process { get; set; }
    public Root? Root { get; set; }
    public string? Hostname { get; set; }
    public List<Mount> Mounts { get; set; } = [];
    public Dictionary<string, string> Annotations { get; set; } = [];
    public Linux? Linux { get; set; }
    public Hooks? Hooks { get; set; }

    public static Spec Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var spec = JsonSerializer.Deserialize(stream, OciJsonContext.Default.Spec)
                ?? throw new OciSpecException($"{path} is empty");
            spec.Normalize();
            return spec;
        }
        catch (JsonException e)
        {
            throw new OciSpecException($"{path} is not a valid OCI runtime spec: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new OciSpecException($"cannot read {path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Only the top-level "annotations" of a config.json, read without the serializer: for `shim start`, where
    /// the serializer's first use (~1.5 ms) would be most of the command's own time.
    /// </summary>
    /// <exception cref="OciSpecException">unreadable or not JSON.</exception>
    public static Dictionary<string, string> LoadAnnotations(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new OciSpecException($"cannot read {path}: {e.Message}", e);
        }
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new OciSpecException($"{path} is not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isAnnotations = reader.ValueTextEquals("annotations"u8);
                reader.Read();
                if (isAnnotations && reader.TokenType == JsonTokenType.StartObject)
                {
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var key = reader.GetString()!;
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.String) annotations[key] = reader.GetString()!;
                        else reader.Skip();
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            throw new OciSpecException($"{path} is not a valid OCI runtime spec: {e.Message}", e);
        }
        return annotations;
    }

    public static Spec Parse(string json)
    {
        var spec = JsonSerializer.Deserialize(json, OciJsonContext.Default.Spec) ?? throw new OciSpecException("empty spec");
        spec.Normalize();
        return spec;
    }

    // A JSON null is an absent field, as Go (runc, containerd) reads it: null lists become empty ones, so no
    // reader meets a null where the model promises a list. A null process.args is then empty, and refused as such.
    private void Normalize()
    {
        Mounts = Mounts is null ? [] : [.. Mounts.Where(m => m is not null)];
        Annotations ??= [];
        Process?.Normalize();
        foreach (var m in Mounts) m.Options ??= [];
        if (Hooks is { } hooks)
        {
            hooks.Prestart ??= [];
            hooks.CreateRuntime ??= [];
            hooks.CreateContainer ??= [];
            hooks.StartContainer ??= [];
            hooks.Poststart ??= [];
            hooks.Poststop ??= [];
        }
        if (Linux is { } linux) linux.Namespaces = linux.Namespaces is null ? [] : [.. linux.Namespaces.Where(n => n is not null)];
    }
}

public sealed class Process
{
    public bool Terminal { get; set; }
    public User? User { get; set; }
    public List<string> Args { get; set; } = [];
    public List<string> Env { get; set; } = [];
    public string Cwd { get; set; } = "/";
    public List<Rlimit> Rlimits { get; set; } = [];

    /// <summary>The soft limit of RLIMIT_NOFILE, the most descriptors the process may hold; null = none given.</summary>
    public ulong? OpenFileLimit => Rlimits.LastOrDefault(r => r.Type == "RLIMIT_NOFILE")?.Soft;

    public static Process Parse(ReadOnlySpan<byte> json)
    {
        var process = JsonSerializer.Deserialize(json, OciJsonContext.Default.Process) ?? throw new OciSpecException("empty process spec");
        process.Normalize();
        return process;
    }

    internal void Normalize()
    {
        Args ??= [];
        Env ??= [];
        Rlimits = Rlimits is null ? [] : [.. Rlimits.Where(r => r is not null)];
        Cwd ??= "";
    }

    // "K=V" strings as pairs; a later duplicate wins, as in execve's environment lookup by libc.
    public IReadOnlyList<KeyValuePair<string, string>> EnvPairs()
    {
        var result = new List<KeyValuePair<string, string>>(Env.Count);
        foreach (var entry in Env)
        {
            var eq = entry.IndexOf('=');
            var pair = eq < 0 ? new KeyValuePair<string, string>(entry, "") : new(entry[..eq], entry[(eq + 1)..]);
            var existing = result.FindIndex(p => p.Key == pair.Key);
            if (existing >= 0) result[existing] = pair; else result.Add(pair);
        }
        return result;
    }
}

public sealed class Rlimit
{
    public string Type { get; set; } = "";
    public ulong Hard { get; set; }
    public ulong Soft { get; set; }
}

public sealed class User
{
    public uint Uid { get; set; }
    public uint Gid { get; set; }
}

public sealed class Root
{
    public string Path { get; set; } = "rootfs";
    public bool Readonly { get; set; }
}

public sealed class Mount
{
    public string Destination { get; set; } = "";
    public string? Type { get; set; }
    public string? Source { get; set; }
    public List<string> Options { get; set; } = [];

    public bool IsBind => Type == "bind" || Options.Contains("bind") || Options.Contains("rbind");
    public bool IsReadOnly => Options.Contains("ro");
}

public sealed class Linux
{
    public string? CgroupsPath { get; set; }
    public List<Namespace> Namespaces { get; set; } = [];
    public JsonElement? Resources { get; set; }
    public Dictionary<string, string>? Sysctl { get; set; }
}

public sealed class Namespace
{
    public string Type { get; set; } = "";
    public string? Path { get; set; }
}

/// <summary>The lifecycle hooks (runtime-spec config.md#posix-platform-hooks), in the order they are given.</summary>
public sealed class Hooks
{
    /// <summary>Deprecated by the spec but still what Docker 26/27 use (libnetwork-setkey).</summary>
    public List<Hook> Prestart { get; set; } = [];
    public List<Hook> CreateRuntime { get; set; } = [];
    public List<Hook> CreateContainer { get; set; } = [];
    public List<Hook> StartContainer { get; set; } = [];
    public List<Hook> Poststart { get; set; } = [];
    public List<Hook> Poststop { get; set; } = [];
}

public sealed class Hook
{
    public string Path { get; set; } = "";
    public List<string>? Args { get; set; }
    /// <summary>null (absent) = the runtime's own environment, as runc (Go's exec) gives; [] = none.</summary>
    public List<string>? Env { get; set; }
    /// <summary>Seconds; null = no limit.</summary>
    public int? Timeout { get; set; }
}

/// <summary>The state of a container (runtime-spec runtime.md#state): what hooks read on stdin.</summary>
public sealed class State
{
    public string OciVersion { get; set; } = "1.0.2";
    public string Id { get; set; } = "";
    /// <summary>creating, created, running or stopped.</summary>
    public string Status { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Pid { get; set; }
    public string Bundle { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Annotations { get; set; }

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, OciJsonContext.Default.State);
}

public sealed class OciSpecException(string message, Exception? inner = null) : Exception(message, inner);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(Spec))]
[JsonSerializable(typeof(Process))]
[JsonSerializable(typeof(State))]
internal sealed partial class OciJsonContext : JsonSerializerContext;

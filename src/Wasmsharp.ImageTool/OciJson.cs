using System.Text.Json;

namespace Wasmsharp.ImageTool;

// JSON documents of the OCI image spec, written with Utf8JsonWriter: no reflection, so NativeAOT-safe,
// and the byte output (hence every digest) is stable.
public static class OciJson
{
    public static byte[] Write(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
            body(writer);
        return buffer.ToArray();
    }

    public static void Descriptor(Utf8JsonWriter w, Blob blob, Platform? platform = null,
        IReadOnlyDictionary<string, string>? annotations = null)
    {
        w.WriteStartObject();
        w.WriteString("mediaType", blob.MediaType);
        w.WriteString("digest", blob.Digest);
        w.WriteNumber("size", blob.Size);
        if (platform is not null)
        {
            w.WritePropertyName("platform");
            w.WriteStartObject();
            w.WriteString("architecture", platform.Architecture);
            w.WriteString("os", platform.Os);
            if (platform.Variant is not null) w.WriteString("variant", platform.Variant);
            w.WriteEndObject();
        }
        if (annotations is { Count: > 0 })
        {
            w.WritePropertyName("annotations");
            w.WriteStartObject();
            foreach (var (key, value) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
                w.WriteString(key, value);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public static Blob Manifest(Blob config, IEnumerable<Blob> layers) => new(MediaTypes.Manifest, Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("schemaVersion", 2);
        w.WriteString("mediaType", MediaTypes.Manifest);
        w.WritePropertyName("config");
        Descriptor(w, config);
        w.WritePropertyName("layers");
        w.WriteStartArray();
        foreach (var layer in layers) Descriptor(w, layer);
        w.WriteEndArray();
        w.WriteEndObject();
    }));

    public static void StringArray(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WritePropertyName(name);
        w.WriteStartArray();
        foreach (var value in values) w.WriteStringValue(value);
        w.WriteEndArray();
    }
}

namespace Wasmsharp.ImageTool;

// The OCI Wasm artifact form: a config with architecture "wasm" and a Wasm OS (wasip1, wasip2, wasi), and each
// module as a layer of its own holding the raw module bytes (no tar, no rootfs). containerd ≥ 1.6.25/1.7.7
// unpacks it to an empty snapshot; the runtime reads the module from the content store.
public sealed class ArtifactImageLayout : IImageLayout
{
    public const string TitleAnnotation = "org.opencontainers.image.title";
    public static readonly Platform DefaultPlatform = new("wasip1", "wasm", null);
    // A component needs WASI preview 2 from its host: the Wasm OCI artifact layout's OS for it.
    public static readonly Platform ComponentPlatform = new("wasip2", "wasm", null);

    public static Platform DefaultPlatformFor(IReadOnlyList<ModuleFile> modules) =>
        modules.Any(m => m.IsComponent) ? ComponentPlatform : DefaultPlatform;

    public ImageArtifacts Build(ImageDefinition definition)
    {
        if (definition.Modules.Count == 0)
            throw new UsageException("the artifact form needs at least one --module");
        var layers = new List<(Blob Blob, string Title)>();
        foreach (var module in definition.Modules)
        {
            var title = Path.GetFileName(module.Path);
            if (layers.Any(l => l.Title == title))
                throw new UsageException($"--module '{module.Path}': another module is also named {title}; layer titles must differ so the entrypoint can name one");
            layers.Add((new Blob(module.MediaType, File.ReadAllBytes(module.Path)), title));
        }
        var config = Config(definition);
        var manifest = new Blob(MediaTypes.Manifest, OciJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", MediaTypes.Manifest);
            w.WritePropertyName("config");
            OciJson.Descriptor(w, config);
            w.WritePropertyName("layers");
            w.WriteStartArray();
            // The title lets the shim pick a module by the entrypoint's name when there are several.
            foreach (var (blob, title) in layers)
                OciJson.Descriptor(w, blob, annotations: new Dictionary<string, string> { [TitleAnnotation] = title });
            w.WriteEndArray();
            w.WriteEndObject();
        }));
        return new ImageArtifacts(manifest, [config, .. layers.Select(l => l.Blob)], definition.Platform);
    }

    // Without --entrypoint/--cmd, the only module's name: what the guest sees as argv[0], and what the
    // shim matches against layer titles.
    public static IReadOnlyList<string> DefaultEntrypoint(ImageDefinition d) =>
        d.Entrypoint.Count == 0 && d.Cmd.Count == 0 && d.Modules.Count == 1 ? [Path.GetFileName(d.Modules[0].Path)] : d.Entrypoint;

    private static Blob Config(ImageDefinition d) => new(MediaTypes.Config, OciJson.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("created", RootfsImageLayout.FixedTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("architecture", d.Platform.Architecture);
        w.WriteString("os", d.Platform.Os);
        if (d.Platform.Variant is not null) w.WriteString("variant", d.Platform.Variant);
        w.WritePropertyName("config");
        w.WriteStartObject();
        var entrypoint = DefaultEntrypoint(d);
        if (entrypoint.Count > 0) OciJson.StringArray(w, "Entrypoint", entrypoint);
        if (d.Cmd.Count > 0) OciJson.StringArray(w, "Cmd", d.Cmd);
        if (d.Env.Count > 0) OciJson.StringArray(w, "Env", d.Env);
        w.WriteEndObject();
        // No filesystem layers: containerd unpacks an empty snapshot (its layer filter skips module layers).
        w.WritePropertyName("rootfs");
        w.WriteStartObject();
        w.WriteString("type", "layers");
        OciJson.StringArray(w, "diff_ids", []);
        w.WriteEndObject();
        w.WriteEndObject();
    }));
}

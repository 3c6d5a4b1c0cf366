using System.Formats.Tar;
using System.IO.Compression;

namespace Wasmsharp.ImageTool;

// The classic form every runtime understands: one gzip tar layer holding the files, unpacked by the
// snapshotter into the container's rootfs; the .wasm is just a file in it.
public sealed class RootfsImageLayout : IImageLayout
{
    // Fixed timestamps make the layer (and so every digest) reproducible. 2000-01-01 rather than the
    // epoch: some tools treat mtime 0 as "unset".
    public static readonly DateTimeOffset FixedTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public ImageArtifacts Build(ImageDefinition definition)
    {
        var (uncompressed, layer) = Layer(definition.Entries);
        var config = Config(definition, Blob.DigestOf(uncompressed));
        return new ImageArtifacts(OciJson.Manifest(config, [layer]), [config, layer], definition.Platform);
    }

    // Returns the uncompressed tar (its digest is the diff_id) and the compressed layer blob.
    public static (byte[] Uncompressed, Blob Layer) Layer(IReadOnlyList<RootfsEntry> entries)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, leaveOpen: true))
        {
            foreach (var entry in entries)
                writer.WriteEntry(TarEntryFor(entry));
        }
        var uncompressed = tar.ToArray();

        using var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.SmallestSize, leaveOpen: true))
            gzip.Write(uncompressed);
        return (uncompressed, new Blob(MediaTypes.LayerTarGzip, gz.ToArray()));
    }

    private static TarEntry TarEntryFor(RootfsEntry entry)
    {
        var (type, name) = entry switch
        {
            DirectoryEntry d => (TarEntryType.Directory, d.GuestPath + "/"),
            SymlinkEntry s => (TarEntryType.SymbolicLink, s.GuestPath),
            _ => (TarEntryType.RegularFile, entry.GuestPath),
        };
        var tarEntry = TarEntries.Create(type, name, (entry as SymlinkEntry)?.Target);
        switch (entry)
        {
            case FileEntry f:
                tarEntry.Mode = f.Mode;
                // Read fully: files are small (modules, tools) and this keeps the writer simple.
                tarEntry.DataStream = new MemoryStream(File.ReadAllBytes(f.HostPath));
                break;
            case DirectoryEntry d:
                tarEntry.Mode = d.Mode;
                break;
            case SymlinkEntry:
                tarEntry.Mode = (UnixFileMode)0b111_111_111;
                break;
        }
        return tarEntry;
    }

    private static Blob Config(ImageDefinition d, string diffId) => new(MediaTypes.Config, OciJson.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("created", FixedTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("architecture", d.Platform.Architecture);
        w.WriteString("os", d.Platform.Os);
        if (d.Platform.Variant is not null) w.WriteString("variant", d.Platform.Variant);
        w.WritePropertyName("config");
        w.WriteStartObject();
        if (d.Entrypoint.Count > 0) OciJson.StringArray(w, "Entrypoint", d.Entrypoint);
        if (d.Cmd.Count > 0) OciJson.StringArray(w, "Cmd", d.Cmd);
        if (d.Env.Count > 0) OciJson.StringArray(w, "Env", d.Env);
        w.WriteEndObject();
        w.WritePropertyName("rootfs");
        w.WriteStartObject();
        w.WriteString("type", "layers");
        OciJson.StringArray(w, "diff_ids", [diffId]);
        w.WriteEndObject();
        w.WritePropertyName("history");
        w.WriteStartArray();
        w.WriteStartObject();
        w.WriteString("created", FixedTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("created_by", "wasmsharp-image build");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }));
}

using System.Formats.Tar;

namespace Wasmsharp.ImageTool;

// Writes an OCI image layout (oci-layout, index.json, blobs/sha256/<hex>) as a plain tar file.
public static class OciArchive
{
    // containerd 1.6 `ctr images import` names the image from io.containerd.image.name; docker load too;
    // OCI tools (skopeo, umoci) use the ref.name tag.
    public const string ContainerdNameAnnotation = "io.containerd.image.name";
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    public static void Write(string path, ImageReference reference, ImageArtifacts image)
    {
        var index = new Blob(MediaTypes.Index, OciJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", MediaTypes.Index);
            w.WritePropertyName("manifests");
            w.WriteStartArray();
            OciJson.Descriptor(w, image.Manifest, image.Platform, new Dictionary<string, string>
            {
                [ContainerdNameAnnotation] = reference.Name,
                [RefNameAnnotation] = reference.Tag,
            });
            w.WriteEndArray();
            w.WriteEndObject();
        }));

        // Write next to the target and rename, so a failed run never leaves a truncated archive behind.
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var file = File.Create(temp))
            using (var tar = new TarWriter(file))
            {
                Add(tar, "oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray());
                Add(tar, "index.json", index.Content);
                AddDirectory(tar, "blobs/");
                AddDirectory(tar, "blobs/sha256/");
                var written = new HashSet<string>();
                foreach (var blob in image.Blobs.Append(image.Manifest))
                    if (written.Add(blob.Digest))
                        Add(tar, "blobs/sha256/" + blob.Hex, blob.Content);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static void AddDirectory(TarWriter tar, string name)
    {
        var entry = TarEntries.Create(TarEntryType.Directory, name);
        entry.Mode = (UnixFileMode)0b111_101_101;
        tar.WriteEntry(entry);
    }

    private static void Add(TarWriter tar, string name, byte[] content)
    {
        var entry = TarEntries.Create(TarEntryType.RegularFile, name);
        entry.Mode = (UnixFileMode)0b110_100_100;
        entry.DataStream = new MemoryStream(content);
        tar.WriteEntry(entry);
    }
}

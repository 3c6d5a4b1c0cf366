using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Wasmsharp.ImageTool;
using Wasmsharp.Oci;
using OciDescriptor = Wasmsharp.Oci.Descriptor;

namespace Wasmsharp.ImageTool.Tests;

// `wasmsharp-image build` writes OCI layouts; these tests read the tarball back the way containerd and the
// shim do: index.json → manifest → config and layers, and the shim's resolver on the same blobs.
public sealed class ImageLayoutTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wasmsharp-image-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Distinct tiny "modules": the tool does not parse them, only the magic matters to the shim.
    private string Module(string name, byte fill)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, fill]);
        return path;
    }

    // A component's header: the magic, version 0x0d, layer 1 (what the shim and the tool tell it by).
    private string Component(string name, byte fill)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, fill]);
        return path;
    }

    private sealed record Layout(Dictionary<string, byte[]> Files)
    {
        public JsonElement Index => Json(Files["index.json"]);
        public JsonElement Entry => Index.GetProperty("manifests")[0];
        public byte[] Blob(string digest) => Files["blobs/sha256/" + digest["sha256:".Length..]];
        public JsonElement Manifest => Json(Blob(Entry.GetProperty("digest").GetString()!));
        public JsonElement Config => Json(Blob(Manifest.GetProperty("config").GetProperty("digest").GetString()!));
        public JsonElement[] Layers => [.. Manifest.GetProperty("layers").EnumerateArray()];

        public Task<byte[]> Read(OciDescriptor d, CancellationToken _) => Task.FromResult(Blob(d.Digest));

        private static JsonElement Json(byte[] bytes) => JsonDocument.Parse(bytes).RootElement.Clone();
    }

    private Layout Build(params string[] args)
    {
        var output = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".tar");
        var code = Program.Main(["build", "--output", output, .. args]);
        Assert.Equal(0, code);
        var files = new Dictionary<string, byte[]>();
        using var tar = new TarReader(File.OpenRead(output));
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType != TarEntryType.RegularFile) continue;
            using var data = new MemoryStream();
            entry.DataStream!.CopyTo(data);
            files[entry.Name] = data.ToArray();
        }
        return new Layout(files);
    }

    private static OciDescriptor Target(Layout layout) => new()
    {
        MediaType = layout.Entry.GetProperty("mediaType").GetString()!,
        Digest = layout.Entry.GetProperty("digest").GetString()!,
        Size = layout.Entry.GetProperty("size").GetInt64(),
    };

    private static string Sha(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void Artifact_form_is_a_wasm_config_and_the_raw_module_as_its_only_layer()
    {
        var module = Module("app.wasm", 1);
        var layout = Build("--name", "example.local/app:2", "--module", module);

        var entry = layout.Entry;
        Assert.Equal("wasm", entry.GetProperty("platform").GetProperty("architecture").GetString());
        Assert.Equal("wasip1", entry.GetProperty("platform").GetProperty("os").GetString());
        Assert.Equal("example.local/app:2", entry.GetProperty("annotations").GetProperty(OciArchive.ContainerdNameAnnotation).GetString());
        Assert.Equal("2", entry.GetProperty("annotations").GetProperty(OciArchive.RefNameAnnotation).GetString());

        var config = layout.Config;
        Assert.Equal("wasm", config.GetProperty("architecture").GetString());
        Assert.Equal("wasip1", config.GetProperty("os").GetString());
        Assert.Equal(0, config.GetProperty("rootfs").GetProperty("diff_ids").GetArrayLength());
        Assert.Equal(["app.wasm"], config.GetProperty("config").GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));

        var layer = Assert.Single(layout.Layers);
        Assert.Equal("application/wasm", layer.GetProperty("mediaType").GetString());
        Assert.Equal(Sha(module), layer.GetProperty("digest").GetString());
        Assert.Equal("app.wasm", layer.GetProperty("annotations").GetProperty("org.opencontainers.image.title").GetString());
        Assert.Equal(File.ReadAllBytes(module), layout.Blob(Sha(module)));
    }

    [Theory]
    [InlineData("wasm", "application/wasm")]
    [InlineData("component", "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm")]
    [InlineData("content", "application/vnd.wasm.content.layer.v1+wasm")]
    [InlineData("application/vnd.example.other", "application/vnd.example.other")]
    public void Media_type_option_sets_the_module_layer_type(string option, string mediaType)
    {
        var layout = Build("--name", "example.local/app", "--module", Module("app.wasm", 2), "--media-type", option);
        Assert.Equal(mediaType, Assert.Single(layout.Layers).GetProperty("mediaType").GetString());
    }

    [Fact]
    public async Task A_component_gets_the_component_layer_type_and_the_wasip2_platform_from_its_header()
    {
        var component = Component("p2.wasm", 1);
        var layout = Build("--name", "example.local/p2", "--module", component);
        var layer = Assert.Single(layout.Layers);
        Assert.Equal("application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", layer.GetProperty("mediaType").GetString());
        Assert.Equal(Sha(component), layer.GetProperty("digest").GetString());
        Assert.Equal("wasip2", layout.Entry.GetProperty("platform").GetProperty("os").GetString());
        Assert.Equal("wasip2", layout.Config.GetProperty("os").GetString());
        Assert.Equal("wasm", layout.Config.GetProperty("architecture").GetString());
        // The shim's resolver takes it as the artifact's module.
        var resolution = await WasmArtifact.ResolveAsync(Target(layout), "p2.wasm", layout.Read);
        Assert.Equal((Sha(component), "wasip2"), (resolution.Module!.Digest, resolution.Os));
    }

    [Fact]
    public void Modules_and_components_in_one_image_each_get_their_own_layer_type()
    {
        var layout = Build("--name", "example.local/mixed", "--module", Module("app.wasm", 2), "--module", Component("p2.wasm", 2), "--entrypoint", "p2.wasm");
        Assert.Equal(["application/wasm", "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"],
            layout.Layers.Select(l => l.GetProperty("mediaType").GetString()));
        Assert.Equal("wasip2", layout.Config.GetProperty("os").GetString());
    }

    [Theory]
    [InlineData("wasm", "application/wasm")]
    [InlineData("content", "application/vnd.wasm.content.layer.v1+wasm")]
    public void An_explicit_media_type_wins_over_the_header(string option, string mediaType)
    {
        var layout = Build("--name", "example.local/p2", "--module", Component("p2.wasm", 3), "--media-type", option, "--platform", "wasip1/wasm");
        Assert.Equal(mediaType, Assert.Single(layout.Layers).GetProperty("mediaType").GetString());
        Assert.Equal("wasip1", layout.Config.GetProperty("os").GetString());
    }

    [Theory]
    [InlineData(new byte[] { 0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0 }, "not a WebAssembly module or component")] // an ELF file
    [InlineData(new byte[] { 0, 0x61, 0x73, 0x6d }, "not a WebAssembly module or component")]          // too short for a header
    [InlineData(new byte[] { 0, 0x61, 0x73, 0x6d, 0x0d, 0, 2, 0 }, "unknown layer")]
    public void A_module_that_is_not_wasm_is_refused_naming_the_file(byte[] content, string message)
    {
        var path = Path.Combine(_dir, "notwasm.wasm");
        File.WriteAllBytes(path, content);
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        int code;
        try
        {
            code = Program.Main(["build", "--name", "example.local/app", "--output", Path.Combine(_dir, "x.tar"), "--module", path]);
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.Equal(2, code);
        Assert.Contains($"--module '{path}'", error.ToString(), StringComparison.Ordinal);
        Assert.Contains(message, error.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "x.tar")));
    }

    [Fact]
    public void Wasi_platform_and_explicit_entrypoint_are_kept()
    {
        var layout = Build("--name", "example.local/app", "--module", Module("app.wasm", 3), "--platform", "wasi/wasm",
            "--entrypoint", "/app.wasm", "--cmd", "serve", "--env", "A=1");
        Assert.Equal("wasi", layout.Entry.GetProperty("platform").GetProperty("os").GetString());
        Assert.Equal("wasi", layout.Config.GetProperty("os").GetString());
        var config = layout.Config.GetProperty("config");
        Assert.Equal(["/app.wasm"], config.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["serve"], config.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["A=1"], config.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Rootfs_form_is_unchanged_one_tar_layer_and_the_host_platform()
    {
        var layout = Build("--name", "example.local/app", "--file", $"{Module("app.wasm", 4)}:/app.wasm", "--platform", "linux/amd64");
        Assert.Equal("application/vnd.oci.image.layer.v1.tar+gzip", Assert.Single(layout.Layers).GetProperty("mediaType").GetString());
        Assert.Equal("amd64", layout.Config.GetProperty("architecture").GetString());
        Assert.Equal(1, layout.Config.GetProperty("rootfs").GetProperty("diff_ids").GetArrayLength());
    }

    [Theory]
    [InlineData("--file", "{m}:/x.wasm")]                 // no rootfs in the artifact form
    [InlineData("--platform", "linux/amd64")]             // an artifact's architecture is wasm
    [InlineData("--media-type", "not a type")]
    [InlineData("--module", "{dir}/missing.wasm")]
    public void Artifact_form_rejects_what_it_cannot_represent(string option, string value)
    {
        var module = Module("app.wasm", 5);
        value = value.Replace("{m}", module, StringComparison.Ordinal).Replace("{dir}", _dir, StringComparison.Ordinal);
        var code = Program.Main(["build", "--name", "example.local/app", "--output", Path.Combine(_dir, "x.tar"), "--module", module, option, value]);
        Assert.Equal(2, code);
        Assert.False(File.Exists(Path.Combine(_dir, "x.tar")));
    }

    [Fact]
    public void Two_modules_with_the_same_file_name_are_refused()
    {
        var a = Module("app.wasm", 6);
        var sub = Directory.CreateDirectory(Path.Combine(_dir, "sub")).FullName;
        File.WriteAllBytes(Path.Combine(sub, "app.wasm"), [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 7]);
        var code = Program.Main(["build", "--name", "example.local/app", "--output", Path.Combine(_dir, "x.tar"), "--module", a, "--module", Path.Combine(sub, "app.wasm")]);
        Assert.Equal(2, code);
    }

    [Fact]
    public void Media_type_without_a_module_is_refused()
    {
        var code = Program.Main(["build", "--name", "example.local/app", "--output", Path.Combine(_dir, "x.tar"), "--file", $"{Module("a.wasm", 8)}:/a.wasm", "--media-type", "wasm"]);
        Assert.Equal(2, code);
    }

    // ---- the shim's resolver on what the tool wrote ----------------------------------------------------

    [Fact]
    public async Task Resolver_finds_the_single_module_layer_by_digest()
    {
        var module = Module("app.wasm", 9);
        var layout = Build("--name", "example.local/app", "--module", module, "--media-type", "content");
        var resolution = await WasmArtifact.ResolveAsync(Target(layout), "whatever.wasm", layout.Read);
        Assert.True(resolution.IsArtifact);
        Assert.Equal(Sha(module), resolution.Module!.Digest);
        Assert.Equal("wasip1", resolution.Os);
        Assert.Equal(WasmArtifact.Sha256Hex(Sha(module)), Sha(module)["sha256:".Length..]);
    }

    [Theory]
    [InlineData("/b.wasm", "b.wasm")]
    [InlineData("c.wasm", "c.wasm")]
    [InlineData("/usr/bin/a.wasm", "a.wasm")]
    public async Task Resolver_chooses_among_several_modules_by_the_first_argument(string argv0, string expected)
    {
        var paths = new[] { Module("a.wasm", 10), Module("b.wasm", 11), Module("c.wasm", 12) };
        var layout = Build(["--name", "example.local/app", .. paths.SelectMany(p => new[] { "--module", p })]);
        var resolution = await WasmArtifact.ResolveAsync(Target(layout), argv0, layout.Read);
        Assert.Equal(expected, resolution.Module!.Title);
        Assert.Equal(Sha(paths.Single(p => Path.GetFileName(p) == expected)), resolution.Module.Digest);
    }

    [Fact]
    public async Task Resolver_refuses_several_modules_that_the_argument_does_not_name()
    {
        var layout = Build("--name", "example.local/app", "--module", Module("a.wasm", 13), "--module", Module("b.wasm", 14));
        var e = await Assert.ThrowsAsync<WasmArtifactException>(() => WasmArtifact.ResolveAsync(Target(layout), "z.wasm", layout.Read));
        Assert.Contains("2 module layers", e.Message);
        Assert.Contains("a.wasm", e.Message);
        Assert.Contains("b.wasm", e.Message);
        e = await Assert.ThrowsAsync<WasmArtifactException>(() => WasmArtifact.ResolveAsync(Target(layout), null, layout.Read));
        Assert.Contains("no process args", e.Message);
    }

    [Fact]
    public async Task Resolver_reports_a_wasm_image_without_a_module_layer()
    {
        var layout = Build("--name", "example.local/app", "--module", Module("a.wasm", 15), "--media-type", "application/vnd.example.other");
        var e = await Assert.ThrowsAsync<WasmArtifactException>(() => WasmArtifact.ResolveAsync(Target(layout), "a.wasm", layout.Read));
        Assert.Contains("no module layer", e.Message);
        Assert.Contains("application/vnd.example.other", e.Message);
    }

    [Theory]
    [InlineData("linux/amd64", "architecture")]
    [InlineData("wasi/wasm", "filesystem layers")]     // Docker's wasi/wasm images: the module is a file
    public async Task Resolver_says_a_rootfs_image_is_not_an_artifact(string platform, string reason)
    {
        var layout = Build("--name", "example.local/app", "--file", $"{Module("a.wasm", 16)}:/a.wasm", "--platform", platform);
        var resolution = await WasmArtifact.ResolveAsync(Target(layout), "/a.wasm", layout.Read);
        Assert.False(resolution.IsArtifact);
        Assert.Contains(reason, resolution.NotArtifactReason);
    }

    [Fact]
    public async Task Resolver_picks_the_wasm_manifest_of_a_multi_platform_index()
    {
        var native = Build("--name", "example.local/app", "--file", $"{Module("a.wasm", 17)}:/a.wasm", "--platform", "linux/amd64");
        var wasm = Build("--name", "example.local/app", "--module", Module("a.wasm", 18));
        var blobs = native.Files.Concat(wasm.Files).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.First().Value);
        var index = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = ImageMediaTypes.OciIndex,
            manifests = new[] { native.Entry, wasm.Entry },
        });
        var indexDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(index));
        blobs["blobs/sha256/" + indexDigest["sha256:".Length..]] = index;
        var combined = new Layout(blobs);
        var target = new OciDescriptor { MediaType = ImageMediaTypes.OciIndex, Digest = indexDigest, Size = index.Length };
        var resolution = await WasmArtifact.ResolveAsync(target, "a.wasm", combined.Read);
        Assert.Equal(Sha(Path.Combine(_dir, "a.wasm")), resolution.Module!.Digest);

        // Without the wasm entry, the index is a native image.
        var nativeOnly = JsonSerializer.SerializeToUtf8Bytes(new { schemaVersion = 2, mediaType = ImageMediaTypes.OciIndex, manifests = new[] { native.Entry } });
        var nativeDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(nativeOnly));
        blobs["blobs/sha256/" + nativeDigest["sha256:".Length..]] = nativeOnly;
        var notArtifact = await WasmArtifact.ResolveAsync(new OciDescriptor { MediaType = ImageMediaTypes.OciIndex, Digest = nativeDigest, Size = nativeOnly.Length }, "a.wasm", new Layout(blobs).Read);
        Assert.False(notArtifact.IsArtifact);
        Assert.Contains("linux/amd64", notArtifact.NotArtifactReason);
    }
}

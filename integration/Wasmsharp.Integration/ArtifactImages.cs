namespace Wasmsharp.Integration;

// OCI Wasm artifact images (module layers, no rootfs), built with the image tool's --module form.
public static class ArtifactImages
{
    // The platform the tool writes for artifacts; `ctr images import` keeps only the platforms it is asked for.
    public const string Platform = "wasip1/wasm";

    public const string Hello = "example.local/art-hello:1";
    public const string HelloComponentType = "example.local/art-hello-component:1";
    public const string HelloContentType = "example.local/art-hello-content:1";
    // A WASI preview 2 component (p2/p2.c): the tool gives its layer the component media type and the image
    // the wasip2/wasm platform from the file's header, with no option saying so.
    public const string Component = "example.local/art-p2:1";
    public const string ComponentPlatform = "wasip2/wasm";
    public const string Multi = "example.local/art-multi:1";
    public const string NoModuleLayer = "example.local/art-none:1";
    public const string Trap = "example.local/art-trap:1";
    public const string Sleep = "example.local/art-sleep:1";
    // The classic form with Docker's wasi/wasm platform: the module is a file of a tar layer.
    public const string ClassicWasi = "example.local/classic-wasi:1";
    public const string ClassicWasiPlatform = "wasi/wasm";

    public static string Build(string outputDir, string name, params string[] args)
    {
        var output = Path.Combine(outputDir, name.Replace('/', '_').Replace(':', '_') + ".tar");
        var result = Images.RunImageTool(["build", "--name", name, "--output", output, .. args]);
        if (result.ExitCode != 0) throw new InvalidOperationException($"building {name} failed:\n{result}");
        return output;
    }

    /// <summary>Builds and imports every artifact image the artifact tests use.</summary>
    public static void BuildAndImportAll(PrivateContainerd containerd, WasmPrograms programs)
    {
        var dir = containerd.BaseDir;
        var hello = programs.Path("hello");
        Import(containerd, Build(dir, Hello, "--module", hello), Platform);
        Import(containerd, Build(dir, HelloComponentType, "--module", hello, "--media-type", "component"), Platform);
        Import(containerd, Build(dir, Component, "--module", programs.Path("p2"), "--entrypoint", "p2.wasm", "--cmd", "hello"), ComponentPlatform);
        Import(containerd, Build(dir, HelloContentType, "--module", hello, "--media-type", "content"), Platform);
        Import(containerd, Build(dir, Multi, "--module", hello, "--module", programs.Path("exit"), "--module", programs.Path("env"),
            "--env", "FROM_IMAGE=artifact"), Platform);
        Import(containerd, Build(dir, NoModuleLayer, "--module", hello, "--media-type", "application/vnd.example.not-wasm"), Platform);
        Import(containerd, Build(dir, Trap, "--module", programs.Path("trap")), Platform);
        Import(containerd, Build(dir, Sleep, "--module", programs.Path("sleep")), Platform);
        Import(containerd, Build(dir, ClassicWasi, "--platform", ClassicWasiPlatform, "--file", $"{hello}:/hello.wasm", "--entrypoint", "/hello.wasm"), ClassicWasiPlatform);
    }

    public static void Import(PrivateContainerd containerd, string tarball, string platform)
    {
        var result = containerd.Ctr(TimeSpan.FromSeconds(60), "images", "import", "--platform", platform, tarball);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"importing {tarball} for {platform} failed:\n{result}\n{containerd.LogTail()}");
    }

    /// <summary>The manifest's layer descriptors of an imported image, read back through ctr (digest, media type).</summary>
    public static IReadOnlyList<(string Digest, string MediaType)> Layers(PrivateContainerd containerd, string image)
    {
        var list = containerd.Ctr("images", "ls");
        var row = list.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(image + " ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"image {image} not listed:\n{list}");
        var manifestDigest = row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];
        var manifest = containerd.Ctr("content", "get", manifestDigest);
        if (manifest.ExitCode != 0) throw new InvalidOperationException($"ctr content get {manifestDigest} failed:\n{manifest}");
        using var doc = System.Text.Json.JsonDocument.Parse(manifest.Stdout);
        return doc.RootElement.GetProperty("layers").EnumerateArray()
            .Select(l => (l.GetProperty("digest").GetString()!, l.GetProperty("mediaType").GetString()!))
            .ToList();
    }
}

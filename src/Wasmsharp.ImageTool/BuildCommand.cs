namespace Wasmsharp.ImageTool;

// `wasmsharp-image build ...`: parses the command line into an ImageDefinition and writes the archive.
public static class BuildCommand
{
    public static int Run(string[] args)
    {
        if (args is ["-h" or "--help", ..])
        {
            Console.Out.WriteLine(Program.Usage);
            return 0;
        }
        var (definition, output) = Parse(args);
        IImageLayout layout = definition.Modules.Count > 0 ? new ArtifactImageLayout() : new RootfsImageLayout();
        var image = layout.Build(definition);
        OciArchive.Write(output, definition.Reference, image);
        Console.Out.WriteLine($"{definition.Reference.Name} ({definition.Platform}) -> {output} (manifest {image.Manifest.Digest})");
        return 0;
    }

    public static (ImageDefinition Definition, string Output) Parse(string[] args)
    {
        string? name = null, output = null, platform = null, mediaType = null;
        List<string> modules = [];
        var files = new List<(string Host, string Guest)>();
        var symlinks = new List<(string Guest, string Target)>();
        List<string> entrypoint = [], cmd = [], env = [];

        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string option = arg, value;
            var eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                // --opt=value form
                option = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else
            {
                if (!arg.StartsWith("--", StringComparison.Ordinal))
                    throw new UsageException($"unexpected argument '{arg}'");
                if (i + 1 >= args.Length)
                    throw new UsageException($"{arg} needs a value");
                value = args[++i];
            }

            switch (option)
            {
                case "--name": name = value; break;
                case "--output": output = value; break;
                case "--platform": platform = value; break;
                case "--file": files.Add(SplitFile(value)); break;
                case "--symlink": symlinks.Add(SplitSymlink(value)); break;
                case "--entrypoint": entrypoint.Add(value); break;
                case "--cmd": cmd.Add(value); break;
                case "--module": modules.Add(value); break;
                case "--media-type": mediaType = MediaTypes.ModuleLayer(value); break;
                case "--env":
                    if (value.IndexOf('=') <= 0)
                        throw new UsageException($"--env '{value}': expected K=V");
                    env.Add(value);
                    break;
                default: throw new UsageException($"unknown option '{option}'");
            }
        }

        if (name is null) throw new UsageException("--name is required");
        if (output is null) throw new UsageException("--output is required");
        var outputDir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        if (!Directory.Exists(outputDir))
            throw new UsageException($"--output '{output}': directory {outputDir} does not exist");
        if (Directory.Exists(output))
            throw new UsageException($"--output '{output}' is a directory; give a file name");
        var reference = ImageReference.Parse(name);
        if (modules.Count > 0 && (files.Count > 0 || symlinks.Count > 0))
            throw new UsageException("--module (the artifact form) has no rootfs: --file and --symlink cannot be used with it");
        if (modules.Count == 0 && mediaType is not null)
            throw new UsageException("--media-type applies to --module layers (the artifact form)");
        var moduleFiles = modules.Select(m => ModuleFile.Read(m, mediaType)).ToList();
        var imagePlatform = platform is not null ? Platform.Parse(platform)
            : modules.Count > 0 ? ArtifactImageLayout.DefaultPlatformFor(moduleFiles) : Platform.Host();
        if (modules.Count > 0 && imagePlatform.Architecture != "wasm")
            throw new UsageException($"--platform '{platform}': an artifact image's architecture is wasm (e.g. wasip1/wasm or wasi/wasm)");
        var entries = new RootfsBuilder();
        foreach (var (host, guest) in files) entries.AddHostPath(host, guest);
        foreach (var (guest, target) in symlinks) entries.AddSymlink(guest, target);
        var definition = new ImageDefinition(reference, imagePlatform, entries.Build(), entrypoint, cmd, env)
        {
            Modules = moduleFiles,
        };
        return (definition, output);
    }

    // HOST:/GUEST — split at the last ":/" so host paths may contain ':'; the guest path must be absolute.
    private static (string Host, string Guest) SplitFile(string value)
    {
        var split = value.LastIndexOf(":/", StringComparison.Ordinal);
        if (split <= 0)
            throw new UsageException($"--file '{value}': expected HOSTPATH:/guest/path (guest path absolute)");
        return (value[..split], value[(split + 1)..]);
    }

    // /GUEST:TARGET — split at the first ':' after the absolute guest path; the target may be relative.
    private static (string Guest, string Target) SplitSymlink(string value)
    {
        var split = value.IndexOf(':');
        if (!value.StartsWith('/') || split <= 1 || split == value.Length - 1)
            throw new UsageException($"--symlink '{value}': expected /guest/link:target");
        return (value[..split], value[(split + 1)..]);
    }
}

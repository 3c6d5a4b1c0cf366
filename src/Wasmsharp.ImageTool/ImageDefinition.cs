using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Wasmsharp.ImageTool;

// Everything an image is made of, independent of how it is laid out: the rootfs form reads Entries, the
// OCI Wasm artifact form reads Modules (each becomes one layer of its media type).
public sealed record ImageDefinition(
    ImageReference Reference,
    Platform Platform,
    IReadOnlyList<RootfsEntry> Entries,
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Cmd,
    IReadOnlyList<string> Env)
{
    public IReadOnlyList<ModuleFile> Modules { get; init; } = [];
}

// "registry/path/name:tag". Kept verbatim as the image name: ctr does not normalise names, so what the
// user passes is what they will type in `ctr run`.
public sealed partial record ImageReference(string Name, string Repository, string Tag)
{
    public static ImageReference Parse(string value)
    {
        if (value.Contains('@'))
            throw new UsageException($"--name '{value}': digest references cannot be written, give a tag");
        var slash = value.LastIndexOf('/');
        var colon = value.LastIndexOf(':');
        var (repository, tag) = colon > slash ? (value[..colon], value[(colon + 1)..]) : (value, "latest");
        if (!RepositoryPattern().IsMatch(repository))
            throw new UsageException($"--name '{value}': '{repository}' is not a valid repository name (lower-case letters, digits, '.', '_', '-', '/' separated parts)");
        if (!TagPattern().IsMatch(tag))
            throw new UsageException($"--name '{value}': '{tag}' is not a valid tag");
        return new ImageReference($"{repository}:{tag}", repository, tag);
    }

    // The distribution reference grammar, simplified: optional host[:port], then path components.
    [GeneratedRegex(@"^([a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();
}

// OCI platform: os/architecture[/variant], with Go's names (amd64, arm64) as every registry uses.
public sealed record Platform(string Os, string Architecture, string? Variant)
{
    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    public static Platform Parse(string value)
    {
        var parts = value.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
            throw new UsageException($"--platform '{value}': expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64");
        return new Platform(parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
    }

    // containerd unpacks only images matching the host platform by default, so default to the host.
    public static Platform Host() => new("linux", RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var other => other.ToString().ToLowerInvariant(),
    }, null);
}

// One entry of the image's root filesystem. GuestPath is relative, without leading '/', e.g. "bin/sh".
public abstract record RootfsEntry(string GuestPath);

public sealed record FileEntry(string GuestPath, string HostPath, UnixFileMode Mode) : RootfsEntry(GuestPath);

public sealed record DirectoryEntry(string GuestPath, UnixFileMode Mode) : RootfsEntry(GuestPath);

public sealed record SymlinkEntry(string GuestPath, string Target) : RootfsEntry(GuestPath);

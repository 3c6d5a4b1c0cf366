using System.Diagnostics;
using System.Globalization;

namespace Wasmsharp.Shim;

/// <summary>
/// The release of the containerd that runs us, needed only to pick the gRPC start reply (1.7 takes
/// shim version 2, 2.x requires 3, 1.6 cannot talk gRPC at all). 2.3+ says so in its bootstrap
/// parameters; older releases are asked (`containerd --version`, the -publish-binary); only 1.7+ set
/// MAX_SHIM_VERSION in our environment.
/// </summary>
public readonly record struct ContainerdVersion(int Major, int Minor)
{
    public override string ToString() => $"{Major}.{Minor}";

    public bool AtLeast(int major, int minor) => Major > major || (Major == major && Minor >= minor);

    /// <summary>The first "N.N" token of a version string ("2.1.9+unknown", "v1.7.24", "1.6.20~ds1").</summary>
    public static ContainerdVersion? Parse(string text)
    {
        foreach (var token in text.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            var t = token.StartsWith('v') ? token[1..] : token;
            var dot = t.IndexOf('.');
            if (dot <= 0) continue;
            var minorDigits = t[(dot + 1)..].TakeWhile(char.IsAsciiDigit).Count();
            if (minorDigits > 0 &&
                int.TryParse(t[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out var major) &&
                int.TryParse(t.AsSpan(dot + 1, minorDigits), NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
                return new ContainerdVersion(major, minor);
        }
        return null;
    }

    public static ContainerdVersion? Detect(string? bootstrapVersion, string publishBinary)
    {
        if (bootstrapVersion is { Length: > 0 } && Parse(bootstrapVersion) is { } fromBootstrap) return fromBootstrap;
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MAX_SHIM_VERSION"))) return new ContainerdVersion(1, 6);
        return publishBinary.Length > 0 && Ask(publishBinary) is { } output ? Parse(output) : null;
    }

    private static string? Ask(string containerd)
    {
        try
        {
            var psi = new ProcessStartInfo(containerd, ["--version"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(psi);
            if (process is null) return null;
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(5))) process.Kill();
            return process.ExitCode == 0 ? output : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            return null;
        }
    }
}

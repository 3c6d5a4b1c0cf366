namespace Wasmsharp.Shim;

/// <summary>
/// The environment a guest process gets: the spec's, plus <c>PWD</c> naming the working directory
/// (docker run -w, the image's WorkingDir) when it is not "/" and the spec does not set PWD itself.
/// WASI preview1 has no working directory: Go's wasip1 port starts in $PWD, and wasi-libc programs
/// (C, C++, Rust) start in "/" but can chdir(getenv("PWD")). A login shell sets PWD the same way.
/// </summary>
internal static class GuestEnvironment
{
    public static IReadOnlyList<KeyValuePair<string, string>> For(Oci.Process process)
    {
        var env = process.EnvPairs();
        var cwd = process.Cwd;
        if (string.IsNullOrEmpty(cwd) || cwd.Trim('/').Length == 0 || env.Any(p => p.Key == "PWD")) return env;
        return [.. env, new("PWD", cwd)];
    }
}

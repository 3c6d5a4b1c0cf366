namespace Wasmsharp.Integration;

// Third-party programs built for wasm32-wasi at test time, shared by the suite and the bench. Today: the
// SQLite shell from Debian's sqlite3 source package (integration/scripts/build-sqlite-wasm.sh), cached
// under out/sqlite so only the first run on a machine pays for fetching and compiling it.
public static class RealPrograms
{
    public const string SqliteImage = "example.local/sqlite:1";

    private static readonly Lazy<string> SqliteLazy = new(BuildSqlite);

    public static string ScriptsDir => Path.Combine(RepoLayout.Root, "integration", "scripts");

    public static string SqliteOutDir =>
        Environment.GetEnvironmentVariable("WASMSHARP_SQLITE_DIR") is { Length: > 0 } dir ? dir : Path.Combine(RepoLayout.Root, "out", "sqlite");

    /// <summary>Path of sqlite3.wasm, built (or found in the cache) on first use.</summary>
    public static string Sqlite => SqliteLazy.Value;

    private static string BuildSqlite()
    {
        // Fetching the source and compiling the 9 MB amalgamation takes about a minute when not cached.
        var result = ProcessRunner.Run(Path.Combine(ScriptsDir, "build-sqlite-wasm.sh"), [SqliteOutDir], TimeSpan.FromMinutes(10));
        var wasm = Path.Combine(SqliteOutDir, "sqlite3.wasm");
        if (result.ExitCode != 0 || !File.Exists(wasm))
            throw new InvalidOperationException(
                "building the SQLite shell for wasm32-wasi failed (needs dpkg-dev, tcl, clang-16, lld-16, wasi-libc):\n" + result);
        return wasm;
    }

    /// <summary>
    /// The SQLite image: /sqlite3.wasm as the entrypoint, HOME=/ (the shell looks for ~/.sqliterc), and an
    /// empty /data to mount the user's files on.
    /// </summary>
    public static string BuildSqliteImage(string outputDir)
    {
        var empty = Directory.CreateDirectory(Path.Combine(outputDir, "sqlite-empty-dir")).FullName;
        var output = Path.Combine(outputDir, "sqlite-image.tar");
        var result = Images.RunImageTool(["build", "--name", SqliteImage, "--output", output, "--platform", Images.HostPlatform,
            "--file", $"{Sqlite}:/sqlite3.wasm", "--file", $"{empty}:/data", "--env", "HOME=/", "--entrypoint", "/sqlite3.wasm"]);
        if (result.ExitCode != 0) throw new InvalidOperationException($"building {SqliteImage} failed:\n{result}");
        return output;
    }
}

using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The shim keeps compiled modules on disk (here $WASMSHARP_CACHE_DIR under the private base dir): the
// second container of a module does not compile it, and a damaged entry is recompiled, never trusted.
[Collection(ContainerdCollection.Name)]
public sealed class ModuleCacheTests(ContainerdFixture f)
{
    private string CacheDir => Path.Combine(f.Containerd.BaseDir, "cache");

    // A first run compiles quickly for itself and writes the optimised code in the background: wait for it.
    private void WaitForHelloEntry()
    {
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f.Programs.Path("hello"))));
        bool Written() => Directory.Exists(CacheDir) && Directory.GetFiles(CacheDir, sha + ".*.cwasm", SearchOption.AllDirectories).Length > 0;
        ContainerdFixture.Eventually(Written, TimeSpan.FromSeconds(60));
        Assert.True(Written(), $"no cache entry for hello ({sha}) in {CacheDir}");
    }

    private string ModuleLogLine(string id) =>
        File.ReadLines(f.Containerd.LogPath).LastOrDefault(l => l.Contains($"{id}: module /hello.wasm", StringComparison.Ordinal)) ?? "(no line)";

    [Fact]
    public void Second_container_loads_the_compiled_module_from_the_cache()
    {
        var first = f.NewId("cache-first");
        var run1 = f.RunWasm(first, "/hello.wasm");
        WaitForHelloEntry();
        var second = f.NewId("cache-second");
        var run2 = f.RunWasm(second, "/hello.wasm");
        f.Check(run1.ExitCode == 0 && run2.ExitCode == 0, "both runs succeed", second, run1, run2);
        f.Check(ModuleLogLine(second).Contains("CacheHit", StringComparison.Ordinal), $"the second run should hit the cache: {ModuleLogLine(second)}", second, run2);
        var entries = Directory.GetFiles(CacheDir, "*.cwasm", SearchOption.AllDirectories);
        f.Check(entries.Length > 0, "compiled modules are stored in the cache directory", second, run2);
        f.Check((File.GetUnixFileMode(CacheDir) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) == 0, "the cache directory is root-only", second, run2);
    }

    [Fact]
    public void Damaged_entry_is_recompiled_and_the_container_still_runs()
    {
        var warm = f.NewId("cache-warm");
        f.RunWasm(warm, "/hello.wasm");
        WaitForHelloEntry();
        foreach (var entry in Directory.GetFiles(CacheDir, "*.cwasm", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(entry);
            for (var i = bytes.Length / 2; i < Math.Min(bytes.Length, bytes.Length / 2 + 64); i++) bytes[i] ^= 0xFF;
            File.WriteAllBytes(entry, bytes);
        }
        var id = f.NewId("cache-damaged");
        var run = f.RunWasm(id, "/hello.wasm", "still");
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("still", StringComparison.Ordinal), "the container runs despite the damaged entry", id, run);
        f.Check(ModuleLogLine(id).Contains("CacheReplaced", StringComparison.Ordinal), $"the damaged entry should be replaced: {ModuleLogLine(id)}", id, run);
    }
}

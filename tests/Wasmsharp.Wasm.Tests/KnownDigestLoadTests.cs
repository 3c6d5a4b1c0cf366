using System.Security.Cryptography;

namespace Wasmsharp.Wasm.Tests;

// Loading a module named by the SHA-256 of its bytes (an OCI layer digest): the bytes are read only when
// there is something to compile, and bytes that do not match the name are never compiled or cached.
[Collection(GuestCollection.Name)]
public sealed class KnownDigestLoadTests(GuestModules guests) : IDisposable
{
    private readonly string work = Directory.CreateTempSubdirectory("wasmsharp-digest-case-").FullName;

    public void Dispose() => Directory.Delete(work, recursive: true);

    private WasmHost NewHost() => new(new WasmHostOptions { CacheDirectory = Path.Combine(work, "cache") });

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Fact]
    public void Bytes_are_not_read_when_the_compiled_module_is_cached()
    {
        var bytes = File.ReadAllBytes(guests.Wasm("hello"));
        var reads = 0;
        using (var first = NewHost())
        {
            var module = first.LoadModule("hello.wasm", Sha(bytes), () => { reads++; return bytes; });
            Assert.Equal(ModuleOrigin.CacheMiss, module.Origin);
            Assert.Equal(module.Sha256, first.LoadModule("hello.wasm", Sha(bytes), () => { reads++; return bytes; }).Sha256);
        }
        Assert.Equal(1, reads);
        using var second = NewHost();
        var cached = second.LoadModule("hello.wasm", Sha(bytes), () => throw new InvalidOperationException("must not be read"));
        Assert.Equal(ModuleOrigin.CacheHit, cached.Origin);
        Assert.Equal(Sha(bytes), cached.Sha256);
    }

    [Fact]
    public void Bytes_that_do_not_match_the_digest_are_refused_and_not_cached()
    {
        var hello = File.ReadAllBytes(guests.Wasm("hello"));
        var other = File.ReadAllBytes(guests.Wasm("args_env"));
        using var host = NewHost();
        var e = Assert.Throws<WasmModuleException>(() => host.LoadModule("hello.wasm", Sha(hello), () => other));
        Assert.Contains($"sha256:{Sha(hello)}", e.Message);
        Assert.Empty(Directory.Exists(Path.Combine(work, "cache")) ? Directory.GetFiles(Path.Combine(work, "cache"), "*.cwasm", SearchOption.AllDirectories) : []);
        // The failed attempt leaves nothing behind: the right bytes load afterwards.
        Assert.Equal(Sha(hello), host.LoadModule("hello.wasm", Sha(hello), () => hello).Sha256);
    }

    [Fact]
    public void A_digest_that_is_not_sha256_hex_is_rejected()
    {
        using var host = NewHost();
        Assert.Throws<ArgumentException>(() => host.LoadModule("x.wasm", "sha256:abc", () => []));
        Assert.Throws<ArgumentException>(() => host.LoadModule("x.wasm", new string('A', 64), () => []));
    }
}

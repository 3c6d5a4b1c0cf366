using Wasmsharp.Oci;
using Wasmsharp.Shim;

public sealed class InjectedInitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ws-init-").FullName;
    private string Tini => Path.Combine(_dir, "docker-init");

    public InjectedInitTests() => File.WriteAllText(Tini, "a native init");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Mount InitMount(string source) => new() { Destination = "/sbin/docker-init", Type = "bind", Source = source, Options = ["bind", "ro"] };

    [Fact]
    public void Docker_init_wrapper_is_dropped()
    {
        var process = new Process { Args = ["/sbin/docker-init", "--", "/app.wasm", "a"] };
        Assert.True(InjectedInit.Unwrap(process, [InitMount(Tini)]));
        Assert.Equal(["/app.wasm", "a"], process.Args);
    }

    [Theory]
    [InlineData("/sbin/docker-init", "/app.wasm")]           // no "--"
    [InlineData("/app.wasm", "--")]                          // "--" given to the module itself, no init mount there
    public void Other_commands_are_left_alone(string first, string second)
    {
        var process = new Process { Args = [first, second, "x"] };
        Assert.False(InjectedInit.Unwrap(process, first == "/sbin/docker-init" ? [InitMount(Tini)] : []));
        Assert.Equal([first, second, "x"], process.Args);
    }

    [Fact]
    public void Init_path_that_is_not_a_mounted_host_file_is_kept()
    {
        // The image's own /sbin/docker-init (no bind mount), or a mount whose source is missing.
        var process = new Process { Args = ["/sbin/docker-init", "--", "/app.wasm"] };
        Assert.False(InjectedInit.Unwrap(process, []));
        Assert.False(InjectedInit.Unwrap(process, [InitMount(Path.Combine(_dir, "missing"))]));
        Assert.Equal(3, process.Args.Count);
    }
}

using Wasmsharp.Oci;
using Wasmsharp.Shim;

public sealed class GuestEnvironmentTests
{
    private static IReadOnlyList<KeyValuePair<string, string>> For(string cwd, params string[] env) =>
        GuestEnvironment.For(new Process { Args = ["/app.wasm"], Env = [.. env], Cwd = cwd });

    [Fact]
    public void WorkingDirectory_IsExportedAsPwd()
    {
        Assert.Equal([new("PATH", "/bin"), new("PWD", "/data/work")], For("/data/work", "PATH=/bin"));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("")]
    [InlineData("//")]
    public void RootOrNoWorkingDirectory_AddsNothing(string cwd)
    {
        Assert.Equal([new("PATH", "/bin")], For(cwd, "PATH=/bin"));
    }

    [Fact]
    public void PwdFromTheSpec_Wins()
    {
        Assert.Equal([new("PWD", "/elsewhere")], For("/data", "PWD=/elsewhere"));
    }
}

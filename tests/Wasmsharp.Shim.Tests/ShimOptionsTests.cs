using Wasmsharp.Shim;

public class ShimOptionsTests
{
    [Fact]
    public void ParsesContainerdStartCommandLine()
    {
        var o = ShimOptions.Parse(["-namespace", "default", "-address", "/run/containerd/containerd.sock",
            "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"]);
        Assert.Equal("default", o.Namespace);
        Assert.Equal("/run/containerd/containerd.sock", o.Address);
        Assert.Equal("/usr/bin/containerd", o.PublishBinary);
        Assert.Equal("c1", o.Id);
        Assert.True(o.Debug);
        Assert.Equal("start", o.Action);
        Assert.Equal(["-namespace", "default", "-address", "/run/containerd/containerd.sock",
            "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug"], o.DaemonArgs());
    }

    [Fact]
    public void ParsesDeleteWithBundleAndEqualsSyntax()
    {
        var o = ShimOptions.Parse(["-namespace=k8s.io", "-id", "x", "-bundle", "/b", "delete"]);
        Assert.Equal(("k8s.io", "x", "/b", "delete"), (o.Namespace, o.Id, o.Bundle, o.Action));
        Assert.False(o.Debug);
    }

    [Theory]
    [InlineData("-v")]
    [InlineData("--version")]
    public void VersionFlag(string flag) => Assert.True(ShimOptions.Parse([flag]).Version);

    [Fact]
    public void RejectsUnknownFlagsAndActions()
    {
        Assert.Throws<ArgumentException>(() => ShimOptions.Parse(["-bogus"]));
        Assert.Throws<ArgumentException>(() => ShimOptions.Parse(["-id"]));
        Assert.Throws<ArgumentException>(() => ShimOptions.Parse(["-id", "x", "launch"]));
    }
}

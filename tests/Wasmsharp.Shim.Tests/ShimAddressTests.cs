using System.Text;
using Wasmsharp.Shim;

public class ShimAddressTests
{
    [Fact]
    public void SocketPathIsADigestOfJoinedAddressNamespaceAndGroup()
    {
        var expected = Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(Encoding.UTF8.GetBytes("/run/containerd/containerd.sock/default/c1")));
        Assert.Equal("/run/containerd/s/" + expected, ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1"));
        Assert.NotEqual(ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1"), ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c2"));
        Assert.NotEqual(ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1"), ShimAddress.SocketPath("/run/containerd/containerd.sock", "other", "c1"));
        // Go's filepath.Join cleans the path: doubled and trailing slashes do not change the socket.
        Assert.Equal(ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1"),
            ShimAddress.SocketPath("/run//containerd/containerd.sock/", "default", "c1"));
        Assert.True(ShimAddress.ToUri(ShimAddress.SocketPath("/a", "b", "c")).Length <= 106);
    }

    [Fact]
    public void GroupPrefersRuncGroupThenSandboxThenId()
    {
        Assert.Equal("c1", ShimAddress.GroupId("c1", new Dictionary<string, string>()));
        Assert.Equal("pod", ShimAddress.GroupId("c1", new Dictionary<string, string> { ["io.kubernetes.cri.sandbox-id"] = "pod" }));
        Assert.Equal("g", ShimAddress.GroupId("c1", new Dictionary<string, string>
        {
            ["io.kubernetes.cri.sandbox-id"] = "pod",
            ["io.containerd.runc.v2.group"] = "g",
        }));
    }

    [Fact]
    public void UriRoundTrip()
    {
        Assert.Equal("/run/x", ShimAddress.FromUri("unix:///run/x"));
        Assert.Equal("/run/x", ShimAddress.FromUri("/run/x"));
        Assert.Equal("unix:///run/x", ShimAddress.ToUri("/run/x"));
    }

    [Fact]
    public void LiveOnlyWhenSomethingListens()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ws-live-{Guid.NewGuid():N}.sock");
        Assert.False(ShimAddress.IsLive(path));
        var fd = Wasmsharp.Linux.Sockets.ListenUnix(path);
        Assert.True(ShimAddress.IsLive(path));
        Wasmsharp.Linux.Sockets.Close(fd);
        // A socket file left by a dead shim is stale, not live.
        Assert.True(File.Exists(path));
        Assert.False(ShimAddress.IsLive(path));
        File.Delete(path);
    }
}

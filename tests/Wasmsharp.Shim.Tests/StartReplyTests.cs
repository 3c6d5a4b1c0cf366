using System.Text.Json;
using Grpc.Core;
using Wasmsharp.Shim;

public class StartReplyTests
{
    [Theory]
    [InlineData("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", 1, 6)]
    [InlineData("containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1", 1, 7)]
    [InlineData("containerd github.com/containerd/containerd/v2 2.1.9+unknown ", 2, 1)]
    [InlineData("v2.3.0", 2, 3)]
    public void ContainerdVersionIsReadFromItsVersionLine(string text, int major, int minor)
    {
        Assert.Equal(new ContainerdVersion(major, minor), ContainerdVersion.Parse(text));
    }

    [Fact]
    public void NoVersionInGarbage() => Assert.Null(ContainerdVersion.Parse("containerd dev"));

    [Fact]
    public void GrpcReplyIsTheJsonFormContainerd17Accepts()
    {
        using var doc = JsonDocument.Parse(StartCommand.GrpcReply("/run/containerd/s/abc-grpc"));
        Assert.Equal(2, doc.RootElement.GetProperty("version").GetInt32());
        Assert.Equal("/run/containerd/s/abc-grpc", doc.RootElement.GetProperty("address").GetString());
        Assert.Equal("grpc", doc.RootElement.GetProperty("protocol").GetString());
    }

    [Theory]
    [InlineData(1, 6, "cannot talk to gRPC shims")]
    [InlineData(1, 7, null)]
    [InlineData(2, 0, "drops gRPC shim connections")]
    [InlineData(2, 3, "drops gRPC shim connections")]
    public void GrpcIsUsedOnlyWhereContainerdCanKeepTheConnection(int major, int minor, string? reason)
    {
        var why = StartCommand.GrpcUnavailable(new ContainerdVersion(major, minor));
        if (reason is null) Assert.Null(why);
        else Assert.Contains(reason, why);
    }

    [Fact]
    public void AnUnknownContainerdIsTriedWithGrpc() => Assert.Null(StartCommand.GrpcUnavailable(null));

    [Theory]
    [InlineData(StatusCode.NotFound, "process c1: process already finished", "process c1: process already finished: not found")]
    [InlineData(StatusCode.NotFound, "container c1: not found", "container c1: not found")]
    [InlineData(StatusCode.AlreadyExists, "container c1", "container c1: already exists")]
    [InlineData(StatusCode.Unimplemented, "checkpoint", "checkpoint: not implemented")]
    [InlineData(StatusCode.Unknown, "cannot delete a running process", "cannot delete a running process")]
    public void ErrorsAreWordedAsGoShimsWordThem(StatusCode code, string message, string expected)
    {
        var e = RpcErrors.Create(code, message);
        Assert.Equal(code, e.StatusCode);
        Assert.Equal(expected, e.Status.Detail);
    }

    [Fact]
    public void TheAddressFileIsReadInBothForms()
    {
        Assert.Equal(new ShimAddress.Reply("/run/containerd/s/abc", ShimProtocol.Ttrpc), ShimAddress.ParseReply("unix:///run/containerd/s/abc"));
        Assert.Equal(new ShimAddress.Reply("/run/containerd/s/abc-grpc", ShimProtocol.Grpc), ShimAddress.ParseReply(StartCommand.GrpcReply("/run/containerd/s/abc-grpc")));
        Assert.Equal(ShimProtocol.Ttrpc, ShimAddress.ParseReply("{\"version\":3,\"address\":\"unix:///s\",\"protocol\":\"ttrpc\"}").Protocol);
        Assert.Throws<FormatException>(() => ShimAddress.ParseReply("{\"version\":2}"));
    }

    [Fact]
    public void TheDaemonIsToldItsProtocol()
    {
        var start = ShimOptions.Parse(["-namespace", "ns", "-address", "/c.sock", "-id", "c1", "start"]);
        var daemonArgs = start.DaemonArgs(ShimProtocol.Grpc);
        Assert.Equal(["-namespace", "ns", "-address", "/c.sock", "-id", "c1", "-protocol", "grpc"], daemonArgs);
        Assert.Equal(ShimProtocol.Grpc, ShimOptions.Parse(daemonArgs).Protocol);
        Assert.Equal(ShimProtocol.Ttrpc, ShimOptions.Parse(start.DaemonArgs()).Protocol);
        Assert.Throws<ArgumentException>(() => ShimOptions.Parse(["-protocol", "smoke-signals"]));
    }

    // `start` passes containerd's pid on: a daemon finishing a compile for the cache gives it up when containerd exits.
    [Fact]
    public void TheDaemonIsToldContainerdsPid()
    {
        var start = ShimOptions.Parse(["-namespace", "ns", "-address", "/c.sock", "-id", "c1", "start"]);
        var daemonArgs = start.DaemonArgs(ShimProtocol.Ttrpc, 4321);
        Assert.Equal(["-namespace", "ns", "-address", "/c.sock", "-id", "c1", "-containerd-pid", "4321"], daemonArgs);
        Assert.Equal(4321, ShimOptions.Parse(daemonArgs).ContainerdPid);
        Assert.Null(start.ContainerdPid);
        Assert.Throws<ArgumentException>(() => ShimOptions.Parse(["-containerd-pid", "0"]));
    }

    [Fact]
    public void ASocketDirFromBootstrapReplacesTheDefault()
    {
        var standard = ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1");
        var custom = ShimAddress.SocketPath("/run/containerd/containerd.sock", "default", "c1", "/run/x/");
        Assert.StartsWith("/run/containerd/s/", standard);
        Assert.Equal("/run/x/" + Path.GetFileName(standard), custom);
    }
}

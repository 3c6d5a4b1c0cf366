using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Containerd.Api.Bootstrap;
using Wasmsharp.Shim;
using Extension = Wasmsharp.Containerd.Api.Bootstrap.Extension;
using GenericOptions = Wasmsharp.Containerd.Api.RuntimeOptions.Options;
using WasmsharpOptions = Wasmsharp.Containerd.Api.Options.Options;

public class StartInputTests
{
    private static Any Generic(string? path = null, string? body = null) => new()
    {
        TypeUrl = "runtimeoptions.v1.Options",
        Value = new GenericOptions { ConfigPath = path ?? "", ConfigBody = ByteString.CopyFromUtf8(body ?? "") }.ToByteString(),
    };

    [Fact]
    public void EmptyStdinMeansNoOptions()
    {
        var input = StartInput.Parse([], "c1");
        Assert.Null(input.RuntimeOptions);
        Assert.Null(input.Bootstrap);
        Assert.Null(ShimRuntimeOptions.From(input.RuntimeOptions).Protocol);
    }

    [Fact]
    public void AnAnyIsTheRuntimeOptions()
    {
        var input = StartInput.Parse(Generic(body: "protocol = \"grpc\"").ToByteArray(), "c1");
        Assert.Null(input.Bootstrap);
        Assert.Equal("runtimeoptions.v1.Options", input.RuntimeOptions!.TypeUrl);
        Assert.Equal(ShimProtocol.Grpc, ShimRuntimeOptions.From(input.RuntimeOptions).Protocol);
    }

    [Fact]
    public void BootstrapParamsAreRecognisedByTheInstanceIdAndCarryTheOptionsAsAnExtension()
    {
        var bootstrap = new BootstrapParams
        {
            InstanceId = "c1",
            Namespace = "default",
            LogLevel = -4,
            ContainerdVersion = "2.3.0",
            ContainerdTtrpcAddress = "unix:///run/containerd/containerd.sock.ttrpc",
            ContainerdBinary = "/usr/bin/containerd",
            Extensions =
            {
                new Extension { Value = new Any { TypeUrl = "containerd.io/cri.v1.Other", Value = ByteString.CopyFromUtf8("x") } },
                new Extension { Value = new Any { TypeUrl = "type.googleapis.com/wasmsharp.options.v1.Options", Value = new WasmsharpOptions { Protocol = "grpc" }.ToByteString() } },
            },
            SocketDir = "/run/s",
        };
        var input = StartInput.Parse(bootstrap.ToByteArray(), "c1");
        Assert.Equal("2.3.0", input.Bootstrap!.ContainerdVersion);
        Assert.Equal("/run/s", input.Bootstrap.SocketDir);
        Assert.Equal(-4, input.Bootstrap.LogLevel);
        Assert.Equal(ShimProtocol.Grpc, ShimRuntimeOptions.From(input.RuntimeOptions).Protocol);
    }

    [Fact]
    public void BootstrapParamsWithoutOptionsHaveNone()
    {
        var input = StartInput.Parse(new BootstrapParams { InstanceId = "c1", Namespace = "ns" }.ToByteArray(), "c1");
        Assert.NotNull(input.Bootstrap);
        Assert.Null(input.RuntimeOptions);
    }

    [Fact]
    public void BootstrapParamsForAnotherInstanceAreRejected()
    {
        var data = new BootstrapParams { InstanceId = "other", Namespace = "ns", ContainerdVersion = "2.3.0" }.ToByteArray();
        var e = Assert.Throws<InvalidDataException>(() => StartInput.Parse(data, "c1"));
        Assert.Contains("\"other\", not \"c1\"", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff })]              // not protobuf at all
    [InlineData(new byte[] { 0x0a, 0x05, (byte)'a', (byte)'b' })] // truncated string
    [InlineData(new byte[] { (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o' })]
    public void GarbageIsAClearError(byte[] data)
    {
        var e = Assert.Throws<InvalidDataException>(() => StartInput.Parse(data, "c1"));
        Assert.StartsWith("malformed start input", e.Message);
    }

    [Fact]
    public void OptionsOfOtherRuntimesAreIgnored()
    {
        var runc = new Any { TypeUrl = "containerd.runc.v1.Options", Value = ByteString.CopyFrom(0x12, 0x03, (byte)'a', (byte)'b', (byte)'c') };
        var input = StartInput.Parse(runc.ToByteArray(), "c1");
        Assert.Equal(ShimRuntimeOptions.Default, ShimRuntimeOptions.From(input.RuntimeOptions));
    }

    [Fact]
    public void MalformedOptionsPayloadIsAClearError()
    {
        var bad = new Any { TypeUrl = "wasmsharp.options.v1.Options", Value = ByteString.CopyFrom(0x0a, 0x10, 0x01) };
        var e = Assert.Throws<InvalidDataException>(() => ShimRuntimeOptions.From(bad));
        Assert.Contains("wasmsharp.options.v1.Options are malformed", e.Message);
    }

    [Fact]
    public void ConfigPathIsReadAsToml()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "# wasmsharp\nProtocol = 'grpc' # CRI keeps the user's key spelling\nother = [1,\n 2]\n[table]\nprotocol = \"nonsense\"\n");
            Assert.Equal(ShimProtocol.Grpc, ShimRuntimeOptions.From(Generic(path: path)).Protocol);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ConfigPathWinsOverBody()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "protocol = \"ttrpc\"\n");
            Assert.Equal(ShimProtocol.Ttrpc, ShimRuntimeOptions.From(Generic(path: path, body: "protocol = \"grpc\"")).Protocol);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingConfigPathIsAClearError()
    {
        var e = Assert.Throws<InvalidDataException>(() => ShimRuntimeOptions.From(Generic(path: "/nonexistent/wasmsharp.toml")));
        Assert.Contains("cannot read config_path /nonexistent/wasmsharp.toml", e.Message);
    }

    [Theory]
    [InlineData("protocol = \"http\"", "unknown protocol \"http\"")]
    [InlineData("protocol = \"grpc", "config_body:1: unterminated string")]
    [InlineData("\n\njust words", "config_body:3: expected key = value")]
    [InlineData("[table", "unterminated table header")]
    public void BadTomlIsAClearError(string body, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ShimRuntimeOptions.From(Generic(body: body)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void EmptyBodyLeavesTheDefault()
    {
        Assert.Null(ShimRuntimeOptions.From(Generic()).Protocol);
    }
}

using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Containerd.Api.Types;
using Wasmsharp.Integration;
using GenericOptions = Wasmsharp.Containerd.Api.RuntimeOptions.Options;

namespace Wasmsharp.Integration.Tests;

// `shim -info`: containerd 2.x runs the binary with -info (runtime options on stdin) and decodes a
// containerd.types.RuntimeInfo from its stdout.
[Collection(ContainerdCollection.Name)]
public sealed class RuntimeInfoTests(ContainerdFixture f)
{
    private static (int ExitCode, byte[] Stdout, string Stderr) RunInfo(byte[] stdin)
    {
        var psi = new ProcessStartInfo(Path.Combine(RepoLayout.ShimDir, RepoLayout.ShimBinary), ["-info"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.BaseStream.Write(stdin);
        process.StandardInput.Close();
        using var stdout = new MemoryStream();
        process.StandardOutput.BaseStream.CopyTo(stdout);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(10)), "shim -info did not exit");
        return (process.ExitCode, stdout.ToArray(), stderr.Result);
    }

    [Fact]
    public void Info_prints_a_RuntimeInfo_with_name_version_and_OCI_features()
    {
        var (code, stdout, stderr) = RunInfo([]);
        Assert.True(code == 0, $"shim -info exited {code}: {stderr}");
        var info = RuntimeInfo.Parser.ParseFrom(stdout);
        Assert.Equal(RepoLayout.Runtime, info.Name);
        Assert.Matches(@"^\d+\.\d+\.\d+", info.Version.Version);
        Assert.Null(info.Options);
        Assert.Equal("types.containerd.io/opencontainers/runtime-spec/1/features/Features", info.Features.TypeUrl);
        using var features = JsonDocument.Parse(info.Features.Value.Memory);
        Assert.Equal("1.0.0", features.RootElement.GetProperty("ociVersionMin").GetString());
        Assert.False(features.RootElement.GetProperty("linux").GetProperty("mountExtensions").GetProperty("idmap").GetProperty("enabled").GetBoolean());
        Assert.Equal("ttrpc,grpc", info.Annotations["io.containerd.wasmsharp.protocols"]);
    }

    [Fact]
    public void Info_echoes_the_runtime_options_it_understood_and_rejects_malformed_ones()
    {
        var options = new Any
        {
            TypeUrl = "runtimeoptions.v1.Options",
            Value = new GenericOptions { ConfigBody = ByteString.CopyFromUtf8("protocol = \"grpc\"\n") }.ToByteString(),
        };
        var (code, stdout, stderr) = RunInfo(options.ToByteArray());
        Assert.True(code == 0, $"shim -info exited {code}: {stderr}");
        Assert.Equal(options, RuntimeInfo.Parser.ParseFrom(stdout).Options);

        var bad = new Any { TypeUrl = "runtimeoptions.v1.Options", Value = new GenericOptions { ConfigBody = ByteString.CopyFromUtf8("protocol = \"carrier-pigeon\"") }.ToByteString() };
        (code, stdout, stderr) = RunInfo(bad.ToByteArray());
        Assert.NotEqual(0, code);
        Assert.Empty(stdout);
        Assert.Contains("unknown protocol \"carrier-pigeon\"", stderr);
    }

    [Fact]
    public void Containerd_2_reads_our_runtime_info()
    {
        var (containerd, owned) = ContainerdVersions.Pick(f, ContainerdVersions.IsContainerd2, "sid", "wasmsharp-info");
        try
        {
            var result = containerd.Ctr("plugins", "inspect-runtime", "--runtime", RepoLayout.Runtime);
            Assert.True(result.ExitCode == 0, $"ctr plugins inspect-runtime failed:\n{result}\n{containerd.LogTail(20)}");
            using var json = JsonDocument.Parse(result.Stdout);
            Assert.Equal(RepoLayout.Runtime, json.RootElement.GetProperty("Name").GetString());
            Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("Version").GetProperty("Version").GetString()), result.Stdout);
        }
        finally
        {
            if (owned) containerd.Dispose();
        }
    }
}

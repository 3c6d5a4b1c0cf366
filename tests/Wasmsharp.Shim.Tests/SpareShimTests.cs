using System.Text;
using Wasmsharp.Linux;
using Wasmsharp.Shim;

// The hand-over of a container to a spare daemon, `start`'s side, against a spare played by the test.
public class SpareShimTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("wasmsharp-spare-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    // Plays a spare: takes one offer, checks it, answers as told; returns what it saw.
    private Task<(string[] Parts, bool GotListener, string Final)> Spare(string path, Func<int, string?> answer)
    {
        var listener = Sockets.ListenUnixMessages(path);
        return Task.Run(() =>
        {
            try
            {
                var connection = Sockets.Accept(listener, out _);
                var buffer = new byte[256 * 1024];
                var n = Sockets.Receive(connection, buffer, out var fd);
                var parts = Encoding.UTF8.GetString(buffer, 0, n).Split('\0');
                var reply = answer(fd);
                var final = "";
                if (reply is not null)
                {
                    Sockets.Send(connection, Encoding.ASCII.GetBytes(reply));
                    var m = Sockets.Receive(connection, buffer, out _);
                    final = Encoding.ASCII.GetString(buffer, 0, m);
                }
                if (fd >= 0) Sockets.Close(fd);
                Sockets.Close(connection);
                return (parts, fd >= 0, final);
            }
            finally
            {
                Sockets.Close(listener);
            }
        });
    }

    [Fact]
    public async Task The_listener_bundle_arguments_and_environment_go_to_the_spare_which_commits_on_go()
    {
        var sparePath = Path.Combine(dir, "spare");
        var spare = Spare(sparePath, _ => "ready 4242");
        var listener = Sockets.ListenUnix(Path.Combine(dir, "shim"));
        try
        {
            var pid = SpareShim.TryHandOver(sparePath, "/run/bundle", ["-namespace", "ns", "-id", "c1"], listener);
            Assert.Equal(4242, pid);
            var (parts, gotListener, final) = await spare;
            Assert.True(gotListener);
            Assert.Equal("go", final);
            var adoption = SpareShim.Decode(Encoding.UTF8.GetBytes(string.Join('\0', parts)))!;
            Assert.Equal("/run/bundle", adoption.Bundle);
            Assert.Equal(["-namespace", "ns", "-id", "c1"], adoption.Args);
            Assert.Contains($"PATH={Environment.GetEnvironmentVariable("PATH")}", adoption.Environment);
        }
        finally
        {
            Sockets.Close(listener);
        }
    }

    [Fact]
    public async Task A_spare_that_declines_or_is_absent_leaves_start_to_spawn_a_daemon()
    {
        var listener = Sockets.ListenUnix(Path.Combine(dir, "shim"));
        try
        {
            Assert.Null(SpareShim.TryHandOver(Path.Combine(dir, "nobody"), "/b", [], listener));

            var sparePath = Path.Combine(dir, "spare");
            var declining = Spare(sparePath, _ => "no environment");
            Assert.Null(SpareShim.TryHandOver(sparePath, "/b", [], listener));
            Assert.Equal("", (await declining).Final); // never told to go
        }
        finally
        {
            Sockets.Close(listener);
        }
    }

    [Fact]
    public void Offers_that_are_not_ours_are_not_decoded()
    {
        Assert.Null(SpareShim.Decode("hello"u8));
        Assert.Null(SpareShim.Decode(Encoding.UTF8.GetBytes("wasmsharp-adopt-1\0/b\05\0a\0b")));
        var ok = SpareShim.Decode(Encoding.UTF8.GetBytes("wasmsharp-adopt-1\0/b\01\0-id\01\0A=1"));
        Assert.Equal(["-id"], ok!.Args);
        Assert.Equal(["A=1"], ok.Environment);
    }

    [Fact]
    public void Only_the_top_level_annotations_of_a_config_are_read_for_start()
    {
        var config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, """
            {"ociVersion":"1.0.2","process":{"args":["/a.wasm"],"annotations":{"not":"these"}},
             "annotations":{"io.containerd.wasmsharp.protocol":"grpc","n":"1"},"linux":{"cgroupsPath":"/ns/id"}}
            """);
        var annotations = Wasmsharp.Oci.Spec.LoadAnnotations(config);
        Assert.Equal(new Dictionary<string, string> { ["io.containerd.wasmsharp.protocol"] = "grpc", ["n"] = "1" }, annotations);
        Assert.Equal(Wasmsharp.Oci.Spec.Load(config).Annotations, annotations);
        File.WriteAllText(config, "{not json");
        Assert.Throws<Wasmsharp.Oci.OciSpecException>(() => Wasmsharp.Oci.Spec.LoadAnnotations(config));
    }
}

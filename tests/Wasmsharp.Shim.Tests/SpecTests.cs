using Wasmsharp.Oci;

public class SpecTests
{
    private const string Config = """
    {
      "ociVersion": "1.0.2-dev",
      "process": {
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["/app.wasm", "a b", "c"],
        "env": ["PATH=/usr/bin", "FOO=bar", "EMPTY=", "FOO=baz", "NOEQUALS"],
        "cwd": "/work",
        "capabilities": { "bounding": ["CAP_CHOWN"] }
      },
      "root": { "path": "rootfs", "readonly": true },
      "hostname": "h",
      "mounts": [
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"] },
        { "destination": "/rw", "source": "/srv/rw", "options": ["rbind", "rw"] }
      ],
      "annotations": { "io.kubernetes.cri.sandbox-id": "pod1" },
      "linux": { "cgroupsPath": "/default/c1", "namespaces": [{ "type": "network", "path": "/proc/1/ns/net" }], "resources": { "devices": [] } }
    }
    """;

    [Fact]
    public void ParsesWhatTheRuntimeUsesAndIgnoresTheRest()
    {
        var spec = Spec.Parse(Config);
        Assert.Equal(["/app.wasm", "a b", "c"], spec.Process!.Args);
        Assert.Equal("/work", spec.Process.Cwd);
        Assert.True(spec.Root!.Readonly);
        Assert.Equal("pod1", spec.Annotations["io.kubernetes.cri.sandbox-id"]);
        Assert.Equal("/default/c1", spec.Linux!.CgroupsPath);
        Assert.Equal("/proc/1/ns/net", spec.Linux.Namespaces[0].Path);
        Assert.Equal(3, spec.Mounts.Count);
    }

    [Fact]
    public void EnvPairsSplitOnFirstEqualsAndLaterDuplicatesWin()
    {
        var env = Spec.Parse(Config).Process!.EnvPairs();
        Assert.Equal(
            [new("PATH", "/usr/bin"), new("FOO", "baz"), new("EMPTY", ""), new("NOEQUALS", "")],
            env.ToArray());
    }

    [Fact]
    public void MountsKnowBindAndReadOnly()
    {
        var mounts = Spec.Parse(Config).Mounts;
        Assert.False(mounts[0].IsBind);
        Assert.True(mounts[1].IsBind && mounts[1].IsReadOnly);
        Assert.True(mounts[2].IsBind);
        Assert.False(mounts[2].IsReadOnly);
    }

    [Fact]
    public void BadJsonIsAClearError()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ not json");
        var e = Assert.Throws<OciSpecException>(() => Spec.Load(path));
        Assert.Contains(path, e.Message);
        File.Delete(path);
        Assert.Throws<OciSpecException>(() => Spec.Load(path));
    }
}

using Wasmsharp.Linux;
using static Tmds.Linux.LibC;

public class MountOptionsTests
{
    [Fact]
    public void OverlayOptionsBecomeData()
    {
        var o = Mounts.ParseOptions(["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"]);
        Assert.Equal(0UL, o.Flags);
        Assert.Equal("index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2", o.Data);
    }

    [Fact]
    public void BindReadOnlyAndPropagationBecomeFlags()
    {
        var o = Mounts.ParseOptions(["rbind", "ro", "nosuid", "rprivate"]);
        Assert.Equal(MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID, o.Flags);
        Assert.Equal(MS_PRIVATE | MS_REC, o.PropagationFlags);
        Assert.True(o.IsBind && o.IsReadOnly);
        Assert.Equal("", o.Data);
    }

    [Fact]
    public void LaterOptionsClearEarlierOnes()
    {
        Assert.False(Mounts.ParseOptions(["ro", "rw"]).IsReadOnly);
        Assert.Equal(0UL, Mounts.ParseOptions(["nosuid", "suid"]).Flags);
    }
}

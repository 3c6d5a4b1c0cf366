using System.Diagnostics;
using Wasmsharp.Linux;
using Wasmsharp.Shim;

// Cgroup discovery, path mapping, resources and metrics mapping; and the real thing on this host's cgroupfs.
public class CgroupTests
{
    // This machine's shape: systemd's hybrid layout (v1 per controller + a controller-less cgroup2).
    private const string HybridMountinfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
        38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        39 31 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
        """;

    [Fact]
    public void Hybrid_hosts_are_v1_with_one_hierarchy_per_controller()
    {
        var layout = CgroupLayout.Parse(HybridMountinfo);
        Assert.Equal(CgroupMode.V1, layout.Mode);
        Assert.Equal("/sys/fs/cgroup/memory", layout.V1("memory")?.MountPoint);
        Assert.Equal("/sys/fs/cgroup/cpuacct", layout.V1("cpuacct")?.MountPoint);
        Assert.Equal("/sys/fs/cgroup/systemd", layout.V1("name=systemd")?.MountPoint);
        Assert.Null(layout.V1("freezer"));
        Assert.Equal("/sys/fs/cgroup/unified", layout.Unified?.MountPoint);
    }

    [Fact]
    public void Comounted_controllers_share_a_hierarchy_and_escaped_mount_points_are_decoded()
    {
        var layout = CgroupLayout.Parse("""
            30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
            31 25 0:27 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory
            """);
        Assert.Same(layout.V1("cpu"), layout.V1("cpuacct"));
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", layout.V1("cpu")?.MountPoint);
        Assert.Equal("/mnt/my cgroups", layout.V1("memory")?.MountPoint);
    }

    [Fact]
    public void Unified_only_hosts_are_v2_and_hosts_without_cgroups_are_unavailable()
    {
        Assert.Equal(CgroupMode.V2, CgroupLayout.Parse("29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n").Mode);
        Assert.Equal(CgroupMode.Unavailable, CgroupLayout.Parse("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n").Mode);
    }

    [Fact]
    public void Proc_cgroup_maps_each_controller_and_the_unified_entry()
    {
        var own = CgroupLayout.ParseProcCgroup("9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/init.scope\n");
        Assert.Equal("/process_api/abc", own["memory"]);
        Assert.Equal("/x", own["cpu"]);
        Assert.Equal("/x", own["cpuacct"]);
        Assert.Equal("/", own["name=systemd"]);
        Assert.Equal("/init.scope", own[""]);
    }

    [Theory]
    [InlineData("/default/web", "/", "/default/web")]                  // ctr
    [InlineData("/docker/abc", "/", "/docker/abc")]                    // Docker, cgroupfs driver
    [InlineData("ns/web", "/user.slice/x", "/user.slice/x/ns/web")]    // relative: below our own cgroup, as runc
    [InlineData("system.slice:docker:abc", "/", "/system.slice/docker-abc.scope")]
    [InlineData(":docker:abc", "/", "/system.slice/docker-abc.scope")]
    [InlineData("kubepods-besteffort-pod1.slice:cri-containerd:abc", "/",
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope")]
    [InlineData("user.slice::abc", "/", "/user.slice/abc.scope")]
    [InlineData("-.slice:p:abc", "/", "/p-abc.scope")]
    public void Cgroups_paths_map_as_runc_maps_them(string cgroupsPath, string own, string expected) =>
        Assert.Equal(expected, CgroupPath.Resolve(cgroupsPath, own));

    [Fact]
    public void No_path_means_no_cgroup_and_escaping_paths_are_rejected()
    {
        Assert.Null(CgroupPath.Resolve(""));
        Assert.Null(CgroupPath.Resolve(null));
        Assert.Throws<ArgumentException>(() => CgroupPath.Resolve("/a/../../etc"));
        Assert.Throws<ArgumentException>(() => CgroupPath.Resolve("bad-.slice:p:abc"));
    }

    [Fact]
    public void Stat_files_parse_and_max_means_unlimited()
    {
        var stat = CgroupStats.KeyValues("cache 4096\nrss 8192\ntotal_inactive_file 12\nbogus line here\n");
        Assert.Equal(4096UL, stat["cache"]);
        Assert.Equal(12UL, stat["total_inactive_file"]);
        Assert.Equal(3, stat.Count);
        Assert.Equal(0UL, CgroupStats.Limit("max\n", unlimited: 0));
        Assert.Equal(ulong.MaxValue, CgroupStats.Limit("max", unlimited: ulong.MaxValue));
        Assert.Equal(512UL, CgroupStats.Limit("512\n", unlimited: 0));
        Assert.Equal([1UL, 2UL], CgroupStats.Numbers("1 2 \n"));
    }

    [Theory]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(262144UL, 10000UL)]
    public void Cpu_shares_convert_to_v2_weight_as_runc_does(ulong shares, ulong weight) =>
        Assert.Equal(weight, Cgroup.SharesToWeight(shares));

    [Fact]
    public void Resources_give_the_guest_its_limit_and_the_cgroup_the_same_plus_the_shims_headroom()
    {
        var r = ContainerResources.Parse("""
            {"memory":{"limit":67108864,"swap":134217728,"reservation":1048576},"cpu":{"shares":512,"quota":50000,"period":100000},"pids":{"limit":20},"devices":[]}
            """u8);
        Assert.Equal(67108864, r.MemoryLimit);
        Assert.Equal(67108864 + ContainerResources.ShimHeadroomBytes, r.Cgroup.MemoryBytes);
        Assert.Equal(134217728 + ContainerResources.ShimHeadroomBytes, r.Cgroup.MemorySwapBytes);
        Assert.Equal(1048576, r.Cgroup.MemoryReservationBytes);
        Assert.Equal(512UL, r.Cgroup.CpuShares);
        Assert.Equal(50000, r.Cgroup.CpuQuotaMicros);
        Assert.Equal(100000UL, r.Cgroup.CpuPeriodMicros);
        Assert.Equal(20, r.Cgroup.PidsMax);
    }

    [Fact]
    public void Unlimited_and_absent_resources_set_no_guest_limit()
    {
        var unlimited = ContainerResources.Parse("""{"memory":{"limit":-1}}"""u8);
        Assert.Null(unlimited.MemoryLimit);
        Assert.Equal(-1, unlimited.Cgroup.MemoryBytes);
        var none = ContainerResources.Parse("""{"devices":[{"allow":false,"access":"rwm"}]}"""u8);
        Assert.Null(none.MemoryLimit);
        Assert.True(none.Cgroup.IsEmpty);
        Assert.Same(ContainerResources.None, ContainerResources.Parse(default(System.Text.Json.JsonElement?)));
    }

    private static readonly CgroupStats Sample = new()
    {
        MemoryUsage = 30 << 20,
        MemoryLimit = 192 << 20,
        MemoryMaxUsage = 31 << 20,
        MemoryStat = new Dictionary<string, ulong> { ["rss"] = 25 << 20, ["cache"] = 1 << 20, ["total_inactive_file"] = 4096, ["anon"] = 25 << 20, ["inactive_file"] = 8192 },
        MemoryEvents = new Dictionary<string, ulong> { ["oom_kill"] = 2 },
        CpuUsageNanos = 5_000_000,
        CpuPerCpuNanos = [3_000_000, 2_000_000],
        PidsCurrent = 14,
    };

    [Fact]
    public void V1_metrics_carry_the_counters_and_the_guests_limit()
    {
        var m = ContainerCgroup.V1Metrics(Sample, guestLimit: 64 << 20);
        Assert.Equal(30UL << 20, m.Memory.Usage.Usage);
        Assert.Equal(64UL << 20, m.Memory.Usage.Limit);
        Assert.Equal(25UL << 20, m.Memory.Rss);
        Assert.Equal(4096UL, m.Memory.TotalInactiveFile);
        Assert.Equal(5_000_000UL, m.Cpu.Usage.Total);
        Assert.Equal([3_000_000UL, 2_000_000UL], m.Cpu.Usage.PerCpu);
        Assert.Equal(14UL, m.Pids.Current);
        Assert.Equal(2UL, m.MemoryOomControl.OomKill);
        Assert.Equal(192UL << 20, ContainerCgroup.V1Metrics(Sample, guestLimit: null).Memory.Usage.Limit);
        Assert.Equal("io.containerd.cgroups.v1.Metrics", ContainerCgroup.Pack(m).TypeUrl);
    }

    [Fact]
    public void V2_metrics_carry_the_counters_in_microseconds()
    {
        var m = ContainerCgroup.V2Metrics(Sample, guestLimit: null);
        Assert.Equal(30UL << 20, m.Memory.Usage);
        Assert.Equal(192UL << 20, m.Memory.UsageLimit);
        Assert.Equal(8192UL, m.Memory.InactiveFile);
        Assert.Equal(5000UL, m.Cpu.UsageUsec);
        Assert.Equal(2UL, m.MemoryEvents.OomKill);
        Assert.Equal("io.containerd.cgroups.v2.Metrics", ContainerCgroup.Pack(m).TypeUrl);
    }

    // v1: one thread moves itself in (and only it), comes back out, and the cgroup can then go.
    [Fact]
    public void A_thread_joins_a_v1_cgroup_alone_and_leaves_it()
    {
        var layout = CgroupLayout.Host();
        if (layout.Mode != CgroupMode.V1 || Environment.UserName != "root") return; // nothing to test here
        var cgroup = Cgroup.Locate(layout, $"/wasmsharp-unit-{Guid.NewGuid():N}")!;
        try
        {
            cgroup.Create();
            IReadOnlyDictionary<string, string>? inside = null, after = null, processAfter = null;
            var before = CgroupLayout.OwnCgroups();
            var thread = new Thread(() =>
            {
                var was = cgroup.JoinCurrentThread(["cpu", "pids"]);
                inside = CgroupLayout.CurrentThreadCgroups();
                processAfter = CgroupLayout.OwnCgroups(); // the first thread's view: unmoved
                Assert.True(cgroup.IsPopulated());
                Cgroup.LeaveCurrentThread(was);
                after = CgroupLayout.CurrentThreadCgroups();
            });
            thread.Start();
            thread.Join();
            Assert.Equal(cgroup.Path, inside!["cpu"]);
            Assert.Equal(cgroup.Path, inside["pids"]);
            Assert.Equal(before["memory"], inside["memory"]); // not asked for
            Assert.Equal(before["cpu"], processAfter!["cpu"]);
            Assert.Equal(before["cpu"], after!["cpu"]);
            Assert.False(cgroup.IsPopulated());
            Assert.True(cgroup.Remove());
        }
        finally
        {
            cgroup.Remove();
        }
    }

    // The real kernel interface: create, limit, join a process, read, leave, remove.
    [Fact]
    public void A_cgroup_on_this_host_takes_limits_and_a_process_and_is_removed_without_a_trace()
    {
        var layout = CgroupLayout.Host();
        if (layout.Mode == CgroupMode.Unavailable || Environment.UserName != "root") return; // nothing to test here
        var cgroup = Cgroup.Locate(layout, $"/wasmsharp-unit-{Guid.NewGuid():N}")!;
        using var sleeper = Process.Start("sleep", "60");
        try
        {
            cgroup.Create();
            cgroup.Apply(new CgroupLimits { MemoryBytes = 256 << 20, CpuShares = 512, CpuQuotaMicros = 50_000, CpuPeriodMicros = 100_000, PidsMax = 30 });
            var memory = cgroup.Directory("memory")!;
            if (cgroup.Mode == CgroupMode.V1)
            {
                Assert.Equal("268435456", File.ReadAllText(Path.Combine(memory, "memory.limit_in_bytes")).Trim());
                Assert.Equal("512", File.ReadAllText(Path.Combine(cgroup.Directory("cpu")!, "cpu.shares")).Trim());
                Assert.Equal("50000", File.ReadAllText(Path.Combine(cgroup.Directory("cpu")!, "cpu.cfs_quota_us")).Trim());
            }
            else
            {
                Assert.Equal("268435456", File.ReadAllText(Path.Combine(memory, "memory.max")).Trim());
                Assert.Equal("50000 100000", File.ReadAllText(Path.Combine(memory, "cpu.max")).Trim());
            }
            Assert.Equal("30", File.ReadAllText(Path.Combine(cgroup.Directory("pids")!, "pids.max")).Trim());

            var before = CgroupLayout.OwnCgroups(sleeper.Id);
            cgroup.Join(sleeper.Id);
            var inside = CgroupLayout.OwnCgroups(sleeper.Id);
            Assert.Equal(cgroup.Path, inside[cgroup.Mode == CgroupMode.V2 ? "" : "memory"]);
            var stats = cgroup.ReadStats();
            Assert.Equal(1UL, stats.PidsCurrent);
            Assert.Equal(30UL, stats.PidsLimit);
            Assert.False(cgroup.Remove()); // busy: a process is in it

            cgroup.Leave(sleeper.Id);
            Assert.Equal(before["memory"], CgroupLayout.OwnCgroups(sleeper.Id)["memory"]);
            Assert.True(cgroup.Remove());
            Assert.All(cgroup.Directories, d => Assert.False(Directory.Exists(d)));
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
            cgroup.Remove();
        }
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// Careless and hostile inputs through ctr, as a user (or a guest) would give them: a config.json runc would refuse
// is refused at create with the field named; a guest that opens files until it fails gets EMFILE at its limit while
// the shim keeps descriptors for its own work; metrics that cannot be read are an error, not zeros.
[Collection(ContainerdCollection.Name)]
public sealed partial class HostileInputTests(ContainerdFixture f)
{
    // The shim keeps min(1024, its RLIMIT_NOFILE / 4) descriptors that no guest can take (DescriptorPool).
    private static long Reserve(long shimLimit) => Math.Min(1024, shimLimit / 4);

    // A spec from `ctr oci spec` (what ctr itself would send) with a host rootfs holding the test programs; `edit`
    // makes it careless. Run with `ctr run --config`, as a user hands a whole config.json.
    private string Spec(string id, Action<JsonObject> edit)
    {
        var dir = f.HostDir(id);
        var rootfs = Directory.CreateDirectory(Path.Combine(dir, "rootfs")).FullName;
        foreach (var name in new[] { "hello", "sleep", "openmany" }) File.Copy(f.Programs.Path(name), Path.Combine(rootfs, name + ".wasm"), overwrite: true);
        var oci = f.Ctr("oci", "spec");
        f.Check(oci.ExitCode == 0, "ctr oci spec", id, oci);
        var spec = JsonNode.Parse(oci.Stdout)!.AsObject();
        spec["process"]!["args"] = new JsonArray("/hello.wasm");
        spec["root"] = new JsonObject { ["path"] = rootfs };
        spec["linux"]!["cgroupsPath"] = $"/{f.Containerd.Namespace}/{id}";
        edit(spec);
        var path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, spec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    private ProcessResult RunWithConfig(string id, string config, params string[] options) =>
        f.Ctr(["run", .. options, "--runtime", RepoLayout.Runtime, "--config", config, id]);

    private static JsonObject Resources(JsonObject spec) =>
        (spec["linux"]!["resources"] ??= new JsonObject()).AsObject();

    private static void NoFileLimit(JsonObject spec, long limit) =>
        spec["process"]!["rlimits"] = new JsonArray(new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = limit, ["soft"] = limit });

    public static TheoryData<string, string> RefusedConfigs => new()
    {
        { "args-null", "config.json: process.args must not be empty" },
        { "args-empty", "config.json: process.args must not be empty" },
        { "cwd-relative", "config.json: process.cwd must be an absolute path" },
        { "memory-negative", "config.json: linux.resources.memory.limit: invalid value -5" },
        { "swap-below-memory", "config.json: linux.resources.memory.swap: invalid value 1048576: memory+swap limit should be >= memory limit" },
        { "cpu-period-short", "config.json: linux.resources.cpu.period: invalid value 500" },
        { "cpu-quota-short", "config.json: linux.resources.cpu.quota: invalid value 10" },
        { "bind-source-missing", "config.json: mounts[" },
    };

    private static void Break(string what, JsonObject spec, string missing)
    {
        switch (what)
        {
            case "args-null": spec["process"]!["args"] = null; break;
            case "args-empty": spec["process"]!["args"] = new JsonArray(); break;
            case "cwd-relative": spec["process"]!["cwd"] = "data"; break;
            case "memory-negative": Resources(spec)["memory"] = new JsonObject { ["limit"] = -5 }; break;
            case "swap-below-memory": Resources(spec)["memory"] = new JsonObject { ["limit"] = 64 << 20, ["swap"] = 1 << 20 }; break;
            case "cpu-period-short": Resources(spec)["cpu"] = new JsonObject { ["quota"] = 50_000, ["period"] = 500 }; break;
            case "cpu-quota-short": Resources(spec)["cpu"] = new JsonObject { ["quota"] = 10, ["period"] = 100_000 }; break;
            case "bind-source-missing":
                spec["mounts"]!.AsArray().Add(new JsonObject
                {
                    ["destination"] = "/data", ["type"] = "bind", ["source"] = missing, ["options"] = new JsonArray("rbind", "rw"),
                });
                break;
            default: throw new ArgumentException(what);
        }
    }

    // runc refuses these before anything runs; so do we, at create, naming config.json and the field, and nothing
    // of the container is left.
    [Theory]
    [MemberData(nameof(RefusedConfigs))]
    public void A_config_runc_refuses_is_refused_at_create_naming_the_field(string what, string expected)
    {
        var id = f.NewId("bad-" + what);
        var missing = Path.Combine(f.HostDir(id), "no-such-dir");
        var config = Spec(id, spec => Break(what, spec, missing));
        var run = RunWithConfig(id, config, "--rm");
        f.Check(run.ExitCode != 0, "ctr run should fail", id, run);
        f.Check(run.Stderr.Contains(expected, StringComparison.Ordinal), $"the error should say \"{expected}\"", id, run);
        if (what == "bind-source-missing")
            f.Check(run.Stderr.Contains($"error mounting \"{missing}\" to rootfs at \"/data\": stat {missing}: no such file or directory", StringComparison.Ordinal),
                "the error should be runc's for a missing bind source", id, run);
        f.Check(!run.Stderr.Contains("Exception", StringComparison.Ordinal) && !run.Stderr.Contains("image", StringComparison.OrdinalIgnoreCase),
            "no exception name and no image lookup in the error", id, run);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run);
    }

    // ctr run --cpu-quota without --cpu-period writes a period of 0: runc reads it as "not set", and so do we.
    [Fact]
    public void A_zero_cpu_period_is_not_set_as_runc_reads_it()
    {
        var id = f.NewId("cpu-period-0");
        var config = Spec(id, spec => Resources(spec)["cpu"] = new JsonObject { ["quota"] = 50_000, ["period"] = 0 });
        var run = RunWithConfig(id, config, "--rm");
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("hello from wasm", StringComparison.Ordinal), "the container runs", id, run);
        f.AssertNothingLeft(id, run);
    }

    [GeneratedRegex(@"opened (\d+), then errno \d+ \(.*\)( EMFILE)?")]
    private static partial Regex OpenedLine();

    // Waits for openmany's line in the container's log: how many it opened, and whether it ended at EMFILE.
    private (long Opened, bool Emfile) Opened(string id, string log, params ProcessResult[] context)
    {
        Match? match = null;
        ContainerdFixture.Eventually(() => File.Exists(log) && (match = OpenedLine().Match(File.ReadAllText(log))).Success, TimeSpan.FromSeconds(60));
        f.Check(match is { Success: true }, $"openmany should report in {log}: {(File.Exists(log) ? File.ReadAllText(log) : "(no log)")}", id, context);
        return (long.Parse(match!.Groups[1].Value), match.Groups[2].Success);
    }

    // While the guest holds every descriptor it may, the shim still serves: an exec runs, metrics are read.
    private void ShimStillServes(string id, params ProcessResult[] context)
    {
        var exec = f.Ctr("task", "exec", "--exec-id", "after-" + id, id, "/hello.wasm");
        f.Check(exec.ExitCode == 0 && exec.Stdout.Contains("hello from wasm", StringComparison.Ordinal), "ctr task exec still works", id, [.. context, exec]);
        var metrics = f.Ctr("task", "metrics", id);
        f.Check(metrics.ExitCode == 0, "ctr task metrics still works", id, [.. context, metrics]);
    }


    // The process a task's pid (a guest thread of a shim) belongs to.
    private int ProcessOf(string id)
    {
        var task = f.Containerd.Task(id) ?? throw new InvalidOperationException($"no task {id}");
        return int.Parse(File.ReadAllLines($"/proc/{task.Pid}/status").First(l => l.StartsWith("Tgid:", StringComparison.Ordinal))[5..].Trim());
    }

    private static long OpenFileLimit(int pid) =>
        long.Parse(File.ReadAllLines($"/proc/{pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]);

    // ctr's spec gives RLIMIT_NOFILE 1024: the guest holds numbers below it (0-2 stdio, 3 the rootfs) and no more.
    [Fact]
    public void A_guest_opening_files_in_a_loop_gets_EMFILE_at_its_limit_and_the_shim_still_serves()
    {
        var id = f.NewId("openmany");
        var log = Path.Combine(f.HostDir(id), "out.log");
        try
        {
            var run = f.Ctr("run", "-d", "--log-uri", "file://" + log, "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/openmany.wasm", "/openmany.wasm", "hold");
            f.Check(run.ExitCode == 0, "ctr run -d", id, run);
            var (opened, emfile) = Opened(id, log, run);
            f.Check(emfile && opened is > 1000 and <= 1020, $"EMFILE after at most 1020 files (limit 1024): opened {opened}, EMFILE {emfile}", id, run);
            ShimStillServes(id, run);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    // A limit above the shim's own: the guest is held to the shim's limit less its reserve, so the shim keeps the
    // descriptors it needs (a guest used to take all but one of them, then exec and metrics failed).
    [Fact]
    public void A_guest_allowed_more_than_the_shim_has_leaves_the_shim_its_reserve()
    {
        var id = f.NewId("openmany-all");
        var log = Path.Combine(f.HostDir(id), "out.log");
        try
        {
            var config = Spec(id, spec =>
            {
                spec["process"]!["args"] = new JsonArray("/openmany.wasm", "/openmany.wasm", "hold");
                NoFileLimit(spec, 1 << 20);
            });
            var run = RunWithConfig(id, config, "-d", "--log-uri", "file://" + log);
            f.Check(run.ExitCode == 0, "ctr run -d", id, run);
            var (opened, emfile) = Opened(id, log, run);
            var shimLimit = OpenFileLimit(ContainerdFixture.ShimPid(id));
            f.Check(emfile && opened > 1024 && opened <= shimLimit - Reserve(shimLimit),
                $"EMFILE within the shim's limit {shimLimit} less its reserve {Reserve(shimLimit)}: opened {opened}, EMFILE {emfile}", id, run);
            ShimStillServes(id, run);
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }

    // Two containers of one group (a pod's shim): the first holding all it may does not take the second's.
    [Fact]
    public void In_a_grouped_shim_one_guest_holding_its_limit_does_not_starve_another()
    {
        var group = f.NewId("fd-group");
        var first = f.NewId("fd-first");
        var second = f.NewId("fd-second");
        var log1 = Path.Combine(f.HostDir(first), "out.log");
        var log2 = Path.Combine(f.HostDir(second), "out.log");
        try
        {
            Action<JsonObject> Guest(long limit) => spec =>
            {
                spec["process"]!["args"] = new JsonArray("/openmany.wasm", "/openmany.wasm", "hold");
                spec["annotations"] = new JsonObject { ["io.containerd.runc.v2.group"] = group };
                NoFileLimit(spec, limit);
            };
            var run1 = RunWithConfig(first, Spec(first, Guest(4096)), "-d", "--log-uri", "file://" + log1);
            f.Check(run1.ExitCode == 0, "first container", first, run1);
            var (opened1, emfile1) = Opened(first, log1, run1);
            var run2 = RunWithConfig(second, Spec(second, Guest(1024)), "-d", "--log-uri", "file://" + log2);
            f.Check(run2.ExitCode == 0, "second container", second, run2);
            var (opened2, emfile2) = Opened(second, log2, run2);
            f.Check(ProcessOf(second) == ContainerdFixture.ShimPid(first), "both containers are in one shim", first, run1, run2);
            f.Check(emfile1 && opened1 is > 4000 and <= 4092, $"the first holds its 4096: opened {opened1}", first, run1);
            f.Check(emfile2 && opened2 is > 1000 and <= 1020, $"the second still gets its 1024: opened {opened2}", second, run2);
            ShimStillServes(second, run2);
        }
        finally
        {
            f.RemoveContainer(second);
            f.RemoveContainer(first);
        }
    }

    // A cgroup counter the shim cannot read makes `ctr task metrics` fail with the reason, instead of reporting 0.
    [Fact]
    public void Metrics_that_cannot_be_read_are_an_error_not_zeros()
    {
        var v2 = File.Exists("/sys/fs/cgroup/cgroup.controllers");
        if (!v2 && !Directory.Exists("/sys/fs/cgroup/memory")) return;
        var id = f.NewId("metrics-broken");
        var counter = v2 ? $"/sys/fs/cgroup/{f.Containerd.Namespace}/{id}/memory.current"
            : $"/sys/fs/cgroup/memory/{f.Containerd.Namespace}/{id}/memory.usage_in_bytes";
        var garbage = Path.Combine(f.HostDir(id), "garbage");
        File.WriteAllText(garbage, "not a number\n");
        var mounted = false;
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "1000");
            f.Check(run.ExitCode == 0, "ctr run -d", id, run);
            var before = f.Ctr("task", "metrics", id);
            f.Check(before.ExitCode == 0, "metrics are read while the counter is readable", id, run, before);
            // Over the counter, in the shim's mount namespace (the host's): what a broken or vanished cgroup reads as.
            var mount = ProcessRunner.Run("mount", ["--bind", garbage, counter]);
            f.Check(mount.ExitCode == 0, "bind-mount garbage over the counter", id, mount);
            mounted = true;
            // ctr prints the error when containerd passes it on; containerd 1.6 logs a task's error and leaves the
            // task out (as for runc's), and ctr then says it got no metrics.
            var after = f.Ctr("task", "metrics", id);
            f.Check(after.ExitCode != 0 && !after.Stdout.Contains("memory", StringComparison.OrdinalIgnoreCase), "ctr task metrics should fail, showing no figures", id, after);
            var expected = $"metrics of {id}: cannot read {Path.GetFileName(counter)}: not a number";
            f.Check(after.Stderr.Contains(expected, StringComparison.Ordinal)
                || ContainerdFixture.Eventually(() => f.Containerd.LogTail(200, id).Contains(expected, StringComparison.Ordinal), TimeSpan.FromSeconds(5)),
                $"ctr or containerd's log should have the shim's error \"{expected}\"", id, after);
        }
        finally
        {
            if (mounted) ProcessRunner.Run("umount", [counter]);
            f.RemoveContainer(id);
        }
    }

    // The working directory is opened once, below its mount, in one walk of the kernel's: a directory of a shared
    // writable mount swapped again and again for a symlink to a directory outside it (as another container sharing
    // the mount could) while execs with that cwd start never gives an exec the outside directory. Each exec runs in
    // the real one, or fails saying there is none — naming the directory as the user wrote it.
    [Fact]
    public void A_working_directory_swapped_for_a_symlink_never_leads_an_exec_outside_its_mount()
    {
        var id = f.NewId("cwd-race");
        var host = f.HostDir(id);
        var shared = Directory.CreateDirectory(Path.Combine(host, "shared")).FullName;
        var outside = Directory.CreateDirectory(Path.Combine(host, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "which"), "OUTSIDE");
        var work = Path.Combine(shared, "work");
        var parked = Path.Combine(shared, "parked");
        Directory.CreateDirectory(work);
        File.WriteAllText(Path.Combine(work, "which"), "inside");
        using var stop = new CancellationTokenSource();
        Task? swapper = null;
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--mount", $"type=bind,src={shared},dst=/shared,options=rbind:rw",
                Images.WasmTests, id, "/sleep.wasm", "1000");
            f.Check(run.ExitCode == 0, "ctr run -d", id, run);
            swapper = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Directory.Move(work, parked);
                    File.CreateSymbolicLink(work, outside);
                    Thread.Yield();
                    File.Delete(work);
                    Directory.Move(parked, work);
                    Thread.Yield();
                }
            });
            int inside = 0, failed = 0;
            for (int i = 0; i < 60; i++)
            {
                var exec = f.Ctr("task", "exec", "--exec-id", $"x{i}", "--cwd", "/shared/work", id, "/fs.wasm", "cwdread", "which");
                f.Check(!exec.Stdout.Contains("OUTSIDE", StringComparison.Ordinal), "an exec saw the directory outside the mount", id, exec);
                f.Check(!exec.Stderr.Contains("/proc/self/fd", StringComparison.Ordinal), "no message names /proc/self/fd", id, exec);
                if (exec.ExitCode == 0 && exec.Stdout == "inside") inside++;
                else
                {
                    failed++;
                    f.Check(exec.Stderr.Contains("working directory /shared/work", StringComparison.Ordinal), "a failure names the working directory", id, exec);
                }
            }
            f.Check(inside > 0, $"some execs ran in the real directory ({inside} did, {failed} failed)", id, run);
        }
        finally
        {
            stop.Cancel();
            swapper?.Wait();
            f.RemoveContainer(id);
        }
    }
}

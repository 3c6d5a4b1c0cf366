using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Wasmsharp.Integration;
using Wasmsharp.Ttrpc;
using TaskApi = Wasmsharp.Containerd.Api.Task;

namespace Wasmsharp.Integration.Tests;

// Cgroups, limits, metrics and OOM kills, side by side with runc through the same containerd. The host is
// cgroup v1 (hybrid) on the machines this runs on; the v2 paths are read where the host has them.
[Collection(ContainerdCollection.Name)]
public sealed class CgroupTests(ContainerdFixture f)
{
    private const long MiB = 1 << 20;
    // What the shim's cgroup allows above the guest's own limit (ContainerResources.ShimHeadroomBytes).
    private const long ShimHeadroom = 128 * MiB;
    private static readonly string[] Controllers = ["memory", "cpu", "cpuacct", "pids"];
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(10);

    private static bool V2 => File.Exists("/sys/fs/cgroup/cgroup.controllers");
    internal static bool HasCgroups => Directory.Exists("/sys/fs/cgroup/memory") || V2;

    private string Ns => f.Containerd.Namespace;

    // The container's directory for a controller, where runc (and we) put `/<ns>/<id>` from ctr.
    private string Dir(string controller, string id) =>
        V2 ? $"/sys/fs/cgroup/{Ns}/{id}" : $"/sys/fs/cgroup/{controller}/{Ns}/{id}";

    private static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();


    // /proc/PID/cgroup → controller (or "" for the unified entry) → path.
    private static Dictionary<string, string> CgroupsOf(int pid)
    {
        var result = new Dictionary<string, string>();
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length < 3) continue;
            foreach (var c in parts[1].Length == 0 ? [""] : parts[1].Split(',')) result[c] = parts[2];
        }
        return result;
    }

    private string Controller(string name) => V2 ? "" : name;

    [Fact]
    public void The_shim_joins_the_cgroup_runc_would_create_and_it_is_removed_after_delete()
    {
        if (!HasCgroups) return;
        var wasmId = f.NewId("cg-place");
        var runcId = f.NewId("cg-place-runc");
        try
        {
            var wasm = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/sleep.wasm", "1000");
            var runc = f.Ctr("run", "-d", Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            f.Check(wasm.ExitCode == 0 && runc.ExitCode == 0, "both start", wasmId, wasm, runc);

            // The task's pid (`ctr task ls`) is the guest's thread: in every hierarchy, as runc's process is.
            // On v1 the shim's first thread is in the memory one only (memory is charged by it); on v2 the
            // whole shim is in the cgroup.
            var ours = CgroupsOf(f.Containerd.Task(wasmId)!.Pid);
            var shim = CgroupsOf(ContainerdFixture.ShimPid(wasmId));
            var theirs = CgroupsOf(f.Containerd.Task(runcId)!.Pid);
            foreach (var controller in Controllers.Select(Controller).Distinct())
            {
                f.Check(theirs[controller] == $"/{Ns}/{runcId}", $"runc's process is in {theirs[controller]} ({controller})", runcId, runc);
                f.Check(ours[controller] == $"/{Ns}/{wasmId}", $"the guest is in {ours[controller]} ({controller}), runc's pattern is /{Ns}/ID", wasmId, wasm);
                f.Check(Directory.Exists(Dir(controller, wasmId)), $"{Dir(controller, wasmId)} exists", wasmId, wasm);
            }
            f.Check(shim[Controller("memory")] == $"/{Ns}/{wasmId}", $"the shim's memory is charged to {shim[Controller("memory")]}", wasmId, wasm);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
        var left = Controllers.Select(c => Dir(c, wasmId)).Distinct().ToList();
        ContainerdFixture.Eventually(() => !left.Any(Directory.Exists), Shortly);
        f.Check(!left.Any(Directory.Exists), $"cgroup directories left: {string.Join(", ", left.Where(Directory.Exists))}", wasmId);
    }

    [Fact]
    public void Cpu_and_memory_limits_are_written_as_runc_writes_them()
    {
        if (!HasCgroups) return;
        var wasmId = f.NewId("cg-limits");
        var runcId = f.NewId("cg-limits-runc");
        string[] limits = ["--memory-limit", (64 * MiB).ToString(), "--cpu-shares", "512", "--cpu-quota", "50000", "--cpu-period", "100000"];
        try
        {
            var wasm = f.Ctr(["run", "-d", "--runtime", RepoLayout.Runtime, .. limits, Images.WasmTests, wasmId, "/sleep.wasm", "1000"]);
            var runc = f.Ctr(["run", "-d", .. limits, Images.Busybox, runcId, "/bin/busybox", "sleep", "1000"]);
            f.Check(wasm.ExitCode == 0 && runc.ExitCode == 0, "both start", wasmId, wasm, runc);
            var files = V2 ? new[] { ("cpu", "cpu.weight"), ("cpu", "cpu.max") } : [("cpu", "cpu.shares"), ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us")];
            foreach (var (controller, file) in files)
            {
                var theirs = Read(Dir(controller, runcId), file);
                var ours = Read(Dir(controller, wasmId), file);
                f.Check(ours == theirs, $"{file}: ours {ours}, runc's {theirs}", wasmId, wasm);
            }
            var memoryFile = V2 ? "memory.max" : "memory.limit_in_bytes";
            var runcMemory = long.Parse(Read(Dir("memory", runcId), memoryFile));
            var ourMemory = long.Parse(Read(Dir("memory", wasmId), memoryFile));
            f.Check(runcMemory == 64 * MiB, $"runc's memory limit {runcMemory}", runcId, runc);
            // The guest gets exactly the limit (enforced by the Wasm host); the cgroup holds the whole shim.
            f.Check(ourMemory == 64 * MiB + ShimHeadroom, $"our cgroup's memory limit {ourMemory} = limit + shim headroom", wasmId, wasm);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
    }

    private static JsonElement MetricsJson(ProcessResult result) => JsonDocument.Parse(result.Stdout).RootElement;

    internal static long MemoryUsage(JsonElement metrics) =>
        V2 ? metrics.GetProperty("memory").GetProperty("usage").GetInt64()
           : metrics.GetProperty("memory").GetProperty("usage").GetProperty("usage").GetInt64();

    // `ctr task metrics` table: its METRIC column.
    private static IReadOnlyList<string> MetricNames(ProcessResult table) =>
        ContainerdFixture.Lines(table.Stdout).SkipWhile(l => !l.StartsWith("METRIC", StringComparison.Ordinal)).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]).ToList();

    [Fact]
    public void Metrics_show_the_guests_memory_in_the_shape_runc_reports()
    {
        if (!HasCgroups) return;
        var wasmId = f.NewId("cg-metrics");
        var runcId = f.NewId("cg-metrics-runc");
        try
        {
            var wasm = f.Ctr("run", "-d", "--memory-limit", (128 * MiB).ToString(), "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/alloc.wasm", "24", "1000");
            var runc = f.Ctr("run", "-d", "--memory-limit", (128 * MiB).ToString(), Images.Busybox, runcId, "/bin/busybox", "sleep", "1000");
            f.Check(wasm.ExitCode == 0 && runc.ExitCode == 0, "both start", wasmId, wasm, runc);

            ProcessResult json = f.Ctr("tasks", "metrics", "--format", "json", wasmId);
            ContainerdFixture.Eventually(() =>
            {
                json = f.Ctr("tasks", "metrics", "--format", "json", wasmId);
                return json.ExitCode == 0 && MemoryUsage(MetricsJson(json)) >= 24 * MiB;
            }, Shortly);
            f.Check(json.ExitCode == 0, "ctr task metrics works", wasmId, json);
            var ours = MetricsJson(json);
            f.Check(MemoryUsage(ours) >= 24 * MiB, $"memory usage {MemoryUsage(ours)} covers the guest's 24 MiB", wasmId, json);
            var limit = V2 ? ours.GetProperty("memory").GetProperty("usage_limit").GetInt64() : ours.GetProperty("memory").GetProperty("usage").GetProperty("limit").GetInt64();
            f.Check(limit == 128 * MiB, $"memory limit {limit} is the container's", wasmId, json);
            f.Check(ours.GetProperty("pids").GetProperty("current").GetInt64() > 0, "pids.current counts the guest's thread", wasmId, json);

            var theirs = MetricsJson(f.Ctr("tasks", "metrics", "--format", "json", runcId));
            var ourKeys = ours.EnumerateObject().Select(p => p.Name).ToHashSet();
            var theirKeys = theirs.EnumerateObject().Select(p => p.Name).ToHashSet();
            f.Check(ourKeys.IsSubsetOf(theirKeys) && ourKeys.IsSupersetOf(["pids", "cpu", "memory"]),
                $"metric groups: ours {string.Join(",", ourKeys)}, runc's {string.Join(",", theirKeys)}", wasmId, json);

            var ourTable = f.Ctr("tasks", "metrics", wasmId);
            var theirTable = f.Ctr("tasks", "metrics", runcId);
            f.Check(MetricNames(ourTable).SequenceEqual(MetricNames(theirTable)) && MetricNames(ourTable).Count > 0,
                $"table rows: ours {string.Join(",", MetricNames(ourTable))}, runc's {string.Join(",", MetricNames(theirTable))}", wasmId, ourTable, theirTable);
        }
        finally
        {
            f.RemoveContainer(wasmId);
            f.RemoveContainer(runcId);
        }
    }

    // Containers grouped in one shim (CRI's sandbox-id annotation, as in a pod): the shim's memory is charged to
    // the first container's cgroup, so each other container reports what its own guests hold.
    [Fact]
    public void In_a_grouped_shim_each_container_reports_its_own_guests_memory()
    {
        if (!HasCgroups) return;
        var first = f.NewId("cg-group-a");
        var second = f.NewId("cg-group-b");
        string[] group = ["--annotation", $"io.kubernetes.cri.sandbox-id={first}"];
        try
        {
            var a = f.Ctr(["run", "-d", .. group, "--runtime", RepoLayout.Runtime, Images.WasmTests, first, "/sleep.wasm", "1000"]);
            var b = f.Ctr(["run", "-d", .. group, "--runtime", RepoLayout.Runtime, Images.WasmTests, second, "/alloc.wasm", "20", "1000"]);
            f.Check(a.ExitCode == 0 && b.ExitCode == 0, "both start", second, a, b);
            var shimA = ProcFs.Tgid(f.Containerd.Task(first)!.Pid);
            f.Check(shimA is not null && shimA == ProcFs.Tgid(f.Containerd.Task(second)!.Pid), "both containers should be served by one shim", second, a, b);

            ProcessResult json = null!;
            ContainerdFixture.Eventually(() =>
            {
                json = f.Ctr("tasks", "metrics", "--format", "json", second);
                return json.ExitCode == 0 && MemoryUsage(MetricsJson(json)) >= 20 * MiB;
            }, Shortly);
            var usage = MemoryUsage(MetricsJson(json));
            f.Check(usage >= 20 * MiB && usage < 40 * MiB, $"the second container should report its guest's ~20 MiB, reports {usage}", second, json);
            var firstUsage = MemoryUsage(MetricsJson(f.Ctr("tasks", "metrics", "--format", "json", first)));
            f.Check(firstUsage > 5 * MiB, $"the first container's cgroup holds the shim ({firstUsage} bytes)", first);
        }
        finally
        {
            f.RemoveContainer(second);
            f.RemoveContainer(first);
        }
    }

    private IReadOnlyList<string> Topics(string id) =>
        f.Events.Topics(id);

    [Fact]
    public void A_guest_over_its_memory_limit_is_oom_killed_with_the_events_runc_publishes()
    {
        var wasmId = f.NewId("cg-oom");
        var runcId = f.NewId("cg-oom-runc");
        var limit = (32 * MiB).ToString();
        var wasm = f.Ctr("run", "--rm", "--memory-limit", limit, "--runtime", RepoLayout.Runtime, Images.WasmTests, wasmId, "/alloc.wasm", "forever");
        // busybox tail buffers a "line" of /dev/zero that never ends: it grows until the kernel's OOM killer stops it.
        var runc = f.Ctr("run", "--rm", "--memory-limit", limit, Images.Busybox, runcId, "/bin/busybox", "tail", "/dev/zero");
        f.Check(runc.ExitCode == 137, "runc's container is OOM-killed", runcId, runc);
        f.Check(wasm.ExitCode == 137, "ours is killed like it", wasmId, wasm);
        f.Check(!wasm.Stdout.Contains("malloc failed", StringComparison.Ordinal), "before the guest could see malloc fail", wasmId, wasm);
        f.Check(wasm.Stdout.Contains("24 MiB", StringComparison.Ordinal) && !wasm.Stdout.Contains("32 MiB", StringComparison.Ordinal),
            "it got close to the limit, not past it", wasmId, wasm);

        string[] expected = ["/tasks/create", "/tasks/start", "/tasks/oom", "/tasks/exit", "/tasks/delete"];
        ContainerdFixture.Eventually(() => Topics(runcId).Count >= expected.Length && Topics(wasmId).Count >= expected.Length, Shortly);
        ScenarioTable.Record("`ctr run --rm --memory-limit 32M` of a task that allocates without end",
            $"exit {runc.ExitCode}; {string.Join(", ", Topics(runcId))}", $"exit {wasm.ExitCode}; {string.Join(", ", Topics(wasmId))}",
            EventSequences.Compare(Topics(runcId), Topics(wasmId)).Difference);
        f.Check(Topics(runcId).SequenceEqual(expected) || Topics(runcId).SequenceEqual(expected[..^1]), $"runc's events: {string.Join(", ", Topics(runcId))}", runcId, runc);
        f.Check(Topics(wasmId).SequenceEqual(expected) && EventSequences.Compare(Topics(runcId), Topics(wasmId)).Agree,
            $"our events {string.Join(", ", Topics(wasmId))} should be runc's", wasmId, wasm);
        f.AssertNothingLeft(wasmId, wasm);
        if (HasCgroups) f.Check(!Controllers.Any(c => Directory.Exists(Dir(c, wasmId))), "no cgroup left", wasmId, wasm);
    }

    // Update as containerd sends it for `docker update --memory` or CRI's UpdateContainerResources (ctr has no
    // verb for it): the task API call on the shim's own socket, with an OCI LinuxResources JSON.
    internal static async Task UpdateMemory(ContainerdFixture f, string id, long limit)
    {
        var address = File.ReadAllText(Path.Combine(f.Containerd.BundleDir(id), "address")).Trim();
        var socket = address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
        await using var client = await TtrpcClient.ConnectAsync(socket);
        var task = new TaskApi.Task.TaskClient(client.CreateCallInvoker());
        await task.UpdateAsync(new TaskApi.UpdateTaskRequest
        {
            Id = id,
            Resources = new Any
            {
                TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                Value = ByteString.CopyFromUtf8("{\"memory\":{\"limit\":" + limit + "}}"),
            },
        }, deadline: DateTime.UtcNow.AddSeconds(10));
    }

    [Fact]
    public async Task Update_raises_the_memory_limit_of_the_cgroup_and_of_the_guests()
    {
        var id = f.NewId("cg-update");
        try
        {
            var run = f.Ctr("run", "-d", "--memory-limit", (32 * MiB).ToString(), "--runtime", RepoLayout.Runtime, Images.WasmTests, id, "/sleep.wasm", "1000");
            f.Check(run.ExitCode == 0, "starts", id, run);
            var before = f.Ctr("tasks", "exec", "--exec-id", "big1", id, "/alloc.wasm", "48");
            f.Check(before.ExitCode == 137, "48 MiB does not fit in 32 MiB: the exec is OOM-killed", id, before);
            if (HasCgroups)
            {
                var oom = MetricsJson(f.Ctr("tasks", "metrics", "--format", "json", id)).GetProperty(V2 ? "memory_events" : "memory_oom_control");
                f.Check(oom.TryGetProperty("oom_kill", out var kills) && kills.GetInt64() == 1, $"metrics count the OOM kill: {oom}", id, before);
            }

            await UpdateMemory(f, id, 96 * MiB);

            var after = f.Ctr("tasks", "exec", "--exec-id", "big2", id, "/alloc.wasm", "48");
            f.Check(after.ExitCode == 0 && after.Stdout.Contains("allocated 48 MiB", StringComparison.Ordinal), "after the update it fits", id, after);
            if (HasCgroups)
            {
                var file = V2 ? "memory.max" : "memory.limit_in_bytes";
                var cgroupLimit = long.Parse(Read(Dir("memory", id), file));
                f.Check(cgroupLimit == 96 * MiB + ShimHeadroom, $"the cgroup's limit follows: {cgroupLimit}", id, after);
                var metrics = MetricsJson(f.Ctr("tasks", "metrics", "--format", "json", id));
                var reported = V2 ? metrics.GetProperty("memory").GetProperty("usage_limit").GetInt64() : metrics.GetProperty("memory").GetProperty("usage").GetProperty("limit").GetInt64();
                f.Check(reported == 96 * MiB, $"metrics report the new limit: {reported}", id, after);
            }
        }
        finally
        {
            f.RemoveContainer(id);
        }
    }
}

using System.Diagnostics;
using Wasmsharp.Integration;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Wasmsharp.Integration.Tests;

[CollectionDefinition(Name)]
public sealed class ContainerdCollection : ICollectionFixture<ContainerdFixture>
{
    public const string Name = "private containerd";
}

// One private containerd for the whole suite, both images imported once, `ctr events` recorded.
public sealed class ContainerdFixture : IDisposable
{
    public const string Namespace = "wasmsharp-test";
    // Generous for a single container run, short enough that a hung shim does not stall the suite.
    public static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(20);

    private int _ids;
    public PrivateContainerd Containerd { get; }
    public EventLog Events { get; }
    public WasmPrograms Programs { get; }

    public ContainerdFixture()
    {
        Programs = WasmPrograms.Get();
        Containerd = PrivateContainerd.Start(Namespace);
        try
        {
            Images.Import(Containerd, Images.BuildWasmTests(Programs, Containerd.BaseDir));
            Images.Import(Containerd, Images.BuildBusybox(Containerd.BaseDir));
            Events = new EventLog(Containerd);
        }
        catch
        {
            // xunit does not dispose a fixture whose constructor threw.
            Containerd.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Events.Dispose();
        Containerd.Dispose();
    }

    // Test clean-up, as a user would: kill everything in the container, then delete task and container.
    public void RemoveContainer(string id)
    {
        Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id);
        Eventually(() => Containerd.Task(id) is null or { Status: "STOPPED" }, TimeSpan.FromSeconds(5));
        Ctr("tasks", "delete", id);
        Ctr("containers", "delete", id);
    }

    // Unique per test and readable in the containerd log. The run token keeps suites that run at once
    // (other checkouts, other containerd versions) apart where they share state: runc's
    // /run/containerd/runc/NAMESPACE/ID and the shims' command lines.
    private readonly string _run = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..4];
    public string NewId(string what) => $"{what}-{Interlocked.Increment(ref _ids)}-{_run}";

    // A host directory for bind mounts, inside the base dir so cleanup removes it.
    public string HostDir(string id) => Directory.CreateDirectory(Path.Combine(Containerd.BaseDir, "host", id)).FullName;

    public ProcessResult Ctr(params string[] args) => Containerd.Ctr(RunTimeout, args);

    // `ctr run --rm --runtime io.containerd.wasmsharp.v1 [options] wasm-tests ID args...`
    public ProcessResult RunWasm(string id, string[] options, params string[] args) =>
        Ctr(["run", "--rm", "--runtime", RepoLayout.Runtime, .. options, Images.WasmTests, id, .. args]);

    public ProcessResult RunWasm(string id, params string[] args) => RunWasm(id, [], args);

    // `ctr run --rm [options] busybox ID args...` with the default runtime (runc).
    public ProcessResult RunRunc(string id, string[] options, params string[] args) =>
        Ctr(["run", "--rm", .. options, Images.Busybox, id, .. args]);

    // runc comparisons run the process in our own PID namespace: as PID 1 of a new namespace a process
    // without handlers ignores SIGTERM/SIGABRT, which is not what a native program normally gets.
    public string[] HostPidNamespace => ["--with-ns", $"pid:/proc/{Environment.ProcessId}/ns/pid"];

    // The pid of the wasmsharp shim started for container `id` (a grouped shim's command line names its first).
    public static int ShimPid(string id) =>
        ProcFs.Processes().FirstOrDefault(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim-wasmsharp", StringComparison.Ordinal) && p.HasArgPair("-id", id))?.Pid
        ?? throw new InvalidOperationException($"no shim for {id}");

    // Fails with everything needed to see why: the commands' output and containerd's (and the shim's) log.
    public void Check(bool ok, string what, string id, params ProcessResult[] results)
    {
        if (ok) return;
        var shim = RepoLayout.ShimPublished ? "" : $"\n(note: {RepoLayout.ShimBinary} is not published in {Containerd.ShimDir})";
        Assert.Fail($"{what}{shim}\n\n{string.Join("\n", results.Select(r => r.ToString()))}\n{Containerd.LogTail(40, id)}");
    }

    public static IReadOnlyList<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();

    // Polls until the condition holds or the time is up; returns whether it held.
    public static bool Eventually(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (condition()) return true;
            if (clock.Elapsed > timeout) return false;
            Thread.Sleep(25);
        }
    }

    // After a container is gone, nothing of it may remain: no shim for it, no mounts, no bundle,
    // no container or task record.
    public void AssertNothingLeft(string id, params ProcessResult[] context)
    {
        var bundle = Containerd.BundleDir(id);
        IReadOnlyList<ProcFs.ProcessInfo> Shims() => ProcFs.Processes()
            .Where(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim", StringComparison.Ordinal) && p.HasArgPair("-id", id))
            .ToList();
        IReadOnlyList<string> Mounts() => ProcFs.MountsUnder(Containerd.StateDir)
            .Where(m => m.Contains($"/{id}/", StringComparison.Ordinal) || m.EndsWith($"/{id}", StringComparison.Ordinal)).ToList();

        // The shim exits after containerd's Shutdown and `delete`, which may trail `ctr` by a moment.
        Eventually(() => Shims().Count == 0 && Mounts().Count == 0 && !Directory.Exists(bundle), TimeSpan.FromSeconds(5));
        var shims = Shims();
        Check(shims.Count == 0, $"shim still running for {id}: {string.Join("; ", shims.Select(s => $"{s.Pid}: {s.CommandLine}"))}", id, context);
        var mounts = Mounts();
        Check(mounts.Count == 0, $"still mounted for {id}: {string.Join(", ", mounts)}", id, context);
        Check(!Directory.Exists(bundle), $"bundle {bundle} still exists", id, context);
        Check(!Containerd.Containers().Contains(id), $"container {id} still listed by `ctr containers ls`", id, context);
        Check(Containerd.Task(id) is null, $"task {id} still listed by `ctr tasks ls`", id, context);
    }
}

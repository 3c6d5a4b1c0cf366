using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// `ctr run --rm` of a wasm module: output, arguments, and that nothing outlives the container.
[Collection(ContainerdCollection.Name)]
public sealed class RunTests(ContainerdFixture f)
{
    // Containers of one shim group (io.containerd.runc.v2.group, as a pod's) come and go 4 at a time: a start that
    // finds the group's shim live while its last container is being deleted must still get a shim. Before the
    // reservation (ShimGroup), ~1 in 12 such starts failed: "failed to start shim: ... no such file or directory".
    [Fact]
    public void Grouped_containers_started_while_others_of_the_group_are_deleted_all_run()
    {
        var group = f.NewId("churn");
        var failures = new System.Collections.Concurrent.ConcurrentBag<(string, ProcessResult)>();
        var next = -1;
        var workers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < 40;)
            {
                var id = f.NewId($"churn{i}");
                var run = f.RunWasm(id, ["--annotation", $"io.containerd.runc.v2.group={group}"], "/hello.wasm", id);
                if (run.ExitCode != 0 || !run.Stdout.Contains(id, StringComparison.Ordinal)) failures.Add((id, run));
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        if (!failures.IsEmpty)
        {
            var (id, run) = failures.First();
            f.Check(false, $"{failures.Count} of 40 grouped runs failed", id, run);
        }
    }

    // A group's (a pod's) containers are created side by side: one whose large module compiles for seconds at its
    // first start (with Cranelift: it has a memory limit) does not hold up another's Create. B runs to its end while
    // A's compile still holds the module's lock.
    [Fact]
    public void A_grouped_container_is_not_held_up_by_another_compiling_its_module()
    {
        var group = f.NewId("slowgroup");
        var (a, b) = (f.NewId("slowgroup-a"), f.NewId("slowgroup-b"));
        var name = f.NewId("slowcreate").Replace('-', '_');
        var (module, _) = LargeModule.Import(f.Containerd, $"example.local/{name}:1", name, 16L * 1024 * 1024);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(module)));
        var cache = Path.Combine(f.Containerd.BaseDir, "cache");
        ProcessResult? runA = null;
        var threadA = new Thread(() => runA = f.Containerd.Ctr(TimeSpan.FromMinutes(3),
            ["run", "--rm", "--runtime", RepoLayout.Runtime, "--memory-limit", "536870912", "--annotation", $"io.containerd.runc.v2.group={group}", $"example.local/{name}:1", a, $"/{name}.wasm"]));
        threadA.Start();
        try
        {
            // A's Create is compiling once the module's lock is taken (and held: flock -n fails).
            string? compileLock = null;
            ContainerdFixture.Eventually(() =>
                (compileLock = Directory.Exists(cache) ? Directory.GetFiles(cache, sha + ".lock", SearchOption.AllDirectories).FirstOrDefault() : null) is not null
                && !CanLock(compileLock), TimeSpan.FromSeconds(60));
            f.Check(compileLock is not null && !CanLock(compileLock), "A's first start compiles its module", a);
            var runB = f.RunWasm(b, ["--annotation", $"io.containerd.runc.v2.group={group}"], "/hello.wasm", b);
            f.Check(runB.ExitCode == 0 && runB.Stdout.Contains(b, StringComparison.Ordinal), "B runs beside A", b, runB);
            f.Check(!CanLock(compileLock!) && threadA.IsAlive, "B ran to its end while A's Create was still compiling (creates in one shim are not serialised)", b, runB);
        }
        finally
        {
            threadA.Join();
        }
        f.Check(runA is { ExitCode: 0 } && runA.Stdout.Contains(LargeModule.Greeting.Trim(), StringComparison.Ordinal), "A runs once compiled", a, runA!);
    }

    private static bool CanLock(string path) =>
        ProcessRunner.Run("flock", ["-n", "-E", "99", path, "true"]).ExitCode == 0;

    [Fact]
    public void Hello_prints_greeting_and_args_on_stdout_and_a_line_on_stderr()
    {
        var id = f.NewId("hello");
        var run = f.RunWasm(id, "/hello.wasm", "a", "b");
        f.Check(run.ExitCode == 0, "exit code should be 0", id, run);
        f.Check(ContainerdFixture.Lines(run.Stdout).SequenceEqual(["hello from wasm", "a", "b"]),
            "stdout should be the greeting then each argument on its own line", id, run);
        f.Check(run.Stderr.Contains("hello on stderr", StringComparison.Ordinal), "the guest's stderr should reach ctr's stderr", id, run);
    }

    [Fact]
    public void Arguments_arrive_verbatim()
    {
        var id = f.NewId("args");
        string[] args = ["with space", "", "quote\"s", "ünïcödé", "--flag=x"];
        var run = f.RunWasm(id, ["/hello.wasm", .. args]);
        f.Check(run.ExitCode == 0, "exit code should be 0", id, run);
        // Empty lines are dropped by Lines(); compare the raw text instead.
        f.Check(run.Stdout == "hello from wasm\n" + string.Concat(args.Select(a => a + "\n")), "argv should arrive verbatim", id, run);
    }

    [Fact]
    public void Run_rm_leaves_nothing_behind()
    {
        var id = f.NewId("rm");
        var run = f.RunWasm(id, "/hello.wasm");
        f.Check(run.ExitCode == 0, "exit code should be 0", id, run);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void Runc_busybox_echo_works_through_the_same_containerd()
    {
        // Sanity check of the harness itself: images, snapshotter and runc are fine.
        var id = f.NewId("runc-echo");
        var run = f.RunRunc(id, [], "/bin/busybox", "echo", "hi");
        f.Check(run.ExitCode == 0 && run.Stdout == "hi\n", "runc busybox echo should print hi", id, run);
        f.AssertNothingLeft(id, run);
    }
}

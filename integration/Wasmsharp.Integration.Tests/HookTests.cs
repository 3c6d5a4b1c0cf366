using System.Text.Json;
using System.Text.Json.Nodes;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// OCI hooks in config.json, given to the shim as a user gives a whole spec to ctr (`ctr run --config`): each
// stage runs at its point with the state on stdin, in the namespace runc runs it in; a failing prestart
// fails the create with the hook's message and leaves nothing; poststop runs at delete.
[Collection(ContainerdCollection.Name)]
public sealed class HookTests(ContainerdFixture f)
{
    private static readonly string[] AllStages = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

    // A rootfs directory with the test programs, a recording hook script, and a spec from `ctr oci spec`.
    private sealed record Setup(string Id, string Dir, string Log, string SpecPath);

    private Setup Prepare(string what, string[] args, Action<JsonObject, string> hooks)
    {
        var id = f.NewId(what);
        var dir = f.HostDir(id);
        var rootfs = Directory.CreateDirectory(Path.Combine(dir, "rootfs")).FullName;
        foreach (var name in new[] { "sleep", "exit" }) File.Copy(f.Programs.Path(name), Path.Combine(rootfs, name + ".wasm"));
        var log = Path.Combine(dir, "hooks.log");
        // One line per run: stage, the hook's network namespace, that of the state's pid, its stdin (the state JSON).
        File.WriteAllText(Path.Combine(dir, "record.sh"), """
            #!/bin/sh
            state=$(cat)
            pid=$(echo "$state" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
            echo "$1 $(readlink /proc/self/ns/net) $(readlink /proc/${pid:-none}/ns/net || echo none) $state" >> "$2"
            """);
        var oci = f.Ctr("oci", "spec");
        f.Check(oci.ExitCode == 0, "ctr oci spec", id, oci);
        var spec = JsonNode.Parse(oci.Stdout)!.AsObject();
        spec["process"]!["args"] = new JsonArray(args.Select(a => (JsonNode)a!).ToArray());
        spec["root"] = new JsonObject { ["path"] = rootfs };
        spec["linux"]!.AsObject().Remove("cgroupsPath");
        var hookSpec = new JsonObject();
        hooks(hookSpec, dir);
        spec["hooks"] = hookSpec;
        var specPath = Path.Combine(dir, "config.json");
        File.WriteAllText(specPath, spec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new Setup(id, dir, log, specPath);
    }

    private static JsonObject Recorder(string dir, string stage) => new()
    {
        ["path"] = "/bin/sh",
        ["args"] = new JsonArray("sh", Path.Combine(dir, "record.sh"), stage, Path.Combine(dir, "hooks.log")),
    };

    private sealed record Line(string Stage, ulong Namespace, ulong PidNamespace, JsonObject State);

    private static ulong Inode(string link) => link.StartsWith("net:[", StringComparison.Ordinal) ? ulong.Parse(link[5..^1]) : 0;

    private static IReadOnlyList<Line> Read(string log) => File.Exists(log)
        ? File.ReadAllLines(log).Select(l => l.Split(' ', 4))
            .Select(p => new Line(p[0], Inode(p[1]), Inode(p[2]), JsonNode.Parse(p[3])!.AsObject())).ToList()
        : [];

    [Fact]
    public void Every_stage_runs_in_order_with_the_state_on_stdin_and_in_the_namespace_runc_uses()
    {
        var setup = Prepare("hooks", ["/sleep.wasm", "1000"], (hooks, dir) =>
        {
            foreach (var stage in AllStages) hooks[stage] = new JsonArray(Recorder(dir, stage));
        });
        var id = setup.Id;
        var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--config", setup.SpecPath, id);
        f.Check(run.ExitCode == 0, "ctr run --config with hooks should start", id, run);
        var pid = f.Containerd.Task(id)?.Pid ?? 0;
        var containerNs = NetNs.Of(pid) ?? 0;
        var hostNs = NetNs.Of(f.Containerd.Pid) ?? 0;
        f.Check(containerNs != 0 && containerNs != hostNs, "the container should have its own namespace", id, run);
        var started = Read(setup.Log);
        f.RemoveContainer(id);
        var all = Read(setup.Log);
        var context = $"hooks log:\n{string.Join('\n', File.Exists(setup.Log) ? File.ReadAllLines(setup.Log) : [])}";

        f.Check(started.Select(l => l.Stage).SequenceEqual(AllStages[..5]), $"before delete: prestart…poststart in order\n{context}", id, run);
        f.Check(all.Select(l => l.Stage).SequenceEqual(AllStages), $"poststop should run at delete\n{context}", id, run);
        var expected = new Dictionary<string, (string Status, ulong Ns)>
        {
            ["prestart"] = ("creating", hostNs),
            ["createRuntime"] = ("creating", hostNs),
            ["createContainer"] = ("creating", containerNs),
            ["startContainer"] = ("created", containerNs),
            ["poststart"] = ("running", hostNs),
            ["poststop"] = ("stopped", hostNs),
        };
        foreach (var line in all)
        {
            var (status, ns) = expected[line.Stage];
            var state = line.State;
            f.Check((string?)state["id"] == id && (string?)state["status"] == status && (string?)state["bundle"] == f.Containerd.BundleDir(id),
                $"{line.Stage}: state should carry id {id}, status {status}, bundle {f.Containerd.BundleDir(id)}\n{context}", id);
            var statePid = state["pid"] is { } p ? (int)p : 0;
            f.Check(line.Stage == "poststop" ? statePid == 0 : statePid == pid, $"{line.Stage}: pid should be {(line.Stage == "poststop" ? "absent" : pid)}, is {statePid}\n{context}", id);
            f.Check(line.Namespace == ns, $"{line.Stage}: should run in net:[{ns}], ran in net:[{line.Namespace}]\n{context}", id);
        }
        f.AssertNothingLeft(id);
    }

    [Fact]
    public void A_failing_prestart_fails_the_create_with_its_message_and_leaves_nothing()
    {
        var setup = Prepare("hook-fail", ["/exit.wasm", "0"], (hooks, dir) =>
        {
            hooks["createRuntime"] = new JsonArray(Recorder(dir, "createRuntime"));
            hooks["prestart"] = new JsonArray(Recorder(dir, "prestart"), new JsonObject
            {
                ["path"] = "/bin/sh",
                ["args"] = new JsonArray("sh", "-c", "echo no network for you >&2; exit 3"),
            });
            hooks["poststop"] = new JsonArray(Recorder(dir, "poststop"));
        });
        var id = setup.Id;
        var run = f.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--config", setup.SpecPath, id);
        f.Check(run.ExitCode != 0, "a failing prestart hook should fail ctr run", id, run);
        f.Check(run.Stderr.Contains("error running prestart hook #1: exit status 3") && run.Stderr.Contains("no network for you"),
            "ctr should show the hook's message", id, run);
        var lines = Read(setup.Log);
        // Its namespace, as the first prestart hook saw it through the state's pid, is gone with it.
        var ns = lines.FirstOrDefault()?.PidNamespace ?? 0;
        f.Check(ns != 0 && ns != NetNs.Of(f.Containerd.Pid), "the prestart hook should see the container's own namespace through the state's pid", id, run);
        f.Check(lines.Select(l => l.Stage).SequenceEqual(["prestart", "poststop"]),
            $"prestart #0 ran, createRuntime did not, poststop ran as runc runs it on a failed create: {string.Join(",", lines.Select(l => l.Stage))}", id, run);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run);
        f.Check(NetNs.Holders(ns).Count == 0, $"net:[{ns}] still held: {string.Join("; ", NetNs.Holders(ns))}", id, run);
    }

    [Fact]
    public void A_hook_past_its_timeout_is_killed_and_fails_the_create()
    {
        var setup = Prepare("hook-timeout", ["/exit.wasm", "0"], (hooks, _) =>
        {
            hooks["createRuntime"] = new JsonArray(new JsonObject
            {
                ["path"] = "/bin/sleep",
                ["args"] = new JsonArray("sleep", "30"),
                ["timeout"] = 1,
            });
        });
        var id = setup.Id;
        var run = f.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--config", setup.SpecPath, id);
        f.Check(run.ExitCode != 0 && run.Stderr.Contains("hook ran past specified timeout of 1.0s"), "the timeout should fail the create", id, run);
        f.Check(run.Elapsed < TimeSpan.FromSeconds(15), $"the hook should be killed at its timeout (took {run.Elapsed})", id, run);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run);
    }

    [Fact]
    public void A_hook_with_a_relative_path_is_refused_naming_config_json()
    {
        var setup = Prepare("hook-relative", ["/exit.wasm", "0"], (hooks, _) =>
        {
            hooks["poststart"] = new JsonArray(new JsonObject { ["path"] = "bin/true" });
        });
        var id = setup.Id;
        var run = f.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--config", setup.SpecPath, id);
        f.Check(run.ExitCode != 0 && run.Stderr.Contains("config.json: hooks.poststart[0]: path \"bin/true\" must be absolute"),
            "a relative hook path should be refused with a message naming it", id, run);
        f.Ctr("containers", "delete", id);
        f.AssertNothingLeft(id, run);
    }
}

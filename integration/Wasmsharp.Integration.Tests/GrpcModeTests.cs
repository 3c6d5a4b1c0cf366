using System.Text.Json;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The task API over gRPC (annotation io.containerd.wasmsharp.protocol=grpc): on containerd 1.7 a user
// must see the same output, exit statuses, kill/delete behaviour and events as with ttrpc. containerd
// 1.6 cannot use gRPC shims and 2.x drops their connections at once, so there the shim serves ttrpc.
[Collection(ContainerdCollection.Name)]
public sealed class GrpcModeTests(ContainerdFixture f)
{
    private const string GrpcAnnotation = "io.containerd.wasmsharp.protocol=grpc";
    private static readonly TimeSpan Shortly = TimeSpan.FromSeconds(10);

    // A containerd of the versions wanted: the fixture's, else a private one with the test image and its
    // own event log.
    private sealed class Target : IDisposable
    {
        private readonly bool _owned;
        public PrivateContainerd Containerd { get; }
        public EventLog Events { get; }

        private Target(PrivateContainerd containerd, EventLog events, bool owned) => (Containerd, Events, _owned) = (containerd, events, owned);

        public static Target For(ContainerdFixture f, Func<(int Major, int Minor), bool> fits, string suite)
        {
            var (containerd, owned) = ContainerdVersions.Pick(f, fits, suite, ContainerdFixture.Namespace);
            if (!owned) return new Target(containerd, f.Events, false);
            try
            {
                Images.Import(containerd, Images.BuildWasmTests(f.Programs, containerd.BaseDir));
                return new Target(containerd, new EventLog(containerd), true);
            }
            catch
            {
                containerd.Dispose();
                throw;
            }
        }

        public ProcessResult Ctr(params string[] args) => Containerd.Ctr(ContainerdFixture.RunTimeout, args);

        public IReadOnlyList<string> Topics(string id) =>
            Events.Topics(id);

        public IReadOnlyList<string> TopicsWhenSettled(string id, int expected)
        {
            ContainerdFixture.Eventually(() => Topics(id).Count >= expected, Shortly);
            Thread.Sleep(100);
            return Topics(id);
        }

        public void Check(bool ok, string what, string id, params ProcessResult[] results)
        {
            if (!ok) Assert.Fail($"{what}\n\n{string.Join("\n", results.Select(r => r.ToString()))}\n{Containerd.LogTail(30, id)}");
        }

        // The protocol the shim of this container serves, from its first log line (in containerd's log).
        public string? ServedProtocol(string id) =>
            Containerd.LogTail(400, id).Split('\n')
                .LastOrDefault(l => l.Contains($" for {id} serving ", StringComparison.Ordinal)) is { } line
                ? new string(line[(line.IndexOf(" serving ", StringComparison.Ordinal) + " serving ".Length)..].TakeWhile(c => c != ' ').ToArray())
                : null;

        public void Remove(string id)
        {
            Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id);
            ContainerdFixture.Eventually(() => Containerd.Task(id) is null or { Status: "STOPPED" }, TimeSpan.FromSeconds(5));
            Ctr("tasks", "delete", id);
            Ctr("containers", "delete", id);
        }

        public void Dispose()
        {
            if (!_owned) return;
            Events.Dispose();
            Containerd.Dispose();
        }
    }

    private static IEnumerable<ProcFs.ProcessInfo> Shims(string id) => ProcFs.Processes()
        .Where(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim-wasmsharp", StringComparison.Ordinal) && p.HasArgPair("-id", id));

    [Fact]
    public void Run_rm_in_grpc_mode_gives_the_same_output_exit_status_and_events_as_ttrpc()
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd17, "trixie");
        var grpcId = f.NewId("grpc-run");
        var ttrpcId = f.NewId("ttrpc-run");
        var grpc = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--annotation", GrpcAnnotation, Images.WasmTests, grpcId, "/hello.wasm", "one arg", "two");
        var ttrpc = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, Images.WasmTests, ttrpcId, "/hello.wasm", "one arg", "two");
        t.Check(grpc.ExitCode == 0 && ttrpc.ExitCode == 0, "both runs succeed", grpcId, grpc, ttrpc);
        t.Check(grpc.Stdout == ttrpc.Stdout && grpc.Stdout.Contains("hello from wasm\none arg\ntwo\n", StringComparison.Ordinal),
            "the same stdout", grpcId, grpc, ttrpc);
        t.Check(grpc.Stderr.Contains("hello on stderr", StringComparison.Ordinal), "stderr reaches ctr", grpcId, grpc);
        t.Check(t.ServedProtocol(grpcId) == "grpc", $"the shim serves gRPC (logged: {t.ServedProtocol(grpcId)})", grpcId, grpc);
        t.Check(t.ServedProtocol(ttrpcId) == "ttrpc", $"and the default one ttrpc (logged: {t.ServedProtocol(ttrpcId)})", ttrpcId, ttrpc);

        var grpcTopics = t.TopicsWhenSettled(grpcId, 4);
        var ttrpcTopics = t.TopicsWhenSettled(ttrpcId, 4);
        t.Check(ttrpcTopics.SequenceEqual(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]), $"ttrpc events: {string.Join(", ", ttrpcTopics)}", ttrpcId);
        t.Check(grpcTopics.SequenceEqual(ttrpcTopics), $"gRPC events {string.Join(", ", grpcTopics)} should be {string.Join(", ", ttrpcTopics)}", grpcId);

        var exitId = f.NewId("grpc-exit");
        var exit = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--annotation", GrpcAnnotation, Images.WasmTests, exitId, "/exit.wasm", "3");
        t.Check(exit.ExitCode == 3, "the guest's exit code is the task's", exitId, exit);
        t.Check(ContainerdFixture.Eventually(() => !Shims(grpcId).Any() && !Shims(exitId).Any(), TimeSpan.FromSeconds(5)), "no shim is left", grpcId);
        t.Check(!t.Containerd.Containers().Contains(grpcId) && !t.Containerd.Containers().Contains(exitId), "no container is left", grpcId);
    }

    [Fact]
    public void Kill_and_delete_in_grpc_mode_behave_as_in_ttrpc_mode()
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd17, "trixie");
        var id = f.NewId("grpc-kill");
        try
        {
            var run = t.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--annotation", GrpcAnnotation, Images.WasmTests, id, "/sleep.wasm", "1000");
            t.Check(run.ExitCode == 0 && t.Containerd.Task(id) is { Status: "RUNNING" }, "ctr run -d: the task runs", id, run);
            var address = File.ReadAllText(Path.Combine(t.Containerd.BundleDir(id), "address"));
            using (var json = JsonDocument.Parse(address))
            {
                t.Check(json.RootElement.GetProperty("protocol").GetString() == "grpc", $"the bundle's address names gRPC: {address}", id, run);
            }

            var delete = t.Ctr("tasks", "delete", id);
            // (ctr 1.7 refuses by itself, "task must be stopped before deletion"; the shim would too.)
            t.Check(delete.ExitCode != 0 && t.Containerd.Task(id) is { Status: "RUNNING" }, "deleting the running task is refused", id, delete);
            var kill = t.Ctr("tasks", "kill", "--signal", "SIGTERM", id);
            t.Check(kill.ExitCode == 0, "kill", id, kill);
            var exit = t.Events.WaitFor(id, "/tasks/exit", Shortly);
            t.Check(exit is not null && exit.Contains("\"exit_status\":143", StringComparison.Ordinal), $"SIGTERM: exit 143 published: {exit ?? "(no event)"}", id, kill);
            t.Check(t.Containerd.Task(id) is { Status: "STOPPED" }, "the task is STOPPED", id);
            var again = t.Ctr("tasks", "kill", id);
            t.Check(again.ExitCode != 0 && again.Stderr.Contains("not found", StringComparison.Ordinal), "killing the exited task is NotFound", id, again);
            var deleted = t.Ctr("tasks", "delete", id);
            // ctr 1.7 warns "exit with non-zero exit code 143" and exits 0; 2.x exits with the status.
            t.Check(deleted.ExitCode == 143 || (deleted.ExitCode == 0 && deleted.Stderr.Contains("exit code 143", StringComparison.Ordinal)),
                "ctr task delete reports the task's status, 143", id, deleted);
            t.Check(ContainerdFixture.Eventually(() => !Shims(id).Any(), TimeSpan.FromSeconds(5)), "the shim exits after the delete", id, deleted);
        }
        finally
        {
            t.Remove(id);
        }
    }

    [Fact]
    public void A_grpc_shim_survives_a_containerd_restart()
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd17, "trixie");
        var id = f.NewId("grpc-survive");
        try
        {
            var run = t.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--annotation", GrpcAnnotation, Images.WasmTests, id, "/sleep.wasm", "4");
            var before = t.Containerd.Task(id);
            t.Check(run.ExitCode == 0 && before is { Status: "RUNNING" }, "the task runs", id, run);

            t.Containerd.Restart();
            t.Events.Resubscribe();

            var after = t.Containerd.Task(id);
            t.Check(after is { Status: "RUNNING" } && after.Pid == before!.Pid, $"after the restart the task still runs with pid {before!.Pid}: {after}", id, run);
            var exit = t.Events.WaitFor(id, "/tasks/exit", TimeSpan.FromSeconds(15));
            t.Check(exit is not null, "its exit reaches the restarted containerd", id, run);
            var delete = t.Ctr("tasks", "delete", id);
            t.Check(delete.ExitCode == 0, "the task can be deleted", id, delete);
        }
        finally
        {
            t.Remove(id);
        }
    }

    [Fact]
    public void On_containerd_2_a_grpc_request_is_served_over_ttrpc_and_says_why()
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd2, "sid");
        var id = f.NewId("grpc-fallback");
        var run = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--annotation", GrpcAnnotation, Images.WasmTests, id, "/exit.wasm", "5");
        t.Check(run.ExitCode == 5, "the container runs and its exit status arrives", id, run);
        t.Check(t.ServedProtocol(id) == "ttrpc", $"the shim serves ttrpc (logged: {t.ServedProtocol(id)})", id, run);
        t.Check(t.Containerd.LogTail(400, id).Contains("protocol grpc requested but containerd 2.", StringComparison.Ordinal),
            "the shim's log says why it did not use gRPC", id, run);
    }

    // What containerd runs after a shim died (or it lost track of one): `shim ... -bundle B delete`.
    private static (int ExitCode, byte[] Stdout, string Stderr) RunShimDelete(PrivateContainerd containerd, string id)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(Path.Combine(RepoLayout.ShimDir, RepoLayout.ShimBinary),
            ["-namespace", ContainerdFixture.Namespace, "-address", containerd.Address, "-publish-binary", containerd.ContainerdExe,
             "-id", id, "-bundle", containerd.BundleDir(id), "delete"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var delete = System.Diagnostics.Process.Start(psi)!;
        var stderr = delete.StandardError.ReadToEndAsync();
        using var stdout = new MemoryStream();
        delete.StandardOutput.BaseStream.CopyTo(stdout);
        Assert.True(delete.WaitForExit(TimeSpan.FromSeconds(10)), "shim delete did not exit");
        return (delete.ExitCode, stdout.ToArray(), stderr.Result);
    }

    // `shim delete` while the container's shim still runs it (containerd lost track of the shim):
    // the task is killed through the shim's own API, whatever its protocol, and the shim exits.
    [Theory]
    [InlineData("ttrpc")]
    [InlineData("grpc")]
    public void Shim_delete_stops_a_container_its_live_shim_still_runs(string protocol)
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd17, "trixie");
        var id = f.NewId($"delete-live-{protocol}");
        try
        {
            var run = t.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, "--annotation", $"io.containerd.wasmsharp.protocol={protocol}", Images.WasmTests, id, "/sleep.wasm", "1000");
            t.Check(run.ExitCode == 0 && t.Containerd.Task(id) is { Status: "RUNNING" }, "the task runs", id, run);
            t.Check(t.ServedProtocol(id) == protocol, $"its shim serves {protocol}", id, run);

            var (code, stdout, stderr) = RunShimDelete(t.Containerd, id);
            Assert.True(code == 0, $"shim delete exited {code}: {stderr}");
            var response = Wasmsharp.Containerd.Api.Task.DeleteResponse.Parser.ParseFrom(stdout);
            Assert.Equal(137u, response.ExitStatus);

            var exit = t.Events.WaitFor(id, "/tasks/exit", Shortly);
            t.Check(exit is not null && exit.Contains("\"exit_status\":137", StringComparison.Ordinal), $"the shim killed the task: {exit ?? "(no event)"}", id, run);
            t.Check(ContainerdFixture.Eventually(() => !Shims(id).Any(), TimeSpan.FromSeconds(10)), "and exited", id, run);
        }
        finally
        {
            t.Remove(id);
        }
    }

    // The runtime options path: ctr passes runtimeoptions.v1.Options { config_path } on start's stdin.
    [Fact]
    public void A_runtime_config_file_chooses_the_protocol_and_a_bad_one_is_refused_clearly()
    {
        using var t = Target.For(f, ContainerdVersions.IsContainerd17, "trixie");
        var id = f.NewId("grpc-config");
        var config = Path.Combine(t.Containerd.BaseDir, $"{id}.toml");
        File.WriteAllText(config, "# wasmsharp runtime options\nprotocol = \"grpc\"\n");
        var run = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--runtime-config-path", config, Images.WasmTests, id, "/exit.wasm", "4");
        t.Check(run.ExitCode == 4, "the container runs", id, run);
        t.Check(t.ServedProtocol(id) == "grpc", $"over gRPC, as the file says (logged: {t.ServedProtocol(id)})", id, run);

        var badId = f.NewId("grpc-bad-config");
        var bad = Path.Combine(t.Containerd.BaseDir, $"{badId}.toml");
        File.WriteAllText(bad, "protocol = \"carrier-pigeon\"\n");
        var refused = t.Ctr("run", "--rm", "--runtime", RepoLayout.Runtime, "--runtime-config-path", bad, Images.WasmTests, badId, "/exit.wasm", "4");
        t.Check(refused.ExitCode != 0 && refused.Stderr.Contains("unknown protocol \"carrier-pigeon\": expected ttrpc or grpc", StringComparison.Ordinal),
            "a bad option fails the start with a clear message", badId, refused);
        t.Check(!Shims(badId).Any(), "and leaves no shim", badId, refused);
        t.Ctr("containers", "delete", badId);
    }
}

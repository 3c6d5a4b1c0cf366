using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// OCI Wasm artifact images (config architecture "wasm", the module as a layer, empty rootfs): the shim
// reads the module from containerd's content store. containerd 1.6.20 cannot unpack such images
// ("mismatched image rootfs and manifest layers", before the shim is involved), so these tests run on the
// containerd 1.7 and 2.1 fetched by `make runtimes`, whatever containerd the rest of the suite uses.
public abstract class ArtifactFixture : IDisposable
{
    private int _ids;
    public PrivateContainerd Containerd { get; }
    public WasmPrograms Programs { get; }

    protected ArtifactFixture(string suite)
    {
        var binDir = RepoLayout.SuiteBinDir(suite)
            ?? throw new InvalidOperationException($"containerd of Debian {suite} not found under {RepoLayout.RuntimesDir}: run `make runtimes` (or set WASMSHARP_RUNTIMES_DIR)");
        Programs = WasmPrograms.Get();
        Containerd = PrivateContainerd.Start(ContainerdFixture.Namespace, binDir);
        try
        {
            ArtifactImages.BuildAndImportAll(Containerd, Programs);
            Images.Import(Containerd, Images.BuildWasmTests(Programs, Containerd.BaseDir));
        }
        catch
        {
            Containerd.Dispose();
            throw;
        }
    }

    public void Dispose() => Containerd.Dispose();

    public string NewId(string what) => $"{what}-{Interlocked.Increment(ref _ids)}";

    public ProcessResult Ctr(params string[] args) => Containerd.Ctr(ContainerdFixture.RunTimeout, args);

    // `ctr run --rm --runtime io.containerd.wasmsharp.v1 [options] IMAGE ID args...`, then, whatever happened,
    // nothing of the container may remain.
    public ProcessResult Run(string image, string id, string[] options, params string[] args)
    {
        var run = Ctr(["run", "--rm", "--runtime", RepoLayout.Runtime, .. options, image, id, .. args]);
        Ctr("tasks", "delete", "-f", id);
        Ctr("containers", "delete", id);
        return run;
    }

    public ProcessResult Run(string image, string id, params string[] args) => Run(image, id, [], args);

    public void Check(bool ok, string what, string id, params ProcessResult[] results)
    {
        if (ok) return;
        Assert.Fail($"{what}\n\n{string.Join("\n", results.Select(r => r.ToString()))}\n{Containerd.LogTail(40, id)}");
    }

    // The shim's "ID: module NAME ORIGIN in ..." line for a container.
    public string ModuleLine(string id) =>
        File.ReadLines(Containerd.LogPath).LastOrDefault(l => l.Contains($"{id}: module ", StringComparison.Ordinal) && l.Contains(" in ", StringComparison.Ordinal) && !l.Contains("from image", StringComparison.Ordinal)) ?? "(no module line)";

    public string CacheDir => Path.Combine(Containerd.BaseDir, "cache");
}

public sealed class Containerd17Fixture() : ArtifactFixture("trixie");

public sealed class Containerd21Fixture() : ArtifactFixture("sid");

public abstract class ArtifactTests(ArtifactFixture f)
{
    [Fact]
    public void Artifact_image_runs_its_module_with_the_image_entrypoint()
    {
        var id = f.NewId("art-default");
        var run = f.Run(ArtifactImages.Hello, id);
        f.Check(run.ExitCode == 0, "the artifact image should run", id, run);
        f.Check(run.Stdout.Contains("hello from wasm", StringComparison.Ordinal), "the module's output reaches ctr", id, run);
        f.Check(run.Stderr.Contains("hello on stderr", StringComparison.Ordinal), "the module's stderr reaches ctr", id, run);
    }

    [Fact]
    public void Arguments_reach_the_module_verbatim()
    {
        var id = f.NewId("art-args");
        var run = f.Run(ArtifactImages.Hello, id, "hello.wasm", "one", "two words", "");
        f.Check(run.ExitCode == 0, "the artifact image should run", id, run);
        f.Check(run.Stdout.Split('\n').SequenceEqual(["hello from wasm", "one", "two words", "", ""]),
            $"argv should arrive verbatim, got [{run.Stdout.Replace("\n", "|", StringComparison.Ordinal)}]", id, run);
    }

    [Fact]
    public void Exit_code_of_the_module_is_the_task_exit_status()
    {
        var id = f.NewId("art-exit");
        var run = f.Run(ArtifactImages.Multi, id, "exit.wasm", "42");
        f.Check(run.ExitCode == 42, $"ctr run should exit 42, got {run.ExitCode}", id, run);
    }

    [Fact]
    public void Environment_comes_from_the_image_config_and_the_run_options()
    {
        var id = f.NewId("art-env");
        var run = f.Run(ArtifactImages.Multi, id, ["--env", "FROM_RUN=yes"], "/env.wasm");
        var lines = ContainerdFixture.Lines(run.Stdout);
        f.Check(run.ExitCode == 0, "env should run", id, run);
        f.Check(lines.Contains("FROM_IMAGE=artifact") && lines.Contains("FROM_RUN=yes"), "image config Env and --env reach the guest", id, run);
        f.Check(!lines.Any(l => l.StartsWith(PrivateContainerd.HostEnvMarker, StringComparison.Ordinal)), "the shim's own environment must not leak", id, run);
    }

    [Fact]
    public void Several_modules_are_chosen_by_the_first_argument()
    {
        var hello = f.NewId("art-pick-hello");
        var runHello = f.Run(ArtifactImages.Multi, hello, "/hello.wasm", "picked");
        f.Check(runHello.ExitCode == 0 && runHello.Stdout.Contains("picked", StringComparison.Ordinal), "/hello.wasm selects the hello layer", hello, runHello);
        var unknown = f.NewId("art-pick-none");
        var runUnknown = f.Run(ArtifactImages.Multi, unknown, "other.wasm");
        f.Check(runUnknown.ExitCode != 0, "an entrypoint naming no layer should fail", unknown, runUnknown);
        foreach (var title in new[] { "hello.wasm", "exit.wasm", "env.wasm", "other.wasm" })
            f.Check(runUnknown.Stderr.Contains(title, StringComparison.Ordinal), $"the error should name {title}", unknown, runUnknown);
        f.Check(runUnknown.Stderr.Contains("3 module layers", StringComparison.Ordinal), "the error should say there are several module layers", unknown, runUnknown);
        // The image has no entrypoint (several modules) and ctr gives no arguments: nothing names a layer.
        var none = f.NewId("art-pick-noargs");
        var runNone = f.Run(ArtifactImages.Multi, none);
        f.Check(runNone.ExitCode != 0 && runNone.Stderr.Contains("no process args", StringComparison.Ordinal) && runNone.Stderr.Contains("exit.wasm", StringComparison.Ordinal),
            "without arguments the error should say so and list the layers", none, runNone);
    }

    [Theory]
    [InlineData(ArtifactImages.Hello, "application/wasm")]
    [InlineData(ArtifactImages.HelloComponentType, "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm")]
    [InlineData(ArtifactImages.HelloContentType, "application/vnd.wasm.content.layer.v1+wasm")]
    public void Every_wasm_layer_media_type_runs(string image, string mediaType)
    {
        var layers = ArtifactImages.Layers(f.Containerd, image);
        Assert.Equal([mediaType], layers.Select(l => l.MediaType));
        var id = f.NewId("art-type");
        var run = f.Run(image, id, "hello.wasm", "typed");
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("typed", StringComparison.Ordinal), $"a {mediaType} layer should run", id, run);
        f.Check(File.ReadLines(f.Containerd.LogPath).Any(l => l.Contains($"{id}: module {layers[0].Digest}", StringComparison.Ordinal) && l.Contains(mediaType, StringComparison.Ordinal)),
            "the shim should log the layer it took", id, run);
    }

    [Fact]
    public void A_component_layer_holding_a_p2_component_runs_it()
    {
        // Built with `--module p2.wasm` only: the header chose the layer type.
        var layer = ArtifactImages.Layers(f.Containerd, ArtifactImages.Component).Single();
        Assert.Equal("application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", layer.MediaType);
        var byImage = f.NewId("art-p2-cmd");
        var fromConfig = f.Run(ArtifactImages.Component, byImage);
        f.Check(fromConfig.ExitCode == 0 && ContainerdFixture.Lines(fromConfig.Stdout).Take(3).SequenceEqual(["argc=2", "arg[0]=p2.wasm", "arg[1]=hello"]),
            "without arguments the image's entrypoint and cmd should run the component", byImage, fromConfig);
        var id = f.NewId("art-p2");
        var run = f.Run(ArtifactImages.Component, id, "p2.wasm", "hello", "from an artifact");
        f.Check(run.ExitCode == 0, "the component artifact should run and exit 0", id, run);
        f.Check(ContainerdFixture.Lines(run.Stdout).Take(4).SequenceEqual(["argc=3", "arg[0]=p2.wasm", "arg[1]=hello", "arg[2]=from an artifact"]),
            "the component's argv should be the run's", id, run);
        var failing = f.NewId("art-p2-trap");
        var trap = f.Run(ArtifactImages.Component, failing, "p2.wasm", "trap");
        f.Check(trap.ExitCode == 134 && trap.Stdout == "about to trap\n", "its trap should be 134 after its output", failing, trap);
    }

    [Fact]
    public void Second_start_takes_the_compiled_module_from_the_cache_keyed_by_the_layer_digest()
    {
        var layer = ArtifactImages.Layers(f.Containerd, ArtifactImages.Hello).Single();
        var first = f.NewId("art-cache-1");
        var run1 = f.Run(ArtifactImages.Hello, first);
        var second = f.NewId("art-cache-2");
        var run2 = f.Run(ArtifactImages.Hello, second);
        f.Check(run1.ExitCode == 0 && run2.ExitCode == 0, "both runs succeed", second, run1, run2);
        f.Check(f.ModuleLine(second).Contains("CacheHit", StringComparison.Ordinal), $"the second start should hit the cache: {f.ModuleLine(second)}", second, run2);
        var hex = layer.Digest["sha256:".Length..];
        var entries = Directory.GetFiles(f.CacheDir, "*.cwasm", SearchOption.AllDirectories);
        f.Check(entries.Any(e => Path.GetFileName(e).StartsWith(hex + ".", StringComparison.Ordinal)),
            $"the cache entry should be named by the layer digest {hex}; entries: {string.Join(", ", entries.Select(Path.GetFileName))}", second, run2);
    }

    [Fact]
    public void Cached_module_runs_even_when_its_layer_is_gone_from_the_content_store()
    {
        var layer = ArtifactImages.Layers(f.Containerd, ArtifactImages.Sleep).Single();
        var warm = f.NewId("art-warm");
        var run1 = f.Run(ArtifactImages.Sleep, warm, "sleep.wasm", "0");
        var rm = f.Ctr("content", "rm", layer.Digest);
        var id = f.NewId("art-cached");
        var run2 = f.Run(ArtifactImages.Sleep, id, "sleep.wasm", "0");
        f.Check(run1.ExitCode == 0 && rm.ExitCode == 0, "warm-up run and content removal succeed", id, run1, rm);
        f.Check(run2.ExitCode == 0 && f.ModuleLine(id).Contains("CacheHit", StringComparison.Ordinal),
            "a cached module is not read from containerd again", id, run2);
    }

    [Fact]
    public void Missing_layer_content_fails_naming_the_layer()
    {
        var layer = ArtifactImages.Layers(f.Containerd, ArtifactImages.Trap).Single();
        var rm = f.Ctr("content", "rm", layer.Digest);
        var id = f.NewId("art-missing");
        var run = f.Run(ArtifactImages.Trap, id);
        f.Check(rm.ExitCode == 0, "ctr content rm should remove the layer", id, rm);
        f.Check(run.ExitCode != 0, "running without the module's content should fail", id, run);
        f.Check(run.Stderr.Contains(layer.Digest, StringComparison.Ordinal) && run.Stderr.Contains("missing", StringComparison.Ordinal),
            "the error should name the missing layer", id, run);
    }

    [Fact]
    public void Image_without_a_module_layer_fails_saying_so()
    {
        var id = f.NewId("art-none");
        var run = f.Run(ArtifactImages.NoModuleLayer, id);
        f.Check(run.ExitCode != 0, "an artifact without a module layer should fail", id, run);
        f.Check(run.Stderr.Contains("no module layer", StringComparison.Ordinal) && run.Stderr.Contains("application/vnd.example.not-wasm", StringComparison.Ordinal),
            "the error should say there is no module layer and what layers there are", id, run);
    }

    [Fact]
    public void Exec_in_an_artifact_container_runs_the_image_module()
    {
        var id = f.NewId("art-exec");
        try
        {
            var run = f.Ctr("run", "-d", "--runtime", RepoLayout.Runtime, ArtifactImages.Sleep, id, "sleep.wasm", "30");
            f.Check(run.ExitCode == 0, "ctr run -d should succeed", id, run);
            var exec = f.Ctr("tasks", "exec", "--exec-id", "e1", id, "sleep.wasm", "0");
            f.Check(exec.ExitCode == 0, "an exec of the image's module should run", id, run, exec);
        }
        finally
        {
            f.Ctr("tasks", "kill", "-s", "SIGKILL", id);
            ContainerdFixture.Eventually(() => f.Containerd.Task(id) is null or { Status: "STOPPED" }, TimeSpan.FromSeconds(5));
            f.Ctr("tasks", "delete", id);
            f.Ctr("containers", "delete", id);
        }
    }

    // The content-store client lives in containerd-shim-wasmsharp-grpc (the main binary stays free of a gRPC
    // client); a shim installed without it must say so. ctr runs the shim by path from a directory without it.
    [Fact]
    public void Artifact_image_without_the_grpc_binary_fails_naming_it()
    {
        var dir = Directory.CreateTempSubdirectory("wasmsharp-nogrpc-").FullName;
        var id = f.NewId("art-nogrpc");
        try
        {
            foreach (var file in new[] { RepoLayout.ShimBinary, "libwasmtime.so" })
                File.Copy(Path.Combine(f.Containerd.ShimDir, file), Path.Combine(dir, file));
            File.SetUnixFileMode(Path.Combine(dir, RepoLayout.ShimBinary), (UnixFileMode)0b111_101_101);
            var run = f.Ctr("run", "--rm", "--runtime", Path.Combine(dir, RepoLayout.ShimBinary), ArtifactImages.Hello, id);
            f.Check(run.ExitCode != 0, "an artifact image cannot run without the -grpc binary", id, run);
            f.Check(run.Stderr.Contains($"{Path.Combine(dir, "containerd-shim-wasmsharp-grpc")} is not installed", StringComparison.Ordinal),
                "the error should name the missing binary", id, run);
        }
        finally
        {
            f.Ctr("tasks", "delete", "-f", id);
            f.Ctr("containers", "delete", id);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Classic_form_still_runs_from_the_rootfs()
    {
        var id = f.NewId("classic");
        var run = f.Run(Images.WasmTests, id, "/hello.wasm", "classic");
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("classic", StringComparison.Ordinal), "the rootfs form runs", id, run);
        f.Check(!File.ReadLines(f.Containerd.LogPath).Any(l => l.Contains($"{id}: module", StringComparison.Ordinal) && l.Contains("from image", StringComparison.Ordinal)),
            "the rootfs form must not ask containerd for the image", id, run);
    }

    [Fact]
    public void Classic_form_with_the_wasi_wasm_platform_runs()
    {
        var id = f.NewId("classic-wasi");
        var run = f.Run(ArtifactImages.ClassicWasi, id);
        f.Check(run.ExitCode == 0 && run.Stdout.Contains("hello from wasm", StringComparison.Ordinal), "a wasi/wasm image with a tar layer runs from its rootfs", id, run);
    }

    [Fact]
    public void Missing_entrypoint_in_a_classic_image_says_the_image_is_not_an_artifact()
    {
        var id = f.NewId("classic-missing");
        var run = f.Run(Images.WasmTests, id, "/nope.wasm");
        f.Check(run.ExitCode != 0, "a missing entrypoint should fail", id, run);
        f.Check(run.Stderr.Contains("/nope.wasm", StringComparison.Ordinal) && run.Stderr.Contains("not a Wasm artifact", StringComparison.Ordinal),
            "the error should name the path and say the image has no module layer either", id, run);
    }
}

public sealed class ArtifactTestsOnContainerd17(Containerd17Fixture f) : ArtifactTests(f), IClassFixture<Containerd17Fixture>;

public sealed class ArtifactTestsOnContainerd21(Containerd21Fixture f) : ArtifactTests(f), IClassFixture<Containerd21Fixture>;

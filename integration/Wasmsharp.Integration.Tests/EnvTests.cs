using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// The guest's environment is the container's (config.json process.env), never the shim's.
[Collection(ContainerdCollection.Name)]
public sealed class EnvTests(ContainerdFixture f)
{
    [Fact]
    public void Env_option_is_seen_and_shim_environment_is_not()
    {
        var id = f.NewId("env");
        var run = f.RunWasm(id, ["--env", "FOO=bar", "--env", "EMPTY="], "/env.wasm");
        f.Check(run.ExitCode == 0, "exit code should be 0", id, run);
        var env = ContainerdFixture.Lines(run.Stdout);
        f.Check(env.Contains("FOO=bar"), "--env FOO=bar should be in the guest's environment", id, run);
        f.Check(env.Contains("EMPTY="), "--env EMPTY= should be in the guest's environment", id, run);
        // containerd gives the shim these (and its own environment, with our marker); a guest must not see them.
        foreach (var name in new[] { "TTRPC_ADDRESS", "GOMAXPROCS", "GRPC_ADDRESS", "NAMESPACE", PrivateContainerd.HostEnvMarker })
            f.Check(!env.Any(e => e.StartsWith(name + "=", StringComparison.Ordinal)), $"{name} leaked from the shim's environment", id, run);
    }

    [Fact]
    public void Env_is_the_same_set_runc_gives_a_native_process()
    {
        // Same image config (none) and options on both sides: the variables from config.json must match.
        // runc adds HOME when missing, and the busybox image sets its own PATH, so only compare the rest.
        var id = f.NewId("env-cmp");
        var wasm = f.RunWasm(id, ["--env", "FOO=bar"], "/env.wasm");
        var runcId = f.NewId("env-cmp-runc");
        var runc = f.RunRunc(runcId, ["--env", "FOO=bar"], "env");
        static HashSet<string> Names(string output, params string[] except) =>
            ContainerdFixture.Lines(output).Select(l => l.Split('=')[0]).Where(n => !except.Contains(n)).ToHashSet();
        var wasmNames = Names(wasm.Stdout, "PATH");
        var runcNames = Names(runc.Stdout, "PATH", "HOME", "HOSTNAME");
        f.Check(wasm.ExitCode == 0 && runc.ExitCode == 0, "both should exit 0", id, wasm, runc);
        f.Check(wasmNames.SetEquals(runcNames),
            $"variable names differ: wasm [{string.Join(",", wasmNames)}], runc [{string.Join(",", runcNames)}]", id, wasm, runc);
    }
}

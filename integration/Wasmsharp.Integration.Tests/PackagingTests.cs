using System.Text.Json;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// packaging/install.sh against private config files, judged by the real containerd releases' own parser
// (`containerd --config FILE config dump`): containerd 1.6 (Debian 12), and 1.7 / 2.1 when `make runtimes`
// fetched them. A fake containerd (a script) stands in where only its --version matters.
public sealed class InstallScriptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wasmsharp-install-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Script => Path.Combine(RepoLayout.Root, "packaging", "install.sh");

    public static TheoryData<string> Containerds()
    {
        var data = new TheoryData<string> { "/usr/bin" };
        foreach (var suite in new[] { "trixie", "sid" })
            if (RepoLayout.SuiteBinDir(suite) is { } dir) data.Add(dir);
        return data;
    }

    private ProcessResult Install(params string[] args) =>
        ProcessRunner.Run(Script, ["--no-restart", .. args], TimeSpan.FromSeconds(60));

    private ProcessResult Configure(string config, string containerd, params string[] more) =>
        Install(["--config-only", "--config", config, "--containerd", containerd, .. more]);

    private static int Major(string containerd) =>
        ProcessRunner.Run(containerd, ["--version"]).Stdout.Contains(" 2.", StringComparison.Ordinal) ? 2 : 1;

    // What containerd itself makes of the file.
    private static string Dump(string containerd, string config)
    {
        var dump = ProcessRunner.Run(containerd, ["--config", config, "config", "dump"]);
        Assert.True(dump.ExitCode == 0, $"containerd cannot load {config}:\n{dump}\n{File.ReadAllText(config)}");
        return dump.Stdout;
    }

    private static void AssertRuntimeIn(string dump, bool v3)
    {
        var table = v3 ? "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmsharp]" : "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmsharp]";
        var lines = dump.Split('\n').Select(l => l.Trim()).ToList();
        var at = lines.IndexOf(table);
        Assert.True(at >= 0, $"{table} not in containerd's config dump:\n{dump}");
        Assert.Contains(lines.Skip(at + 1).TakeWhile(l => !l.StartsWith('[')), l => l.Replace('\'', '"') == "runtime_type = \"io.containerd.wasmsharp.v1\"");
    }

    private string[] Backups() => Directory.GetFiles(_dir, "*.bak-wasmsharp-*");

    [Theory]
    [MemberData(nameof(Containerds))]
    public void Without_a_config_it_writes_one_for_the_containerd_version_and_a_second_run_changes_nothing(string binDir)
    {
        var containerd = Path.Combine(binDir, "containerd");
        var config = Path.Combine(_dir, "etc", "config.toml");
        var first = Configure(config, containerd);
        Assert.True(first.ExitCode == 0, first.ToString());
        var v3 = Major(containerd) == 2;
        Assert.StartsWith(v3 ? "version = 3\n" : "version = 2\n", File.ReadAllText(config));
        AssertRuntimeIn(Dump(containerd, config), v3);

        var before = File.ReadAllBytes(config);
        var second = Configure(config, containerd);
        Assert.True(second.ExitCode == 0 && second.Stdout.Contains("nothing to change", StringComparison.Ordinal), second.ToString());
        Assert.Equal(before, File.ReadAllBytes(config));
        Assert.Empty(Backups());
    }

    // A config as an operator might have it: runc with the systemd cgroup driver, a registry mirror setting.
    private static string ExistingConfig(bool v3) => v3
        ? """
          version = 3
          root = "/var/lib/containerd"

          [plugins.'io.containerd.cri.v1.runtime'.containerd]
            default_runtime_name = "runc"
          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
            runtime_type = "io.containerd.runc.v2"
          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            SystemdCgroup = true
          [plugins.'io.containerd.cri.v1.images'.registry]
            config_path = "/etc/containerd/certs.d"
          """
        : """
          version = 2
          root = "/var/lib/containerd"

          [plugins]
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "registry.k8s.io/pause:3.9"
              [plugins."io.containerd.grpc.v1.cri".containerd]
                default_runtime_name = "runc"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                    SystemdCgroup = true
              [plugins."io.containerd.grpc.v1.cri".registry]
                config_path = "/etc/containerd/certs.d"
          """;

    [Theory]
    [MemberData(nameof(Containerds))]
    public void An_existing_config_is_extended_kept_and_backed_up(string binDir)
    {
        var containerd = Path.Combine(binDir, "containerd");
        var v3 = Major(containerd) == 2;
        // containerd 2.x still reads version 2 files (migrating them in memory): extend what is there.
        foreach (var fileV3 in v3 ? new[] { false, true } : [false])
        {
            var config = Path.Combine(_dir, fileV3 ? "v3.toml" : "v2.toml");
            var original = ExistingConfig(fileV3);
            File.WriteAllText(config, original);
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var result = Configure(config, containerd);
            Assert.True(result.ExitCode == 0, result.ToString());

            var merged = File.ReadAllText(config);
            Assert.StartsWith(original, merged, StringComparison.Ordinal);
            var dump = Dump(containerd, config);
            AssertRuntimeIn(dump, v3);
            Assert.Contains("SystemdCgroup = true", dump, StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
            var backup = Assert.Single(Backups(), b => b.StartsWith(config + ".", StringComparison.Ordinal));
            Assert.Equal(original, File.ReadAllText(backup));
        }
    }

    public static TheoryData<string, string, string> Unmergeable() => new()
    {
        { "config version 1", "root = \"/var/lib/containerd\"\n[plugins.cri]\n  sandbox_image = \"pause\"\n", "version 1" },
        { "inline runtimes table", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { runc = { runtime_type = \"io.containerd.runc.v2\" } }\n", "inline table" },
        { "another wasmsharp runtime", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmsharp]\n  runtime_type = \"io.containerd.other.v1\"\n", "io.containerd.other.v1" },
        { "not TOML", "version = 2\n[plugins\nthis is not toml\n", "cannot load" },
    };

    [Theory]
    [MemberData(nameof(Unmergeable))]
    public void A_config_it_cannot_extend_safely_is_left_alone_with_the_reason(string what, string content, string reason)
    {
        var config = Path.Combine(_dir, "config.toml");
        File.WriteAllText(config, content);
        var result = Configure(config, "/usr/bin/containerd");
        Assert.True(result.ExitCode == 3, $"{what}: expected a refusal (exit 3)\n{result}");
        Assert.Contains(reason, result.Stderr, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllText(config));
        Assert.Empty(Backups());
    }

    private string FakeContainerd(string versionLine)
    {
        var fake = Path.Combine(_dir, "fake-containerd");
        File.WriteAllText(fake, $"""
            #!/bin/sh
            # --version, and `--config FILE config dump` answered by printing the file.
            case "$1" in --version) echo '{versionLine}' ;; --config) cat "$2" ;; *) exit 1 ;; esac
            """ + "\n");
        File.SetUnixFileMode(fake, (UnixFileMode)0b111_101_101);
        return fake;
    }

    // Debian 12's own /etc/containerd/config.toml names no runtime: containerd 1.x would lose runc (its default
    // runtime, so its CRI plugin would not load) once the file names ours, unless install.sh keeps it.
    [Theory]
    [MemberData(nameof(Containerds))]
    public void A_config_that_names_no_runtime_keeps_runc_as_the_default_runtime(string binDir)
    {
        var containerd = Path.Combine(binDir, "containerd");
        var config = Path.Combine(_dir, "config.toml");
        File.WriteAllText(config, """
            version = 2

            [plugins]
              [plugins."io.containerd.grpc.v1.cri"]
                [plugins."io.containerd.grpc.v1.cri".cni]
                  bin_dir = "/usr/lib/cni"
                  conf_dir = "/etc/cni/net.d"
            """ + "\n");
        var result = Configure(config, containerd);
        Assert.True(result.ExitCode == 0, result.ToString());
        var dump = Dump(containerd, config);
        // containerd 2.x shows a version 2 file migrated to version 3.
        AssertRuntimeIn(dump, v3: Major(containerd) == 2);
        Assert.Matches(@"runtimes\.runc['""]?\]", dump);
    }

    [Fact]
    public void Version_3_config_is_refused_for_containerd_1_and_written_for_containerd_2()
    {
        var v3Config = Path.Combine(_dir, "v3.toml");
        File.WriteAllText(v3Config, ExistingConfig(v3: true));
        var refused = Configure(v3Config, FakeContainerd("containerd github.com/containerd/containerd 1.7.24 abc"));
        Assert.True(refused.ExitCode == 3 && refused.Stderr.Contains("reads only version 2", StringComparison.Ordinal), refused.ToString());

        var fresh = Path.Combine(_dir, "fresh.toml");
        var written = Configure(fresh, FakeContainerd("containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6"), "--runtime-platform", "wasi/wasm");
        Assert.True(written.ExitCode == 0, written.ToString());
        var text = File.ReadAllText(fresh);
        Assert.StartsWith("version = 3\n", text);
        Assert.Contains("[plugins.'io.containerd.cri.v1.images'.runtime_platforms.wasmsharp]\n  platform = \"wasi/wasm\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Binaries_are_installed_where_asked_and_run_from_there()
    {
        Assert.True(RepoLayout.ShimPublished, $"publish the shim first ({RepoLayout.ShimDir})");
        var bin = Path.Combine(_dir, "bin");
        var result = Install("--binaries-only", "--from", RepoLayout.ShimDir, "--bin-dir", bin);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(File.Exists(Path.Combine(bin, "libwasmtime.so")));
        Assert.True(File.Exists(Path.Combine(bin, "containerd-shim-wasmsharp-grpc")), result.ToString());
        var version = ProcessRunner.Run(Path.Combine(bin, RepoLayout.ShimBinary), ["--version"]);
        Assert.True(version.ExitCode == 0 && version.Stdout.Contains("Wasmtime", StringComparison.Ordinal), version.ToString());
    }

    [Fact]
    public void Docker_and_kubernetes_snippets_name_the_runtime()
    {
        var daemon = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoLayout.Root, "packaging", "docker", "daemon.json"))).RootElement;
        Assert.Equal("io.containerd.wasmsharp.v1", daemon.GetProperty("runtimes").GetProperty("wasmsharp").GetProperty("runtimeType").GetString());
        Assert.True(daemon.GetProperty("features").GetProperty("containerd-snapshotter").GetBoolean());
        var runtimeClass = File.ReadAllText(Path.Combine(RepoLayout.Root, "packaging", "kubernetes", "runtimeclass.yaml"));
        Assert.Contains("kind: RuntimeClass", runtimeClass, StringComparison.Ordinal);
        Assert.Contains("handler: wasmsharp", runtimeClass, StringComparison.Ordinal);
    }
}

// packaging/doctor.sh against a private containerd: what is missing before install.sh configured it, and
// nothing after (containerd restarted on the changed config, as a user would).
public sealed class DoctorTests
{
    private static string Doctor => Path.Combine(RepoLayout.Root, "packaging", "doctor.sh");
    private static string Install => Path.Combine(RepoLayout.Root, "packaging", "install.sh");

    public static TheoryData<string> Containerds()
    {
        var data = new TheoryData<string> { "/usr/bin" };
        if (RepoLayout.SuiteBinDir("sid") is { } dir) data.Add(dir);
        return data;
    }

    private static string Line(ProcessResult result, string check) =>
        result.Stdout.Split('\n').FirstOrDefault(l => l.Length > 6 && l[6..].StartsWith(check, StringComparison.Ordinal)) ?? $"(no '{check}' line)";

    [Theory]
    [MemberData(nameof(Containerds))]
    public void Doctor_names_the_missing_runtime_config_and_passes_once_install_added_it(string binDir)
    {
        using var containerd = PrivateContainerd.Start("wasmsharp-doctor", binDir);
        // A cache directory others may write to: the shim would run native code anyone could plant.
        var cache = Directory.CreateDirectory(Path.Combine(containerd.BaseDir, "cache")).FullName;
        File.SetUnixFileMode(cache, (UnixFileMode)0b111_111_111);
        var before = ProcessRunner.Run(Doctor, ["--pid", containerd.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
        Assert.True(before.ExitCode == 1, before.ToString());
        Assert.Contains("2 check(s) failed", before.Stdout, StringComparison.Ordinal);
        Assert.StartsWith("OK", Line(before, "shim on PATH"));
        Assert.Contains(containerd.ShimDir, Line(before, "shim on PATH"), StringComparison.Ordinal);
        Assert.StartsWith("OK", Line(before, "libwasmtime.so"));
        Assert.StartsWith("OK", Line(before, "gRPC companion"));
        Assert.StartsWith("FAIL", Line(before, "module cache"));
        Assert.Contains($"chmod 0700 {cache}", before.Stdout, StringComparison.Ordinal);
        File.SetUnixFileMode(cache, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = Path.Combine(containerd.BaseDir, "config.toml");
        Assert.StartsWith("FAIL", Line(before, "runtime in config"));
        Assert.Contains($"install.sh --config-only --config {config}", before.Stdout, StringComparison.Ordinal);

        var install = ProcessRunner.Run(Install, ["--config-only", "--no-restart", "--config", config, "--containerd", containerd.ContainerdExe], TimeSpan.FromSeconds(60));
        Assert.True(install.ExitCode == 0, install.ToString());
        containerd.Restart();
        var after = ProcessRunner.Run(Doctor, ["--pid", containerd.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
        Assert.True(after.ExitCode == 0 && after.Stdout.Contains("all checks passed", StringComparison.Ordinal), after.ToString());
        Assert.StartsWith("OK", Line(after, "runtime in config"));
    }

    [Fact]
    public void Doctor_says_when_the_gRPC_companion_is_not_next_to_the_shim()
    {
        // The main shim and its library copied alone: what copying only containerd-shim-wasmsharp-v1 gives.
        var dir = Directory.CreateTempSubdirectory("wasmsharp-doctor-").FullName;
        try
        {
            foreach (var file in new[] { "containerd-shim-wasmsharp-v1", "libwasmtime.so" })
            {
                File.Copy(Path.Combine(RepoLayout.ShimDir, file), Path.Combine(dir, file));
                File.SetUnixFileMode(Path.Combine(dir, file), (UnixFileMode)0b111_101_101);
            }
            var fake = Path.Combine(dir, "containerd");
            File.Copy("/bin/sleep", fake);
            using var process = ProcessRunner.Start(fake, ["30"], TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["PATH"] = $"{dir}:/usr/bin:/bin" });
            var result = ProcessRunner.Run(Doctor, ["--pid", process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
            process.Kill();
            Assert.StartsWith("OK", Line(result, "shim on PATH"));
            var line = Line(result, "gRPC companion");
            Assert.StartsWith("FAIL", line);
            Assert.Contains($"{dir}/containerd-shim-wasmsharp-grpc is missing", line, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Doctor_says_when_the_shim_is_not_on_containerds_PATH()
    {
        // A process named containerd whose PATH holds no shim: what a PATH without /usr/local/bin looks like.
        var dir = Directory.CreateTempSubdirectory("wasmsharp-doctor-").FullName;
        try
        {
            var fake = Path.Combine(dir, "containerd");
            File.Copy("/bin/sleep", fake);
            using var process = ProcessRunner.Start(fake, ["30"], TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" });
            var result = ProcessRunner.Run(Doctor, ["--pid", process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
            process.Kill();
            Assert.True(result.ExitCode == 1, result.ToString());
            var line = Line(result, "shim on PATH");
            Assert.StartsWith("FAIL", line);
            Assert.Contains("PATH=/usr/bin:/bin", line, StringComparison.Ordinal);
            Assert.Contains("install.sh --binaries-only", result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

// `make deb` (packaging/deb/build-deb.sh): the package's metadata and layout, and its shim, unpacked
// (dpkg-deb -x, the machine is not changed), serving a private containerd found through /usr/bin.
public sealed class DebPackageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wasmsharp-deb-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Built once for the class: both tests look at the same package.
    private static readonly Lazy<string> Deb = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("wasmsharp-deb-out-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return BuildDebInto(dir);
    });

    private static string BuildDeb() => Deb.Value;

    private static string BuildDebInto(string outDir)
    {
        Assert.True(RepoLayout.ShimPublished, $"publish the shim first ({RepoLayout.ShimDir})");
        var build = ProcessRunner.Run(Path.Combine(RepoLayout.Root, "packaging", "deb", "build-deb.sh"),
            [RepoLayout.ShimDir, Path.GetDirectoryName(RepoLayout.ImageToolDll)!, outDir], TimeSpan.FromMinutes(2));
        Assert.True(build.ExitCode == 0, build.ToString());
        var deb = build.Stdout.Trim();
        Assert.True(File.Exists(deb), build.ToString());
        return deb;
    }

    [Fact]
    public void Package_declares_itself_and_holds_the_shim_library_tools_and_snippets()
    {
        var deb = BuildDeb();
        var info = ProcessRunner.RunChecked("dpkg-deb", ["--field", deb, "Package", "Version", "Architecture", "Depends"]).Stdout;
        Assert.Contains("Package: wasmsharp", info, StringComparison.Ordinal);
        Assert.Matches(@"Version: \d+\.\d+\.\d+", info);
        Assert.Contains("Architecture: " + ProcessRunner.RunChecked("dpkg", ["--print-architecture"]).Stdout.Trim(), info, StringComparison.Ordinal);
        Assert.Contains("containerd (>= 1.6)", info, StringComparison.Ordinal);

        var contents = ProcessRunner.RunChecked("dpkg-deb", ["--contents", deb]).Stdout;
        foreach (var path in new[]
        {
            "./usr/lib/wasmsharp/containerd-shim-wasmsharp-v1", "./usr/lib/wasmsharp/containerd-shim-wasmsharp-grpc", "./usr/lib/wasmsharp/libwasmtime.so",
            "./usr/bin/containerd-shim-wasmsharp-v1 -> ../lib/wasmsharp/containerd-shim-wasmsharp-v1",
            "./usr/bin/wasmsharp-image", "./usr/lib/wasmsharp/image-tool/wasmsharp-image.dll", "./usr/lib/wasmsharp/image-tool/Wasmsharp.WasmFormat.dll",
            "./usr/sbin/wasmsharp-doctor -> ../share/wasmsharp/doctor.sh", "./usr/share/wasmsharp/install.sh",
            "./usr/share/wasmsharp/docker/daemon.json", "./usr/share/wasmsharp/kubernetes/runtimeclass.yaml",
            "./usr/share/doc/wasmsharp/copyright",
        })
            Assert.Contains(path, contents, StringComparison.Ordinal);
        // What a user sees at `apt install`: how to wire containerd, nothing changed unless asked.
        var control = Directory.CreateTempSubdirectory("wasmsharp-deb-control-").FullName;
        try
        {
            ProcessRunner.RunChecked("dpkg-deb", ["--control", deb, control]);
            var postinst = ProcessRunner.Run("/bin/sh", [Path.Combine(control, "postinst"), "configure"]);
            Assert.True(postinst.ExitCode == 0, postinst.ToString());
            Assert.Contains("sudo /usr/share/wasmsharp/install.sh --config-only", postinst.Stdout, StringComparison.Ordinal);
            Assert.Contains("wasmsharp-doctor", postinst.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(control, recursive: true);
        }
    }

    [Fact]
    public void Unpacked_package_runs_containers_through_its_usr_bin_symlink_and_its_doctor_agrees()
    {
        var root = Path.Combine(_dir, "root");
        ProcessRunner.RunChecked("dpkg-deb", ["-x", BuildDeb(), root]);
        var bin = Path.Combine(root, "usr", "bin");
        // The private containerd puts WASMSHARP_SHIM_DIR first on its PATH: here the package's /usr/bin.
        var saved = Environment.GetEnvironmentVariable("WASMSHARP_SHIM_DIR");
        Environment.SetEnvironmentVariable("WASMSHARP_SHIM_DIR", bin);
        try
        {
            using var containerd = PrivateContainerd.Start("wasmsharp-deb");
            Images.Import(containerd, Images.BuildHello(WasmPrograms.Get(), containerd.BaseDir));
            var run = containerd.Ctr(TimeSpan.FromSeconds(30), "run", "--rm", "--runtime", RepoLayout.Runtime, Images.Hello, "deb-hello", "/hello.wasm", "from-the-package");
            Assert.True(run.ExitCode == 0 && run.Stdout.Contains("from-the-package", StringComparison.Ordinal), $"{run}\n{containerd.LogTail(30)}");

            var doctor = ProcessRunner.Run(Path.Combine(root, "usr", "sbin", "wasmsharp-doctor"),
                ["--pid", containerd.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
            Assert.Contains($"OK    shim on PATH           {bin}/containerd-shim-wasmsharp-v1", doctor.Stdout, StringComparison.Ordinal);
            Assert.Contains($"OK    libwasmtime.so         {root}/usr/lib/wasmsharp/libwasmtime.so loads", doctor.Stdout, StringComparison.Ordinal);
            Assert.Contains($"OK    gRPC companion         {root}/usr/lib/wasmsharp/containerd-shim-wasmsharp-grpc", doctor.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("WASMSHARP_SHIM_DIR", saved);
        }
    }
}

using System.Globalization;
using System.Text.RegularExpressions;
using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

[DockerSuite(DockerSuites.Docker26)]
public sealed class Docker26Tests(Docker26Fixture f) : DockerTests(f), IClassFixture<Docker26Fixture>;

[DockerSuite(DockerSuites.Docker28)]
public sealed class Docker28Tests(Docker28Fixture f) : DockerTests(f), IClassFixture<Docker28Fixture>;

// What a Docker user does with a Wasm image and our runtime, on each Docker version, against a private
// dockerd with the containerd image store; runc (busybox) in the same dockerd where a comparison means something.
public abstract partial class DockerTests(DockerFixture f)
{
    private static readonly string Runtime = "--runtime=" + RepoLayout.Runtime;

    private static IReadOnlyList<string> Lines(string text) => ContainerdFixture.Lines(text);

    // ---- images --------------------------------------------------------------------------------------

    [DockerFact]
    public void Load_of_an_OCI_layout_tarball_names_the_image_from_its_annotation()
    {
        const string name = "example.local/docker-load:1";
        var tarball = DockerImages.BuildWasm(f.Programs, f.HostDir("load"), name);
        var load = f.D("load", "-i", tarball);
        f.Check(load.ExitCode == 0 && load.Stdout.Contains($"Loaded image: {name}", StringComparison.Ordinal),
            "docker load should report the image named by io.containerd.image.name", null, load);
        try
        {
            var platform = f.D("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", name);
            f.Check(platform.ExitCode == 0 && platform.Stdout.Trim() == Images.HostPlatform, "the image should be for the host platform", null, platform);
            var run = f.D("run", "--rm", "--pull", "never", Runtime, name);
            f.Check(run.ExitCode == 0 && run.Stdout == "hello from wasm\n", "the loaded image should run its Cmd", null, run);
        }
        finally
        {
            f.D("image", "rm", name);
        }
    }

    [DockerFact]
    public void Platform_wasi_wasm_image_runs_with_platform_flag()
    {
        var platform = f.D("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", DockerImages.WasiPlatform);
        f.Check(platform.Stdout.Trim() == "wasi/wasm", "the image should be stored as wasi/wasm", null, platform);
        var run = f.D("run", "--rm", "--pull", "never", "--platform", "wasi/wasm", Runtime, DockerImages.WasiPlatform, "/hello.wasm", "x");
        f.Check(run.ExitCode == 0 && run.Stdout == "hello from wasm\nx\n", "docker run --platform wasi/wasm should run the module", null, run);
        f.Check(!run.Stderr.Contains("platform", StringComparison.Ordinal), "with --platform no platform warning", null, run);
        // Without the flag Docker runs it as well, but warns that the platform is not the host's.
        var unflagged = f.D("run", "--rm", "--pull", "never", Runtime, DockerImages.WasiPlatform);
        f.Check(unflagged.ExitCode == 0 && unflagged.Stdout == "hello from wasm\n" && unflagged.Stderr.Contains("wasi/wasm", StringComparison.Ordinal),
            "without --platform the wasi/wasm image runs with a platform warning", null, unflagged);
    }

    // ---- docker run --rm: output, exit status ----------------------------------------------------------

    [DockerFact]
    public void Run_rm_prints_stdout_and_stderr_and_leaves_nothing_behind()
    {
        var cidFile = Path.Combine(f.HostDir("rm"), "cid");
        var run = f.RunWasm(["--cidfile", cidFile], "/hello.wasm", "a", "with space");
        f.Check(run.ExitCode == 0, "exit code should be 0", null, run);
        f.Check(run.Stdout == "hello from wasm\na\nwith space\n", "stdout should be the greeting then each argument", null, run);
        f.Check(run.Stderr.Contains("hello on stderr", StringComparison.Ordinal), "the guest's stderr should reach docker's stderr", null, run);

        var id = File.ReadAllText(cidFile).Trim();
        bool Gone() =>
            !ProcFs.Processes().Any(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim", StringComparison.Ordinal) && p.HasArgPair("-id", id)) &&
            !f.Docker.Containerd.Containers().Contains(id) &&
            ProcFs.MountsUnder(f.Docker.BaseDir).All(m => !m.Contains(id, StringComparison.Ordinal));
        ContainerdFixture.Eventually(Gone, TimeSpan.FromSeconds(10));
        f.Check(Gone(), $"container {id}: shim, containerd container or mounts left after docker run --rm", id, run);
        var ps = f.D("ps", "-aq", "--no-trunc");
        f.Check(!ps.Stdout.Contains(id, StringComparison.Ordinal), "docker ps -a should not list a --rm container", id, ps);
    }

    [DockerFact]
    public void Run_rm_of_a_p2_component_prints_and_exits_0()
    {
        var run = f.RunWasm(["--env", "FROM_DOCKER=yes"], "/p2.wasm", "hello", "with space");
        var lines = Lines(run.Stdout);
        f.Check(run.ExitCode == 0, "a WASI preview 2 component should run and exit 0", null, run);
        f.Check(lines.Take(4).SequenceEqual(["argc=3", "arg[0]=/p2.wasm", "arg[1]=hello", "arg[2]=with space"]) && lines.Contains("env:FROM_DOCKER=yes"),
            "its argv and environment should be the container's", null, run);
    }

    [DockerFact]
    public void Every_line_of_a_long_output_arrives_in_order()
    {
        // The shim closes the output FIFOs when the guest ends (Docker waits for that before deleting
        // the task): nothing may be lost on the way, in `docker run` or in `docker logs`.
        const int n = 3000;
        var expectedOut = Enumerable.Range(1, n).Select(i => $"out {i}").ToList();
        var expectedErr = Enumerable.Range(1, n).Select(i => $"err {i}").ToList();
        var run = f.RunWasm([], "/output.wasm", n.ToString(CultureInfo.InvariantCulture));
        f.Check(run.ExitCode == 0 && Lines(run.Stdout).SequenceEqual(expectedOut) && Lines(run.Stderr).SequenceEqual(expectedErr),
            $"docker run should show all {n} lines of each stream in order", null, run);

        var name = f.NewName("logs");
        try
        {
            var detached = f.D("run", "-d", "--name", name, "--pull", "never", Runtime, DockerImages.Wasm, "/output.wasm", n.ToString(CultureInfo.InvariantCulture));
            f.Check(detached.ExitCode == 0, "docker run -d", name, detached);
            var wait = f.D("wait", name);
            var logs = f.D("logs", name);
            f.Check(wait.Stdout.Trim() == "0" && Lines(logs.Stdout).SequenceEqual(expectedOut) && Lines(logs.Stderr).SequenceEqual(expectedErr),
                $"docker logs should hold all {n} lines of each stream in order", name, wait, logs);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Concurrent_runs_each_report_their_own_exit_code()
    {
        var runs = Enumerable.Range(1, 4)
            .Select(code => (Code: code, Run: f.Docker.StartDocker(DockerFixture.RunTimeout,
                "run", "--rm", "--pull", "never", Runtime, DockerImages.Wasm, "/exit.wasm", code.ToString(CultureInfo.InvariantCulture))))
            .ToList();
        try
        {
            foreach (var (code, running) in runs)
            {
                var result = running.Wait();
                f.Check(result.ExitCode == code, $"concurrent docker run should exit {code}", null, result);
            }
        }
        finally
        {
            foreach (var (_, running) in runs) running.Dispose();
        }
    }

    [DockerFact]
    public void Exit_codes_match_runc()
    {
        foreach (var code in new[] { 0, 3, 42, 255 })
        {
            var wasm = f.RunWasm([], "/exit.wasm", code.ToString(CultureInfo.InvariantCulture));
            var runc = f.RunRunc([], "sh", "-c", $"exit {code}");
            f.Check(runc.ExitCode == code, $"runc: exit {code}", null, runc);
            f.Check(wasm.ExitCode == code, $"docker run should exit with the guest's status {code}", null, wasm, runc);
        }
    }

    [DockerFact]
    public void Trap_exits_134_like_an_abort()
    {
        var wasm = f.RunWasm([], "/trap.wasm");
        // --init: as PID 1 of its namespace, sh would ignore SIGABRT.
        var runc = f.RunRunc(["--init"], "sh", "-c", "kill -ABRT $$");
        f.Check(wasm.ExitCode == 134 && wasm.Stdout == "about to trap\n", "a trap should end the container with 134 after its output", null, wasm);
        f.Check(runc.ExitCode == wasm.ExitCode, "runc: SIGABRT gives the same status", null, wasm, runc);
        f.Check(wasm.Stderr.Contains("Error: wasm trap: wasm `unreachable` instruction executed", StringComparison.Ordinal), "docker shows why, from the container's stderr", null, wasm);
    }

    [DockerFact]
    public void Interactive_stdin_reaches_the_guest_and_tty_makes_a_terminal()
    {
        var cat = f.Docker.Docker(DockerFixture.RunTimeout, "run", "--rm", "--pull", "never", "-i", Runtime, DockerImages.Wasm, "/cat.wasm");
        f.Check(cat.ExitCode == 0 && cat.Stdout == "", "docker run -i with an empty stdin: end-of-file at once", null, cat);
        var piped = f.Docker.Pipe("line one\nline two\n", DockerFixture.RunTimeout, "run", "--rm", "--pull", "never", "-i", Runtime, DockerImages.Wasm, "/cat.wasm");
        f.Check(piped.ExitCode == 0 && piped.Stdout == "line one\nline two\n", "docker run -i should feed stdin to the guest", null, piped);

        // The guest is on a terminal (isatty), and its output passes the pty's line discipline (\n → \r\n).
        var tty = f.RunWasm(["-t"], "/tty.wasm");
        f.Check(tty.ExitCode == 0 && tty.Stdout == "stdin tty=1 stdout tty=1 stderr tty=1\r\n", "docker run -t should put the guest on a terminal", null, tty);
    }

    // ---- environment, mounts, working directory ------------------------------------------------------

    [DockerFact]
    public void Env_is_the_containers_and_nothing_of_the_host()
    {
        var name = f.NewName("env");
        var run = f.D("run", "--name", name, "--pull", "never", Runtime, "-e", "FOO=bar", "-e", "EMPTY=", DockerImages.Wasm, "/env.wasm");
        try
        {
            f.Check(run.ExitCode == 0, "env should run", name, run);
            var lines = Lines(run.Stdout);
            var hostname = f.Inspect(name, "{{.Config.Hostname}}");
            f.Check(lines.Contains("FOO=bar") && lines.Contains("EMPTY="), "-e variables should reach the guest", name, run);
            f.Check(lines.Contains($"HOSTNAME={hostname}"), "Docker's HOSTNAME should reach the guest", name, run);
            f.Check(lines.Any(l => l.StartsWith("PATH=", StringComparison.Ordinal)), "Docker's default PATH should reach the guest", name, run);
            f.Check(!run.Stdout.Contains(PrivateContainerd.HostEnvMarker, StringComparison.Ordinal), "the shim's environment must not leak into the guest", name, run);
            f.Check(!lines.Any(l => l.StartsWith("PWD=", StringComparison.Ordinal)), "no PWD without a working directory", name, run);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Bind_mount_is_writable_and_ro_is_not()
    {
        var host = f.HostDir(f.NewName("bind"));
        File.WriteAllText(Path.Combine(host, "existing"), "from the host");

        var write = f.RunWasm(["-v", $"{host}:/data"], "/fs.wasm", "write", "/data/out", "from wasm");
        f.Check(write.ExitCode == 0 && File.ReadAllText(Path.Combine(host, "out")) == "from wasm", "-v host:/data should be writable", null, write);

        var read = f.RunWasm(["-v", $"{host}:/data:ro"], "/fs.wasm", "read", "/data/existing");
        f.Check(read.ExitCode == 0 && read.Stdout == "from the host", ":ro mount should be readable", null, read);
        var denied = f.RunWasm(["-v", $"{host}:/data:ro"], "/fs.wasm", "write", "/data/denied", "x");
        f.Check(denied.ExitCode == 1 && !File.Exists(Path.Combine(host, "denied")), ":ro mount must not be writable", null, denied);
        var runc = f.RunRunc(["-v", $"{host}:/data:ro"], "sh", "-c", "echo x > /data/denied");
        f.Check(runc.ExitCode != 0 && !File.Exists(Path.Combine(host, "denied")), "runc: :ro mount is not writable either", null, runc);
    }

    // The files Docker mounts into every container (/etc/hostname, /etc/hosts, /etc/resolv.conf), a -v of a single
    // file and the --read-only --tmpfs /tmp idiom: what the guest sees is what runc's process sees.
    [DockerFact]
    public void Dockers_files_a_file_volume_and_a_tmpfs_are_there_as_with_runc()
    {
        var host = f.HostDir(f.NewName("files"));
        var config = Path.Combine(host, "app.conf");
        File.WriteAllText(config, "listen=8080");
        string[] options = ["--hostname", "wasmhost", "-v", $"{config}:/etc/app.conf:ro"];
        var hostname = f.RunWasm(options, "/fs.wasm", "read", "/etc/hostname");
        var runcHostname = f.RunRunc(options, "cat", "/etc/hostname");
        f.Check(hostname.ExitCode == 0 && hostname.Stdout == "wasmhost\n" && hostname.Stdout == runcHostname.Stdout,
            $"/etc/hostname is Docker's, as runc's process reads it ({runcHostname.Stdout.Trim()})", null, hostname, runcHostname);
        var hosts = f.RunWasm(options, "/fs.wasm", "read", "/etc/hosts");
        f.Check(hosts.ExitCode == 0 && Lines(hosts.Stdout).Any(l => l.EndsWith("wasmhost", StringComparison.Ordinal)), "/etc/hosts is Docker's, naming the container", null, hosts);
        var file = f.RunWasm(options, "/fs.wasm", "read", "/etc/app.conf");
        f.Check(file.ExitCode == 0 && file.Stdout == "listen=8080", "-v FILE:PATH:ro is there", null, file);
        var denied = f.RunWasm(options, "/fs.wasm", "write", "/etc/app.conf", "changed");
        f.Check(denied.ExitCode == 1 && File.ReadAllText(config) == "listen=8080", "and read-only", null, denied);

        var tmp = f.RunWasm(["--read-only", "--tmpfs", "/tmp"], "/fs.wasm", "write", "/tmp/scratch", "x");
        var runcTmp = f.RunRunc(["--read-only", "--tmpfs", "/tmp"], "sh", "-c", "echo x > /tmp/scratch");
        f.Check(tmp.ExitCode == 0 && runcTmp.ExitCode == 0, "--read-only --tmpfs /tmp: /tmp is writable", null, tmp, runcTmp);
    }

    [DockerFact]
    public void Read_only_rootfs_refuses_writes()
    {
        var writable = f.RunWasm([], "/fs.wasm", "write", "/created", "x");
        f.Check(writable.ExitCode == 0, "the rootfs should be writable by default", null, writable);
        var readOnly = f.RunWasm(["--read-only"], "/fs.wasm", "write", "/created", "x");
        f.Check(readOnly.ExitCode == 1 && readOnly.Stderr.Contains("open /created", StringComparison.Ordinal),
            "--read-only should refuse a write to the rootfs", null, readOnly);
        var runc = f.RunRunc(["--read-only"], "sh", "-c", "echo x > /created");
        f.Check(runc.ExitCode != 0, "runc: --read-only refuses it too", null, runc);
    }

    [DockerFact]
    public void Workdir_is_exported_as_PWD_and_a_guest_that_changes_to_it_writes_there()
    {
        var host = f.HostDir(f.NewName("workdir"));
        var env = f.RunWasm(["-w", "/data", "-v", $"{host}:/data"], "/env.wasm");
        f.Check(env.ExitCode == 0 && Lines(env.Stdout).Contains("PWD=/data"), "-w /data should be the guest's PWD", null, env);

        // wasi-libc starts in "/"; a program that honours PWD (chdir) writes relative paths into the workdir.
        var write = f.RunWasm(["-w", "/data", "-v", $"{host}:/data"], "/fs.wasm", "pwd", "write", "relative.txt", "here");
        f.Check(write.ExitCode == 0 && File.ReadAllText(Path.Combine(host, "relative.txt")) == "here",
            "a relative path after chdir($PWD) should land in the -w directory", null, write);

        // Docker creates a missing workdir in the container's rootfs, as for runc.
        var created = f.RunWasm(["-w", "/new/dir"], "/fs.wasm", "pwd", "write", "f", "x");
        f.Check(created.ExitCode == 0, "-w of a directory missing from the image should work", null, created);
    }

    // A missing program is Docker's 127 on both sides: Docker turns a create error that says "no such file or
    // directory" into 127 (125 for any other create error).
    [Fact]
    public void A_missing_entrypoint_exits_127_as_with_runc()
    {
        var wasm = f.RunWasm(["--entrypoint", "/nonexistent.wasm"]);
        var runc = f.RunRunc(["--entrypoint", "/nonexistent"]);
        f.Check(runc.ExitCode == 127 && wasm.ExitCode == 127 && wasm.Stderr.Contains("/nonexistent.wasm", StringComparison.Ordinal),
            $"docker run of a missing entrypoint: runc {runc.ExitCode}, wasm {wasm.ExitCode} (both should be 127, naming the program)", null, wasm, runc);
    }

    // ---- detached containers: logs, stop, kill, wait, inspect, rm -f ---------------------------------

    private string StartDetached(string name, params string[] args) => RunDetachedWith(name, [], args);

    private record State(string Status, bool Running, int Pid, int ExitCode, bool Finished);

    private State InspectState(string name)
    {
        var fields = f.Inspect(name, "{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}} {{.State.FinishedAt}}").Split(' ');
        return new State(fields[0], fields[1] == "true", int.Parse(fields[2], CultureInfo.InvariantCulture),
            int.Parse(fields[3], CultureInfo.InvariantCulture), !fields[4].StartsWith("0001-", StringComparison.Ordinal));
    }

    [DockerFact]
    public void Detached_container_is_running_logs_and_stops_with_143()
    {
        var name = f.NewName("stop");
        try
        {
            StartDetached(name, "/sleep.wasm", "60");
            var state = InspectState(name);
            f.Check(state is { Status: "running", Running: true, ExitCode: 0 } && state.Pid > 0, $"inspect should show it running with a pid: {state}", name);
            ProcessResult logs = null!;
            ContainerdFixture.Eventually(() => (logs = f.D("logs", name)).Stdout.Contains("sleeping 60 s", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
            f.Check(logs.Stdout == "sleeping 60 s\n", "docker logs should show the guest's output", name, logs);

            var stop = f.D("stop", "-t", "2", name);
            f.Check(stop.ExitCode == 0, "docker stop should succeed", name, stop);
            state = InspectState(name);
            f.Check(state is { Status: "exited", Running: false, Pid: 0, ExitCode: 143, Finished: true },
                $"after docker stop a guest without handlers dies of SIGTERM: 143, not running, no pid; got {state}", name, stop);
            var wait = f.D("wait", name);
            f.Check(wait.ExitCode == 0 && wait.Stdout.Trim() == "143", "docker wait should print 143", name, wait);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Restart_runs_the_module_again()
    {
        var name = f.NewName("restart");
        try
        {
            StartDetached(name, "/sleep.wasm", "60");
            var before = InspectState(name);
            var restart = f.D("restart", "-t", "2", name);
            f.Check(restart.ExitCode == 0, "docker restart should succeed", name, restart);
            var after = InspectState(name);
            f.Check(after is { Status: "running", Running: true } && after.Pid > 0 && after.Pid != before.Pid,
                $"after restart it should run again with a new pid: before {before}, after {after}", name, restart);
            ProcessResult logs = null!;
            ContainerdFixture.Eventually(() => Lines((logs = f.D("logs", name)).Stdout).Count == 2, TimeSpan.FromSeconds(10));
            f.Check(logs.Stdout == "sleeping 60 s\nsleeping 60 s\n", "docker logs should hold both runs' output", name, logs);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Kill_ends_a_sleeping_or_spinning_guest_with_137()
    {
        foreach (var mode in new[] { "60", "spin" })
        {
            var name = f.NewName("kill");
            try
            {
                StartDetached(name, "/sleep.wasm", mode);
                var waiter = f.Docker.StartDocker(DockerFixture.RunTimeout, "wait", name);
                var kill = f.D("kill", name);
                f.Check(kill.ExitCode == 0, "docker kill should succeed", name, kill);
                var wait = waiter.Wait();
                f.Check(wait.ExitCode == 0 && wait.Stdout.Trim() == "137", $"docker wait (started before the kill) should print 137 for sleep {mode}", name, wait, kill);
                var state = InspectState(name);
                f.Check(state is { Status: "exited", ExitCode: 137, Running: false }, $"inspect after kill: {state}", name, kill);
            }
            finally
            {
                f.Remove(name);
            }
        }
    }

    [DockerFact]
    public void Kill_with_a_signal_reports_128_plus_the_signal()
    {
        var name = f.NewName("kill-int");
        try
        {
            StartDetached(name, "/sleep.wasm", "60");
            var kill = f.D("kill", "-s", "INT", name);
            f.Check(kill.ExitCode == 0, "docker kill -s INT should succeed", name, kill);
            var wait = f.D("wait", name);
            f.Check(wait.Stdout.Trim() == "130", "SIGINT ends a guest without handlers: 130", name, wait);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Wait_returns_the_exit_code_of_a_container_that_ends_by_itself()
    {
        var name = f.NewName("wait");
        try
        {
            StartDetached(name, "/exit.wasm", "3");
            var wait = f.D("wait", name);
            f.Check(wait.ExitCode == 0 && wait.Stdout.Trim() == "3", "docker wait should print 3", name, wait);
            var state = InspectState(name);
            f.Check(state is { Status: "exited", Running: false, Pid: 0, ExitCode: 3, Finished: true }, $"inspect after exit: {state}", name, wait);
            var restart = f.D("start", "-a", name);
            f.Check(restart.ExitCode == 3, "docker start -a of the stopped container runs it again", name, restart);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Rm_force_removes_a_running_container_and_its_task()
    {
        var name = f.NewName("rmf");
        var id = StartDetached(name, "/sleep.wasm", "spin");
        var rm = f.D("rm", "-f", name);
        f.Check(rm.ExitCode == 0, "docker rm -f should succeed", name, rm);
        var inspect = f.D("inspect", name);
        f.Check(inspect.ExitCode != 0, "the container should be gone", name, rm, inspect);
        ContainerdFixture.Eventually(() => f.Docker.Containerd.Task(id) is null && !f.Docker.Containerd.Containers().Contains(id), TimeSpan.FromSeconds(10));
        f.Check(f.Docker.Containerd.Task(id) is null, "containerd should have no task left", id, rm);
        f.Check(!f.Docker.Containerd.Containers().Contains(id), "containerd should have no container left", id, rm);
        bool ShimLeft() => ProcFs.Processes().Any(p => p.Args.Count > 0 && p.Args[0].Contains("containerd-shim", StringComparison.Ordinal) && p.HasArgPair("-id", id));
        ContainerdFixture.Eventually(() => !ShimLeft(), TimeSpan.FromSeconds(10));
        f.Check(!ShimLeft(), "the container's shim should have exited", id, rm);
    }

    [DockerFact]
    public void Pause_and_unpause_show_in_inspect_and_the_container_still_stops()
    {
        var name = f.NewName("pause");
        try
        {
            StartDetached(name, "/sleep.wasm", "60");
            var pause = f.D("pause", name);
            f.Check(pause.ExitCode == 0, "docker pause should succeed", name, pause);
            var paused = f.Inspect(name, "{{.State.Status}} {{.State.Paused}}");
            f.Check(paused == "paused true", $"inspect should show it paused: {paused}", name, pause);
            var unpause = f.D("unpause", name);
            f.Check(unpause.ExitCode == 0, "docker unpause should succeed", name, unpause);
            var running = f.Inspect(name, "{{.State.Status}} {{.State.Paused}}");
            f.Check(running == "running false", $"inspect should show it running again: {running}", name, unpause);
            var stop = f.D("stop", "-t", "2", name);
            var code = f.Inspect(name, "{{.State.ExitCode}}");
            f.Check(stop.ExitCode == 0 && code == "143", $"an unpaused guest still stops on SIGTERM: {code}", name, stop);
        }
        finally
        {
            f.Remove(name);
        }
    }

    // ---- docker exec ---------------------------------------------------------------------------------

    [DockerFact]
    public void Exec_runs_another_module_in_the_container()
    {
        var name = f.NewName("exec");
        try
        {
            var run = f.D("run", "-d", "--name", name, "--pull", "never", Runtime, "-e", "FROM_RUN=1", DockerImages.Wasm, "/sleep.wasm", "60");
            f.Check(run.ExitCode == 0, "docker run -d", name, run);

            var hello = f.D("exec", name, "/hello.wasm", "x");
            f.Check(hello.ExitCode == 0 && hello.Stdout == "hello from wasm\nx\n", "docker exec should run the module and show its output", name, hello);
            var exit = f.D("exec", name, "/exit.wasm", "5");
            f.Check(exit.ExitCode == 5, "docker exec should exit with the exec's status", name, exit);
            var env = f.D("exec", "-e", "FROM_EXEC=2", "-w", "/data", name, "/env.wasm");
            var lines = Lines(env.Stdout);
            f.Check(env.ExitCode == 0 && lines.Contains("FROM_RUN=1") && lines.Contains("FROM_EXEC=2") && lines.Contains("PWD=/data"),
                "the exec should see the container's env, its own -e and -w", name, env);
            var piped = f.Docker.Pipe("to exec\n", DockerFixture.RunTimeout, "exec", "-i", name, "/cat.wasm");
            f.Check(piped.ExitCode == 0 && piped.Stdout == "to exec\n", "docker exec -i should feed stdin", name, piped);
            var tty = f.D("exec", "-t", name, "/tty.wasm");
            f.Check(tty.ExitCode == 0 && tty.Stdout.EndsWith("\r\n", StringComparison.Ordinal), "docker exec -t should go through a pty (\\r\\n)", name, tty);

            var state = InspectState(name);
            f.Check(state is { Running: true }, "execs must not disturb the container", name);
            f.D("kill", name);
            f.D("wait", name);
            var dead = f.D("exec", name, "/hello.wasm");
            f.Check(dead.ExitCode != 0 && dead.Stderr.Contains("is not running", StringComparison.Ordinal),
                "docker exec in a stopped container should be refused", name, dead);
        }
        finally
        {
            f.Remove(name);
        }
    }

    // ---- configuration -------------------------------------------------------------------------------

    [DockerFact]
    public void Daemon_json_runtime_name_selects_the_shim()
    {
        var info = f.D("info", "--format", "{{json .Runtimes}}");
        f.Check(info.Stdout.Contains($"\"{PrivateDocker.RuntimeAlias}\"", StringComparison.Ordinal), "docker info should list the daemon.json runtime", null, info);
        var name = f.NewName("alias");
        try
        {
            var run = f.D("run", "--name", name, "--pull", "never", "--runtime", PrivateDocker.RuntimeAlias, DockerImages.Wasm, "/exit.wasm", "7");
            f.Check(run.ExitCode == 7, "--runtime=wasmsharp should run the module", name, run);
            var runtime = f.Inspect(name, "{{.HostConfig.Runtime}}");
            f.Check(runtime == PrivateDocker.RuntimeAlias, $"inspect should name the runtime: {runtime}", name, run);
        }
        finally
        {
            f.Remove(name);
        }
    }

    [DockerFact]
    public void Init_flag_runs_the_module_without_the_native_init()
    {
        // --init wraps the command in Docker's tini, bind-mounted at /sbin/docker-init; a Wasm guest needs none.
        var run = f.RunWasm(["--init"], "/hello.wasm", "a");
        f.Check(run.ExitCode == 0 && run.Stdout == "hello from wasm\na\n", "docker run --init should run the module with its own argv", null, run);
        var exit = f.RunWasm(["--init"], "/exit.wasm", "4");
        f.Check(exit.ExitCode == 4, "and report its exit code", null, exit);
    }

    [DockerFact]
    public void Runc_and_the_wasm_runtime_share_one_dockerd()
    {
        var runc = f.RunRunc([], "echo", "from runc");
        f.Check(runc.ExitCode == 0 && runc.Stdout == "from runc\n", "runc busybox should work in the same dockerd", null, runc);
        var wasm = f.RunWasm([], "/hello.wasm");
        f.Check(wasm.ExitCode == 0 && wasm.Stdout == "hello from wasm\n", "and so should the wasm runtime", null, wasm);
        // A native binary under our runtime is run by runc, from the same shim.
        var native = f.D("run", "--rm", "--pull", "never", Runtime, Images.Busybox, "/bin/busybox", "echo", "native");
        f.Check(native.ExitCode == 0 && native.Stdout == "native\n", "a native binary under the wasm runtime should run through runc", null, native);
        var text = f.RunWasm([], "/not-wasm.txt");
        f.Check(text.ExitCode != 0 && text.Stderr.Contains("not a WebAssembly module", StringComparison.Ordinal),
            "a file that is neither Wasm nor native should fail clearly", null, text);
    }

    [DockerFact]
    public void Stats_reports_the_guests_memory_against_its_limit()
    {
        var name = f.NewName("stats");
        try
        {
            var run = f.D(["run", "-d", "--name", name, "--memory", "64m", "--pull", "never", Runtime, DockerImages.Wasm, "/alloc.wasm", "24", "60"]);
            f.Check(run.ExitCode == 0, "docker run -d --memory 64m should start the container", name, run);
            var allocated = ContainerdFixture.Eventually(() => f.D("logs", name).Stdout.Contains("allocated 24 MiB", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
            f.Check(allocated, "the guest should report its 24 MiB", name, f.D("logs", name));
            var stats = f.D("stats", "--no-stream", "--format", "{{.MemUsage}}", name);
            // e.g. "45.2MiB / 64MiB"
            var match = Regex.Match(stats.Stdout, @"^([0-9.]+)([KMG]i?B|B)\s*/\s*([0-9.]+)([KMG]i?B)");
            double MiB(string value, string unit) => double.Parse(value, CultureInfo.InvariantCulture) * unit switch
            {
                "GiB" or "GB" => 1024, "MiB" or "MB" => 1, "KiB" or "kB" or "KB" => 1.0 / 1024, _ => 1.0 / (1024 * 1024),
            };
            f.Check(stats.ExitCode == 0 && match.Success, $"docker stats should print usage / limit: {stats.Stdout}", name, stats);
            var usage = MiB(match.Groups[1].Value, match.Groups[2].Value);
            var limit = MiB(match.Groups[3].Value, match.Groups[4].Value);
            f.Check(usage >= 24 && limit == 64, $"docker stats should show at least the guest's 24 MiB against its 64 MiB limit: {stats.Stdout}", name, stats);
        }
        finally
        {
            f.Remove(name);
        }
    }
}

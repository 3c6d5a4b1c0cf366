using System.Runtime.InteropServices;

namespace Wasmsharp.Integration;

// The images the suite runs, built with our own image tool (its real command line) and imported with ctr.
public static class Images
{
    public const string WasmTests = "example.local/wasm-tests:1";
    public const string Busybox = "example.local/busybox:1";
    public const string Hello = "example.local/hello:1";
    // The rootfs form with a component as its entrypoint: /p2.wasm alone, `hello` as its cmd.
    public const string Component = "example.local/p2:1";
    public const string NativeHttpd = "example.local/httpd-native:1";
    // The pods' sandbox ("pause") image of a CRI containerd: no registry is reachable for registry.k8s.io/pause.
    public const string Pause = "example.local/pause:1";

    // Busybox applets linked in the runc image (wget, ip, hostname: a pod's sidecar and network checks).
    private static readonly string[] BusyboxApplets = ["sh", "echo", "sleep", "cat", "true", "false", "env", "ls", "wget", "ip", "hostname"];

    // The host's platform, so containerd unpacks it (linux/amd64 on the machines this runs on).
    public static string HostPlatform => "linux/" + (RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        var other => other.ToString().ToLowerInvariant(),
    });

    public static ProcessResult RunImageTool(IEnumerable<string> args) =>
        ProcessRunner.Run("dotnet", [RepoLayout.ImageToolDll, .. args], TimeSpan.FromSeconds(60));

    private static string Build(string outputDir, string name, IEnumerable<string> args)
    {
        var output = Path.Combine(outputDir, name.Replace('/', '_').Replace(':', '_') + ".tar");
        var result = RunImageTool(["build", "--name", name, "--output", output, "--platform", HostPlatform, .. args]);
        if (result.ExitCode != 0) throw new InvalidOperationException($"building {name} failed:\n{result}");
        return output;
    }

    // Every test program (modules and components) at /NAME.wasm, a text file that is not a module, and an empty /data mount point.
    public static string BuildWasmTests(WasmPrograms programs, string outputDir)
    {
        var empty = Directory.CreateDirectory(Path.Combine(outputDir, "empty-dir")).FullName;
        var notWasm = Path.Combine(outputDir, "not-wasm.txt");
        File.WriteAllText(notWasm, "this is text, not a WebAssembly module\n");
        var startTraps = Path.Combine(outputDir, "start-traps.wasm");
        File.WriteAllBytes(startTraps, StartTraps);
        var startLoops = Path.Combine(outputDir, "start-loops.wasm");
        File.WriteAllBytes(startLoops, StartLoops);
        var args = new List<string> { "--file", $"{notWasm}:/not-wasm.txt", "--file", $"{empty}:/data", "--file", $"{startTraps}:/start-traps.wasm",
            "--file", $"{startLoops}:/start-loops.wasm" };
        foreach (var (name, path) in programs.Everything)
            args.AddRange(["--file", $"{path}:/{name}.wasm"]);
        args.AddRange(["--entrypoint", "/hello.wasm"]);
        return Build(outputDir, WasmTests, args);
    }

    // A module whose start function traps, so instantiating it (at create) fails with Wasmtime's multi-line trap
    // text: (module (func $boom unreachable) (start $boom) (memory (export "memory") 1) (func (export "_start"))).
    private static readonly byte[] StartTraps =
    [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,             // type: () -> ()
        0x03, 0x03, 0x02, 0x00, 0x00,                   // two functions of it
        0x05, 0x03, 0x01, 0x00, 0x01,                   // one page of memory
        0x07, 0x13, 0x02,                               // exports "memory", "_start"
        0x06, (byte)'m', (byte)'e', (byte)'m', (byte)'o', (byte)'r', (byte)'y', 0x02, 0x00,
        0x06, (byte)'_', (byte)'s', (byte)'t', (byte)'a', (byte)'r', (byte)'t', 0x00, 0x01,
        0x08, 0x01, 0x00,                               // start: function 0
        0x0a, 0x08, 0x02, 0x03, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x0b, // code: unreachable; nothing
    ];

    // The same with a start function that never returns: (func $spin (loop $l (br $l))) in place of $boom.
    private static readonly byte[] StartLoops =
    [
        .. StartTraps[..^10],
        0x0a, 0x0c, 0x02, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, 0x02, 0x00, 0x0b, // code: loop br 0 end; nothing
    ];

    // The demo image: just the greeting program as the entrypoint.
    public static string BuildHello(WasmPrograms programs, string outputDir) =>
        Build(outputDir, Hello, ["--file", $"{programs.Path("hello")}:/hello.wasm", "--entrypoint", "/hello.wasm"]);

    public static string BuildComponent(WasmPrograms programs, string outputDir) =>
        Build(outputDir, Component, ["--file", $"{programs.Path("p2")}:/p2.wasm", "--entrypoint", "/p2.wasm", "--cmd", "hello"]);

    // Debian's static busybox with a few applet links: the runc side of every comparison.
    public static string BuildBusybox(string outputDir) => Build(outputDir, Busybox, [.. BusyboxFiles(), "--cmd", "/bin/sh"]);

    // The same busybox sleeping for ever as the sandbox image: like pause, it only holds the pod's namespaces.
    public static string BuildPause(string outputDir) =>
        Build(outputDir, Pause, [.. BusyboxFiles(), "--entrypoint", "/bin/sleep", "--entrypoint", "inf"]);

    private static List<string> BusyboxFiles()
    {
        const string busybox = "/bin/busybox";
        if (!File.Exists(busybox))
            throw new InvalidOperationException($"{busybox} not found: apt-get install -y busybox-static");
        var args = new List<string> { "--file", $"{busybox}:/bin/busybox" };
        foreach (var applet in BusyboxApplets) args.AddRange(["--symlink", $"/bin/{applet}:busybox"]);
        args.AddRange(["--env", "PATH=/bin"]);
        return args;
    }

    // integration/programs/httpd.c built natively (static, gcc -O2): the runc side of the HTTP benchmark.
    public static string BuildNativeHttpd(string outputDir) => BuildNative(outputDir, "httpd", NativeHttpd);

    // integration/programs/compute.c built natively: the runc side of the compute benchmark.
    public const string NativeCompute = "example.local/compute-native:1";
    public static string BuildNativeCompute(string outputDir) => BuildNative(outputDir, "compute", NativeCompute);

    // integration/programs/PROGRAM.c built natively (static, gcc -O2) into an image of its own, at /PROGRAM.
    private static string BuildNative(string outputDir, string program, string image)
    {
        var binary = Path.Combine(outputDir, program + "-native");
        ProcessRunner.RunChecked("gcc", ["-static", "-O2", "-Wall", "-Werror", "-o", binary, Path.Combine(RepoLayout.ProgramsDir, program + ".c")], TimeSpan.FromSeconds(60));
        return Build(outputDir, image, ["--file", $"{binary}:/{program}", "--entrypoint", $"/{program}"]);
    }

    // Into the containerd's namespace, or another one (CRI's images live in k8s.io: PrivateContainerd.CriNamespace).
    public static void Import(PrivateContainerd containerd, string tarball, string? ns = null)
    {
        var result = ns is null
            ? containerd.Ctr(TimeSpan.FromSeconds(60), "images", "import", tarball)
            : ProcessRunner.Run(containerd.CtrExe, ["-a", containerd.Address, "-n", ns, "images", "import", tarball], TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"importing {tarball} failed:\n{result}\n{containerd.LogTail()}");
    }
}

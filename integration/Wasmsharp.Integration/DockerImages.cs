namespace Wasmsharp.Integration;

// The images the Docker suite loads, built with our image tool like the ctr suite's, but with the module
// as Cmd (not Entrypoint) so `docker run IMAGE /exit.wasm 3` replaces it as a Docker user expects.
public static class DockerImages
{
    public const string Wasm = "example.local/docker-wasm:1";
    // Built for platform wasi/wasm: runs only with `docker run --platform wasi/wasm`.
    public const string WasiPlatform = "example.local/docker-wasi:1";

    private static string Build(string outputDir, string name, string platform, IEnumerable<string> args)
    {
        var output = Path.Combine(outputDir, name.Replace('/', '_').Replace(':', '_') + ".tar");
        var result = Images.RunImageTool(["build", "--name", name, "--output", output, "--platform", platform, .. args]);
        if (result.ExitCode != 0) throw new InvalidOperationException($"building {name} failed:\n{result}");
        return output;
    }

    // Every test program (modules and components) at /NAME.wasm, a text file that is not a module, and an empty
    // /data; runs /hello.wasm by default.
    public static string BuildWasm(WasmPrograms programs, string outputDir, string name = Wasm)
    {
        var empty = Directory.CreateDirectory(Path.Combine(outputDir, "empty-dir")).FullName;
        var notWasm = Path.Combine(outputDir, "not-wasm.txt");
        File.WriteAllText(notWasm, "this is text, not a WebAssembly module\n");
        var args = new List<string> { "--file", $"{empty}:/data", "--file", $"{notWasm}:/not-wasm.txt" };
        foreach (var (program, path) in programs.Everything)
            args.AddRange(["--file", $"{path}:/{program}.wasm"]);
        args.AddRange(["--cmd", "/hello.wasm"]);
        return Build(outputDir, name, Images.HostPlatform, args);
    }

    public static string BuildWasiPlatform(WasmPrograms programs, string outputDir) =>
        Build(outputDir, WasiPlatform, "wasi/wasm", ["--file", $"{programs.Path("hello")}:/hello.wasm", "--cmd", "/hello.wasm"]);
}

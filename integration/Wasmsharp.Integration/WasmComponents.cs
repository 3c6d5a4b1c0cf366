namespace Wasmsharp.Integration;

/// <summary>
/// Builds the WASI preview 2 test components from integration/programs/p2/*.c: clang-16 compiles against Debian
/// 13's wasm32-wasip2 wasi-libc, wasm-ld-16 links a core module, jco (its preview 1 command adapter) makes it a
/// component exporting wasi:cli/run. The sysroot and jco come from integration/scripts/fetch-wasip2.sh (`make
/// wasip2`, part of `make runtimes`) in out/wasip2.
/// </summary>
/// <remarks>
/// One file serves two projects: the integration harness compiles it, and the Wasm unit tests link it as a source
/// file (Compile Include) rather than referencing the harness, which would make `make unit-test` need the CRI API
/// definitions, the image tool and gRPC. So it uses nothing but the BCL.
/// </remarks>
public static class WasmComponents
{
    public static string SourcesDir(string repoRoot) => Path.Combine(repoRoot, "integration", "programs", "p2");

    /// <summary>Every p2 source (C, or a component in the text format) as a component NAME.wasm in
    /// <paramref name="outputDir"/>, by name.</summary>
    public static IReadOnlyDictionary<string, string> BuildAll(string repoRoot, string outputDir) =>
        Directory.GetFiles(SourcesDir(repoRoot), "*.c").Concat(Directory.GetFiles(SourcesDir(repoRoot), "*.wat")).Order(StringComparer.Ordinal)
            .ToDictionary(c => Path.GetFileNameWithoutExtension(c), c => Build(repoRoot, c, outputDir));

    /// <summary>The component of one source, NAME.wasm in <paramref name="outputDir"/>: a C program compiled and
    /// adapted, or a .wat component assembled as it is.</summary>
    public static string Build(string repoRoot, string source, string outputDir)
    {
        var wasip2 = Path.Combine(repoRoot, "out", "wasip2");
        var sysroot = Path.Combine(wasip2, "sysroot", "usr");
        var jco = Path.Combine(wasip2, "jco", "node_modules", ".bin", "jco");
        if (!File.Exists(Path.Combine(sysroot, "lib", "wasm32-wasip2", "crt1-command.o")) || !File.Exists(jco))
            throw new InvalidOperationException($"no wasip2 sysroot or jco in {wasip2}: run `make wasip2` (integration/scripts/fetch-wasip2.sh)");
        Directory.CreateDirectory(outputDir);
        var name = Path.GetFileNameWithoutExtension(source);
        if (source.EndsWith(".wat", StringComparison.Ordinal))
        {
            var assembled = Path.Combine(outputDir, name + ".wasm");
            Run(jco, "parse", source, "-o", assembled);
            return assembled;
        }
        var resources = Run("clang-16", "-print-resource-dir").Trim();
        var obj = Path.Combine(outputDir, name + ".o");
        var core = Path.Combine(outputDir, name + ".core.wasm");
        var component = Path.Combine(outputDir, name + ".wasm");
        // Debian 12's clang-16 knows no wasip2 target: compile for wasm32-wasi against the p2 headers.
        Run("clang-16", "--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-nostdinc", "-isystem", Path.Combine(sysroot, "include", "wasm32-wasip2"),
            "-isystem", Path.Combine(resources, "include"), "-D__wasilibc_use_wasip2", "-c", source, "-o", obj);
        var lib = Path.Combine(sysroot, "lib", "wasm32-wasip2");
        Run("wasm-ld-16", Path.Combine(lib, "crt1-command.o"), obj, "-L" + lib, "-lc",
            Path.Combine(resources, "lib", "wasi", "libclang_rt.builtins-wasm32.a"), "-o", core);
        Run(jco, "new", core, "--wasi-command", "-o", component);
        File.Delete(obj);
        File.Delete(core);
        return component;
    }

    private static string Run(string tool, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}{stdout}");
        return stdout;
    }
}

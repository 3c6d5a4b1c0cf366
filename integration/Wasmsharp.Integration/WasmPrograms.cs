namespace Wasmsharp.Integration;

// The C test programs in integration/programs, compiled to wasm32-wasi (preview 1 modules) once per test run,
// and the preview 2 components of integration/programs/p2 (WasmComponents): "p2" is p2/p2.c's component.
public sealed class WasmPrograms
{
    private static readonly Lazy<WasmPrograms> Instance = new(Compile);
    // Built on first use only: they need out/wasip2 (`make wasip2`), which the demo (hello alone) does not.
    private readonly Lazy<IReadOnlyDictionary<string, string>> _components;

    public string Dir { get; }
    /// <summary>The preview 1 modules by name.</summary>
    public IReadOnlyDictionary<string, string> All { get; }
    /// <summary>The preview 2 components by name.</summary>
    public IReadOnlyDictionary<string, string> Components => _components.Value;
    /// <summary>Modules and components: what the test images hold, each at /NAME.wasm.</summary>
    public IEnumerable<KeyValuePair<string, string>> Everything => All.Concat(Components).OrderBy(p => p.Key, StringComparer.Ordinal);

    private WasmPrograms(string dir, IReadOnlyDictionary<string, string> all)
    {
        (Dir, All) = (dir, all);
        _components = new(() =>
        {
            var built = WasmComponents.BuildAll(RepoLayout.Root, dir);
            foreach (var name in built.Keys.Where(all.ContainsKey))
                throw new InvalidOperationException($"p2/{name}.c and {name}.c would both be /{name}.wasm");
            return built;
        });
    }

    // Compiled on first use; the directory is removed when the process exits.
    public static WasmPrograms Get() => Instance.Value;

    public string Path(string name) =>
        All.TryGetValue(name, out var path) || Components.TryGetValue(name, out path)
            ? path : throw new KeyNotFoundException($"no test program '{name}' in {RepoLayout.ProgramsDir}");

    private static WasmPrograms Compile()
    {
        var clang = Environment.GetEnvironmentVariable("WASMSHARP_CLANG") ?? "clang-16";
        var sources = Directory.GetFiles(RepoLayout.ProgramsDir, "*.c").Order(StringComparer.Ordinal).ToArray();
        if (sources.Length == 0) throw new InvalidOperationException($"no C sources in {RepoLayout.ProgramsDir}");
        var dir = Directory.CreateTempSubdirectory("wasmsharp-programs-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };

        var outputs = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.ForEach(sources, source =>
        {
            var name = System.IO.Path.GetFileNameWithoutExtension(source);
            var output = System.IO.Path.Combine(dir, name + ".wasm");
            // --strip-debug keeps the name section (readable trap backtraces) but not DWARF.
            var result = ProcessRunner.Run(clang,
                ["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Werror", "-Wl,--strip-debug", "-o", output, source],
                TimeSpan.FromSeconds(60));
            if (result.ExitCode == 0) outputs[name] = output;
            else failures.Add(result.ToString());
        });
        if (!failures.IsEmpty)
            throw new InvalidOperationException(
                "compiling the wasm test programs failed (needs clang-16, lld-16, wasi-libc, libclang-rt-16-dev-wasm32):\n" +
                string.Join('\n', failures));
        return new WasmPrograms(dir, new Dictionary<string, string>(outputs));
    }
}

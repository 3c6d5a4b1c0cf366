using Wasmsharp.Integration;

namespace Wasmsharp.Wasm.Tests;

/// <summary>
/// The WASI preview 2 test components (integration/programs/p2), built once per test run by the integration
/// harness's <see cref="WasmComponents"/>, which the integration suite's ctr and Docker images use too.
/// </summary>
public sealed class GuestComponents : IDisposable
{
    public string Directory { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "wasmsharp-p2-tests-" + Guid.NewGuid().ToString("N"));
    public WasmHost Host { get; } = new();

    /// <summary>The component (a file in <see cref="Directory"/>).</summary>
    public string Component { get; }

    /// <summary>integration/programs/p2/http-client.wat and http-proxy.wat: a command importing wasi:http, a proxy.</summary>
    public string HttpClient { get; }
    public string HttpProxy { get; }
    /// <summary>p2/exitcode.wat: a component that calls <c>wasi:cli/exit.exit-with-code(42)</c>.</summary>
    public string ExitWithCode { get; }

    public GuestComponents()
    {
        var root = RepoRoot();
        string Build(string source) => WasmComponents.Build(root, System.IO.Path.Combine(WasmComponents.SourcesDir(root), source), Directory);
        Component = Build("p2.c");
        HttpClient = Build("http-client.wat");
        HttpProxy = Build("http-proxy.wat");
        ExitWithCode = Build("exitcode.wat");
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Makefile")) && System.IO.Directory.Exists(Path.Combine(dir.FullName, "src")))
                return dir.FullName;
        throw new InvalidOperationException($"no repository above {AppContext.BaseDirectory}");
    }

    public WasmModule Load() => Host.LoadModule(Component);

    public void Dispose() => GuestModules.DisposeHostAndDirectory(Host, Directory);
}

[CollectionDefinition(Name)]
public sealed class ComponentCollection : ICollectionFixture<GuestComponents>
{
    public const string Name = "components";
}

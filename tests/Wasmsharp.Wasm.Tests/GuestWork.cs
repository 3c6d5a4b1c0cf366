namespace Wasmsharp.Wasm.Tests;

/// <summary>One test's scratch directory and the instances it prepared, all gone when it is disposed.</summary>
internal sealed class GuestWork(string prefix) : IDisposable
{
    private readonly List<WasmInstance> instances = [];

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory(prefix).FullName;

    public string Path(string name) => System.IO.Path.Combine(Directory, name);

    /// <summary>Disposed (killed if still running) with this.</summary>
    public WasmInstance Track(WasmInstance instance)
    {
        instances.Add(instance);
        return instance;
    }

    public void Dispose()
    {
        foreach (var i in instances)
            i.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

namespace Wasmsharp.Shim;

/// <summary>A container this shim runs: its bundle (with mounted rootfs) and its init process.</summary>
internal sealed class Container(string id, Bundle bundle, WasmProcess init)
{
    public string Id { get; } = id;
    public Bundle Bundle { get; } = bundle;
    public WasmProcess Init { get; } = init;
}

using Wasmtime;
using Wasmtime.Components;

namespace Wasmsharp.Wasm;

/// <summary>Compiled code of a core module or of a component: what the caches hold and instances are made from.</summary>
internal sealed class CompiledCode : IDisposable
{
    private CompiledCode(Module? module, Component? component)
    {
        Module = module;
        Component = component;
    }

    public CompiledCode(Module module) : this(module, null)
    {
    }

    public CompiledCode(Component component) : this(null, component)
    {
    }

    /// <summary>Null for a component.</summary>
    public Module? Module { get; }

    /// <summary>Null for a core module.</summary>
    public Component? Component { get; }

    public bool IsComponent => Component is not null;

    /// <exception cref="WasmtimeException">invalid, or a feature the engine lacks.</exception>
    public static CompiledCode Compile(Engine engine, string name, byte[] bytes, WasmBinaryKind kind) =>
        kind == WasmBinaryKind.Component ? new(Component.FromBytes(engine, bytes)) : new(Module.FromBytes(engine, name, bytes));

    /// <summary>Loads an artifact written by <see cref="Serialize"/>; <paramref name="kind"/> null = not known
    /// (the bytes were not read): a module, else a component.</summary>
    /// <exception cref="WasmtimeException">not such an artifact, or made by an incompatible engine.</exception>
    public static CompiledCode DeserializeFile(Engine engine, string name, string path, WasmBinaryKind? kind)
    {
        if (kind == WasmBinaryKind.Component)
            return new(Component.DeserializeFile(engine, path));
        try
        {
            return new(Module.DeserializeFile(engine, name, path));
        }
        catch (WasmtimeException) when (kind is null)
        {
            return new(Component.DeserializeFile(engine, path));
        }
    }

    public byte[] Serialize() => Module?.Serialize() ?? Component!.Serialize();

    public void Dispose()
    {
        Module?.Dispose();
        Component?.Dispose();
    }
}

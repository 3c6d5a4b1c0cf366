namespace Wasmsharp.Wasm;

/// <summary>
/// A module could not be loaded, compiled or prepared (WASI set-up, instantiation, missing entrypoint).
/// The message is meant to be shown to a user as is.
/// </summary>
public sealed class WasmModuleException : Exception
{
    public WasmModuleException(string message) : base(message) { }
    public WasmModuleException(string message, Exception? inner) : base(message, inner) { }
}

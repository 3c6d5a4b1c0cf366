using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm;

/// <summary>The native wasm_config_t behind a <see cref="Wasmtime.Config"/>, for the settings the binding does not wrap.</summary>
internal static class NativeConfig
{
    // The binding keeps it in a private SafeHandle.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_NativeHandle")]
    [return: UnsafeAccessorType("Wasmtime.Config+Handle, Wasmtime.Dotnet")]
    private static extern object ConfigHandle(Wasmtime.Config config);

    /// <summary>Calls <paramref name="set"/> with the native config pointer, kept alive meanwhile.</summary>
    public static void Set(Wasmtime.Config config, Action<nint> set)
    {
        var handle = (SafeHandle)ConfigHandle(config);
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            set(handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
    }
}

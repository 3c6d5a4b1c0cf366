using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// Applies a <see cref="WasiConfiguration"/> to a store through the C API, adding what the binding does not wrap:
/// WASI preview 2's sockets (<c>wasi_config_inherit_network</c>) for components whose spec allows network access.
/// </summary>
/// <remarks>
/// Name lookup stays off (<c>wasi_config_allow_ip_name_lookup</c> false): Wasmtime's p2 <c>ip-name-lookup</c>
/// resolves with tokio's <c>lookup_host</c>, i.e. getaddrinfo on a tokio blocking-pool thread, which is in the
/// shim's network namespace (and reads the shim's resolv.conf), not the guest's. Sockets themselves are made by
/// <c>socket()</c> on the calling (guest) thread, and bind/listen/connect/accept act on that socket, so they are
/// in the guest thread's namespace.
/// </remarks>
internal static partial class WasiNative
{
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "Build")]
    [return: UnsafeAccessorType("Wasmtime.WasiConfiguration+Handle, Wasmtime.Dotnet")]
    private static extern object BuildHandle(WasiConfiguration config);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_NativeHandle")]
    [return: UnsafeAccessorType("Wasmtime.Store+Handle, Wasmtime.Dotnet")]
    private static extern object StoreHandle(Store store);

    [LibraryImport("wasmtime")]
    private static partial nint wasmtime_store_context(nint store);
    [LibraryImport("wasmtime")]
    private static partial nint wasmtime_context_set_wasi(nint context, nint config);
    [LibraryImport("wasmtime")]
    private static partial void wasi_config_inherit_network(nint config);
    [LibraryImport("wasmtime")]
    private static partial void wasi_config_allow_ip_name_lookup(nint config, [MarshalAs(UnmanagedType.U1)] bool enable);

    /// <summary>Like <see cref="Store.SetWasiConfiguration"/>, plus the guest's network when <paramref name="network"/>.</summary>
    public static void Apply(Store store, WasiConfiguration config, bool network)
    {
        if (!network)
        {
            store.SetWasiConfiguration(config);
            return;
        }
        var wasi = (SafeHandle)BuildHandle(config); // opens the stdio files, as SetWasiConfiguration does
        var native = wasi.DangerousGetHandle();
        wasi_config_inherit_network(native);
        wasi_config_allow_ip_name_lookup(native, false);
        var storeHandle = (SafeHandle)StoreHandle(store);
        var added = false;
        storeHandle.DangerousAddRef(ref added);
        try
        {
            var error = wasmtime_context_set_wasi(wasmtime_store_context(storeHandle.DangerousGetHandle()), native);
            wasi.SetHandleAsInvalid(); // taken by Wasmtime, even on error
            if (error != 0)
                throw new WasmModuleException($"cannot apply the WASI configuration: {NativeError.Take(error)}");
        }
        finally
        {
            if (added)
                storeHandle.DangerousRelease();
        }
    }
}

/// <summary>Messages of <c>wasmtime_error_t</c>s returned by functions the binding does not wrap.</summary>
internal static unsafe partial class NativeError
{
    [StructLayout(LayoutKind.Sequential)]
    private struct ByteVec
    {
        public nuint Size;
        public byte* Data;
    }

    [LibraryImport("wasmtime")]
    private static partial void wasmtime_error_message(nint error, ByteVec* message);
    [LibraryImport("wasmtime")]
    private static partial void wasmtime_error_delete(nint error);
    [LibraryImport("wasmtime")]
    private static partial void wasm_byte_vec_delete(ByteVec* vec);

    /// <summary>The error's message; frees the error.</summary>
    public static string Take(nint error)
    {
        ByteVec message;
        wasmtime_error_message(error, &message);
        try
        {
            return System.Text.Encoding.UTF8.GetString(message.Data, checked((int)message.Size));
        }
        finally
        {
            wasm_byte_vec_delete(&message);
            wasmtime_error_delete(error);
        }
    }
}

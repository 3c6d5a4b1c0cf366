namespace Wasmsharp.Wasm;

/// <summary>Engine-wide settings of a <see cref="WasmHost"/>.</summary>
public sealed record WasmHostOptions
{
    /// <summary>Default stack of each guest thread (8 MiB).</summary>
    public const int DefaultGuestThreadStackBytes = 8 * 1024 * 1024;

    /// <summary>Largest accepted <see cref="MaxWasmStackBytes"/>: Wasmtime's async_stack_size (2 MiB, not
    /// configurable through the .NET binding). A larger max_wasm_stack makes engine creation panic and abort
    /// the whole process, so it is rejected here.</summary>
    public const int MaxWasmStackLimit = 2 * 1024 * 1024;

    /// <summary>
    /// Maximum stack the WebAssembly code may use (Wasmtime <c>max_wasm_stack</c>); deeper recursion traps
    /// ("call stack exhausted", exit 134). Null = Wasmtime's default (512 KiB). At most
    /// <see cref="MaxWasmStackLimit"/>, and well below <see cref="GuestThreadStackBytes"/>: the wasm stack lives
    /// on the guest's native thread.
    /// </summary>
    public int? MaxWasmStackBytes { get; init; }

    /// <summary>Native stack size of each guest thread.</summary>
    public int GuestThreadStackBytes { get; init; } = DefaultGuestThreadStackBytes;

    // Room for later: compilation cache directory, pooling allocator, memory limits.

    internal void Validate()
    {
        if (GuestThreadStackBytes < 1024 * 1024)
            throw new ArgumentOutOfRangeException(nameof(GuestThreadStackBytes), GuestThreadStackBytes, "must be at least 1 MiB");
        if (MaxWasmStackBytes is int max)
        {
            if (max <= 0 || max > MaxWasmStackLimit)
                throw new ArgumentOutOfRangeException(nameof(MaxWasmStackBytes), max, $"must be positive and at most {MaxWasmStackLimit} (Wasmtime's async stack size)");
            // Leave room for the host frames below the wasm frames (Wasmtime, the binding, the CLR).
            if (max > GuestThreadStackBytes - 512 * 1024)
                throw new ArgumentOutOfRangeException(nameof(MaxWasmStackBytes), max,
                    $"must be at least 512 KiB smaller than GuestThreadStackBytes ({GuestThreadStackBytes})");
        }
    }
}

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

    /// <summary>Default <see cref="CacheMaxBytes"/> (512 MiB).</summary>
    public const long DefaultCacheMaxBytes = 512L * 1024 * 1024;

    /// <summary>
    /// Directory of the on-disk cache of compiled modules (created 0700, entries 0600), shared by all shim
    /// processes; null = no disk cache (modules are compiled in every process). Entries are
    /// <c>&lt;dir&gt;/&lt;engine fingerprint&gt;/&lt;module sha256&gt;.&lt;entry digest&gt;.cwasm</c>. The directory must be
    /// writable only by the shim's user: its files are loaded as native code.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Bound on the total size of the cached *.cwasm files; least recently used entries are evicted past it.</summary>
    public long CacheMaxBytes { get; init; } = DefaultCacheMaxBytes;

    /// <summary>
    /// With a <see cref="CacheDirectory"/>: a module that is in neither cache is compiled for its first run by
    /// Wasmtime's baseline compiler (Winch: several times quicker to compile, slower code), whose code is written
    /// to the disk cache as a baseline entry that later starts run on at once; the optimising compiler (Cranelift)
    /// compiles it in the background, once per host (a flock in the cache), and its entry replaces the baseline
    /// one. <see cref="WasmHost.CacheWrites"/> completes when this host's background compiles are done.
    /// </summary>
    public bool BaselineFirstRun { get; init; }

    /// <summary>
    /// Called on the thread of each background compile (see <see cref="BaselineFirstRun"/>) before it starts, e.g.
    /// to give it a low scheduling priority that still makes progress on a busy machine: that compile runs on this
    /// one thread (not in parallel, which also bounds its memory), one at a time per host.
    /// </summary>
    public Action? BackgroundThreadSetup { get; init; }

    /// <summary>
    /// How long a background compile (see <see cref="BaselineFirstRun"/>) waits before it starts. A container's
    /// first moments are the busiest (the guest instantiates, containerd and its client do their part): a compile
    /// in the same process then slowed a hello start by ~8 ms on 2 CPUs (measured), even at the lowest priority,
    /// which does not keep it from the process's memory-map lock or the CPUs' caches. 50 ms later a short task
    /// has ended and a long one has started.
    /// </summary>
    public TimeSpan BackgroundCompileDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// A background compile (see <see cref="BaselineFirstRun"/>) begins only once no module has been loaded by any
    /// host sharing the cache for this long (zero: at once), and waits at most <see cref="BackgroundCompileMaxWait"/>
    /// for that. Measured on 2 CPUs with two CPU hogs: starts of a 16 MB module on its baseline code took 0.9 × a
    /// cached hello while the first start's optimising compile was held (SIGSTOP), 1.5 × while it ran, even at nice
    /// 19; starts run as fast on baseline code, so the optimised code can wait for a quiet moment.
    /// </summary>
    public TimeSpan BackgroundCompileQuiet { get; init; }

    /// <summary>The longest a background compile waits for <see cref="BackgroundCompileQuiet"/>: on a node that never
    /// stops starting containers, it then compiles anyway (so it always makes progress).</summary>
    public TimeSpan BackgroundCompileMaxWait { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The single place where the engine configuration is derived from the options: every setting is applied
    /// through <see cref="EngineSettings.Set"/>, which also records it in the fingerprint that keys the disk cache.
    /// </summary>
    internal Wasmtime.Config CreateEngineConfig(out string fingerprint)
    {
        var settings = new EngineSettings();
        settings.Set("epoch_interruption", true, static (c, v) => c.WithEpochInterruption(v));
        settings.Set("component_model", true, static (c, v) => c.WithComponentModel(v)); // WASI preview 2 components
        // Linear memories come from GuestMemory, which enforces each guest's memory limit.
        settings.Set("host_memory_creator", "budgeted", static (c, _) => GuestMemory.Install(c));
        if (MaxWasmStackBytes is int maxStack)
            settings.Set("max_wasm_stack", maxStack, static (c, v) => c.WithMaximumStackSize(v));
        fingerprint = settings.Fingerprint();
        return settings.Config;
    }

    /// <summary>The same settings for the baseline compiler (Winch). Its entries live beside the optimised ones under
    /// the same fingerprint, told apart by name (see ModuleDiskCache); the strategy is the only difference.</summary>
    internal Wasmtime.Config CreateBaselineEngineConfig()
    {
        var config = CreateEngineConfig(out _);
        NativeConfig.Set(config, static native => wasmtime_config_strategy_set(native, WasmtimeStrategyWinch));
        return config;
    }

    /// <summary>The same settings, compiling on the calling thread only (same code: parallelism does not change it,
    /// so its modules load in the main engine).</summary>
    internal Wasmtime.Config CreateSingleThreadedEngineConfig() => CreateEngineConfig(out _).WithParallelCompilation(false);

    // The binding's Config.WithCompilerStrategy knows only Auto and Cranelift (wasmtime.h: WASMTIME_STRATEGY_WINCH = 2).
    private const byte WasmtimeStrategyWinch = 2;

    [System.Runtime.InteropServices.DllImport("wasmtime")]
    private static extern void wasmtime_config_strategy_set(nint config, byte strategy);

    internal void Validate()
    {
        if (BackgroundCompileDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(BackgroundCompileDelay), BackgroundCompileDelay, "must not be negative");
        if (BackgroundCompileQuiet < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(BackgroundCompileQuiet), BackgroundCompileQuiet, "must not be negative");
        if (BackgroundCompileMaxWait < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(BackgroundCompileMaxWait), BackgroundCompileMaxWait, "must not be negative");
        if (CacheMaxBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(CacheMaxBytes), CacheMaxBytes, "must be positive");
        if (CacheDirectory is { } dir && !Path.IsPathFullyQualified(dir))
            throw new ArgumentException($"must be an absolute path: {dir}", nameof(CacheDirectory));
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

/// <summary>Applies settings to a Wasmtime <see cref="Wasmtime.Config"/> and records them for the cache fingerprint.</summary>
internal sealed class EngineSettings
{
    private readonly System.Text.StringBuilder description = new();

    public Wasmtime.Config Config { get; } = new();

    public void Set<T>(string name, T value, Action<Wasmtime.Config, T> apply) where T : notnull
    {
        apply(Config, value);
        description.Append(name).Append('=').Append(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>Hex digest of the Wasmtime binding version, the process architecture and the settings.</summary>
    public string Fingerprint()
    {
        var wasmtime = typeof(Wasmtime.Engine).Assembly;
        var version = wasmtime.GetName().Version?.ToString() ?? "?";
        var informational = System.Reflection.CustomAttributeExtensions
            .GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(wasmtime)?.InformationalVersion ?? "";
        // The entry checksum names the entries: a new algorithm gets a new directory, so entries named by the old
        // one are left to eviction rather than each reported as damaged.
        var text = $"wasmtime={version};{informational}\narch={System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}\n" +
            $"entry_checksum=xxh128\n{description}";
        return Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(System.Text.Encoding.UTF8.GetBytes(text)));
    }
}

using System.Buffers;
using System.Diagnostics;
using System.IO.Hashing;
using Wasmtime;

namespace Wasmsharp.Wasm;

/// <summary>
/// On-disk cache of compiled modules shared by processes: <c>&lt;root&gt;/&lt;fingerprint&gt;/&lt;sha256&gt;.&lt;digest&gt;.cwasm</c>
/// (optimised code, Cranelift) and <c>&lt;sha256&gt;.&lt;digest&gt;.baseline.cwasm</c> (a first run's baseline code, Winch,
/// kept until the optimised entry replaces it), where digest is the XxHash128 of the entry itself, verified before
/// every deserialisation (a flipped byte in the code would not be noticed by Wasmtime). A checksum, not a
/// cryptographic hash: it guards against damage, and the directory is writable only by the shim's user anyway; a
/// 30 MB entry is checked in ~5 ms where SHA-256 took ~30. Files are written to a temporary file, fsynced and
/// renamed, never modified in place (they are mapped by the processes using them), so they are read without a
/// lock; eviction unlinks. Compiling is done under flocks that the kernel releases when their process dies:
/// <c>&lt;sha256&gt;.lock</c> for the optimised code (one compile per module per host: whoever holds it compiles,
/// nobody waits for it to start a container), <c>&lt;sha256&gt;.baseline.lock</c> for the baseline code (seconds
/// at most: starts that meet a module together wait for one baseline compile).
/// </summary>
internal sealed class ModuleDiskCache(string root, string fingerprint, long maxBytes)
{
    internal const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    internal const UnixFileMode EntryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    internal const string Extension = ".cwasm";
    private const string BaselineMark = "baseline";
    private const string TempPrefix = ".tmp-";
    private static readonly TimeSpan LockTimeout = TimeSpan.FromMinutes(5);
    // The holder compiles with Winch in the foreground: a 30 MB module takes ~1 s, several on a loaded machine.
    private static readonly TimeSpan BaselineLockTimeout = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan StaleTemp = TimeSpan.FromHours(1);

    public string Root { get; } = root;
    public string Directory { get; } = Path.Combine(root, fingerprint);

    internal string EntryPath(string sha, string digest, bool baseline = false) =>
        Path.Combine(Directory, baseline ? $"{sha}.{digest}.{BaselineMark}{Extension}" : $"{sha}.{digest}{Extension}");

    // Its mtime is the last module load (a container starting) of any host sharing the cache.
    private string LastLoadPath => Path.Combine(Root, "last-load");

    /// <summary>Marks a module load: background compiles wait for a quiet moment (WasmHostOptions.BackgroundCompileQuiet).</summary>
    public void MarkLoad()
    {
        try
        {
            File.SetLastWriteTimeUtc(LastLoadPath, DateTime.UtcNow);
        }
        catch (FileNotFoundException)
        {
            try
            {
                System.IO.Directory.CreateDirectory(Root, DirectoryMode);
                File.WriteAllBytes(LastLoadPath, []);
            }
            catch (Exception e) when (IsIoError(e))
            {
            }
        }
        catch (Exception e) when (IsIoError(e))
        {
        }
    }

    /// <summary>How long ago <see cref="MarkLoad"/> was last called host-wide (a long time if never).</summary>
    public TimeSpan SinceLastLoad() => DateTime.UtcNow - File.GetLastWriteTimeUtc(LastLoadPath);

    /// <summary>The module's optimising-compile lock file (see <see cref="TryLockCompile"/>).</summary>
    internal string CompileLockPath(string sha) => Path.Combine(Directory, sha + ".lock");

    internal static string Digest(ReadOnlySpan<byte> entry) => Convert.ToHexStringLower(XxHash128.Hash(entry));

    /// <summary>Buffer size of streamed reads (the entry's checksum, the module's hash): few syscalls, no large allocation.</summary>
    internal const int ChunkBytes = 1 << 20;

    /// <summary>Feeds the whole file to <paramref name="append"/> in chunks of a pooled buffer.</summary>
    internal static void ReadChunks(Microsoft.Win32.SafeHandles.SafeFileHandle file, Action<ReadOnlySpan<byte>> append)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            long offset = 0;
            int read;
            while ((read = RandomAccess.Read(file, buffer, offset)) > 0)
            {
                append(buffer.AsSpan(0, read));
                offset += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public sealed record Result(CompiledCode Code, ModuleOrigin Origin, TimeSpan CompileTime, string? EntryPath, string? Problem);

    /// <param name="compile">Compiles the module; its exceptions propagate.</param>
    public Result Load(Engine engine, string name, string sha, WasmBinaryKind? kind, Func<CompiledCode> compile)
    {
        if (LoadCached(engine, name, sha, kind, baseline: false, out var discarded) is { } cached)
            return cached; // no lock to read: entries are complete once they have their name
        // A background compile that holds the lock but waits for a quiet moment (see HoldWaiting) may wait a minute:
        // this start compiles now instead, and writes the entry (atomically) itself.
        var (held, unusable, busy) = Lock(sha, TimeSpan.Zero);
        if (held is null && busy)
        {
            if (HolderIsWaiting(sha))
                return CompileAndWrite(sha, compile, discarded);
            (held, unusable, _) = Lock(sha);
        }
        if (held is null)
            return CompileOnly(compile, unusable!);
        using var locked = held;
        return CompileLocked(engine, name, sha, kind, compile, discarded);
    }

    private string WaitingPath(string sha) => Path.Combine(Directory, sha + ".waiting");

    /// <summary>
    /// Held by the holder of a module's compile lock while it waits to begin (for a quiet moment): a start that needs
    /// the optimised code now does not wait for it then (see <see cref="Load"/>). Null if it cannot be taken.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? HoldWaiting(string sha)
    {
        try
        {
            return Native.LockFile(WaitingPath(sha), TimeSpan.Zero);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private bool HolderIsWaiting(string sha)
    {
        if (!File.Exists(WaitingPath(sha))) return false;
        try
        {
            using var probe = Native.LockFile(WaitingPath(sha), TimeSpan.Zero);
            return probe is null;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Takes the module's optimising-compile lock without waiting: null when another process holds it (it is
    /// compiling the module) or the cache cannot be used. The kernel releases it when the holder dies, so a
    /// later start takes over a compile that was abandoned.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? TryLockCompile(string sha) => Lock(sha, TimeSpan.Zero).Held;

    /// <summary>
    /// With the lock of <see cref="TryLockCompile"/> held: the optimised entry written by another process meanwhile
    /// (<see cref="ModuleOrigin.CacheHit"/>), else compiled and written; the module's baseline entries are then removed.
    /// </summary>
    /// <param name="discarded">What an earlier look found wrong (and deleted), for the result.</param>
    public Result CompileLocked(Engine engine, string name, string sha, WasmBinaryKind? kind, Func<CompiledCode> compile, string? discarded = null)
    {
        var (hit, problem, unreadable) = Lookup(engine, name, sha, kind, baseline: false);
        if (hit is not null)
            return hit;
        if (unreadable is not null)
            return CompileOnly(compile, unreadable);
        return CompileAndWrite(sha, compile, problem ?? discarded);
    }

    // The optimised entry, compiled and written; the module's baseline entries then go.
    private Result CompileAndWrite(string sha, Func<CompiledCode> compile, string? problem)
    {
        var watch = Stopwatch.StartNew();
        var compiled = compile();
        var result = Write(sha, compiled, watch.Elapsed, problem, baseline: false);
        if (result.EntryPath is not null)
            RemoveBaseline(sha);
        return result;
    }

    /// <summary>
    /// Baseline code for a first run: a verified baseline entry, else compiled by <paramref name="compile"/> (null:
    /// the baseline compiler cannot take the module, and nothing is written) and written as one. Starts that meet
    /// the module together compile it once: the others wait for the entry.
    /// </summary>
    public Result? LoadBaseline(Engine engine, string name, string sha, WasmBinaryKind? kind, Func<CompiledCode?> compile)
    {
        if (LoadCached(engine, name, sha, kind, baseline: true, out var discarded) is { } cached)
            return cached;
        var watch = Stopwatch.StartNew();
        var (held, unusable, _) = Lock(sha + "." + BaselineMark, BaselineLockTimeout);
        if (held is null)
            return compile() is { } code ? new Result(code, ModuleOrigin.Compiled, watch.Elapsed, null, unusable) : null;
        using var locked = held;
        var (hit, problem, _) = Lookup(engine, name, sha, kind, baseline: true);
        if (hit is not null)
            return hit;
        watch.Restart();
        var compiled = compile();
        return compiled is null ? null : Write(sha, compiled, watch.Elapsed, problem ?? discarded, baseline: true);
    }

    // Serialises and writes atomically; a write that fails leaves the compiled code usable.
    private Result Write(string sha, CompiledCode compiled, TimeSpan compileTime, string? problem, bool baseline)
    {
        try
        {
            var bytes = compiled.Serialize();
            var path = EntryPath(sha, Digest(bytes), baseline);
            WriteAtomically(path, bytes);
            Evict(path);
            return new Result(compiled, problem is null ? ModuleOrigin.CacheMiss : ModuleOrigin.CacheReplaced, compileTime, path, problem);
        }
        catch (Exception e) when (IsIoError(e) || e is WasmtimeException)
        {
            return new Result(compiled, ModuleOrigin.Compiled, compileTime, null,
                (problem is null ? "" : problem + "; ") + $"cannot write disk cache entry: {e.Message}");
        }
    }

    /// <summary>
    /// The cached module (optimised, or with <paramref name="baseline"/> a first run's baseline code), or null with
    /// <paramref name="problem"/> saying what was wrong with the entries found (deleted) or with the cache; compiles
    /// nothing and takes no lock.
    /// </summary>
    public Result? LoadCached(Engine engine, string name, string sha, WasmBinaryKind? kind, bool baseline, out string? problem)
    {
        var (hit, discarded, unreadable) = Lookup(engine, name, sha, kind, baseline);
        problem = discarded ?? unreadable;
        return hit;
    }

    // The module's lock (check-compile-write is done under it), or why the cache cannot be used.
    private (Microsoft.Win32.SafeHandles.SafeFileHandle? Held, string? Problem, bool Busy) Lock(string sha, TimeSpan? timeout = null)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Root, DirectoryMode);
            System.IO.Directory.CreateDirectory(Directory, DirectoryMode);
            var held = Native.LockFile(Path.Combine(Directory, sha + ".lock"), timeout ?? LockTimeout);
            return held is null ? (null, $"disk cache: timed out waiting for the lock of {sha}", true) : (held, null, false);
        }
        catch (Exception e) when (IsIoError(e))
        {
            return (null, $"disk cache {Directory} unusable: {e.Message}", false);
        }
    }

    // Under the lock: a verified, loadable entry; else what was discarded, or why the directory cannot be read.
    private (Result? Hit, string? Discarded, string? Unreadable) Lookup(Engine engine, string name, string sha, WasmBinaryKind? kind, bool baseline)
    {
        string? problem = null;
        IEnumerable<string> candidates;
        try
        {
            candidates = Entries(sha, baseline);
        }
        catch (DirectoryNotFoundException)
        {
            return (null, null, null);
        }
        catch (Exception e) when (IsIoError(e))
        {
            return (null, null, $"disk cache {Directory} unreadable: {e.Message}");
        }
        foreach (var entry in candidates)
        {
            var why = Verify(entry);
            if (why is null)
            {
                try
                {
                    var code = CompiledCode.DeserializeFile(engine, name, entry, kind);
                    Touch(entry);
                    return (new Result(code, ModuleOrigin.CacheHit, TimeSpan.Zero, entry, null), null, null);
                }
                catch (WasmtimeException e)
                {
                    why = "incompatible: " + e.Message;
                }
                catch (Exception e) when (IsIoError(e))
                {
                    continue; // replaced or evicted meanwhile: not damaged
                }
            }
            problem = $"discarded cache entry {entry} ({why})";
            TryDelete(entry);
        }
        return (null, problem, null);
    }

    // The module's entries of one tier (optimised: three dot-separated parts; baseline: four).
    private string[] Entries(string sha, bool baseline) =>
        System.IO.Directory.GetFiles(Directory, sha + ".*" + Extension).Where(e => IsBaseline(e) == baseline).ToArray();

    private static bool IsBaseline(string entry) => Path.GetFileName(entry).Split('.') is [_, _, BaselineMark, _];

    // The optimised code is there: the baseline code goes (processes running it keep their mapping).
    private void RemoveBaseline(string sha)
    {
        try
        {
            foreach (var entry in Entries(sha, baseline: true))
                TryDelete(entry);
        }
        catch (Exception e) when (IsIoError(e))
        {
        }
    }

    private static Result CompileOnly(Func<CompiledCode> compile, string problem)
    {
        var watch = Stopwatch.StartNew();
        var module = compile();
        return new Result(module, ModuleOrigin.Compiled, watch.Elapsed, null, problem);
    }

    /// <summary>Null when the entry's content matches the digest in its name, else why not.</summary>
    private static string? Verify(string entry)
    {
        var name = Path.GetFileName(entry);
        var parts = name.Split('.');
        if (parts.Length != 3 && !(parts.Length == 4 && parts[2] == BaselineMark))
            return "unexpected name";
        try
        {
            using var file = File.OpenHandle(entry);
            var checksum = new XxHash128();
            ReadChunks(file, checksum.Append);
            return Convert.ToHexStringLower(checksum.GetCurrentHash()) == parts[1] ? null : "content does not match its digest";
        }
        catch (Exception e) when (IsIoError(e))
        {
            return e.Message;
        }
    }

    private void WriteAtomically(string path, byte[] bytes)
    {
        var temp = Path.Combine(Directory, TempPrefix + Guid.NewGuid().ToString("N"));
        try
        {
            using (var file = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                UnixCreateMode = EntryMode,
                BufferSize = 0,
            }))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true); // rename(2): atomic, never rewrites a mapped file
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Hits refresh the entry's mtime: the LRU clock. Changes no content.</summary>
    private static void Touch(string entry)
    {
        try
        {
            File.SetLastWriteTimeUtc(entry, DateTime.UtcNow);
        }
        catch (Exception e) when (IsIoError(e))
        {
        }
    }

    /// <summary>Deletes least recently used entries (all fingerprints) until the total is within the bound; never <paramref name="keep"/>.</summary>
    private void Evict(string keep)
    {
        var entries = new List<FileInfo>();
        long total = 0;
        foreach (var file in new DirectoryInfo(Root).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            try
            {
                if (file.Name.StartsWith(TempPrefix, StringComparison.Ordinal))
                {
                    if (DateTime.UtcNow - file.LastWriteTimeUtc > StaleTemp)
                        TryDelete(file.FullName); // left by a crashed writer
                    continue;
                }
                if (!file.Name.EndsWith(Extension, StringComparison.Ordinal))
                    continue;
                total += file.Length;
                if (file.FullName != keep)
                    entries.Add(file);
            }
            catch (Exception e) when (IsIoError(e))
            {
                // vanished meanwhile (another process evicting)
            }
        }
        if (total <= maxBytes)
            return;
        foreach (var file in entries.OrderBy(f => f.LastWriteTimeUtc))
        {
            if (total <= maxBytes)
                break;
            TryDelete(file.FullName);
            total -= file.Length;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (IsIoError(e))
        {
        }
    }

    private static bool IsIoError(Exception e) => e is IOException or UnauthorizedAccessException;
}

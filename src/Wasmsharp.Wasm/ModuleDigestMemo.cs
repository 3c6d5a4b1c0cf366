using System.IO.Hashing;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Wasmsharp.Wasm;

/// <summary>
/// Remembers the SHA-256 (and an XxHash128, to check a later read of the same bytes) of module files by their
/// identity on the host (inode, size, modification and change
/// times to the nanosecond; the device too, except on overlayfs, which gives every container's mount a device
/// of its own), so that starting the same image's module again does not read and hash it again (~13 ms for
/// 16 MB). A file changed in any way gets a new change time from the kernel, which no one can set, so it is
/// hashed again. Entries are one small file each under <c>&lt;cache root&gt;/digests</c> (root-only, like the
/// cache); a damaged or missing one only means hashing again.
/// </summary>
internal sealed partial class ModuleDigestMemo(string root)
{
    private const int MaxEntries = 4096;
    private const uint OverlayfsMagic = 0x794c7630;

    public string Directory { get; } = Path.Combine(root, "digests");

    // Timestamps come from a coarse clock (a few ms): a file changed within that long of its last change could
    // keep the same times. Only files left unchanged for longer than this are remembered, so that any later
    // change gives a later change time (git's "racily clean" rule).
    private static readonly TimeSpan Settled = TimeSpan.FromSeconds(1);

    /// <summary>The file's identity as a file name; null when it cannot be read, or changed too recently to
    /// be told apart from a change to come.</summary>
    public static string? Identity(SafeFileHandle file)
    {
        Span<byte> stx = stackalloc byte[256];
        Span<byte> fs = stackalloc byte[120];
        if (Statx(file, stx) != 0 || Fstatfs(file, fs) != 0) return null;
        var changed = DateTimeOffset.FromUnixTimeSeconds(BitConverter.ToInt64(stx[96..]));
        if (DateTimeOffset.UtcNow - changed < Settled + TimeSpan.FromSeconds(1)) return null; // whole seconds above
        var overlay = (uint)BitConverter.ToInt64(fs[..8]) == OverlayfsMagic;
        var key = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{(overlay ? "overlay" : $"{BitConverter.ToUInt32(stx[136..])}:{BitConverter.ToUInt32(stx[140..])}")}/" +
            $"{BitConverter.ToUInt64(stx[32..])}/{BitConverter.ToUInt64(stx[40..])}/" +
            $"{BitConverter.ToInt64(stx[112..])}.{BitConverter.ToUInt32(stx[120..])}/{BitConverter.ToInt64(stx[96..])}.{BitConverter.ToUInt32(stx[104..])}");
        return Convert.ToHexStringLower(XxHash128.Hash(System.Text.Encoding.UTF8.GetBytes(key)));
    }

    /// <summary>The file's SHA-256 and XxHash128, as <see cref="Remember"/> stored them; null when unknown.</summary>
    public (string Sha256, string XxHash128)? Lookup(string identity)
    {
        try
        {
            var parts = File.ReadAllText(Path.Combine(Directory, identity)).Split('\n');
            return parts.Length == 2 && IsHex(parts[0], 64) && IsHex(parts[1], 32) ? (parts[0], parts[1]) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool IsHex(string text, int length) => text.Length == length && text.All(char.IsAsciiHexDigitLower);

    public void Remember(string identity, string sha256, string xxHash128)
    {
        try
        {
            System.IO.Directory.CreateDirectory(root, ModuleDiskCache.DirectoryMode); // parents would get 0755
            System.IO.Directory.CreateDirectory(Directory, ModuleDiskCache.DirectoryMode);
            var temp = Path.Combine(Directory, ".tmp-" + Guid.NewGuid().ToString("N"));
            File.WriteAllText(temp, sha256 + "\n" + xxHash128);
            File.SetUnixFileMode(temp, ModuleDiskCache.EntryMode);
            File.Move(temp, Path.Combine(Directory, identity), overwrite: true);
            Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a hash to compute again next time.
        }
    }

    // Past MaxEntries, the oldest quarter goes (entries are written once, so their time is their age).
    private void Trim()
    {
        var entries = new DirectoryInfo(Directory).GetFiles();
        if (entries.Length <= MaxEntries) return;
        foreach (var old in entries.OrderBy(f => f.LastWriteTimeUtc).Take(entries.Length - MaxEntries * 3 / 4))
        {
            try
            {
                old.Delete();
            }
            catch (IOException)
            {
            }
        }
    }

    private const int AT_EMPTY_PATH = 0x1000, STATX_BASIC_STATS = 0x7ff;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static unsafe partial int statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static unsafe partial int fstatfs(int fd, byte* buffer);

    private static unsafe int Statx(SafeFileHandle file, Span<byte> buffer)
    {
        byte empty = 0;
        fixed (byte* b = buffer)
            return statx((int)file.DangerousGetHandle(), &empty, AT_EMPTY_PATH, STATX_BASIC_STATS, b);
    }

    private static unsafe int Fstatfs(SafeFileHandle file, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
            return fstatfs((int)file.DangerousGetHandle(), b);
    }
}

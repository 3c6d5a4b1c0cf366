using System.Formats.Tar;
using System.Text;

namespace Wasmsharp.ImageTool;

// Reproducible tar entries. Ustar whenever the names fit (plain headers, no extras); GNU long-name
// records otherwise. Not PAX: .NET names PAX extended headers "./PaxHeaders.<pid>/..." and adds
// atime/ctime, so two builds of the same input would differ.
public static class TarEntries
{
    public static TarEntry Create(TarEntryType type, string name, string? linkTarget = null)
    {
        // Ustar holds a 100-byte name (we do not rely on the prefix split) and a 100-byte link name.
        var fitsUstar = Encoding.UTF8.GetByteCount(name) <= 100
            && (linkTarget is null || Encoding.UTF8.GetByteCount(linkTarget) <= 100);
        TarEntry entry = fitsUstar
            ? new UstarTarEntry(type, name)
            : new GnuTarEntry(type, name)
            {
                AccessTime = RootfsImageLayout.FixedTime,
                ChangeTime = RootfsImageLayout.FixedTime,
            };
        entry.ModificationTime = RootfsImageLayout.FixedTime;
        entry.Uid = 0;
        entry.Gid = 0;
        if (entry is PosixTarEntry posix)
        {
            posix.UserName = "";
            posix.GroupName = "";
        }
        if (linkTarget is not null) entry.LinkName = linkTarget;
        return entry;
    }
}

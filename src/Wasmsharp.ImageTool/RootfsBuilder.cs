namespace Wasmsharp.ImageTool;

// Collects rootfs entries from the command line: checks host files exist, normalises guest paths,
// adds the parent directories a tar layer must carry, rejects two entries at one path.
public sealed class RootfsBuilder
{
    private const UnixFileMode DirMode = (UnixFileMode)0b111_101_101; // 0755, what image builders use
    private readonly SortedDictionary<string, RootfsEntry> _entries = new(StringComparer.Ordinal);

    public void AddHostPath(string hostPath, string guestPath)
    {
        var guest = NormaliseGuest(guestPath, "--file");
        if (Directory.Exists(hostPath))
        {
            AddDirectoryTree(hostPath, guest);
            return;
        }
        if (!File.Exists(hostPath))
            throw new UsageException($"--file '{hostPath}:{guestPath}': host file '{hostPath}' does not exist");
        if (guest.Length == 0)
            throw new UsageException($"--file '{hostPath}:{guestPath}': a file cannot be the root directory");
        Add(new FileEntry(guest, Path.GetFullPath(hostPath), File.GetUnixFileMode(hostPath)), "--file");
    }

    public void AddSymlink(string guestPath, string target)
    {
        var guest = NormaliseGuest(guestPath, "--symlink");
        if (guest.Length == 0)
            throw new UsageException($"--symlink '{guestPath}': cannot replace the root directory");
        Add(new SymlinkEntry(guest, target), "--symlink");
    }

    // Sorted by path, so identical inputs give an identical layer; parents precede children.
    public IReadOnlyList<RootfsEntry> Build() => [.. _entries.Values];

    private void AddDirectoryTree(string hostDir, string guest)
    {
        if (guest.Length > 0)
            Add(new DirectoryEntry(guest, File.GetUnixFileMode(hostDir)), "--file");
        foreach (var info in new DirectoryInfo(hostDir).EnumerateFileSystemInfos())
        {
            var child = guest.Length == 0 ? info.Name : $"{guest}/{info.Name}";
            if (info.LinkTarget is { } target)
                Add(new SymlinkEntry(child, target), "--file");
            else if (info is DirectoryInfo)
                AddDirectoryTree(info.FullName, child);
            else
                Add(new FileEntry(child, info.FullName, info.UnixFileMode), "--file");
        }
    }

    private void Add(RootfsEntry entry, string option)
    {
        // Parents first: an existing directory entry is fine, anything else at a parent path is a conflict.
        var parts = entry.GuestPath.Split('/');
        for (var i = 1; i < parts.Length; i++)
        {
            var parent = string.Join('/', parts[..i]);
            if (!_entries.TryGetValue(parent, out var existing))
                _entries[parent] = new DirectoryEntry(parent, DirMode);
            else if (existing is not DirectoryEntry)
                throw new UsageException($"{option}: /{entry.GuestPath} needs /{parent} to be a directory, but it was added as a file or link");
        }
        if (_entries.TryGetValue(entry.GuestPath, out var previous))
        {
            // An implicitly created parent directory may be replaced by an explicit one (keeps its mode).
            if (!(previous is DirectoryEntry && entry is DirectoryEntry))
                throw new UsageException($"{option}: /{entry.GuestPath} is given more than once");
        }
        _entries[entry.GuestPath] = entry;
    }

    private static string NormaliseGuest(string path, string option)
    {
        if (!path.StartsWith('/'))
            throw new UsageException($"{option}: guest path '{path}' must be absolute");
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Any(p => p is "." or ".."))
            throw new UsageException($"{option}: guest path '{path}' must not contain '.' or '..'");
        return string.Join('/', parts);
    }
}

using System.Runtime.InteropServices;

namespace Wasmsharp.Wasm;

internal static partial class Native
{
    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int gettid();

    /// <summary>The calling thread's kernel thread id.</summary>
    public static int CurrentThreadId()
    {
        try
        {
            return gettid(); // glibc ≥ 2.30
        }
        catch (EntryPointNotFoundException)
        {
            // Older libc: /proc/thread-self → "<pid>/task/<tid>".
            var link = new DirectoryInfo("/proc/thread-self").LinkTarget ?? throw new PlatformNotSupportedException("cannot determine the thread id");
            return int.Parse(link[(link.LastIndexOf('/') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    private const int O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000; // same on x86_64 and aarch64 Linux
    private const int LOCK_EX = 2, LOCK_NB = 4;
    private const int EINTR = 4, EAGAIN = 11;

    /// <summary>Opens (creating it 0600) <paramref name="path"/> and takes an exclusive flock on it, polling until
    /// <paramref name="timeout"/>. Returns null on timeout; the lock is released when the handle is closed.</summary>
    /// <exception cref="IOException">the file cannot be opened or locked.</exception>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle? LockFile(string path, TimeSpan timeout)
    {
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0b110_000_000);
        if (fd < 0)
            throw new IOException($"cannot open lock file {path}: errno {Marshal.GetLastPInvokeError()}");
        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var pause = 1;
        while (true)
        {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                return handle;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EAGAIN && errno != EINTR)
            {
                handle.Dispose();
                throw new IOException($"cannot lock {path}: errno {errno}");
            }
            if (Environment.TickCount64 >= deadline)
            {
                handle.Dispose();
                return null;
            }
            Thread.Sleep(pause);
            pause = Math.Min(pause * 2, 50);
        }
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static unsafe partial int getrlimit(int resource, ulong* limits);

    private const int RLIMIT_NOFILE = 7; // same on x86_64 and aarch64 Linux

    /// <summary>This process's soft RLIMIT_NOFILE (the most descriptors it may hold); 1024 if it cannot be read.</summary>
    public static unsafe long OpenFileLimit()
    {
        ulong* limits = stackalloc ulong[2];
        return getrlimit(RLIMIT_NOFILE, limits) == 0 ? (long)Math.Min(limits[0], (ulong)int.MaxValue) : 1024;
    }
}

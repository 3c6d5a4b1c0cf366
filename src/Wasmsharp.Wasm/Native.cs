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
}

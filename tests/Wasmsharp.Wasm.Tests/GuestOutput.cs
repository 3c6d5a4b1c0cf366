using System.Diagnostics;

namespace Wasmsharp.Wasm.Tests;

/// <summary>A running guest's stdout file, read while the guest may still write it.</summary>
internal static class GuestOutput
{
    public static string Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(file).ReadToEnd();
    }

    /// <summary>Waits until the guest's stdout satisfies <paramref name="condition"/>.</summary>
    public static async Task WaitFor(string stdout, Func<string, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition(Read(stdout)))
        {
            Assert.True(clock.Elapsed < timeout, $"timed out waiting for output; got: {Read(stdout)}");
            await Task.Delay(5);
        }
    }
}

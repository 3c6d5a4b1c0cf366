namespace Wasmsharp.Shim;

/// <summary>
/// Timestamps of the steps of a container's start, for performance work: appended (µs since the epoch, pid,
/// step) to $WASMSHARP_TRACE_FILE when containerd's environment sets it; nothing otherwise.
/// </summary>
internal static class StartupTrace
{
    private static readonly string? FilePath = Environment.GetEnvironmentVariable("WASMSHARP_TRACE_FILE") is { Length: > 0 } f ? f : null;

    public static void Mark(string step)
    {
        if (FilePath is null) return;
        var micros = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;
        try
        {
            File.AppendAllText(FilePath, $"{micros} {Environment.ProcessId} {step}\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

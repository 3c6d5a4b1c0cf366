using System.Globalization;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Display;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// Shim logging. The daemon writes to the bundle's "log" FIFO, which containerd copies into its own log;
/// the short-lived start/delete commands write to stderr. Never to stdout: containerd parses it.
/// </summary>
internal static class ShimLog
{
    public static ILogger ToStderr(bool debug) => Create(Console.Error, debug);

    /// <summary>Opens the bundle's log FIFO; without one, logs go nowhere rather than fail the shim.</summary>
    public static ILogger ToBundleLog(string bundle, bool debug)
    {
        var path = Path.Combine(bundle, "log");
        try
        {
            // O_RDWR on the FIFO: opening never blocks, and writes survive containerd re-opening it.
            var handle = Files.OpenFifoReadWrite(path);
            return Create(new StreamWriter(new FileStream(handle, FileAccess.Write, 1)), debug);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException)
        {
            return Create(TextWriter.Null, debug);
        }
    }

    private static ILogger Create(TextWriter writer, bool debug) =>
        new LoggerConfiguration()
            .MinimumLevel.Is(debug ? LogEventLevel.Debug : LogEventLevel.Information)
            .WriteTo.Sink(new LogfmtSink(writer))
            .CreateLogger();

    /// <summary>One logfmt line per event, the format containerd and its shims log in.</summary>
    private sealed class LogfmtSink(TextWriter writer) : ILogEventSink
    {
        // ":l" renders string properties without quotes.
        private static readonly MessageTemplateTextFormatter MessageFormat = new("{Message:l}", CultureInfo.InvariantCulture);

        public void Emit(LogEvent e)
        {
            var level = e.Level switch
            {
                LogEventLevel.Verbose => "trace",
                LogEventLevel.Debug => "debug",
                LogEventLevel.Information => "info",
                LogEventLevel.Warning => "warning",
                LogEventLevel.Error => "error",
                _ => "fatal",
            };
            var rendered = new StringWriter(CultureInfo.InvariantCulture);
            MessageFormat.Format(e, rendered);
            var message = rendered.ToString();
            if (e.Exception is not null) message += ": " + e.Exception;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"time=\"{e.Timestamp.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffffZ}\" level={level} msg=\"{Escape(message)}\" runtime=wasmsharp\n");
            lock (writer)
            {
                try
                {
                    writer.Write(line);
                    writer.Flush();
                }
                catch (IOException)
                {
                    // containerd went away: drop the line rather than fail the shim.
                }
            }
        }

        private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
    }
}

namespace Wasmsharp.Shim;

/// <summary>
/// Where a process's output goes, as containerd names it in CreateTaskRequest.stdout: a FIFO path
/// (no scheme, or fifo://), <c>file:///path</c> (cio.LogFile: stdout and stderr appended to one file) or
/// <c>binary:///path/to/logger?k=v</c> (a logging binary, as nerdctl uses). Parsed the way containerd's
/// shim does with Go's url.Parse: the path is percent-decoded; each query key becomes an argument,
/// followed by its first value (empty when the key has none).
/// </summary>
internal sealed record StdioUri(string Scheme, string Path, IReadOnlyList<string> Args)
{
    public const string Fifo = "fifo", File = "file", Binary = "binary";

    public static StdioUri Parse(string value)
    {
        var sep = value.IndexOf("://", StringComparison.Ordinal);
        if (sep < 0) return new StdioUri(Fifo, value, []);
        var scheme = value[..sep].ToLowerInvariant();
        if (scheme.Length == 0 || !char.IsAsciiLetter(scheme[0]) || !scheme.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.'))
        {
            throw new NotSupportedException($"stdio {value}: not a valid URI");
        }
        var rest = value[(sep + 3)..];
        var hash = rest.IndexOf('#');
        if (hash >= 0) rest = rest[..hash];
        var query = "";
        var q = rest.IndexOf('?');
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }
        // Anything before the first '/' is the authority (host), which these schemes ignore.
        var slash = rest.IndexOf('/');
        var path = slash < 0 ? "" : Unescape(rest[slash..], plusIsSpace: false);
        switch (scheme)
        {
            case Fifo:
            case File:
                if (path.Length == 0) throw new NotSupportedException($"stdio {value}: the URI has no path");
                return new StdioUri(scheme, path, []);
            case Binary:
                if (path.Length == 0) throw new NotSupportedException($"stdio {value}: the URI names no logging binary");
                return new StdioUri(scheme, path, QueryArgs(query));
            default:
                throw new NotSupportedException($"stdio {value}: unknown STDIO scheme {scheme} (supported: fifo path, file://, binary://)");
        }
    }

    private static List<string> QueryArgs(string query)
    {
        var args = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            var key = Unescape(eq < 0 ? pair : pair[..eq], plusIsSpace: true);
            var val = eq < 0 ? "" : Unescape(pair[(eq + 1)..], plusIsSpace: true);
            // Go's url.Values keeps every value of a key; containerd passes only the first.
            if (!seen.Add(key)) continue;
            args.Add(key);
            args.Add(val);
        }
        return args;
    }

    private static string Unescape(string s, bool plusIsSpace) =>
        Uri.UnescapeDataString(plusIsSpace ? s.Replace('+', ' ') : s);
}

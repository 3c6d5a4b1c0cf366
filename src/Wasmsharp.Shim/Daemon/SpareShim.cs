using Microsoft.Win32.SafeHandles;
using System.Text;
using Wasmsharp.Linux;
using Wasmsharp.Wasm;

namespace Wasmsharp.Shim;

/// <summary>
/// A spare daemon, started in advance, that `start` hands the next container to: that container then does not
/// wait for a new process to start up and make its Wasm engine (~10 ms of every container's start). One spare
/// per shim binary and containerd, listening on a root-only socket next to the shims'; `start` sends it the
/// daemon's arguments, the bundle, its environment and the listening socket. The next spare is already
/// there: a spare starts a standby (at idle priority, as the spare runs; 50 ms after it took over from its own
/// standby, 150 ms after a start that `start` spawned) that warms up at once, waits on a pipe and takes the
/// spare's place when the spare is adopted (end-of-file) or dies. No process starts during a
/// container's start: a new process's start-up took ~2 ms of a hello start's CPU time on 2 CPUs. A spare
/// that nobody adopts leaves after <see cref="IdleLimit"/>, or as soon as its containerd is gone, and tells its
/// standby to leave too. WASMSHARP_SPARE_SHIM=off (in containerd's environment) turns this off.
/// </summary>
internal static class SpareShim
{
    public const string Flag = "-spare";
    public const string StandbyFlag = "-standby"; // -standby SOCKET, the pipe on fd 3, then the spare's flags
    private const int StandbyFd = 3;
    private static ReadOnlySpan<byte> LeaveByte => "q"u8;
    public const string SwitchVariable = "WASMSHARP_SPARE_SHIM";
    private const string Greeting = "wasmsharp-adopt-1";
    private const int MaxMessageBytes = 128 * 1024;
    private const int CommandLineRoom = 640; // flags, namespace, address, binary and id of a daemon fit
    public static readonly TimeSpan IdleLimit = TimeSpan.FromMinutes(10);

    // The spare waits this long before warming up: the container whose `start` spawned it is still starting,
    // and idle priority does not keep the warm-up's memory traffic off its CPU caches.
    private static readonly TimeSpan WarmUpDelay = TimeSpan.FromMilliseconds(150);
    // A standby that took over is warm already; its own standby starts sooner, so that containers started
    // ~100 ms apart still find warm spares (its start-up, at idle priority, is past the container's by then).
    private static readonly TimeSpan StandbyDelay = TimeSpan.FromMilliseconds(50);

    public static bool Enabled => !string.Equals(Environment.GetEnvironmentVariable(SwitchVariable), "off", StringComparison.OrdinalIgnoreCase);

    /// <summary>The spare's socket: one per binary (path and file identity, so a replaced binary never adopts
    /// through a spare of the old one) and per containerd.</summary>
    public static string SocketPath(string containerdAddress, string? socketDir)
    {
        var self = Environment.ProcessPath ?? "";
        var info = new FileInfo(self);
        var key = $"{self}\n{(info.Exists ? info.Length : 0)}\n{(info.Exists ? info.LastWriteTimeUtc.Ticks : 0)}\n{containerdAddress}";
        var hash = Convert.ToHexStringLower(System.IO.Hashing.XxHash128.Hash(Encoding.UTF8.GetBytes(key)));
        return $"{ShimAddress.SocketDirectory(socketDir)}/wasmsharp-spare-{hash}";
    }

    // ---- `start`'s side --------------------------------------------------------------------------------

    /// <summary>
    /// Hands <paramref name="listener"/> to the spare at <paramref name="sparePath"/>, which then serves as the
    /// daemon for <paramref name="bundle"/>. Returns the daemon's pid, or null (no spare, or it declined): the
    /// caller then spawns a daemon itself. The spare serves only after our final "go", so a spare that answers
    /// too late can never serve beside the daemon the caller spawns instead.
    /// </summary>
    public static int? TryHandOver(string sparePath, string bundle, IReadOnlyList<string> daemonArgs, int listener)
    {
        int? connection;
        try
        {
            connection = Sockets.ConnectUnixMessages(sparePath);
        }
        catch (LinuxException)
        {
            return null;
        }
        if (connection is not int fd) return null;
        try
        {
            var message = Encode(bundle, daemonArgs, Processes.EnvironmentStrings().ToList());
            if (message.Length > MaxMessageBytes) return null;
            Sockets.Send(fd, message, listener);
            if (!Sockets.WaitReadable(fd, TimeSpan.FromSeconds(2))) return null;
            var reply = new byte[64];
            var n = Sockets.Receive(fd, reply, out var stray);
            if (stray >= 0) Sockets.Close(stray);
            var text = Encoding.ASCII.GetString(reply, 0, n);
            if (!text.StartsWith("ready ", StringComparison.Ordinal) || !int.TryParse(text[6..], out var pid)) return null;
            Sockets.Send(fd, "go"u8);
            return pid;
        }
        catch (LinuxException)
        {
            return null;
        }
        finally
        {
            Sockets.Close(fd);
        }
    }

    /// <summary>Starts a spare for the next container (detached, stdio on /dev/null); best effort. `start` does
    /// this only when it found no spare.</summary>
    public static void Spawn(ShimOptions options, string sparePath) => SpawnSelf(Flag, options, sparePath, null);

    // `SELF -spare|-standby SOCKET -address ADDRESS -publish-binary BINARY`.
    private static string[] CommandLine(string self, string flag, ShimOptions options, string sparePath) =>
        [self, flag, sparePath, "-address", options.Address, "-publish-binary", options.PublishBinary];

    // The blank last argument is room for the daemon's command line, written over this one on adoption.
    private static bool SpawnSelf(string flag, ShimOptions options, string sparePath, SafeFileHandle? pipe)
    {
        try
        {
            var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the shim executable");
            string[] args = [.. CommandLine(self, flag, options, sparePath), new string(' ', CommandLineRoom)];
            var fds = pipe is null ? new Dictionary<int, int>() : new Dictionary<int, int> { [StandbyFd] = (int)pipe.DangerousGetHandle() };
            Processes.Spawn(self, args, Processes.EnvironmentStrings().ToList(), fds, newProcessGroup: true);
            return true;
        }
        catch (Exception e) when (e is LinuxException or InvalidOperationException)
        {
            return false; // the next container starts its own daemon
        }
    }

    // The spare's side of its standby: the pipe's write end. Closing it (adopted, or dead) lets the standby in;
    // a byte first sends it away.
    private sealed class Standby(SafeFileHandle pipe) : IDisposable
    {
        public static Standby? Start(ShimOptions options, string sparePath)
        {
            var (read, write) = Files.CreatePipe();
            using (read)
            {
                if (SpawnSelf(StandbyFlag, options, sparePath, read)) return new Standby(write);
            }
            write.Dispose();
            return null;
        }

        public void SendAway()
        {
            try
            {
                Pipes.WriteAll(pipe, LeaveByte);
            }
            catch (LinuxException)
            {
                // gone already
            }
            pipe.Dispose();
        }

        public void Dispose() => pipe.Dispose();
    }

    /// <summary>
    /// A standby process: waits (at idle priority) until the spare that started it is adopted or dies, then
    /// becomes the spare. Returns the exit code; 0 also when it was sent away.
    /// </summary>
    public static Task<int> RunStandbyAsync(string sparePath, ShimOptions options)
    {
        Processes.SetIdleScheduling(true);
        Directory.SetCurrentDirectory("/");
        // Warmed up while waiting: a spare that takes over is ready at once, even for a container that
        // follows the last one by less than WarmUpDelay.
        Task<WasmHost>? host = null;
        var warmAt = DateTime.UtcNow; // we are started after the containers that made our spare
        using (var pipe = new SafeFileHandle(StandbyFd, ownsHandle: true))
        {
            Span<byte> got = stackalloc byte[1];
            while (true)
            {
                var n = Descriptors.Read(pipe, got, host is null ? Max(warmAt - DateTime.UtcNow, TimeSpan.Zero) : TimeSpan.FromMinutes(1));
                if (n == 0) break;                                           // our turn
                if (n > 0) return Task.FromResult(0);                        // sent away
                if (host is null && DateTime.UtcNow >= warmAt) host = WarmUp();
                else if (!File.Exists(options.Address)) return Task.FromResult(0); // containerd gone
            }
        }
        // Looks like any spare from now on.
        Processes.SetCommandLine(CommandLine(Environment.ProcessPath ?? "containerd-shim-wasmsharp-v1", Flag, options, sparePath));
        return RunAsync(sparePath, options, host);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static byte[] Encode(string bundle, IReadOnlyList<string> args, IReadOnlyList<string> env)
    {
        // NUL-separated: greeting, bundle, argument count, arguments, environment count, environment.
        var parts = new List<string> { Greeting, bundle, args.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        parts.AddRange(args);
        parts.Add(env.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        parts.AddRange(env);
        return Encoding.UTF8.GetBytes(string.Join('\0', parts));
    }

    internal sealed record Adoption(string Bundle, IReadOnlyList<string> Args, IReadOnlyList<string> Environment);

    internal static Adoption? Decode(ReadOnlySpan<byte> message)
    {
        var parts = Encoding.UTF8.GetString(message).Split('\0');
        if (parts.Length < 4 || parts[0] != Greeting) return null;
        if (!int.TryParse(parts[2], out var argCount) || argCount < 0 || 3 + argCount >= parts.Length) return null;
        var args = parts[3..(3 + argCount)];
        var at = 3 + argCount;
        if (!int.TryParse(parts[at], out var envCount) || envCount != parts.Length - at - 1) return null;
        return new Adoption(parts[1], args, parts[(at + 1)..]);
    }

    // The one variable containerd sets per container rather than per containerd.
    private static bool SameEnvironment(IReadOnlyList<string> theirs) =>
        Comparable(theirs).SetEquals(Comparable(Processes.EnvironmentStrings()));

    private static HashSet<string> Comparable(IEnumerable<string> env) =>
        env.Where(v => !v.StartsWith("NAMESPACE=", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);

    // ---- the spare's side -------------------------------------------------------------------------------

    /// <summary>
    /// The spare process: waits to be adopted, then runs as the daemon of the container it was handed.
    /// Returns the exit code; 0 also when it left unadopted.
    /// </summary>
    public static async Task<int> RunAsync(string sparePath, ShimOptions options, Task<WasmHost>? warm = null)
    {
        // At idle priority until adopted: the warm-up uses only CPU time nobody else wants.
        Processes.SetIdleScheduling(true);
        Directory.SetCurrentDirectory("/"); // never hold a bundle directory
        int listener;
        long inode;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(sparePath)!);
            (listener, inode) = ListenExclusively(sparePath);
        }
        catch (Exception e) when (e is LinuxException or IOException or UnauthorizedAccessException)
        {
            return 0; // another spare is there, or none can be: nothing to do
        }

        var host = warm;
        Standby? standby = null;
        var standbyTried = false;
        var idleSince = DateTime.UtcNow;
        // Warm-up (unless we were a standby) and our standby wait as long: we are often started while a
        // container is starting.
        var warmAt = DateTime.UtcNow + (warm is null ? WarmUpDelay : StandbyDelay);
        Adoption? adoption = null;
        var listenerFd = -1;
        try
        {
            while (adoption is null)
            {
                var wait = standbyTried ? TimeSpan.FromSeconds(5) : warmAt - DateTime.UtcNow;
                if (!Sockets.WaitReadable(listener, Max(wait, TimeSpan.Zero)))
                {
                    if (!standbyTried && DateTime.UtcNow >= warmAt)
                    {
                        host ??= WarmUp();
                        standby = Standby.Start(options, sparePath);
                        standbyTried = true;
                    }
                    if (DateTime.UtcNow - idleSince > IdleLimit || !File.Exists(options.Address))
                    {
                        standby?.SendAway();
                        return 0;
                    }
                    continue;
                }
                switch (TryAdopt(listener, out adoption, out listenerFd))
                {
                    case Outcome.Leave:
                        standby?.SendAway(); // it would decline too
                        return 0;
                    case Outcome.Adopted:
                        break;
                }
            }
        }
        finally
        {
            // Adopted or leaving: the name goes at once, then the standby may take it.
            RemoveIfOurs(sparePath, inode);
            Sockets.Close(listener);
            standby?.Dispose();
        }
        Processes.SetIdleScheduling(false);
        // Adopted before we had warmed up (starts less than WarmUpDelay apart): the next container should find a
        // spare, so one starts now, as `start` used to start one (not at idle priority: we would wait for it).
        if (!standbyTried) Standby.Start(options, sparePath)?.Dispose();
        host ??= Daemon.MakeHost(null);
        Directory.SetCurrentDirectory(adoption.Bundle);
        foreach (var variable in adoption.Environment)
        {
            var eq = variable.IndexOf('=');
            if (eq > 0) Environment.SetEnvironmentVariable(variable[..eq], variable[(eq + 1)..]);
        }
        // ps, pkill -f and containerd's tooling find a shim by its flags (-id ...): show the ones a spawned daemon has.
        Processes.SetCommandLine([Environment.ProcessPath ?? "containerd-shim-wasmsharp-v1", .. adoption.Args]);
        return await Daemon.RunAsync(ShimOptions.Parse(adoption.Args), listenerFd, host).ConfigureAwait(false);
    }

    // The Wasm host, and the first use of the JSON reader that Create will need for config.json.
    private static Task<WasmHost> WarmUp()
    {
        _ = Task.Run(() => Oci.Spec.Parse("""{"ociVersion":"1.0.2","process":{"args":["warm-up"],"cwd":"/"},"root":{"path":"rootfs"}}"""));
        return Daemon.MakeHost(null);
    }

    // Binds the spare path; a stale socket (nobody accepting) is replaced, a live one is left alone.
    private static (int Fd, long Inode) ListenExclusively(string path)
    {
        int fd;
        try
        {
            fd = Sockets.ListenUnixMessages(path);
        }
        catch (LinuxException e) when (e.Errno == 98 /* EADDRINUSE */)
        {
            if (Sockets.ConnectUnixMessages(path) is int live)
            {
                Sockets.Close(live);
                throw;
            }
            File.Delete(path);
            fd = Sockets.ListenUnixMessages(path);
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (fd, Files.Inode(path));
    }

    private enum Outcome { NotAdopted, Adopted, Leave }

    // One adoption attempt: the message and the listener, our "ready", then "go" (or the end of the connection).
    private static Outcome TryAdopt(int listener, out Adoption? adoption, out int listenerFd)
    {
        adoption = null;
        listenerFd = -1;
        int connection;
        try
        {
            connection = Sockets.Accept(listener, out var uid);
            if (uid != Tmds.Linux.LibC.geteuid())
            {
                Sockets.Close(connection);
                return Outcome.NotAdopted;
            }
        }
        catch (LinuxException)
        {
            return Outcome.NotAdopted;
        }
        try
        {
            var buffer = new byte[MaxMessageBytes];
            if (!Sockets.WaitReadable(connection, TimeSpan.FromSeconds(2))) return Outcome.NotAdopted;
            var n = Sockets.Receive(connection, buffer, out listenerFd);
            var offered = Decode(buffer.AsSpan(0, n));
            if (offered is null || listenerFd < 0) return Decline(ref listenerFd, Outcome.NotAdopted);
            if (!SameEnvironment(offered.Environment))
            {
                // containerd's environment changed (restarted with other settings): make way for a spare that has it.
                Sockets.Send(connection, "no environment"u8);
                return Decline(ref listenerFd, Outcome.Leave);
            }
            Sockets.Send(connection, Encoding.ASCII.GetBytes($"ready {Environment.ProcessId}"));
            // No timeout: `start` either says go or goes away (closing the connection), and only "go" commits.
            Span<byte> go = stackalloc byte[8];
            var got = Sockets.Receive(connection, go, out var stray);
            if (stray >= 0) Sockets.Close(stray);
            if (got != 2 || !go[..2].SequenceEqual("go"u8)) return Decline(ref listenerFd, Outcome.NotAdopted);
            adoption = offered;
            return Outcome.Adopted;
        }
        catch (LinuxException)
        {
            return Decline(ref listenerFd, Outcome.NotAdopted);
        }
        finally
        {
            Sockets.Close(connection);
        }
    }

    private static Outcome Decline(ref int listenerFd, Outcome outcome)
    {
        if (listenerFd >= 0) Sockets.Close(listenerFd);
        listenerFd = -1;
        return outcome;
    }

    private static void RemoveIfOurs(string path, long inode)
    {
        try
        {
            if (Files.Inode(path) == inode) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException)
        {
        }
    }
}

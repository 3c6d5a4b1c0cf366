using Wasmsharp.Linux;
using Wasmsharp.Oci;

namespace Wasmsharp.Shim;

/// <summary>
/// `shim start`: find or create the shim for this container's group, hand the listening socket to a
/// detached daemon, print its address. containerd reads our stdout and stderr together, so print only
/// the address.
/// </summary>
internal static class StartCommand
{
    public static int Run(ShimOptions options)
    {
        // Runtime options (a marshalled Any) arrive on stdin; nothing in them applies yet.
        DrainStdin();
        var bundle = Directory.GetCurrentDirectory();
        var spec = Spec.Load(Path.Combine(bundle, "config.json"));
        var group = ShimAddress.GroupId(options.Id, spec.Annotations);
        var socketPath = ShimAddress.SocketPath(options.Address, options.Namespace, group);
        var address = ShimAddress.ToUri(socketPath);

        if (!ShimAddress.IsLive(socketPath))
        {
            if (!TryServe(options, socketPath) && !ShimAddress.IsLive(socketPath))
            {
                throw new InvalidOperationException($"cannot listen on {socketPath}");
            }
        }
        // containerd (1.6/1.7) reconnects to running shims from this file after a restart.
        File.WriteAllText(Path.Combine(bundle, "address"), address);
        Console.Out.Write(address);
        Console.Out.Flush();
        return 0;
    }

    private static bool TryServe(ShimOptions options, string socketPath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        File.Delete(socketPath); // stale: nobody answered on it
        int listener;
        try
        {
            listener = Sockets.ListenUnix(socketPath);
        }
        catch (LinuxException e) when (e.Errno == 98 /* EADDRINUSE */)
        {
            return false; // another start for the same group won the race
        }
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the shim executable");
        try
        {
            AdjustOomScore(Processes.SpawnDaemon(self, [self, .. options.DaemonArgs()], listener));
        }
        finally
        {
            Sockets.Close(listener);
        }
        return true;
    }

    // The shim should be killed by the OOM killer just before containerd, not before its containers.
    private static void AdjustOomScore(int daemonPid)
    {
        try
        {
            var parent = int.Parse(File.ReadAllText($"/proc/{Processes.GetParentProcessId()}/oom_score_adj").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText($"/proc/{daemonPid}/oom_score_adj", Math.Min(1000, parent + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // Best effort, as in containerd's own shims.
        }
    }

    private static void DrainStdin()
    {
        try
        {
            if (!Console.IsInputRedirected) return;
            using var stdin = Console.OpenStandardInput();
            stdin.CopyTo(Stream.Null);
        }
        catch (IOException)
        {
        }
    }
}

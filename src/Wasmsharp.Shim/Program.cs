using Wasmsharp.Shim;

// containerd-shim-wasmsharp-v1: `start` and `delete` are short commands containerd runs; with no
// action we are the daemon that start spawned.
#if WASMSHARP_GRPC
if (args.Length > 0 && args[0] == ArtifactModuleFetcher.Command)
{
    try
    {
        return await FetchModuleCommand.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{ArtifactModuleFetcher.Command}: {e.Message}");
        return 2;
    }
    catch (Exception e)
    {
        // The shim passes this on to the user: the message, not a stack trace.
        Console.Error.WriteLine($"{ArtifactModuleFetcher.Command}: {e.Message}");
        return 1;
    }
}
#endif

StartupTrace.Mark("main");
// A spare daemon or its standby (see SpareShim): -spare|-standby SOCKET, then the flags it was started with.
if (args.Length >= 2 && (args[0] == SpareShim.Flag || args[0] == SpareShim.StandbyFlag))
{
    try
    {
        var spareOptions = ShimOptions.Parse(args[2..].Where(a => a.Trim().Length > 0).ToList()); // without the blank room
        return args[0] == SpareShim.Flag
            ? MainThread.Run(() => SpareShim.RunAsync(args[1], spareOptions))
            : MainThread.Run(() => SpareShim.RunStandbyAsync(args[1], spareOptions));
    }
    catch (Exception e)
    {
        Console.Error.WriteLine($"containerd-shim-wasmsharp-v1 {args[0]}: {e.Message}");
        return 1;
    }
}

ShimOptions options;
try
{
    options = ShimOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"containerd-shim-wasmsharp-v1: {e.Message}");
    return 2;
}

if (options.Version)
{
    Console.WriteLine(VersionInfo.Text);
    return 0;
}

try
{
    if (options.Info) return InfoCommand.Run();
    return options.Action switch
    {
        "start" => StartCommand.Run(options),
        "delete" => await DeleteCommand.RunAsync(options, ShimLog.ToStderr(options.Debug)),
        // The first thread stays free for work only it can do (MainThread).
        _ => MainThread.Run(() => Daemon.RunAsync(options)),
    };
}
catch (Exception e)
{
    Console.Error.WriteLine($"containerd-shim-wasmsharp-v1 {(options.Info ? "-info" : options.Action)}: {e.Message}");
    return 1;
}

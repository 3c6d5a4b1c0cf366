// Unix file modes and tar semantics: this tool runs where containerd runs.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Wasmsharp.ImageTool;

// wasmsharp-image: builds OCI image tarballs that `ctr images import` and `docker load` accept.
// Exit codes: 0 done, 1 failed while writing, 2 bad command line (the message says what to fix).
public static class Program
{
    public const string Usage = """
        usage: wasmsharp-image build --name NAME[:TAG] --output FILE.tar [options]

          --name NAME[:TAG]          image reference stored in the archive (tag defaults to "latest")
          --output FILE              OCI image-layout tarball to write
          --platform OS/ARCH[/VAR]   image platform (default: linux/<this machine's architecture>)
          --file HOST:/GUEST         add a host file (or directory, recursively) at an absolute guest
                                     path; mode is kept, parent directories are created (repeatable)
          --symlink /GUEST:TARGET    add a symbolic link (repeatable)
          --entrypoint PATH          config.Entrypoint (repeat for more words)
          --cmd ARG                  config.Cmd (repeatable)
          --env K=V                  config.Env (repeatable)
        """;

    public static int Main(string[] args)
    {
        try
        {
            if (args.Length == 0)
            {
                Console.Error.WriteLine(Usage);
                return 2;
            }
            if (args[0] is "-h" or "--help" or "help")
            {
                Console.Out.WriteLine(Usage);
                return 0;
            }
            return args[0] switch
            {
                "build" => BuildCommand.Run(args[1..]),
                _ => throw new UsageException($"unknown command '{args[0]}'"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"wasmsharp-image: {e.Message}");
            Console.Error.WriteLine("run 'wasmsharp-image --help' for usage");
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"wasmsharp-image: {e.Message}");
            return 1;
        }
    }
}

// A problem with what the user asked for (exit code 2), as opposed to a failure while doing it.
public sealed class UsageException(string message) : Exception(message);

// Unix file modes and tar semantics: this tool runs where containerd runs.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Wasmsharp.ImageTool;

// wasmsharp-image: builds OCI image tarballs that `ctr images import` and `docker load` accept.
// Exit codes: 0 done, 1 failed while writing, 2 bad command line (the message says what to fix).
public static class Program
{
    public const string Usage = """
        usage: wasmsharp-image build --name NAME[:TAG] --output FILE.tar [options]

        Two forms. Rootfs (default): the files below in one tar layer, the .wasm is a file of it.
        Artifact (with --module): an OCI Wasm artifact, each module a layer of its own, no rootfs
        (needs containerd >= 1.6.25 or 1.7.7 to unpack).

          --name NAME[:TAG]          image reference stored in the archive (tag defaults to "latest")
          --output FILE              OCI image-layout tarball to write
          --platform OS/ARCH[/VAR]   image platform (default: linux/<this machine's architecture>;
                                     for the artifact form wasip1/wasm, wasip2/wasm when a module is
                                     a component; Docker uses wasi/wasm)
          --file HOST:/GUEST         add a host file (or directory, recursively) at an absolute guest
                                     path; mode is kept, parent directories are created (repeatable)
          --symlink /GUEST:TARGET    add a symbolic link (repeatable)
          --module FILE.wasm         artifact form: the module as a layer titled with its file name
                                     (repeatable; the entrypoint's file name picks one at run time)
          --media-type TYPE          module layer type: wasm (application/wasm), component
                                     (application/vnd.bytecodealliance.wasm.component.layer.v0+wasm),
                                     content (application/vnd.wasm.content.layer.v1+wasm), or type/subtype;
                                     default from each file's header: component for a component,
                                     wasm for a core module
          --entrypoint PATH          config.Entrypoint (repeat for more words; artifact form default:
                                     the only module's file name)
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

using Wasmsharp.Linux;
using Wasmsharp.Oci;

namespace Wasmsharp.Shim.Hooks;

/// <summary>The lifecycle points at which the runtime spec runs hooks, named as in config.json.</summary>
internal enum HookStage { Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop }

/// <summary>
/// A container's OCI hooks, run as runc runs them: each hook's <c>path</c> with argv <c>args</c> (just the path
/// when none), its <c>env</c> (absent: the shim's environment, or for startContainer the container's, as runc
/// does), the container's state JSON on stdin, killed past <c>timeout</c> seconds; the hooks of a stage run in
/// order and the first failure stops them, with runc's message ("error running prestart hook #0: exit status
/// 1, stdout: …, stderr: …").
/// </summary>
/// <remarks>
/// Where each stage runs, as in runc: prestart, createRuntime and poststart in the runtime's namespaces (the
/// shim's); createContainer and startContainer in the container's network namespace (there is no other
/// namespace of the container for a process to be in: the guest is a thread of the shim). State status:
/// "creating" for the create stages, "created" for startContainer, "running" for poststart, "stopped" (no
/// pid) for poststop. What a failure does is the caller's (see TaskService): create stages fail Create,
/// startContainer and poststart fail Start and kill the guest, poststop is only logged.
/// </remarks>
internal sealed class OciHooks
{
    private readonly Oci.Hooks hooks;
    private readonly string id;
    private readonly Bundle bundle;

    private OciHooks(Oci.Hooks hooks, string id, Bundle bundle)
    {
        this.hooks = hooks;
        this.id = id;
        this.bundle = bundle;
    }

    /// <summary>The hooks of <paramref name="bundle"/>'s config.json; null when it has none.</summary>
    /// <exception cref="BundleException">a hook without an absolute path, or with a negative timeout.</exception>
    public static OciHooks? FromSpec(string id, Bundle bundle)
    {
        var hooks = bundle.Spec.Hooks;
        if (hooks is null) return null;
        var any = false;
        foreach (var stage in Enum.GetValues<HookStage>())
        {
            var list = List(hooks, stage);
            for (var i = 0; i < list.Count; i++)
            {
                any = true;
                var where = $"{bundle.ConfigPath}: hooks.{Name(stage)}[{i}]";
                if (!Path.IsPathRooted(list[i].Path)) throw new BundleException($"{where}: path \"{list[i].Path}\" must be absolute");
                if (list[i].Timeout is <= 0) throw new BundleException($"{where}: timeout must be a positive number of seconds");
            }
        }
        return any ? new OciHooks(hooks, id, bundle) : null;
    }

    public bool Has(HookStage stage) => List(hooks, stage).Count > 0;

    /// <summary>Runs the hooks of <paramref name="stage"/>; throws <see cref="HookException"/> at the first failure.</summary>
    /// <param name="pid">the task's pid (0 for poststop: the container has no process any more).</param>
    /// <param name="inside">the container's network namespace, for the stages that run in the container.</param>
    public void Run(HookStage stage, int pid, NetworkNamespace? inside)
    {
        var list = List(hooks, stage);
        if (list.Count == 0) return;
        var state = new State
        {
            OciVersion = bundle.Spec.OciVersion ?? "1.0.2",
            Id = id,
            Status = stage switch
            {
                HookStage.StartContainer => "created",
                HookStage.Poststart => "running",
                HookStage.Poststop => "stopped",
                _ => "creating",
            },
            Pid = pid,
            Bundle = bundle.Path,
            Annotations = bundle.Spec.Annotations.Count > 0 ? bundle.Spec.Annotations : null,
        }.ToJson();
        var inContainer = stage is HookStage.CreateContainer or HookStage.StartContainer ? inside : null;
        for (var i = 0; i < list.Count; i++)
        {
            var hook = list[i];
            var failure = inContainer is null ? RunOne(stage, hook, state) : inContainer.RunInside(() => RunOne(stage, hook, state));
            if (failure is not null) throw new HookException($"error running {Name(stage)} hook #{i}: {failure}");
        }
    }

    // The failure as runc words it, or null.
    private string? RunOne(HookStage stage, Hook hook, byte[] state)
    {
        var args = hook.Args is { Count: > 0 } a ? a : [hook.Path];
        var env = hook.Env ?? (stage == HookStage.StartContainer ? bundle.Spec.Process?.Env : null) ?? Processes.EnvironmentStrings().ToList();
        RunResult result;
        try
        {
            result = Processes.Run(hook.Path, args, env, state, hook.Timeout is { } t ? TimeSpan.FromSeconds(t) : null);
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
        if (result.TimedOut) return $"hook ran past specified timeout of {hook.Timeout:0.0}s";
        return result.Succeeded ? null : $"{result.Status}, stdout: {result.Stdout}, stderr: {result.Stderr}";
    }

    private static string Name(HookStage stage) => stage switch
    {
        HookStage.Prestart => "prestart",
        HookStage.CreateRuntime => "createRuntime",
        HookStage.CreateContainer => "createContainer",
        HookStage.StartContainer => "startContainer",
        HookStage.Poststart => "poststart",
        _ => "poststop",
    };

    private static List<Hook> List(Oci.Hooks hooks, HookStage stage) => stage switch
    {
        HookStage.Prestart => hooks.Prestart,
        HookStage.CreateRuntime => hooks.CreateRuntime,
        HookStage.CreateContainer => hooks.CreateContainer,
        HookStage.StartContainer => hooks.StartContainer,
        HookStage.Poststart => hooks.Poststart,
        _ => hooks.Poststop,
    };
}

/// <summary>A hook failed; the message is runc's for the same failure.</summary>
internal sealed class HookException(string message) : Exception(message);

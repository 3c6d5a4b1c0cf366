namespace Wasmsharp.Wasm;

/// <summary>A host directory made visible to the guest at <paramref name="GuestPath"/>.</summary>
public sealed record Preopen(string HostPath, string GuestPath, bool ReadOnly);

/// <summary>How to run one guest: its WASI view of the world.</summary>
/// <remarks>
/// <b>Sockets</b> (WasmEdge's WASI socket extension, linked for modules that import it): every socket call
/// — socket, bind, connect, accept, name resolution — is made on the guest's own thread (the host function's
/// calling thread), never on a pool or Wasmtime thread, and a socket keeps the network namespace of the thread
/// that created it. So whoever runs guests in a container's network namespace must put the GUEST THREAD in it
/// (<see cref="ThreadSetup"/>, or by calling <see cref="WasmHost.Prepare"/> from a thread already there: the
/// guest thread is created by it and inherits the caller's namespaces) before the guest opens a socket.
/// Sockets are refused unless <see cref="NetworkAccess"/>.
/// </remarks>
public sealed record WasiSpec
{
    /// <summary>argv exactly as the guest sees it, argv[0] included.</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>The guest's whole environment; the host's environment is never inherited.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Env { get; init; } = [];

    /// <summary>Directories the guest can reach, e.g. the rootfs at "/" and bind mounts at their destinations.</summary>
    public IReadOnlyList<Preopen> Preopens { get; init; } = [];

    /// <summary>
    /// Working directory as a guest path. When it is not "/", the host directory it names (looked up in
    /// <see cref="Preopens"/>) is also preopened as "." — as the FIRST preopen (fd 3). See
    /// <see cref="WasiSetup"/> for why it must be first and what that means for different guest toolchains.
    /// </summary>
    public string? Cwd { get; init; }

    /// <summary>A missing <see cref="Cwd"/> is made (0755) rather than refused, as runc makes a container's (its init's,
    /// not an exec's); only in the rootfs (even a read-only one: runc makes it before the remount) or a writable mount.</summary>
    public bool CreateCwd { get; init; }

    /// <summary>File opened for the guest's stdin; null → empty stdin. Must be openable without blocking.</summary>
    public string? StdinPath { get; init; }

    /// <summary>File opened (O_WRONLY|O_CREAT|O_TRUNC) for stdout; null → discarded. Must be openable without blocking.</summary>
    public string? StdoutPath { get; init; }

    /// <summary>File opened (O_WRONLY|O_CREAT|O_TRUNC) for stderr; null → discarded. Must be openable without blocking.</summary>
    public string? StderrPath { get; init; }

    /// <summary>
    /// Most bytes the guest's linear memory may hold; null = no limit. A <c>memory.grow</c> past it fails and
    /// kills the guest (SIGKILL, <see cref="WasmExit.OutOfMemory"/>), as the OOM killer ends a process at its
    /// cgroup's limit. Can be changed while it runs (<see cref="WasmInstance.MemoryLimitBytes"/>).
    /// </summary>
    public long? MemoryLimitBytes { get; init; }

    /// <summary>
    /// Called on the guest's thread just before the entrypoint runs (after instantiation, during which Wasmtime may
    /// start threads of its own that should not inherit what this sets up); what it returns is disposed on that
    /// thread once the guest has ended, just before <see cref="WasmInstance.Completion"/> completes. For what
    /// belongs to the guest's thread, e.g. the cgroups it runs in. An exception ends the guest as a failure.
    /// </summary>
    public Func<IDisposable?>? GuestThreadScope { get; init; }

    /// <summary>
    /// Called on the guest's thread once the instance is made, before <see cref="WasmHost.Prepare"/> returns and
    /// so before anyone learns the thread's id: for what must hold for that thread from then on, e.g. the network
    /// namespace it lives in (namespaces are per thread, and every socket the guest opens is made on it). Never
    /// undone: the thread ends with the guest. An exception fails Prepare with its message.
    /// </summary>
    public Action? ThreadSetup { get; init; }

    /// <summary>
    /// Whether the guest may create sockets (WasmEdge's <c>sock_open</c>; <c>sock_accept</c> follows from it).
    /// False: <c>sock_open</c> fails with EACCES (2). Set it when the guest's thread will be in the container's
    /// network namespace (see the remarks).
    /// </summary>
    public bool NetworkAccess { get; init; }

    /// <summary>
    /// The guest's RLIMIT_NOFILE: a file or socket whose descriptor number would be ≥ this is not opened (EMFILE).
    /// Null = only the host's bound: every guest of the process together holds at most the process's own
    /// RLIMIT_NOFILE less a reserve the host keeps (<see cref="DescriptorPool"/>), and no guest more than that.
    /// A preview 2 component's files are not counted. All of the guest's sockets are closed when the instance ends,
    /// whatever the guest did.
    /// </summary>
    public long? DescriptorLimit { get; init; }

    /// <summary>
    /// Host path of the container's /etc/hosts, read by <c>sock_getaddrinfo</c> (besides numeric addresses and
    /// "localhost"); null = none. Other names go to DNS (<see cref="ResolvConf"/>).
    /// </summary>
    public string? HostsFile { get; init; }

    /// <summary>
    /// Host path of the container's /etc/resolv.conf: <c>sock_getaddrinfo</c> asks its nameservers (over UDP, from
    /// the guest's thread, so inside the container's network namespace) for names the hosts file does not have;
    /// null = no DNS.
    /// </summary>
    public string? ResolvConf { get; init; }

    /// <summary>
    /// stdin, stdout and stderr are a terminal (a pty: <c>ctr run -t</c>, <c>docker run -t</c>): they then report a
    /// character device without seek/tell rights, as a native process's tty, so the guest's <c>isatty()</c> is 1 —
    /// at whatever number the guest renumbers them to, while a file renumbered onto fd 0–2 stays a file.
    /// </summary>
    public bool StdioIsTerminal { get; init; }

    /// <summary>Exported function of type () → () to run.</summary>
    public string Entrypoint { get; init; } = DefaultEntrypoint;

    /// <summary>A module's default entrypoint; a component (which runs its <c>wasi:cli/run</c> export) accepts only this.</summary>
    public const string DefaultEntrypoint = "_start";
}

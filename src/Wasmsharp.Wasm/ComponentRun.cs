using Wasmtime;
using Wasmtime.Components;

namespace Wasmsharp.Wasm;

/// <summary>
/// Runs a WASI preview 2 component the way a core module's entrypoint runs: its <c>wasi:cli/run</c> export's
/// <c>run</c>, with Wasmtime's p2 implementation (<c>wasmtime_component_linker_add_wasip2</c>, the synchronous one)
/// fed from the same <see cref="WasiSpec"/>.
/// </summary>
/// <remarks>
/// Exit statuses: <c>run</c> returning ok → 0, err → 1; <c>wasi:cli/exit.exit</c> ok → 0, err → 1 and
/// <c>exit-with-code(n)</c> (WASI 0.2.12, in Wasmtime's linker) → n, both reported by Wasmtime as an exit error
/// carrying the status. What a C program's <c>exit(n)</c> becomes depends on its toolchain: wasi-libc through the
/// preview 1 adapter calls <c>exit</c>, so any n ≠ 0 is 1. Traps → 134.
/// <para><b>Blocking calls.</b> Every p2 wait (<c>wasi:io/poll</c>'s poll and pollable.block, the streams'
/// blocking-read/-write, hence a sleep, a stdin read, an accept) is a tokio <c>block_on</c> on the guest thread
/// (wasmtime-wasi's <c>in_tokio</c>), which neither epochs nor signals end. A kill is then reported after
/// <see cref="WasmInstance.KillGrace"/> (<see cref="WasmInstance.Abandoned"/>), the thread ending when the call
/// returns; pause holds the guest at its first epoch check after it. Shadowing <c>wasi:io/poll</c> would need
/// the original functions (a trampoline component) and resource values, which the binding does not marshal.</para>
/// <para><b>Sockets</b> (findings for libwasmtime 50.0.1: its <c>nm -D</c> and strings, and wasmtime's sources,
/// crates/c-api, crates/wasi, crates/wasi-http, as stored here: main at 49.0.0-dev, no 50.x tag). wasmtime-wasi makes no TCP/UDP socket unless the embedder calls <c>WasiCtxBuilder::allow_tcp</c> /
/// <c>allow_udp</c>: the default became deny in PR #13936, first released in 48.0.0 (46 and 47 allowed both).
/// The C API exports only <c>wasi_config_inherit_network</c> (the per-address check: allow all) and
/// <c>wasi_config_allow_ip_name_lookup</c> of the builder's network settings; <c>wasmtime_context_set_wasi</c> is
/// the only way a WASI context enters a store, and no environment variable or other linker entry reaches the
/// builder. So create-tcp-socket answers access-denied whatever <see cref="WasiSpec.NetworkAccess"/> says.
/// (Were TCP allowed, it would be namespace-correct: the socket is made by socket() on the calling, i.e. guest,
/// thread.) Providing <c>wasi:sockets</c> from the shim instead, shadowing add_wasip2's
/// (<c>wasmtime_component_linker_allow_shadowing(linker, bool)</c>, <c>_instance_add_func(inst, name, len,
/// callback, data, finalizer)</c>, <c>_instance_add_resource(inst, name, len, const resource_type_t*, destructor,
/// data, finalizer)</c>), fails at wasi:io: accept returns <c>tuple&lt;tcp-socket, input-stream,
/// output-stream&gt;</c>, connect's finish the two streams, every subscribe a <c>pollable</c>, and those must be
/// wasmtime-wasi's own resources (<c>ResourceType::host::&lt;DynInputStream&gt;()</c>, <c>DynOutputStream</c>,
/// <c>DynPollable</c>) for the library's <c>wasi:io/poll</c> and <c>wasi:io/streams</c> to take them. The C API
/// mints only <c>ResourceType::host_dynamic(u32)</c> resources (<c>wasmtime_component_resource_type_new_host(uint32_t)</c>,
/// <c>wasmtime_component_resource_host_new(bool owned, uint32_t rep, uint32_t ty)</c>), "disjoint from all other
/// types of resources", and cannot open the library's (<c>wasmtime_component_resource_any_to_host</c> fails with
/// "resource type mismatch"). The shim would have to shadow wasi:io itself and then everything that makes or takes
/// its resources: clocks' subscribe-*, cli's stdin/stdout/stderr, the whole of wasi:filesystem (its streams take
/// the library's descriptor), sockets and http; that is most of WASI p2, through raw resource values the binding
/// does not marshal. What would make it small: a C entry for allow_tcp/allow_udp, or one wrapping embedder
/// callbacks as wasi:io streams and pollables.</para>
/// <para><b>Name lookup</b> stays off: see <see cref="WasiNative"/> (getaddrinfo on a tokio blocking-pool thread).</para>
/// <para><b>Outgoing wasi:http is not linked</b>; a component importing <c>wasi:http/*</c> is refused at Create,
/// named from the linker's error (<c>wasmtime_component_type_import_nth</c> would list imports, but in 50.0.1 it
/// writes 8 bytes where main's header has a tagged 24-byte item, and <c>wasmtime_component_item_delete</c> on
/// that crashed the process: not used).
/// <c>wasmtime_component_linker_add_wasi_http</c> + <c>wasmtime_context_set_wasi_http</c> send every request
/// through <c>default_hooks()</c> (fixed in c-api store.rs; no C entry changes the hooks): <c>handle</c> spawns
/// <c>default_send_request</c> on wasmtime-wasi's process-wide tokio runtime (<c>runtime::RUNTIME</c>, a LazyLock
/// multi-thread runtime), whose worker threads run <c>TcpStream::connect(authority)</c>: socket() and connect() on
/// a worker, and for a host name tokio's lookup_host, getaddrinfo on a blocking-pool thread. A thread is born in
/// the network namespace of the thread that creates it, so the workers are in the namespace of whichever thread
/// first forced RUNTIME, and stay for the process. Here that is the warm-up guest (<see cref="WasmHost.BeginWarmUp"/>,
/// in the shim's namespace), or else a guest thread before it enters its container's (ThreadSetup runs after the
/// WASI context is built, and a stdin file's reader is a task spawned on RUNTIME). Measured through ctr (a
/// component sleeping in its own namespace): the guest thread in the container's namespace, the three
/// <c>tokio-rt-worker</c> threads and the <c>stdin</c> thread in the shim's; and in a process whose first WASI
/// call was a guest's inside a namespace, the workers were in that namespace. Moving them would mean no WASI call in
/// the process before a container's namespace is known (no warm-up, no spare shim warmed up), forcing RUNTIME
/// from a thread inside it, and one namespace per shim process for good: a pod's grouped shim qualifies (its
/// containers share the sandbox's namespace), a shim whose containers differ does not. Even then names would be
/// resolved from the shim's mount namespace, i.e. the node's /etc/resolv.conf and /etc/hosts, not the
/// container's (for a pod: no cluster DNS). Not correct, so not linked. What it would take: a C entry setting
/// <c>WasiHttpHooks::send_request</c> (the shim would connect and resolve on the guest thread, as for p1's
/// sockets), or a per-store tokio runtime the embedder creates on a thread of its choosing.</para>
/// <para><b>Serving <c>wasi:http/incoming-handler</c></b> (runwasi's <c>WASMTIME_HTTP_PROXY_SOCKET_ADDR</c>) cannot
/// be built on this C API; a proxy component is refused at Create. Calling the export is possible
/// (<c>wasmtime_component_instance_get_export_index</c>, <c>_get_func</c>, <c>wasmtime_component_func_call</c>
/// with <c>WASMTIME_COMPONENT_RESOURCE</c> values); its arguments are not. With the library's wasi:http/types
/// (add_wasi_http), <c>own&lt;incoming-request&gt;</c> and <c>own&lt;response-outparam&gt;</c> are
/// <c>ResourceType::host::&lt;HostIncomingRequest&gt;()</c> / <c>HostResponseOutparam</c> values made only by Rust
/// (<c>WasiHttpCtxView::new_incoming_request</c>, <c>new_response_outparam</c>, the response arriving on a Rust
/// oneshot): no exported function creates or reads them (<c>nm -D</c>: the only HTTP symbols are
/// <c>wasmtime_component_linker_add_wasi_http[_async]</c> and <c>wasmtime_context_set_wasi_http</c>). With the
/// shim's own wasi:http/types (host_dynamic resources, shadowing), <c>incoming-body.stream</c>,
/// <c>outgoing-body.write</c> and the futures' <c>subscribe</c> must return wasi:io streams and pollables of the
/// library's types, which the C API cannot mint (as for sockets above). What it would take: C entries for
/// new_incoming_request/new_response_outparam (headers, body and response through callbacks), or a serve entry
/// taking a listening socket fd the shim made inside the container's namespace (accepted connections stay in the
/// listener's namespace whichever thread accepts).</para>
/// </remarks>
internal static class ComponentRun
{
    /// <summary>Looked up semver-compatibly (both): any 0.2.x export of the interface matches.</summary>
    private const string RunInterface = "wasi:cli/run@0.2.0";
    private const string HandlerInterface = "wasi:http/incoming-handler@0.2.0";

    public static ComponentLinker CreateLinker(Engine engine)
    {
        var linker = new ComponentLinker(engine);
        linker.AddWasiPreview2();
        return linker;
    }

    /// <summary>Instantiates the component in <paramref name="store"/> and returns what runs it.</summary>
    /// <exception cref="WasmModuleException">the component does not export <c>wasi:cli/run</c> (a proxy is named as
    /// such) or imports <c>wasi:http</c>.</exception>
    public static Action Instantiate(ComponentLinker linker, Store store, WasmModule component, string entrypoint)
    {
        if (entrypoint != WasiSpec.DefaultEntrypoint)
            throw new WasmModuleException($"{component.Path} is a component: it runs its wasi:cli/run export, not an entrypoint '{entrypoint}'");
        CheckNotProxy(component);
        ComponentInstance instance;
        try
        {
            instance = linker.Instantiate(store, component.Code.Component!);
        }
        catch (WasmtimeException e) when (MissingHttpImport(e) is { } http)
        {
            throw new WasmModuleException($"{component.Path} imports {http}: this runtime does not provide wasi:http, " +
                "Wasmtime 50's HTTP client connects and resolves names on its own threads, outside the container's network namespace", e);
        }
        var run = instance.GetFunction(RunInterface, "run")
            ?? throw new WasmModuleException($"{component.Path} is a component that does not export wasi:cli/run (0.2.x): only commands can be run");
        return () =>
        {
            if (run.Call() is { IsOk: false })
                throw new ProcExitException(1);
        };
    }

    /// <summary>A proxy (incoming-handler, no wasi:cli/run) is refused as such: see the remarks.</summary>
    private static void CheckNotProxy(WasmModule component)
    {
        var code = component.Code.Component!;
        using var run = code.GetExport(RunInterface);
        if (run is not null)
            return;
        using var handler = code.GetExport(HandlerInterface);
        if (handler is not null)
            throw new WasmModuleException($"{component.Path} is a wasi:http proxy (it exports wasi:http/incoming-handler, not wasi:cli/run): " +
                "this runtime cannot serve it, Wasmtime 50's C API has no way to make the request and response-outparam its handle takes");
    }

    /// <summary>The wasi:http interface named by the linker's error for an import it lacks, or null.</summary>
    private static string? MissingHttpImport(WasmtimeException e)
    {
        // "component imports instance `wasi:http/types@0.2.0`, but a matching implementation was not found in the linker"
        const string marker = "imports instance `wasi:http/";
        var at = e.Message.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
            return null;
        var name = at + marker.Length - "wasi:http/".Length;
        var end = e.Message.IndexOf('`', name);
        return end < 0 ? null : e.Message[name..end];
    }
}

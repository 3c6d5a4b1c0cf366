using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Wasmsharp.Grpc;

/// <summary>
/// Serves unary gRPC methods on an already listening socket (a Unix socket handed over by file
/// descriptor), HTTP/2 with prior knowledge, no TLS. Services are added the way generated code binds
/// them (<c>Foo.BindService(binder, impl)</c>); <see cref="GrpcServerOptions.ServiceNames"/> can serve
/// them under another service name, e.g. the same implementation as a newer API version whose wire
/// messages are unchanged.
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcServer(WebApplication app) => _app = app;

    public static async Task<GrpcServer> StartAsync(ulong listenerFd, Action<ServiceBinderBase> bind, GrpcServerOptions options)
    {
        var methods = new MethodCollector(options.ServiceNames);
        bind(methods);
        if (methods.Registrations.Count == 0) throw new ArgumentException("no gRPC methods were bound", nameof(bind));

        // Content root: our own directory, not the working directory (a container bundle). No reloading
        // of configuration: it would set up a recursive file watcher there at start.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        if (options.Log is { } log) builder.Logging.AddProvider(new CallbackLoggerProvider(log));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenHandle(listenerFd, listen => listen.Protocols = HttpProtocols.Http2);
            kestrel.AddServerHeader = false;
            // The client keeps one connection and may not call for hours; Kestrel would close it after
            // 130 s idle, and containerd takes a closed connection for a dead shim. (InfiniteTimeSpan is
            // accepted but, for HTTP/2, closes the connection at the next heartbeat.)
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromDays(3650);
        });
        builder.Services.AddGrpc(grpc => grpc.MaxReceiveMessageSize = options.MaxMessageSize);
        builder.Services.AddSingleton(methods);
        builder.Services.AddSingleton<BoundMethods>();
        builder.Services.AddSingleton<IServiceMethodProvider<BoundMethods>, BoundMethodProvider>();
        var app = builder.Build();
        app.MapGrpcService<BoundMethods>();
        await app.StartAsync().ConfigureAwait(false);
        return new GrpcServer(app);
    }

    /// <summary>Stops accepting calls; calls under way get <paramref name="grace"/> to finish.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        using var timeout = new CancellationTokenSource(grace);
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);

    // The service type ASP.NET Core routes to; the handlers are the bound delegates, so it holds nothing.
    internal sealed class BoundMethods;

    // Records every method a generated BindService adds, under the served service name.
    internal sealed class MethodCollector(IReadOnlyDictionary<string, string> serviceNames) : ServiceBinderBase
    {
        public List<Action<ServiceMethodProviderContext<BoundMethods>>> Registrations { get; } = [];

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            var served = serviceNames.TryGetValue(method.ServiceName, out var name)
                ? new Method<TRequest, TResponse>(method.Type, name, method.Name, method.RequestMarshaller, method.ResponseMarshaller)
                : method;
            Registrations.Add(context => context.AddUnaryMethod(served, [], (_, request, call) => handler(request, call)));
        }
    }

    private sealed class BoundMethodProvider(MethodCollector methods) : IServiceMethodProvider<BoundMethods>
    {
        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<BoundMethods> context)
        {
            foreach (var register in methods.Registrations) register(context);
        }
    }

    // Warnings and errors of the server (not of calls, which report their own status) go to the caller.
    private sealed class CallbackLoggerProvider(Action<string, Exception?> log) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CallbackLogger(log);

        public void Dispose()
        {
        }

        private sealed class CallbackLogger(Action<string, Exception?> log) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) log(formatter(state, exception), exception);
            }
        }
    }
}

public sealed record GrpcServerOptions
{
    /// <summary>Generated service name → the name to serve it under (others keep theirs).</summary>
    public IReadOnlyDictionary<string, string> ServiceNames { get; init; } = new Dictionary<string, string>();

    /// <summary>Largest request accepted (gRPC's default is 4 MiB, as ttrpc's).</summary>
    public int MaxMessageSize { get; init; } = 4 * 1024 * 1024;

    /// <summary>Where server warnings go.</summary>
    public Action<string, Exception?>? Log { get; init; }
}

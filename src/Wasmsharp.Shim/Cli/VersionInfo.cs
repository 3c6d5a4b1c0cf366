using System.Reflection;

namespace Wasmsharp.Shim;

internal static class VersionInfo
{
    public static string Version =>
        typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    public static string WasmtimeVersion => typeof(Wasmtime.Engine).Assembly.GetName().Version?.ToString() ?? "unknown";

    public static string Text => $"containerd-shim-wasmsharp-v1:\n  Version:  {Version}\n  Runtime:  .NET {Environment.Version} (NativeAOT), Wasmtime {WasmtimeVersion}";
}

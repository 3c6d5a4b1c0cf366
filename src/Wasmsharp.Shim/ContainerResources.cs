using System.Text.Json;
using Wasmsharp.Linux;

namespace Wasmsharp.Shim;

/// <summary>
/// The parts of an OCI <c>LinuxResources</c> (config.json's linux.resources, or the JSON of an Update request)
/// this runtime acts on: memory (the guest's limit, and the cgroup's), cpu shares/quota/period and pids.
/// Everything else (devices, blkio, hugepages, network, rdma, cpuset) means nothing to a Wasm guest and is
/// ignored, as unknown fields are.
/// </summary>
internal sealed record ContainerResources(long? MemoryLimit, CgroupLimits Cgroup)
{
    /// <summary>
    /// What the cgroup allows above the guest's limit: the shim process itself (runtime, JIT code, buffers)
    /// lives in the container's cgroup too. The guest's limit is enforced exactly by the Wasm host (kill at
    /// the limit, exit 137, /tasks/oom); the cgroup limit is only a backstop against the shim itself running
    /// away, so it must never fire first: a cgroup OOM kills the whole shim.
    /// </summary>
    public const long ShimHeadroomBytes = 128L << 20;

    public static readonly ContainerResources None = new(null, new CgroupLimits());

    public static ContainerResources Parse(JsonElement? resources) =>
        resources is { ValueKind: JsonValueKind.Object } r ? Parse(r) : None;

    public static ContainerResources Parse(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty) return None;
        using var document = JsonDocument.Parse(json.ToArray());
        return Parse(document.RootElement);
    }

    public static ContainerResources Parse(JsonElement resources)
    {
        if (resources.ValueKind != JsonValueKind.Object) return None;
        long? memoryLimit = null, reservation = null, swap = null, quota = null, pids = null;
        ulong? shares = null, period = null;
        if (Object(resources, "memory") is { } memory)
        {
            memoryLimit = Int64(memory, "limit");
            reservation = Int64(memory, "reservation");
            swap = Int64(memory, "swap");
        }
        if (Object(resources, "cpu") is { } cpu)
        {
            shares = UInt64(cpu, "shares");
            quota = Int64(cpu, "quota");
            period = UInt64(cpu, "period");
        }
        if (Object(resources, "pids") is { } p) pids = Int64(p, "limit");

        var guestLimit = memoryLimit is > 0 ? memoryLimit : null;
        var limits = new CgroupLimits
        {
            // -1 (unlimited) goes through as is; a real limit gets the shim's headroom.
            MemoryBytes = memoryLimit is null ? null : guestLimit is { } l ? l + ShimHeadroomBytes : -1,
            MemorySwapBytes = swap is null ? null : swap > 0 ? swap + ShimHeadroomBytes : -1,
            MemoryReservationBytes = reservation is > 0 ? reservation : null,
            CpuShares = shares,
            CpuQuotaMicros = quota,
            CpuPeriodMicros = period,
            PidsMax = pids,
        };
        return new ContainerResources(guestLimit, limits);
    }

    private static JsonElement? Object(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value : null;

    private static long? Int64(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : null;

    private static ulong? UInt64(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out var n) ? n : null;
}

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

    /// <summary>config.json's linux.resources.</summary>
    /// <exception cref="Oci.OciSpecException">a value runc (or the kernel under it) refuses, naming the field.</exception>
    public static ContainerResources Parse(JsonElement? resources) =>
        resources is { ValueKind: JsonValueKind.Object } r ? Parse(r, "config.json: linux.resources") : None;

    /// <summary>An Update request's resources.</summary>
    public static ContainerResources Parse(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty) return None;
        using var document = JsonDocument.Parse(json.ToArray());
        return Parse(document.RootElement, "resources");
    }

    private static ContainerResources Parse(JsonElement resources, string field)
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
        Check(field, memoryLimit, reservation, swap, quota, period);

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

    // What runc refuses, or writes and the kernel refuses (runc then fails the create with the write's error):
    // memory values below -1 (-1 is "no limit", 0 "not set"), a swap limit below the memory limit, a cfs quota
    // below the kernel's 1 ms or a period outside 1 ms – 1 s. A period of 0 is "not set", as runc reads it
    // (it writes no period then, and ctr run --cpu-quota alone sends one).
    private static void Check(string field, long? memory, long? reservation, long? swap, long? quota, ulong? period)
    {
        static Oci.OciSpecException Bad(string name, string value, string why) =>
            new($"{name}: invalid value {value}: {why}");
        foreach (var (name, value) in (ReadOnlySpan<(string, long?)>)[("limit", memory), ("reservation", reservation), ("swap", swap)])
        {
            if (value < -1) throw Bad($"{field}.memory.{name}", Number(value.Value), "a number of bytes, or -1 for no limit");
        }
        if (swap > 0 && memory > 0 && swap < memory)
            throw Bad($"{field}.memory.swap", Number(swap.Value), $"memory+swap limit should be >= memory limit ({Number(memory.Value)})");
        if (quota is { } q && (q < -1 || q is > 0 and < MinCfsMicros))
            throw Bad($"{field}.cpu.quota", Number(q), $"microseconds per period, at least {MinCfsMicros}, or -1 for no limit");
        if (period is { } t && t != 0 && (t < MinCfsMicros || t > MaxCfsPeriodMicros))
            throw Bad($"{field}.cpu.period", t.ToString(System.Globalization.CultureInfo.InvariantCulture), $"microseconds from {MinCfsMicros} to {MaxCfsPeriodMicros}");
    }

    private const long MinCfsMicros = 1000, MaxCfsPeriodMicros = 1_000_000;

    private static string Number(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static JsonElement? Object(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value : null;

    private static long? Int64(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : null;

    private static ulong? UInt64(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out var n) ? n : null;
}

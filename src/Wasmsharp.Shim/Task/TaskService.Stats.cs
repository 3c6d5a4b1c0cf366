using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Wasmsharp.Containerd.Api.Events;
using Wasmsharp.Linux;
using TaskApi = Wasmsharp.Containerd.Api.Task;
using V1 = Wasmsharp.Containerd.Api.Cgroups.V1;
using V2 = Wasmsharp.Containerd.Api.Cgroups.V2;
using Status = Wasmsharp.Containerd.Api.Types.Status;

namespace Wasmsharp.Shim;

// Resources: metrics (ctr task metrics, docker stats, the kubelet), live limit updates, OOM kills.
internal sealed partial class TaskService
{
    private static readonly Lazy<CgroupMode> HostCgroupMode = new(() => CgroupLayout.Host().Mode);

    // Counters that cannot be read are an error for the client (ctr task metrics prints it), never zeros.
    public override Task<TaskApi.StatsResponse> Stats(TaskApi.StatsRequest request, ServerCallContext context)
    {
        try
        {
            return Task.FromResult(new TaskApi.StatsResponse { Stats = ReadStats(Find(request.Id)) });
        }
        catch (CgroupStatsException e)
        {
            throw Error(StatusCode.Unknown, $"metrics of {request.Id}: {e.Message}");
        }
    }

    private static Any ReadStats(Container container)
    {
        Any stats;
        var guestBytes = container.All.Where(p => p.Status != Status.Stopped).Sum(p => p.Guest.MemoryBytes);
        if (container.Native?.Cgroup is { } native)
        {
            stats = native.Metrics(guestMemoryBytes: null); // runc's container: its processes are charged there
        }
        else if (container.Cgroup is { } cgroup)
        {
            stats = cgroup.Metrics(guestBytes);
        }
        else
        {
            // No cgroup (the spec named none): what the shim itself knows, the guests' linear memory.
            var bytes = (ulong)guestBytes;
            var limit = (ulong)(container.MemoryLimit ?? 0);
            stats = HostCgroupMode.Value == CgroupMode.V2
                ? ContainerCgroup.Pack(new V2.Metrics { Memory = new V2.MemoryStat { Usage = bytes, Anon = bytes, UsageLimit = limit } })
                : ContainerCgroup.Pack(new V1.Metrics { Memory = new V1.MemoryStat { Rss = bytes, TotalRss = bytes, Usage = new V1.MemoryEntry { Usage = bytes, Limit = limit } } });
        }
        return stats;
    }

    /// <summary>
    /// New limits (`docker update`, CRI UpdateContainerResources): written to the cgroup as runc does, and the
    /// memory limit also to every guest of the container (it applies at their next memory growth: a guest above
    /// a lowered limit keeps what it has and is killed at its next growth, where runc's kernel would first
    /// reclaim or refuse the write).
    /// </summary>
    public override Task<Empty> Update(TaskApi.UpdateTaskRequest request, ServerCallContext context)
    {
        var container = Find(request.Id);
        ContainerResources resources;
        try
        {
            resources = ContainerResources.Parse(request.Resources is null ? default : request.Resources.Value.Span);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or Oci.OciSpecException)
        {
            throw Error(StatusCode.InvalidArgument, $"update {request.Id}: invalid resources: {e.Message}");
        }
        if (container.Native is { } native)
        {
            try
            {
                native.Update(request.Resources is null ? default : request.Resources.Value.Span); // runc writes them to its cgroup
            }
            catch (Native.RuncException e)
            {
                throw Error(StatusCode.Unknown, $"update {request.Id}: {e.Message}");
            }
            log.Information("{Id}: resources updated by runc", request.Id);
            return Task.FromResult(EmptyReply);
        }
        try
        {
            container.Cgroup?.Update(resources);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Error(StatusCode.Internal, $"update {request.Id}: cgroup {container.Cgroup?.Path}: {e.Message}");
        }
        if (resources.Cgroup.MemoryBytes is not null)
        {
            container.MemoryLimit = resources.MemoryLimit;
            foreach (var process in container.All) process.Guest.MemoryLimitBytes = resources.MemoryLimit;
        }
        log.Information("{Id}: resources updated (memory limit {Limit})", request.Id, container.MemoryLimit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
        return Task.FromResult(EmptyReply);
    }

    private void PublishOom(string containerId)
    {
        log.Warning("{Id}: out of memory: a guest reached the container's memory limit and was killed", containerId);
        if (_containers.TryGetValue(containerId, out var container)) container.Cgroup?.RecordGuestOom();
        events.Publish("/tasks/oom", new TaskOOM { ContainerId = containerId });
    }

    // A native container's: the kernel's OOM killer ended one of its processes (the kernel counts it itself).
    private void PublishKernelOom(string containerId)
    {
        log.Warning("{Id}: out of memory: the kernel's OOM killer ended a process of the container", containerId);
        events.Publish("/tasks/oom", new TaskOOM { ContainerId = containerId });
    }
}

using Wasmsharp.Integration;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Wasmsharp.Integration.Tests;

// One private Docker Engine (on its own containerd) per Docker version, the test images loaded once.
public abstract class DockerFixture : IDisposable
{
    // Generous for one container run (first runs compile the module), short enough that a hang does not stall the suite.
    public static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(30);

    private int _ids;
    private readonly PrivateDocker? _docker;

    public string Suite { get; }
    public WasmPrograms Programs { get; }

    protected DockerFixture(string suite, bool iptables = false)
    {
        Suite = suite;
        Programs = WasmPrograms.Get();
        // Tests of an unavailable or unselected suite are skipped at discovery (DockerFact); xunit still
        // builds their fixture, which then has nothing to start.
        if (DockerSuites.SkipReason(suite) is not null || iptables && DockerSuites.IptablesUnavailable() is not null) return;
        _docker = PrivateDocker.Start(suite, iptables);
        try
        {
            _docker.Load(DockerImages.BuildWasm(Programs, _docker.BaseDir));
            _docker.Load(DockerImages.BuildWasiPlatform(Programs, _docker.BaseDir));
            _docker.Load(Images.BuildBusybox(_docker.BaseDir));
        }
        catch
        {
            // xunit does not dispose a fixture whose constructor threw.
            _docker.Dispose();
            throw;
        }
    }

    public PrivateDocker Docker => _docker ?? throw new InvalidOperationException($"Docker suite {Suite} is not running");

    public void Dispose() => _docker?.Dispose();

    // Unique per test, readable in `docker ps` and the logs.
    public string NewName(string what) => $"ws-{what}-{Interlocked.Increment(ref _ids)}";

    // A host directory for bind mounts, inside the base dir so cleanup removes it.
    public string HostDir(string name) => Directory.CreateDirectory(Path.Combine(Docker.BaseDir, "host", name)).FullName;

    public ProcessResult D(params string[] args) => Docker.Docker(RunTimeout, args);

    // `docker run --rm --pull never --runtime=io.containerd.wasmsharp.v1 [options] IMAGE args...`
    public ProcessResult RunWasm(string[] options, params string[] args) =>
        D(["run", "--rm", "--pull", "never", "--runtime=" + RepoLayout.Runtime, .. options, DockerImages.Wasm, .. args]);

    // The same with the default runtime (runc) and the busybox image.
    public ProcessResult RunRunc(string[] options, params string[] args) =>
        D(["run", "--rm", "--pull", "never", .. options, Images.Busybox, .. args]);

    // `docker inspect -f FORMAT NAME`, trimmed.
    public string Inspect(string name, string format)
    {
        var result = D("inspect", "-f", format, name);
        Check(result.ExitCode == 0, $"docker inspect {name} failed", name, result);
        return result.Stdout.Trim();
    }

    // Fails with everything needed to see why: the commands' output and dockerd's and containerd's logs.
    public void Check(bool ok, string what, string? name, params ProcessResult[] results)
    {
        if (ok) return;
        var shim = RepoLayout.ShimPublished ? "" : $"\n(note: {RepoLayout.ShimBinary} is not published in {RepoLayout.ShimDir})";
        Assert.Fail($"[Docker {Docker.ServerVersion}] {what}{shim}\n\n{string.Join("\n", results.Select(r => r.ToString()))}\n{Docker.LogTail(30, name)}");
    }

    // Removes a test's container whatever state it is in (test cleanup, in finally blocks).
    public void Remove(string name) => D("rm", "-f", name);
}

public sealed class Docker26Fixture() : DockerFixture(DockerSuites.Docker26);
public sealed class Docker28Fixture() : DockerFixture(DockerSuites.Docker28);
public sealed class Docker28IptablesFixture() : DockerFixture(DockerSuites.Docker28, iptables: true);

// Which Docker suites run: all fetched ones, or those named in WASMSHARP_DOCKER_SUITES ("trixie sid").
public static class DockerSuites
{
    public const string Docker26 = "trixie";  // Docker 26.1 on containerd 1.7
    public const string Docker28 = "sid";     // Docker 28.5 on containerd 2.1

    public static string? SkipReason(string suite)
    {
        var selected = Environment.GetEnvironmentVariable("WASMSHARP_DOCKER_SUITES");
        if (!string.IsNullOrWhiteSpace(selected) &&
            !selected.Split([' ', ',', ':'], StringSplitOptions.RemoveEmptyEntries).Contains(suite, StringComparer.Ordinal))
            return $"Docker suite '{suite}' not selected by WASMSHARP_DOCKER_SUITES='{selected}'";
        return PrivateDocker.Unavailable(suite);
    }

    private static readonly Lazy<string?> s_iptables = new(() =>
    {
        // What dockerd needs of it: the iptables command and a NAT table in a new network namespace.
        var probe = ProcessRunner.Run("unshare", ["--net", "iptables", "-t", "nat", "-L", "-n"], TimeSpan.FromSeconds(10));
        return probe.ExitCode == 0 ? null : $"no iptables NAT in a network namespace here (`unshare --net iptables -t nat -L` exit {probe.ExitCode}: {probe.Stderr.Trim()})";
    });

    /// <summary>Why Docker cannot run with its iptables rules on this machine; null when it can.</summary>
    public static string? IptablesUnavailable() => s_iptables.Value;
}

// Names the Docker suite a test class runs against.
[AttributeUsage(AttributeTargets.Class)]
public sealed class DockerSuiteAttribute(string suite) : Attribute
{
    public string Suite { get; } = suite;

    /// <summary>The class runs Docker with its iptables rules: skipped where the kernel or the system has none.</summary>
    public bool Iptables { get; init; }
}

// A fact that is skipped, with the reason, when its class's Docker suite is not fetched or not selected.
// xunit 2 has no dynamic skip, and the tests live in a base class shared by both versions, so the
// decision is made per test class at discovery.
[XunitTestCaseDiscoverer("Wasmsharp.Integration.Tests.DockerFactDiscoverer", "Wasmsharp.Integration.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class DockerFactAttribute : FactAttribute;

public sealed class DockerFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var display = discoveryOptions.MethodDisplayOrDefault();
        var options = discoveryOptions.MethodDisplayOptionsOrDefault();
        var attribute = testMethod.TestClass.Class.GetCustomAttributes(typeof(DockerSuiteAttribute)).FirstOrDefault();
        var suite = attribute?.GetConstructorArguments().FirstOrDefault() as string;
        var iptables = attribute?.GetNamedArgument<bool>(nameof(DockerSuiteAttribute.Iptables)) ?? false;
        var reason = factAttribute.GetNamedArgument<string>(nameof(FactAttribute.Skip)) is null
            ? suite is null ? $"{testMethod.TestClass.Class.Name} has no [DockerSuite]"
                : DockerSuites.SkipReason(suite) ?? (iptables ? DockerSuites.IptablesUnavailable() : null)
            : null; // an explicit Skip is honoured by the ordinary test case
        yield return reason is null
            ? new XunitTestCase(diagnosticMessageSink, display, options, testMethod)
            : new SkippedTestCase(diagnosticMessageSink, display, options, testMethod, reason);
    }
}

public sealed class SkippedTestCase : XunitTestCase
{
    private string _reason = "";

    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedTestCase() { }

    public SkippedTestCase(IMessageSink sink, TestMethodDisplay display, TestMethodDisplayOptions options, ITestMethod method, string reason)
        : base(sink, display, options, method) => _reason = reason;

    protected override string GetSkipReason(IAttributeInfo factAttribute) => _reason;

    public override void Serialize(IXunitSerializationInfo data)
    {
        base.Serialize(data);
        data.AddValue("SkipReasonText", _reason);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        _reason = data.GetValue<string>("SkipReasonText");
        base.Deserialize(data);
    }
}

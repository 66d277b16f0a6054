using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Probe.Policies;
using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Probe.Upload;
using Survey6.Probe.Uplink;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// UPDATE_POLICY without capture: rotation, heartbeat and rate cap apply at once; a policy the probe cannot use is
/// rejected whole and the previous one stays; the crash-loop decision falls back to the last known-good policy.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class PolicyControllerTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly SpoolWriter _writer;
    private readonly TokenBucketRateLimiter _limiter = new(5_000);
    private readonly PolicyController _policies;
    private readonly UploadSchedule _schedule = new();

    public PolicyControllerTests()
    {
        var spoolOptions = new SpoolOptions { MaxSpoolBytes = 64L << 20 };
        var queue = new CaptureQueue(16, 1 << 20);
        _writer = new SpoolWriter(
            queue,
            new SpoolDirectory(_dir.Combine("spool"), NullLogger<SpoolDirectory>.Instance),
            Options.Create(spoolOptions),
            ProbeIdentity.From(new ProbeOptions { StateDirectory = _dir.Path, Id = "p-test" }),
            TimeProvider.System,
            NullLogger<SpoolWriter>.Instance);
        var capture = Options.Create(new CaptureOptions());
        _policies = new PolicyController(
            new ProbeDaemonPaths(_dir.Path),
            new CaptureEngine(capture, queue, TimeProvider.System, NullLogger<CaptureEngine>.Instance),
            _writer,
            _limiter,
            capture,
            Options.Create(spoolOptions),
            Options.Create(new UploadOptions { MaxBytesPerSecond = 5_000 }),
            Options.Create(new ProbePolicyOptions()),
            TimeProvider.System,
            NullLogger<PolicyController>.Instance,
            _schedule);
    }

    [Fact]
    public async Task Rotation_heartbeat_and_rate_cap_are_applied_at_once_and_persisted()
    {
        TimeSpan? interval = null;
        _policies.HeartbeatIntervalChanged += i => interval = i;
        var (ok, message) = await _policies.ApplyAsync(
            new Policy { Version = 3, RotateSizeBytes = 1 << 20, RotateAge = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)), UploadMaxBytesPerSecond = 1_000, HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) },
            agent: null,
            CancellationToken.None);
        Assert.True(ok, message);
        Assert.Equal(1 << 20, _writer.RotateSizeBytes);
        Assert.Equal(TimeSpan.FromSeconds(30), _writer.RotateAge);
        Assert.Equal(1_000, _limiter.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(5), interval);
        Assert.Equal(3, _policies.Version);
        Assert.Contains("rotation 1048576 bytes / 00:00:30", message, StringComparison.Ordinal);
        var persisted = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.Path, "policy.json")))!;
        Assert.Equal("3", persisted["policy"]!["version"]!.ToString());
        Assert.Equal(3, _policies.Status().Version);
        Assert.False(_policies.Status().Proven);

        // Not newer: nothing happens, and that is not a failure.
        (ok, message) = await _policies.ApplyAsync(new Policy { Version = 3, RotateSizeBytes = 2 << 20 }, null, CancellationToken.None);
        Assert.True(ok);
        Assert.Contains("not newer", message, StringComparison.Ordinal);
        Assert.Equal(1 << 20, _writer.RotateSizeBytes);

        // 0 lifts the server's bound: the probe's own cap applies again.
        (ok, _) = await _policies.ApplyAsync(new Policy { Version = 4, RotateSizeBytes = 1 << 20, RotateAge = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) }, null, CancellationToken.None);
        Assert.True(ok);
        Assert.Equal(5_000, _limiter.BytesPerSecond);
    }

    [Fact]
    public async Task An_unworkable_policy_is_rejected_whole_and_the_previous_stays_in_force()
    {
        var (ok, _) = await _policies.ApplyAsync(new Policy { Version = 2, RotateSizeBytes = 1 << 20 }, null, CancellationToken.None);
        Assert.True(ok);

        // A rotation the spool cannot hold twice, with a rate change beside it: neither is applied.
        (ok, var message) = await _policies.ApplyAsync(new Policy { Version = 5, RotateSizeBytes = 1L << 30, UploadMaxBytesPerSecond = 77 }, null, CancellationToken.None);
        Assert.False(ok);
        Assert.Contains("policy 5 rejected, policy 2 stays in force", message, StringComparison.Ordinal);
        Assert.Contains("MaxSpoolBytes", message, StringComparison.Ordinal);
        Assert.Equal(1 << 20, _writer.RotateSizeBytes);
        Assert.Equal(5_000, _limiter.BytesPerSecond);
        Assert.Equal(2, _policies.Version);

        (ok, message) = await _policies.ApplyAsync(new Policy { Version = 6, RotateSizeBytes = 1 << 20, Snaplen = 20 }, null, CancellationToken.None);
        Assert.False(ok);
        Assert.Contains("snaplen 20 is outside 64..", message, StringComparison.Ordinal);
        (ok, message) = await _policies.ApplyAsync(new Policy { Version = 7, RotateSizeBytes = 1 << 20, Interfaces = { "any", "lo" } }, null, CancellationToken.None);
        Assert.False(ok);
        Assert.Contains("'any' already captures every interface", message, StringComparison.Ordinal);
        Assert.Equal(2, _policies.Version);
        Assert.Equal("2", JsonNode.Parse(File.ReadAllText(Path.Combine(_dir.Path, "policy.json")))!["policy"]!["version"]!.ToString());

        (ok, message) = await _policies.ApplyAsync(new Policy { Version = 8, RotateSizeBytes = 1 << 20, UploadIdleUtilisation = 1.5 }, null, CancellationToken.None);
        Assert.False(ok);
        Assert.Contains("upload_idle_utilisation 1.5 is outside 0..1", message, StringComparison.Ordinal);
        Assert.Equal(2, _policies.Version);
    }

    [Fact]
    public async Task The_upload_window_and_idle_utilisation_reach_the_uploader()
    {
        Assert.True(_schedule.InWindow(DateTimeOffset.UtcNow));
        Assert.Equal(1_000_000, _schedule.IdleBytesPerSecond(1_000_000, 125_000_000));

        var (ok, message) = await _policies.ApplyAsync(new Policy
        {
            Version = 2,
            UploadWindowStart = Duration.FromTimeSpan(TimeSpan.FromHours(22)),
            UploadWindowEnd = Duration.FromTimeSpan(TimeSpan.FromHours(6)),
            UploadIdleUtilisation = 0.1,
        }, null, CancellationToken.None);
        Assert.True(ok, message);
        Assert.Contains("upload window 22:00-06:00 UTC", message, StringComparison.Ordinal);
        Assert.Contains("upload_idle_utilisation 0.1 of link speed", message, StringComparison.Ordinal);
        // Wraps past midnight: 23:30 and 05:59 in, 06:00 and 12:00 out.
        var day = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.True(_schedule.InWindow(day.AddHours(23.5)));
        Assert.True(_schedule.InWindow(day.AddMinutes(5 * 60 + 59)));
        Assert.False(_schedule.InWindow(day.AddHours(6)));
        Assert.False(_schedule.InWindow(day.AddHours(12)));
        // 10% of a 1 Gbit/s link; the configured threshold where the link speed is unknown.
        Assert.Equal(12_500_000, _schedule.IdleBytesPerSecond(1_000_000, 125_000_000));
        Assert.Equal(1_000_000, _schedule.IdleBytesPerSecond(1_000_000, 0));
        Assert.Equal("22:00-06:00 UTC", _policies.Status().UploadWindow);

        // Back to the join's values (here: no join, all unset): Probe:Upload's threshold, any time of day.
        (ok, message) = await _policies.ApplyAsync(new Policy { Version = 3 }, null, CancellationToken.None);
        Assert.True(ok, message);
        Assert.Equal(1_000_000, _schedule.IdleBytesPerSecond(1_000_000, 125_000_000));
        Assert.True(_schedule.InWindow(day.AddHours(12)));
        Assert.Null(_policies.Status().UploadWindow);
    }

    [Fact]
    public void Repeated_starts_that_never_get_healthy_fall_back_to_the_last_known_good_policy()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = new ProbeStateDirectory(_dir.Path);
        var options = new ProbePolicyOptions { CrashLoopStarts = 3, CrashLoopWindow = TimeSpan.FromMinutes(10), HealthyAfter = TimeSpan.FromMinutes(2) };
        var store = new PolicyStore(state, options, time);
        store.Adopt(new Policy { Version = 5, CaptureFilter = "ip6" });
        Assert.True(store.MarkHealthy());
        store.Adopt(new Policy { Version = 7, CaptureFilter = "icmp6" });

        // Each start is a new process reading the files. The run that applied policy 7 and two restarts die young
        // (three starts within the window); the third restart falls back.
        for (var start = 1; start <= 2; start++)
        {
            time.Advance(TimeSpan.FromSeconds(20));
            var restarted = new PolicyStore(state, options, time);
            Assert.Null(restarted.RecordStart());
            Assert.Equal(7, restarted.Current.Version);
        }

        time.Advance(TimeSpan.FromSeconds(20));
        var fourth = new PolicyStore(state, options, time);
        var fallback = fourth.RecordStart();
        Assert.Equal(5, fourth.Current.Version);
        Assert.NotNull(fallback);
        Assert.Equal((7, 5), (fallback.FromVersion, fallback.ToVersion));
        Assert.Equal("ip6", fourth.Current.CaptureFilter);
        Assert.Contains("last known-good policy 5", fallback.Reason, StringComparison.Ordinal);

        // The next process sees the fall back too, and does not fall back again.
        var fifth = new PolicyStore(state, options, time);
        Assert.Equal(5, fifth.Current.Version);
        Assert.Equal(7, fifth.Fallback?.FromVersion);
        Assert.Null(fifth.RecordStart());
    }

    [Fact]
    public void Starts_spread_beyond_the_window_or_a_healthy_run_do_not_fall_back()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = new ProbeStateDirectory(_dir.Path);
        var options = new ProbePolicyOptions { CrashLoopStarts = 2, CrashLoopWindow = TimeSpan.FromMinutes(10), HealthyAfter = TimeSpan.FromMinutes(2) };
        var last = new PolicyStore(state, options, time);
        last.Adopt(new Policy { Version = 9 });
        for (var start = 0; start < 6; start++)
        {
            time.Advance(TimeSpan.FromMinutes(6)); // at most one earlier start inside any 10 minutes
            last = new PolicyStore(state, options, time);
            Assert.Null(last.RecordStart());
        }

        // This run stays up: the policy is proven, and no number of restarts falls back from it.
        Assert.True(last.MarkHealthy());
        Assert.True(File.Exists(state.GoodPolicyPath));
        for (var start = 0; start < 5; start++)
            Assert.Null(new PolicyStore(state, options, time).RecordStart());
        Assert.Equal(9, new PolicyStore(state, options, time).Current.Version);
    }

    public void Dispose()
    {
        _policies.Dispose();
        _dir.Dispose();
    }
}

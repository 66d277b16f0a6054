using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Probe.Upload;
using Survey6.Probe.Uplink;

namespace Survey6.Probe.Tests;

/// <summary>UPDATE_POLICY: what can change while capturing is applied, the rest is named in a failed result.</summary>
public sealed class ControlLinkPolicyTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly SpoolWriter _writer;
    private readonly TokenBucketRateLimiter _limiter = new(5_000);
    private readonly ControlLink _link;

    public ControlLinkPolicyTests()
    {
        var spoolOptions = new SpoolOptions { MaxSpoolBytes = 64L << 20 };
        _writer = new SpoolWriter(
            new CaptureQueue(16, 1 << 20),
            new SpoolDirectory(_dir.Combine("spool"), NullLogger<SpoolDirectory>.Instance),
            Options.Create(spoolOptions),
            ProbeIdentity.From(new ProbeOptions { StateDirectory = _dir.Path, Id = "p-test" }),
            TimeProvider.System,
            NullLogger<SpoolWriter>.Instance);
        _link = new ControlLink(
            new ProbeDaemonPaths(_dir.Path),
            _writer,
            _limiter,
            new InterfaceTraffic([], TimeProvider.System),
            Options.Create(new UploadOptions { MaxBytesPerSecond = 5_000 }),
            TimeProvider.System,
            NullLogger<ControlLink>.Instance);
    }

    [Fact]
    public void RotationHeartbeatAndRateCapAreAppliedAtOnce()
    {
        var (ok, message) = _link.ApplyPolicy(
            new Policy { Version = 3, RotateSizeBytes = 1 << 20, RotateAge = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)), UploadMaxBytesPerSecond = 1_000, HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) },
            channel: null);
        Assert.True(ok, message);
        Assert.Equal(1 << 20, _writer.RotateSizeBytes);
        Assert.Equal(TimeSpan.FromSeconds(30), _writer.RotateAge);
        Assert.Equal(1_000, _limiter.BytesPerSecond);
        Assert.Equal(3, _link.PolicyVersion);
        Assert.Contains("rotation 1048576 bytes / 00:00:30", message, StringComparison.Ordinal);

        // Not newer: nothing happens, and that is not a failure.
        (ok, message) = _link.ApplyPolicy(new Policy { Version = 3, RotateSizeBytes = 2 << 20 }, channel: null);
        Assert.True(ok);
        Assert.Contains("not newer", message, StringComparison.Ordinal);
        Assert.Equal(1 << 20, _writer.RotateSizeBytes);

        // 0 lifts the server's bound: the probe's own cap applies again.
        (ok, _) = _link.ApplyPolicy(new Policy { Version = 4, RotateSizeBytes = 1 << 20, RotateAge = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) }, channel: null);
        Assert.True(ok);
        Assert.Equal(5_000, _limiter.BytesPerSecond);
    }

    [Fact]
    public void WhatCannotBeAppliedNowIsReportedAndKeptAsItWas()
    {
        var (ok, message) = _link.ApplyPolicy(new Policy { Version = 2, CaptureFilter = "tcp", Snaplen = 128, UploadIdleUtilisation = 0.5 }, channel: null);
        Assert.False(ok);
        Assert.Contains("not applied: capture_filter (not supported yet", message, StringComparison.Ordinal);
        Assert.Contains("snaplen (not supported yet", message, StringComparison.Ordinal);
        Assert.Contains("upload_idle_utilisation", message, StringComparison.Ordinal);
        Assert.Equal(2, _link.PolicyVersion);

        // A rotation the spool cannot hold twice is refused; the running one stays.
        var before = _writer.RotateSizeBytes;
        (ok, message) = _link.ApplyPolicy(new Policy { Version = 5, RotateSizeBytes = 1L << 30 }, channel: null);
        Assert.False(ok);
        Assert.Contains("rotation (", message, StringComparison.Ordinal);
        Assert.Equal(before, _writer.RotateSizeBytes);
    }

    public void Dispose() => _dir.Dispose();
}

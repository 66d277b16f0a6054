using Google.Protobuf.WellKnownTypes;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>The health rules on their own: precedence between states, thresholds, figures from counters.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ProbeHealthRulesTests
{
    private static readonly DateTimeOffset Now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly HealthOptions Options = new();

    [Fact]
    public void Pending_until_the_first_heartbeat_even_when_suspended_by_the_operator()
    {
        var (state, reasons) = Evaluate(Row() with { LastHeartbeatAt = null, OperatorSuspended = true });
        Assert.Equal(ProbeStates.Pending, state);
        Assert.Equal([HealthReasonCodes.NeverReported, HealthReasonCodes.OperatorSuspended], reasons.Select(r => r.Code));
    }

    [Fact]
    public void Suspended_wins_over_degraded_and_keeps_its_reasons()
    {
        var (state, reasons) = Evaluate(Row() with { OperatorSuspended = true, DropRatio = 0.5 });
        Assert.Equal(ProbeStates.Suspended, state);
        Assert.Equal([HealthReasonCodes.OperatorSuspended, HealthReasonCodes.DropRatio], reasons.Select(r => r.Code));
    }

    [Fact]
    public void Offline_wins_over_suspended_and_uses_the_reported_interval()
    {
        var row = Row() with { OperatorSuspended = true, HeartbeatInterval = TimeSpan.FromMinutes(1), LastHeartbeatAt = Now - TimeSpan.FromMinutes(2) };
        Assert.Equal(ProbeStates.Suspended, Evaluate(row).State);
        Assert.Equal(ProbeStates.Offline, Evaluate(row with { LastHeartbeatAt = Now - TimeSpan.FromMinutes(3) }).State);
        // Without a reported interval, the initial policy's.
        Assert.Equal(ProbeStates.Offline, Evaluate(row with { HeartbeatInterval = null, LastHeartbeatAt = Now - TimeSpan.FromSeconds(30) }).State);
        Assert.Equal(ProbeStates.Inactive, Evaluate(row with { LastHeartbeatAt = Now - TimeSpan.FromDays(14) }).State);
        Assert.Equal(ProbeStates.Revoked, Evaluate(row with { StoredState = ProbeStates.Revoked }).State);
    }

    [Fact]
    public void Thresholds_are_exclusive_and_configurable()
    {
        var spool = new SpoolStatus { FreeDiskBytes = 1UL << 30, OldestAge = Duration.FromTimeSpan(TimeSpan.FromHours(36)) };
        var row = Row() with { DropRatio = 0.01, ClockSkew = TimeSpan.FromSeconds(-2), LastHeartbeat = new Heartbeat { Spool = spool } };
        Assert.Equal(ProbeStates.Healthy, Evaluate(row).State);

        var strict = new HealthOptions { MaxDropRatio = 0.001, MaxClockSkew = TimeSpan.FromSeconds(1), MinFreeDiskBytes = 2L << 30, MaxUploadBacklogAge = TimeSpan.FromHours(1) };
        var (state, reasons) = ProbeHealthRules.Evaluate(row, Now, strict, TimeSpan.FromSeconds(10));
        Assert.Equal(ProbeStates.Degraded, state);
        Assert.Equal(
            [HealthReasonCodes.DropRatio, HealthReasonCodes.UploadBacklog, HealthReasonCodes.LowDisk, HealthReasonCodes.ClockSkew],
            reasons.Select(r => r.Code));
        Assert.Equal("1 GiB free on the spool's disk (limit 2 GiB)", reasons[2].Detail);
        Assert.Equal("clock 2s behind the server's (limit 1s)", reasons[3].Detail);
    }

    [Fact]
    public void Figures_count_a_restart_from_zero_and_take_half_the_round_trip_off_the_skew()
    {
        var previous = new Heartbeat { Capture = new CaptureCounters { Received = 10_000, KernelDropped = 100 } };
        var restarted = new Heartbeat
        {
            Capture = new CaptureCounters { Received = 900, KernelDropped = 100 },
            ProbeClock = Timestamp.FromDateTimeOffset(Now + TimeSpan.FromSeconds(3)),
            RoundTrip = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromDays(1)),
        };
        var figures = HeartbeatRecorder.Figures(restarted, previous, Now - TimeSpan.FromSeconds(10), Now);
        Assert.Equal((900ul, 100ul), (figures.Received, figures.KernelDropped));
        Assert.Equal(90, figures.PacketsPerSecond, 6);
        Assert.Equal(0.1, figures.DropRatio, 6);
        Assert.Equal(TimeSpan.FromSeconds(3.5), figures.ClockSkew);
        Assert.Equal(TimeSpan.FromHours(1), figures.Interval); // clamped to what a policy allows

        var broken = new Heartbeat { ProbeClock = new Timestamp { Seconds = long.MaxValue }, RoundTrip = Duration.FromTimeSpan(TimeSpan.FromHours(2)) };
        figures = HeartbeatRecorder.Figures(broken, null, null, Now);
        Assert.Equal(((TimeSpan?)null, (TimeSpan?)null, 0.0), (figures.ClockSkew, figures.RoundTrip, figures.PacketsPerSecond));
    }

    private static (string State, IReadOnlyList<HealthReason> Reasons) Evaluate(ProbeStatusRow row) =>
        ProbeHealthRules.Evaluate(row, Now, Options, TimeSpan.FromSeconds(10));

    private static ProbeStatusRow Row() => new(
        "p-aaaaaaaaaaaa", ProbeStates.Healthy, "host", new Dictionary<string, string>(), Now - TimeSpan.FromDays(1), null,
        Now - TimeSpan.FromHours(1), Now - TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), ReportedStates.Capturing, "",
        TimeSpan.Zero, null, 100, 0, 0, new Heartbeat(), false, null, null);
}

using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using Survey6.Server.Options;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>The control stream against a real server: heartbeats, derived health, commands, revocation.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ControlTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    // Heartbeats here follow each other without the fake clock moving; one test restores the spacing.
    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Control:MinHeartbeatSpacing"] = "00:00:00" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ProbeHealthQuery Health => _server.Get<ProbeHealthQuery>();

    private ProbeCommands Commands => _server.Get<ProbeCommands>();

    [Fact]
    public async Task A_heartbeat_is_recorded_on_the_server_clock_and_the_probe_becomes_healthy()
    {
        var (probeId, certificate) = await JoinAsync();
        Assert.Equal(ProbeStates.Pending, (await Health.GetAsync(probeId))!.State);
        using var changes = await _server.Get<IProbeStateNotifier>().SubscribeAsync();
        await using var stream = ProbeStream.Open(_server, certificate);

        var sent = ProbeStream.Healthy(_server, received: 1000);
        // A probe whose clock is far off still gets ordered by the server's clock.
        var serverNow = _server.Time.GetUtcNow();
        var ack = await stream.HeartbeatAsync(sent);
        Assert.Equal(serverNow, ack.ServerTime.ToDateTimeOffset());

        var change = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.StateChanged && c.ProbeId == probeId);
        Assert.Equal((ProbeStates.Pending, ProbeStates.Healthy), (change.PreviousState, change.State));
        var health = (await Health.GetAsync(probeId))!;
        Assert.Equal(ProbeStates.Healthy, health.State);
        Assert.Empty(health.Reasons);
        Assert.Equal(serverNow, health.LastHeartbeatAt!.Value, TimeSpan.FromMilliseconds(1)); // stored to the millisecond
        Assert.Equal(ReportedStates.Capturing, health.ReportedState);
        Assert.Equal("0.1.0-test", health.SoftwareVersion);
        Assert.Equal(1, health.PolicyVersion);
        Assert.True(health.Connected);
        Assert.Equal(TimeSpan.FromSeconds(10), health.HeartbeatInterval);
        Assert.Equal(ProbeStates.Healthy, _server.Probes.Get(probeId)!.State);
        Assert.Contains(_server.Events.Recent(10, EventKinds.ProbeStateChanged), e => e.ProbeId == probeId && e.Detail.StartsWith("pending -> healthy", StringComparison.Ordinal));

        // Rates come from the difference between heartbeats, over the server's clock.
        _server.Time.Advance(TimeSpan.FromSeconds(10));
        var next = ProbeStream.Healthy(_server, received: 3000);
        next.Upload = new UploadCounters { FilesUploaded = 1, BytesUploaded = 50_000 };
        await stream.HeartbeatAsync(next);
        health = (await Health.GetAsync(probeId))!;
        Assert.Equal(200, health.Rates.PacketsPerSecond, 0);
        Assert.Equal(5000, health.Rates.UploadBytesPerSecond, 0);
        Assert.Equal(0, health.Rates.DropRatio);

        // A restarted probe reports smaller counters: counted from zero, never negative.
        _server.Time.Advance(TimeSpan.FromSeconds(10));
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server, received: 500));
        Assert.Equal(50, (await Health.GetAsync(probeId))!.Rates.PacketsPerSecond, 0);
    }

    [Fact]
    public async Task Every_degradation_reason_is_named_and_several_can_apply()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);
        ulong received = 0;

        async Task<ProbeHealth> Beat(Action<Heartbeat> change)
        {
            received += 1000;
            var heartbeat = ProbeStream.Healthy(_server, received);
            change(heartbeat);
            await stream.HeartbeatAsync(heartbeat);
            return (await Health.GetAsync(probeId))!;
        }

        Assert.Equal(ProbeStates.Healthy, (await Beat(_ => { })).State);

        var drops = await Beat(h => h.Capture = new CaptureCounters { Received = received, KernelDropped = 30, InterfaceDropped = 10, QueueDropped = 10 });
        Assert.Equal(ProbeStates.Degraded, drops.State);
        Assert.Equal([HealthReasonCodes.DropRatio], drops.Reasons.Select(r => r.Code));
        Assert.Contains("4.76%", drops.Reasons[0].Detail, StringComparison.Ordinal); // 50 of 1050 frames since the previous heartbeat

        // The counters stay where they were: no new drops since the previous heartbeat, healthy again.
        Assert.Equal(ProbeStates.Healthy, (await Beat(h => h.Capture = new CaptureCounters { Received = received, KernelDropped = 30, InterfaceDropped = 10, QueueDropped = 10 })).State);

        var backlog = await Beat(h => h.Spool.OldestAge = Duration.FromTimeSpan(TimeSpan.FromDays(2)));
        Assert.Equal([HealthReasonCodes.UploadBacklog], backlog.Reasons.Select(r => r.Code));

        var disk = await Beat(h => h.Spool.FreeDiskBytes = 100 << 20);
        Assert.Equal([HealthReasonCodes.LowDisk], disk.Reasons.Select(r => r.Code));

        var skew = await Beat(h => h.ProbeClock = Timestamp.FromDateTimeOffset(_server.Time.GetUtcNow() + TimeSpan.FromMinutes(1)));
        Assert.Equal([HealthReasonCodes.ClockSkew], skew.Reasons.Select(r => r.Code));

        var own = await Beat(h =>
        {
            h.State = ProbeState.Degraded;
            h.StateReason = "capture interface eth1 is down";
        });
        Assert.Equal(new HealthReason(HealthReasonCodes.ProbeDegraded, "capture interface eth1 is down"), Assert.Single(own.Reasons));

        var all = await Beat(h =>
        {
            h.Capture = new CaptureCounters { Received = received, KernelDropped = 1000 };
            h.Spool = new SpoolStatus { OldestAge = Duration.FromTimeSpan(TimeSpan.FromDays(3)), FreeDiskBytes = 1 };
            h.ProbeClock = Timestamp.FromDateTimeOffset(_server.Time.GetUtcNow() - TimeSpan.FromSeconds(30));
        });
        Assert.Equal(ProbeStates.Degraded, all.State);
        Assert.Equal(
            new[] { HealthReasonCodes.DropRatio, HealthReasonCodes.UploadBacklog, HealthReasonCodes.LowDisk, HealthReasonCodes.ClockSkew },
            all.Reasons.Select(r => r.Code));
        // Events record changes of state with their reasons; new reasons within degraded are not a change.
        var recorded = _server.Events.Recent(50, EventKinds.ProbeStateChanged).Where(e => e.ProbeId == probeId).Select(e => e.Detail).Reverse().ToList();
        Assert.StartsWith("pending -> healthy", recorded[0], StringComparison.Ordinal);
        Assert.StartsWith("healthy -> degraded: drop-ratio: dropped 4.76% of frames", recorded[1], StringComparison.Ordinal);
        Assert.StartsWith("degraded -> healthy", recorded[2], StringComparison.Ordinal);
        Assert.StartsWith("healthy -> degraded: upload-backlog: ", recorded[3], StringComparison.Ordinal);
        Assert.Equal(4, recorded.Count);
    }

    [Fact]
    public async Task Clock_skew_takes_half_the_round_trip_off_and_uses_the_server_clock_otherwise()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);

        var ahead = ProbeStream.Healthy(_server);
        ahead.ProbeClock = Timestamp.FromDateTimeOffset(_server.Time.GetUtcNow() + TimeSpan.FromSeconds(30));
        ahead.RoundTrip = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(200));
        var ack = await stream.HeartbeatAsync(ahead);
        // Stamped 100 ms (half the round trip) before it arrived: 30.1 s ahead.
        Assert.Equal(TimeSpan.FromMilliseconds(30_100), ack.ClockSkew.ToTimeSpan());
        var health = (await Health.GetAsync(probeId))!;
        Assert.Equal(TimeSpan.FromMilliseconds(30_100), health.ClockSkew);
        Assert.Equal(TimeSpan.FromMilliseconds(200), health.RoundTrip);
        Assert.Contains("ahead of", Assert.Single(health.Reasons).Detail, StringComparison.Ordinal);

        var behind = ProbeStream.Healthy(_server);
        behind.ProbeClock = Timestamp.FromDateTimeOffset(_server.Time.GetUtcNow() - TimeSpan.FromSeconds(5));
        ack = await stream.HeartbeatAsync(behind);
        Assert.Equal(TimeSpan.FromSeconds(-5), ack.ClockSkew.ToTimeSpan());
        Assert.Contains("behind", Assert.Single((await Health.GetAsync(probeId))!.Reasons).Detail, StringComparison.Ordinal);

        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        Assert.Equal(TimeSpan.Zero, (await Health.GetAsync(probeId))!.ClockSkew);
        Assert.Equal(ProbeStates.Healthy, (await Health.GetAsync(probeId))!.State);
    }

    [Fact]
    public async Task A_silent_probe_goes_offline_after_three_intervals_and_inactive_after_fourteen_days()
    {
        var (probeId, certificate) = await JoinAsync();
        await using (var stream = ProbeStream.Open(_server, certificate))
            await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        using var changes = await _server.Get<IProbeStateNotifier>().SubscribeAsync();

        _server.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(ProbeStates.Healthy, (await Health.GetAsync(probeId))!.State);

        // No message arrives: the evaluator's timer alone moves the probe.
        _server.Time.Advance(TimeSpan.FromSeconds(2));
        var offline = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.StateChanged && c.ProbeId == probeId);
        Assert.Equal((ProbeStates.Healthy, ProbeStates.Offline), (offline.PreviousState, offline.State));
        Assert.Equal(HealthReasonCodes.NoHeartbeat, Assert.Single(offline.Reasons).Code);
        Assert.Equal(ProbeStates.Offline, _server.Probes.Get(probeId)!.State);

        _server.Time.Advance(TimeSpan.FromDays(14));
        var inactive = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.StateChanged && c.ProbeId == probeId);
        Assert.Equal((ProbeStates.Offline, ProbeStates.Inactive), (inactive.PreviousState, inactive.State));
        var recorded = _server.Events.Recent(10, EventKinds.ProbeStateChanged).Where(e => e.ProbeId == probeId).Select(e => e.Detail).ToList();
        Assert.StartsWith("offline -> inactive: no-heartbeat: no heartbeat for 14d", recorded[0], StringComparison.Ordinal);
        Assert.StartsWith("healthy -> offline: no-heartbeat: no heartbeat for 31s (3 intervals of 10s)", recorded[1], StringComparison.Ordinal);

        // Back to healthy as soon as it reports again.
        await using var again = ProbeStream.Open(_server, certificate);
        await again.HeartbeatAsync(ProbeStream.Healthy(_server));
        Assert.Equal(ProbeStates.Healthy, _server.Probes.Get(probeId)!.State);
    }

    [Fact]
    public async Task A_suspend_reaches_a_connected_probe_within_two_seconds_and_its_result_is_recorded()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        using var changes = await _server.Get<IProbeStateNotifier>().SubscribeAsync();

        var clock = Stopwatch.StartNew();
        var issued = Commands.Suspend(probeId, "test");
        var command = await stream.NextCommandAsync(TimeSpan.FromSeconds(2));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Equal((issued.Id, CommandKind.Suspend), (command.Id, command.Kind));
        Assert.Equal(issued.IssuedAt, command.IssuedAt.ToDateTimeOffset());

        // The operator's intent shows at once, before the probe says anything.
        var suspended = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.StateChanged);
        Assert.Equal(ProbeStates.Suspended, suspended.State);
        Assert.Equal(HealthReasonCodes.OperatorSuspended, Assert.Single(suspended.Reasons).Code);
        await ProbeChanges.EventuallyAsync(() => Commands.Get(issued.Id)!.Status == "delivered", "delivered");

        await stream.AnswerAsync(command.Id, ok: true, "capture stopped");
        var completed = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.CommandCompleted);
        Assert.Equal((issued.Id, true), (completed.CommandId, completed.Ok));
        var stored = Commands.Get(issued.Id)!;
        Assert.Equal(("ok", "capture stopped", "test"), (stored.Status, stored.ResultMessage, stored.IssuedBy));
        Assert.NotNull(stored.DeliveredAt);

        var probeSays = ProbeStream.Healthy(_server);
        probeSays.State = ProbeState.Suspended;
        await stream.HeartbeatAsync(probeSays);
        Assert.Equal([HealthReasonCodes.OperatorSuspended, HealthReasonCodes.ProbeSuspended], (await Health.GetAsync(probeId))!.Reasons.Select(r => r.Code));

        // Resume lifts the operator's suspension; the probe's own report keeps it suspended until it resumes.
        var resume = Commands.Resume(probeId);
        Assert.Equal(CommandKind.Resume, (await stream.NextCommandAsync(TimeSpan.FromSeconds(2))).Kind);
        await stream.AnswerAsync(resume.Id);
        Assert.Equal(ProbeStates.Suspended, (await Health.GetAsync(probeId))!.State);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        Assert.Equal(ProbeStates.Healthy, (await Health.GetAsync(probeId))!.State);
    }

    [Fact]
    public async Task Commands_issued_through_the_database_by_another_process_reach_the_probe_at_the_next_poll()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));

        // What the CLI does: its own ProbeCommands over state.db, nobody listening in its process.
        var elsewhere = new ProbeCommands(_server.Get<StateDatabase>(), TimeProvider.System, Microsoft.Extensions.Options.Options.Create(new PolicyOptions()), new ProbeNotifier());
        var issued = elsewhere.UploadNow(probeId, "cli:test");
        // Nothing in this process was told; only the poll of state.db finds it.
        _server.Time.Advance(TimeSpan.FromSeconds(1)); // Server:Control:ExternalChangePollInterval
        var command = await stream.NextCommandAsync(TimeSpan.FromSeconds(2));
        Assert.Equal((issued.Id, CommandKind.UploadNow), (command.Id, command.Kind));
    }

    [Fact]
    public async Task Commands_pending_while_offline_are_delivered_on_reconnect_until_answered()
    {
        var (probeId, certificate) = await JoinAsync();
        var upload = Commands.UploadNow(probeId);
        var policy = Commands.UpdatePolicy(probeId, new PolicyChange { Snaplen = 128, CaptureFilter = "ip6 and not port 22", UploadWindowStart = TimeSpan.FromHours(1), UploadWindowEnd = TimeSpan.FromHours(5) });
        Assert.Equal(2, policy.Policy!.Version); // above the initial policy's 1
        Assert.Equal(["pending", "pending"], Commands.List(probeId).Select(c => c.Status));

        await using (var stream = ProbeStream.Open(_server, certificate))
        {
            var first = await stream.NextCommandAsync();
            var second = await stream.NextCommandAsync();
            Assert.Equal((upload.Id, CommandKind.UploadNow), (first.Id, first.Kind));
            Assert.Equal((policy.Id, CommandKind.UpdatePolicy), (second.Id, second.Kind));
            Assert.Equal((128u, "ip6 and not port 22", 2L), (second.Policy.Snaplen, second.Policy.CaptureFilter, second.Policy.Version));
            Assert.Equal(TimeSpan.FromHours(5), second.Policy.UploadWindowEnd.ToTimeSpan());
            Assert.Equal(TimeSpan.FromMinutes(15), second.Policy.RotateAge.ToTimeSpan()); // unchanged fields keep the initial policy's values
            await stream.AnswerAsync(first.Id);
            await ProbeChanges.EventuallyAsync(() => Commands.Get(upload.Id)!.Status == "ok", "upload-now answered");
        }

        // The unanswered one comes again; the answered one does not.
        await using (var stream = ProbeStream.Open(_server, certificate))
        {
            var again = await stream.NextCommandAsync();
            Assert.Equal(policy.Id, again.Id);
            await stream.AnswerAsync(again.Id, ok: false, "filter does not compile");
            await ProbeChanges.EventuallyAsync(() => Commands.Get(policy.Id)!.Status == "failed", "update-policy answered");
            // Commands reach a stream in order: had the answered one been sent again, it would come before this one.
            var marker = Commands.UploadNow(probeId);
            var after = await stream.NextCommandAsync();
            Assert.Equal(marker.Id, after.Id);
            await stream.AnswerAsync(after.Id);
            await ProbeChanges.EventuallyAsync(() => Commands.Get(marker.Id)!.Status == "ok", "upload-now answered");
        }

        Assert.Equal("filter does not compile", Commands.Get(policy.Id)!.ResultMessage);
        // The next change builds on what was sent last, under a higher version.
        var next = Commands.UpdatePolicy(probeId, new PolicyChange { UploadMaxBytesPerSecond = 1_000_000 });
        Assert.Equal((3L, 128u, 1_000_000ul), (next.Policy!.Version, next.Policy.Snaplen, next.Policy.UploadMaxBytesPerSecond));
        var refused = Assert.Throws<ProbeCommandException>(() => Commands.UpdatePolicy(probeId, new PolicyChange { Snaplen = -1 }));
        Assert.Contains("Snaplen", refused.Message, StringComparison.Ordinal);
        Assert.Throws<ProbeCommandException>(() => Commands.Suspend("p-aaaaaaaaaaaa"));
    }

    [Fact]
    public async Task Revoking_closes_the_stream_and_refuses_reconnection()
    {
        var (probeId, certificate) = await JoinAsync();
        var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        using var changes = await _server.Get<IProbeStateNotifier>().SubscribeAsync();

        _server.Get<ProbeRevoker>().Revoke(probeId, "stolen", "test");
        var closed = await stream.Ended.WaitAsync(ProbeStream.Wait);
        Assert.Equal(StatusCode.PermissionDenied, closed!.StatusCode);
        Assert.Equal("probe revoked", closed.Status.Detail);
        await stream.DisposeAsync();
        await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.Disconnected);

        var health = (await Health.GetAsync(probeId))!;
        Assert.Equal((ProbeStates.Revoked, false), (health.State, health.Connected));
        Assert.Equal(new HealthReason(HealthReasonCodes.Revoked, "revoked by test: stolen"), Assert.Single(health.Reasons));
        Assert.NotNull(_server.Probes.FindCertificate(certificate.SerialNumber)!.RevokedAt);
        Assert.Contains(_server.Events.Recent(10, EventKinds.ProbeRevoked), e => e.ProbeId == probeId && e.Detail == "revoked by test: stolen");
        Assert.Throws<ProbeCommandException>(() => Commands.Suspend(probeId));

        await using var again = ProbeStream.Open(_server, certificate);
        var refused = await again.Ended.WaitAsync(ProbeStream.Wait);
        Assert.Equal(StatusCode.PermissionDenied, refused!.StatusCode);
        Assert.Contains("certificate revoked", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leaving_is_a_revocation_published_at_once_not_at_the_next_poll()
    {
        var (probeId, certificate) = await JoinAsync();
        var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        using var changes = await _server.Get<IProbeStateNotifier>().SubscribeAsync();
        _server.Time.Advance(TimeSpan.FromSeconds(2)); // less than an evaluation interval: the probe stays healthy

        // The clock stands still from here: the event poller does not run again, so only the leave itself can close the stream.
        await _server.Enrollment(certificate).LeaveAsync(new LeaveRequest { Reason = "host retired" });
        var change = await changes.WaitForAsync(c => c.Kind == ProbeChangeKind.StateChanged && c.ProbeId == probeId);
        Assert.Equal((ProbeStates.Healthy, ProbeStates.Revoked), (change.PreviousState, change.State));
        Assert.Equal(new HealthReason(HealthReasonCodes.Revoked, "host retired"), Assert.Single(change.Reasons));
        var closed = await stream.Ended.WaitAsync(ProbeStream.Wait);
        Assert.Equal(StatusCode.PermissionDenied, closed!.StatusCode);
        await stream.DisposeAsync();

        var health = (await Health.GetAsync(probeId))!;
        Assert.Equal(ProbeStates.Revoked, health.State);
        Assert.Equal(_server.Probes.Get(probeId)!.LeftAt, health.StateSince); // revoked since it left, not since it was healthy
        Assert.Equal(new HealthReason(HealthReasonCodes.Revoked, "host retired"), Assert.Single(health.Reasons));
        Assert.Contains(_server.Events.Recent(10, EventKinds.ProbeLeft), e => e.ProbeId == probeId && e.Detail == "host retired");
    }

    [Fact]
    public async Task A_revocation_written_by_another_process_closes_the_stream_at_the_next_poll()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));

        var elsewhere = new ProbeRevoker(_server.Get<StateDatabase>(), TimeProvider.System, new ProbeNotifier());
        elsewhere.Revoke(probeId, "decommissioned", "cli:test");
        _server.Time.Advance(TimeSpan.FromSeconds(1));
        var closed = await stream.Ended.WaitAsync(ProbeStream.Wait);
        Assert.Equal(StatusCode.PermissionDenied, closed!.StatusCode);
    }

    [Fact]
    public async Task The_probe_id_comes_from_the_certificate_so_a_probe_reports_and_answers_only_for_itself()
    {
        var token = _server.CreateToken(uses: 2);
        var (alice, aliceCertificate) = await JoinAsync(token);
        var (bob, _) = await JoinAsync(token);
        var bobsCommand = Commands.UploadNow(bob);

        await using var stream = ProbeStream.Open(_server, aliceCertificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        // Alice answers Bob's command (she learnt its id somehow): ignored.
        await stream.AnswerAsync(bobsCommand.Id);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server)); // the answer was handled before this ack

        Assert.Equal(ProbeStates.Healthy, (await Health.GetAsync(alice))!.State);
        Assert.Equal((ProbeStates.Pending, (DateTimeOffset?)null), ((await Health.GetAsync(bob))!.State, (await Health.GetAsync(bob))!.LastHeartbeatAt));
        Assert.Equal("pending", Commands.Get(bobsCommand.Id)!.Status);
        Assert.False(stream.HasCommand);
        Assert.Equal(1, _server.Counters.Get(ControlCounters.ResultsIgnored));
    }

    [Fact]
    public async Task Heartbeats_roll_up_per_minute_and_old_minutes_are_swept()
    {
        var (probeId, certificate) = await JoinAsync();
        await using var stream = ProbeStream.Open(_server, certificate);
        // Start at the beginning of a minute so the three heartbeats fall in two known minutes.
        var now = _server.Time.GetUtcNow();
        _server.Time.Advance(TimeSpan.FromTicks(TimeSpan.TicksPerMinute - now.UtcTicks % TimeSpan.TicksPerMinute) + TimeSpan.FromSeconds(1));
        var firstMinute = _server.Time.GetUtcNow() - TimeSpan.FromSeconds(1);

        async Task Beat(ulong received, ulong dropped, double cpu, ulong spoolBytes)
        {
            var heartbeat = ProbeStream.Healthy(_server, received);
            heartbeat.Capture.QueueDropped = dropped;
            heartbeat.CpuPercent = cpu;
            heartbeat.Spool.Bytes = spoolBytes;
            heartbeat.Interfaces.Add(new InterfaceUtilisation { Name = "eth0", RxBytesPerSecond = spoolBytes, TxBytesPerSecond = 1, Utilisation = cpu / 10 });
            heartbeat.Interfaces.Add(new InterfaceUtilisation { Name = "eth1", RxBytesPerSecond = 1000, Utilisation = -1 });
            await stream.HeartbeatAsync(heartbeat);
        }

        await Beat(1000, 0, 2, 100);
        _server.Time.Advance(TimeSpan.FromSeconds(10));
        await Beat(1500, 5, 4, 300);
        _server.Time.Advance(TimeSpan.FromMinutes(1));
        await Beat(2500, 5, 6, 200);

        var history = await Health.HistoryAsync(probeId, firstMinute - TimeSpan.FromHours(1), firstMinute + TimeSpan.FromHours(1));
        Assert.Equal([firstMinute, firstMinute + TimeSpan.FromMinutes(1)], history.Select(m => m.Minute));
        Assert.Equal((2, 1500L, 5L, 3.0, 300L), (history[0].Heartbeats, history[0].Received, history[0].QueueDropped, history[0].CpuPercentMean, history[0].SpoolBytesMax));
        Assert.Equal((1, 1000L, 0L, 6.0, 200L), (history[1].Heartbeats, history[1].Received, history[1].QueueDropped, history[1].CpuPercentMean, history[1].SpoolBytesMax));
        Assert.Equal(ReportedStates.Capturing, history[1].ReportedState);
        Assert.Equal((1300L, 1L, 0.4), (history[0].RxBytesPerSecondMax, history[0].TxBytesPerSecondMax, history[0].UtilisationMax));

        // Kept 7 days: the hourly sweep deletes them once they are older.
        _server.Time.Advance(TimeSpan.FromDays(7) + TimeSpan.FromHours(1));
        await ProbeChanges.EventuallyAsync(async () => (await Health.HistoryAsync(probeId, firstMinute - TimeSpan.FromHours(1), firstMinute + TimeSpan.FromHours(1))).Count == 0, "rollups swept");
    }

    [Fact]
    public async Task Heartbeats_sent_too_fast_are_acknowledged_but_not_recorded()
    {
        await using var server = await ServerHarness.StartAsync();
        var (response, certificate) = await server.JoinAsync(server.CreateToken());
        await using var stream = ProbeStream.Open(server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 1));
        var ack = await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 2));
        Assert.Equal(2ul, ack.Sequence);
        Assert.Equal(1ul, (await server.Get<ProbeHealthQuery>().GetAsync(response.ProbeId))!.LastHeartbeat!.Capture.Received);
        Assert.Equal(1, server.Counters.Get(ControlCounters.HeartbeatsThrottled));

        server.Time.Advance(TimeSpan.FromMilliseconds(500));
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 3));
        Assert.Equal(3ul, (await server.Get<ProbeHealthQuery>().GetAsync(response.ProbeId))!.LastHeartbeat!.Capture.Received);
    }

    private async Task<(string ProbeId, X509Certificate2 Certificate)> JoinAsync(string? token = null)
    {
        var (response, certificate) = await _server.JoinAsync(token ?? _server.CreateToken());
        return (response.ProbeId, certificate);
    }
}

using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Options;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>What recording a heartbeat led to.</summary>
internal sealed record HeartbeatOutcome(bool Revoked, string State, TimeSpan? ClockSkew);

/// <summary>
/// Keeps probes.state in step with the health rules: records heartbeats (status, per-minute
/// rollup, state) and re-evaluates probes on the server's clock, each in one transaction so a
/// heartbeat and the evaluator never interleave. Every state change is an event with its reasons
/// and a <see cref="ProbeChangeKind.StateChanged"/> notification.
/// </summary>
internal sealed class ProbeHealthTracker(
    StateDatabase database,
    TimeProvider time,
    IOptions<HealthOptions> health,
    IOptions<PolicyOptions> policy,
    ProbeNotifier notifier,
    ServerCounters counters,
    ILogger<ProbeHealthTracker> logger)
{
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxInterval = TimeSpan.FromHours(1);
    private static readonly TimeSpan MaxRoundTrip = TimeSpan.FromMinutes(1);

    private TimeSpan DefaultInterval => policy.Value.HeartbeatInterval;

    public HeartbeatOutcome RecordHeartbeat(string probeId, Heartbeat heartbeat, DateTimeOffset receivedAt)
    {
        Sanitise(heartbeat);
        var changes = new List<ProbeChange>(2);
        HeartbeatOutcome outcome;
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            var row = StatusRows.Read(connection, transaction, probeId);
            if (row is null || row.StoredState == ProbeStates.Revoked)
                return new HeartbeatOutcome(true, ProbeStates.Revoked, null);

            var figures = Figures(heartbeat, row.LastHeartbeat, row.LastHeartbeatAt, receivedAt);
            StatusRows.WriteHeartbeat(connection, transaction, probeId, receivedAt, figures, heartbeat);
            StatusRows.AddToMinute(connection, transaction, probeId, receivedAt, figures, heartbeat);
            var updated = StatusRows.Read(connection, transaction, probeId)!;
            var state = Apply(connection, transaction, updated, changes);
            transaction.Commit();
            outcome = new HeartbeatOutcome(false, state, figures.ClockSkew);
        }

        counters.Increment(ControlCounters.Heartbeats);
        changes.Add(new ProbeChange(ProbeChangeKind.Heartbeat, probeId, receivedAt) { State = outcome.State });
        Publish(changes);
        return outcome;
    }

    /// <summary>Re-evaluates one probe now (after an operator's suspend or resume).</summary>
    public void Reevaluate(string probeId)
    {
        var changes = new List<ProbeChange>(1);
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            if (StatusRows.Read(connection, transaction, probeId) is { } row && row.StoredState != ProbeStates.Revoked)
                Apply(connection, transaction, row, changes);
            transaction.Commit();
        }

        Publish(changes);
    }

    /// <summary>Re-evaluates every probe that is not revoked; this is how silent probes become offline, then inactive.</summary>
    public int EvaluateAll()
    {
        var changes = new List<ProbeChange>();
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            foreach (var row in StatusRows.ReadAll(connection, transaction, exceptRevoked: true))
                Apply(connection, transaction, row, changes);
            transaction.Commit();
        }

        Publish(changes);
        return changes.Count;
    }

    /// <summary>Deletes rollups older than the retention; returns how many.</summary>
    public int SweepHistory()
    {
        using var connection = database.Open();
        return StatusRows.DeleteMinutesBefore(connection, time.GetUtcNow() - health.Value.HistoryRetention);
    }

    private string Apply(SqliteConnection connection, SqliteTransaction transaction, ProbeStatusRow row, List<ProbeChange> changes)
    {
        var now = time.GetUtcNow();
        var (state, reasons) = ProbeHealthRules.Evaluate(row, now, health.Value, DefaultInterval);
        if (state == row.StoredState)
            return state;
        if (!StatusRows.ChangeState(connection, transaction, row.ProbeId, row.StoredState, state, now))
            return row.StoredState;
        var because = reasons.Count == 0 ? "" : ": " + string.Join("; ", reasons);
        EventStore.Append(connection, transaction, time, EventKinds.ProbeStateChanged, row.ProbeId, null, $"{row.StoredState} -> {state}{because}");
        ControlLog.StateChanged(logger, row.ProbeId, row.StoredState, state, because);
        changes.Add(new ProbeChange(ProbeChangeKind.StateChanged, row.ProbeId, now) { State = state, PreviousState = row.StoredState, Reasons = reasons });
        return state;
    }

    private void Publish(List<ProbeChange> changes)
    {
        foreach (var change in changes)
            notifier.Publish(change);
    }

    /// <summary>
    /// Rates and skew from this heartbeat and the previous one. Counters are cumulative per probe
    /// process and count from zero after a restart. Intervals are measured on the server's clock only.
    /// </summary>
    internal static HeartbeatFigures Figures(Heartbeat heartbeat, Heartbeat? previous, DateTimeOffset? previousAt, DateTimeOffset receivedAt)
    {
        TimeSpan? interval = TryDuration(heartbeat.HeartbeatInterval) is { } i && i > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Clamp(i.Ticks, MinInterval.Ticks, MaxInterval.Ticks)) : null;
        TimeSpan? roundTrip = TryDuration(heartbeat.RoundTrip) is { } r && r >= TimeSpan.Zero && r <= MaxRoundTrip ? r : null;
        // The probe stamped its clock about half a round trip before the heartbeat arrived.
        TimeSpan? skew = TryTime(heartbeat.ProbeClock) is { } clock ? clock - (receivedAt - (roundTrip ?? TimeSpan.Zero) / 2) : null;

        var capture = heartbeat.Capture ?? new CaptureCounters();
        var before = previous?.Capture ?? new CaptureCounters();
        var upload = heartbeat.Upload ?? new UploadCounters();
        var uploadBefore = previous?.Upload ?? new UploadCounters();
        // Any counter going down means the probe process restarted: all of them start from zero again.
        if (capture.Received < before.Received || capture.KernelDropped < before.KernelDropped || capture.InterfaceDropped < before.InterfaceDropped
            || capture.QueueDropped < before.QueueDropped || upload.FilesUploaded < uploadBefore.FilesUploaded
            || upload.BytesUploaded < uploadBefore.BytesUploaded || upload.Failures < uploadBefore.Failures)
        {
            before = new CaptureCounters();
            uploadBefore = new UploadCounters();
        }

        var received = capture.Received - before.Received;
        var kernel = capture.KernelDropped - before.KernelDropped;
        var nic = capture.InterfaceDropped - before.InterfaceDropped;
        var queue = capture.QueueDropped - before.QueueDropped;
        var files = upload.FilesUploaded - uploadBefore.FilesUploaded;
        var bytes = upload.BytesUploaded - uploadBefore.BytesUploaded;
        var failures = upload.Failures - uploadBefore.Failures;

        double dropped = (double)kernel + nic + queue;
        var dropRatio = received + dropped > 0 ? dropped / (received + dropped) : 0;
        var seconds = previousAt is { } at ? (receivedAt - at).TotalSeconds : 0;
        return new HeartbeatFigures(
            interval, skew, roundTrip, received, kernel, nic, queue, files, bytes, failures,
            seconds > 0 ? received / seconds : 0, dropRatio, seconds > 0 ? bytes / seconds : 0);
    }

    private static DateTimeOffset? TryTime(Timestamp? timestamp)
    {
        // ToDateTimeOffset throws outside year 1..9999 or with bad nanos; a probe's bad clock is data, not an error.
        if (timestamp is null || timestamp.Nanos is < 0 or > 999_999_999 || timestamp.Seconds is < -62_135_596_800 or > 253_402_300_799)
            return null;
        return timestamp.ToDateTimeOffset();
    }

    private static TimeSpan? TryDuration(Duration? duration)
    {
        if (duration is null || Math.Abs(duration.Seconds) > 10_000L * 86_400 || duration.Nanos is < -999_999_999 or > 999_999_999)
            return null;
        return duration.ToTimeSpan();
    }

    /// <summary>Bounds what a probe can make the server store.</summary>
    private static void Sanitise(Heartbeat heartbeat)
    {
        heartbeat.StateReason = Truncate(heartbeat.StateReason, 500);
        heartbeat.SoftwareVersion = Truncate(heartbeat.SoftwareVersion, 100);
        while (heartbeat.Interfaces.Count > 64)
            heartbeat.Interfaces.RemoveAt(heartbeat.Interfaces.Count - 1);
        foreach (var nic in heartbeat.Interfaces)
            nic.Name = Truncate(nic.Name, 64);
    }

    private static string Truncate(string text, int length) => text.Length > length ? text[..length] : text;
}

using Google.Protobuf.WellKnownTypes;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;

namespace Survey6.Server.Control;

/// <summary>What the stream needs to acknowledge a heartbeat, known without touching the database.</summary>
internal readonly record struct HeartbeatOutcome(bool Revoked, TimeSpan? ClockSkew);

/// <summary>
/// Takes a heartbeat from a control stream: refuses a revoked probe, bounds what the probe can make
/// the server store, queues it for <see cref="HeartbeatWriter"/> and works out what the
/// acknowledgement needs. Also reads a heartbeat's figures (rates, drop ratio, clock skew) against
/// the previous one, which the writer stores.
/// </summary>
internal sealed class HeartbeatRecorder(ProbeRevocations revocations, HeartbeatWriter writer, ServerCounters counters)
{
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxInterval = TimeSpan.FromHours(1);
    private static readonly TimeSpan MaxRoundTrip = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Queues a heartbeat for the writer and returns what the acknowledgement needs. Does no I/O:
    /// the probe's revocation is known in memory, and skew depends on this heartbeat alone.
    /// </summary>
    public HeartbeatOutcome RecordHeartbeat(string probeId, Heartbeat heartbeat, DateTimeOffset receivedAt)
    {
        if (revocations.IsProbeRevoked(probeId))
            return new HeartbeatOutcome(true, null);
        Enrollment.HostFactLimits.Cut(heartbeat); // bounds what a probe can make the server store
        counters.Increment(ControlCounters.Heartbeats);
        writer.Enqueue(new PendingHeartbeat(probeId, heartbeat, receivedAt)); // a refused one is counted and logged there
        return new HeartbeatOutcome(false, Skew(heartbeat, receivedAt));
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
        var skew = Skew(heartbeat, receivedAt);

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

    /// <summary>Probe clock minus server clock; the probe stamped its clock about half a round trip before the heartbeat arrived.</summary>
    internal static TimeSpan? Skew(Heartbeat heartbeat, DateTimeOffset receivedAt)
    {
        TimeSpan? roundTrip = TryDuration(heartbeat.RoundTrip) is { } r && r >= TimeSpan.Zero && r <= MaxRoundTrip ? r : null;
        return TryTime(heartbeat.ProbeClock) is { } clock ? clock - (receivedAt - (roundTrip ?? TimeSpan.Zero) / 2) : null;
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
}

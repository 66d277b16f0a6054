using System.Globalization;
using Survey6.Contracts.V1;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>Why a probe is in its state: a stable <see cref="Code"/> for programs, a <see cref="Detail"/> for people.</summary>
public sealed record HealthReason(string Code, string Detail)
{
    public override string ToString() => Code + ": " + Detail;
}

/// <summary>The codes of <see cref="HealthReason"/>.</summary>
public static class HealthReasonCodes
{
    public const string DropRatio = "drop-ratio";
    public const string UploadBacklog = "upload-backlog";
    public const string LowDisk = "low-disk";
    public const string ClockSkew = "clock-skew";
    /// <summary>The probe itself reports DEGRADED; the detail is its state_reason.</summary>
    public const string ProbeDegraded = "probe-degraded";
    public const string ProbeSuspended = "probe-suspended";
    public const string OperatorSuspended = "operator-suspended";
    public const string NoHeartbeat = "no-heartbeat";
    public const string NeverReported = "never-reported";
    public const string Revoked = "revoked";
}

/// <summary>What the health rules look at: the probe row and its control status as stored.</summary>
internal sealed record ProbeStatusRow(
    string ProbeId,
    string StoredState,
    string Hostname,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset JoinedAt,
    string? LeaveReason,
    DateTimeOffset? FirstHeartbeatAt,
    DateTimeOffset? LastHeartbeatAt,
    TimeSpan? HeartbeatInterval,
    string? ReportedState,
    string ReportedReason,
    TimeSpan? ClockSkew,
    TimeSpan? RoundTrip,
    double PacketsPerSecond,
    double DropRatio,
    double UploadBytesPerSecond,
    Heartbeat? LastHeartbeat,
    bool OperatorSuspended,
    string? PolicyJson,
    DateTimeOffset? StateSince);

/// <summary>
/// The derived state of a probe, a pure function of what it last reported, what the operator
/// asked, and the server's clock now. Precedence: revoked, inactive, offline, pending, suspended,
/// degraded, healthy. A suspended probe keeps its degradation reasons in the list.
/// </summary>
internal static class ProbeHealthRules
{
    public static (string State, IReadOnlyList<HealthReason> Reasons) Evaluate(ProbeStatusRow row, DateTimeOffset now, HealthOptions options, TimeSpan defaultInterval)
    {
        if (row.StoredState == ProbeStates.Revoked)
            return (ProbeStates.Revoked, [new HealthReason(HealthReasonCodes.Revoked, string.IsNullOrEmpty(row.LeaveReason) ? "revoked" : row.LeaveReason)]);
        if (row.LastHeartbeatAt is not { } last)
        {
            var waiting = new List<HealthReason> { new(HealthReasonCodes.NeverReported, "joined, never reported") };
            if (row.OperatorSuspended)
                waiting.Add(new HealthReason(HealthReasonCodes.OperatorSuspended, "suspended by the operator"));
            return (ProbeStates.Pending, waiting);
        }

        var silence = now - last;
        var interval = row.HeartbeatInterval ?? defaultInterval;
        var offlineAfter = interval * options.OfflineAfterIntervals;
        if (silence >= options.InactiveAfter)
            return (ProbeStates.Inactive, [new HealthReason(HealthReasonCodes.NoHeartbeat, $"no heartbeat for {Format(silence)}")]);
        if (silence >= offlineAfter)
        {
            return (ProbeStates.Offline, [new HealthReason(HealthReasonCodes.NoHeartbeat,
                $"no heartbeat for {Format(silence)} ({options.OfflineAfterIntervals} intervals of {Format(interval)})")]);
        }

        var reasons = new List<HealthReason>();
        if (row.OperatorSuspended)
            reasons.Add(new HealthReason(HealthReasonCodes.OperatorSuspended, "suspended by the operator"));
        if (row.ReportedState == ReportedStates.Suspended)
            reasons.Add(new HealthReason(HealthReasonCodes.ProbeSuspended, row.ReportedReason.Length > 0 ? row.ReportedReason : "the probe reports it is suspended"));
        var suspended = reasons.Count > 0;

        if (row.ReportedState == ReportedStates.Degraded)
            reasons.Add(new HealthReason(HealthReasonCodes.ProbeDegraded, row.ReportedReason.Length > 0 ? row.ReportedReason : "the probe reports it is degraded"));
        if (row.DropRatio > options.MaxDropRatio)
            reasons.Add(new HealthReason(HealthReasonCodes.DropRatio, $"dropped {Percent(row.DropRatio)} of frames since the previous heartbeat (limit {Percent(options.MaxDropRatio)})"));
        if (row.LastHeartbeat?.Spool is { } spool)
        {
            if (spool.OldestAge is { } age && age.ToTimeSpan() > options.MaxUploadBacklogAge)
                reasons.Add(new HealthReason(HealthReasonCodes.UploadBacklog, $"oldest spooled file waiting {Format(age.ToTimeSpan())} (limit {Format(options.MaxUploadBacklogAge)})"));
            if (spool.FreeDiskBytes < (ulong)options.MinFreeDiskBytes)
                reasons.Add(new HealthReason(HealthReasonCodes.LowDisk, $"{Bytes(spool.FreeDiskBytes)} free on the spool's disk (limit {Bytes((ulong)options.MinFreeDiskBytes)})"));
        }

        if (row.ClockSkew is { } skew && skew.Duration() > options.MaxClockSkew)
            reasons.Add(new HealthReason(HealthReasonCodes.ClockSkew, $"clock {Format(skew.Duration())} {(skew > TimeSpan.Zero ? "ahead of" : "behind")} the server's (limit {Format(options.MaxClockSkew)})"));

        if (suspended)
            return (ProbeStates.Suspended, reasons);
        return reasons.Count > 0 ? (ProbeStates.Degraded, reasons) : (ProbeStates.Healthy, reasons);
    }

    private static string Format(TimeSpan span) => ProbeHealthFormat.Duration(span);

    private static string Percent(double ratio) => ProbeHealthFormat.Percent(ratio);

    private static string Bytes(ulong bytes) => ProbeHealthFormat.Bytes(bytes);
}

/// <summary>How durations, ratios and sizes read in health reasons and the CLI.</summary>
public static class ProbeHealthFormat
{
    /// <summary>"850ms", "12.5s", "4m10s", "3h5m", "2d4h"; the sign is dropped.</summary>
    public static string Duration(TimeSpan span)
    {
        span = span.Duration();
        if (span < TimeSpan.FromSeconds(1))
            return ((int)span.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
        if (span < TimeSpan.FromMinutes(1))
            return span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + "s";
        if (span < TimeSpan.FromHours(1))
            return $"{span.Minutes}m{span.Seconds}s";
        if (span < TimeSpan.FromDays(1))
            return $"{span.Hours}h{span.Minutes}m";
        return $"{(int)span.TotalDays}d{span.Hours}h";
    }

    public static string Percent(double ratio) => (ratio * 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";

    /// <summary>"512 B", "1.5 MiB".</summary>
    public static string Bytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        var unit = 0;
        while (bytes >= 1024 && unit < units.Length - 1)
        {
            bytes /= 1024;
            unit++;
        }

        return bytes.ToString(unit == 0 ? "0" : "0.#", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}

/// <summary>The probe's own state as stored: <see cref="Survey6.Contracts.V1.ProbeState"/> in lowercase words.</summary>
public static class ReportedStates
{
    public const string Capturing = "capturing";
    public const string Suspended = "suspended";
    public const string Uploading = "uploading";
    public const string Degraded = "degraded";
    public const string Unspecified = "unspecified";

    public static string From(ProbeState state) => state switch
    {
        ProbeState.Capturing => Capturing,
        ProbeState.Suspended => Suspended,
        ProbeState.Uploading => Uploading,
        ProbeState.Degraded => Degraded,
        _ => Unspecified,
    };
}

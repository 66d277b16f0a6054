using Microsoft.Extensions.Logging;

namespace Survey6.Aggregator;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Stage {Stage} run {RunId} started")]
    public static partial void StageStarted(ILogger logger, string stage, string runId);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Stage {Stage} run {RunId} {Status} in {DurationMs} ms: {Inputs} inputs, {Outputs} outputs, {Rows} rows")]
    public static partial void StageFinished(ILogger logger, string stage, string runId, string status, long durationMs, long inputs, long outputs, long rows);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Stage {Stage} run {RunId} failed")]
    public static partial void StageFailed(ILogger logger, Exception exception, string stage, string runId);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Stage {Stage} skipped: another stage holds the lock {LockPath}")]
    public static partial void StageLocked(ILogger logger, string stage, string lockPath);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "Stage {Stage} could not start (attempt {Attempt}); trying again in {Delay}")]
    public static partial void StageStartFailed(ILogger logger, Exception exception, string stage, int attempt, TimeSpan delay);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Stage {Stage} started on attempt {Attempt}")]
    public static partial void StageStartRecovered(ILogger logger, string stage, int attempt);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Parsed capture {Sha256} of probe {ProbeId}: {Frames} frames in {DurationMs} ms")]
    public static partial void CaptureParsed(ILogger logger, string sha256, string probeId, long frames, long durationMs);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Quarantined capture {Sha256} of probe {ProbeId}: {Reason}")]
    public static partial void CaptureQuarantined(ILogger logger, string sha256, string probeId, string reason);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Capture {Sha256} of probe {ProbeId} failed (attempt {Attempt}, retry after {NextAttempt:o}): {Reason}")]
    public static partial void CaptureFailed(ILogger logger, string sha256, string probeId, int attempt, DateTimeOffset nextAttempt, string reason);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Capture {Sha256} of probe {ProbeId}: {Problem}")]
    public static partial void ManifestProblem(ILogger logger, string sha256, string probeId, string problem);

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Aggregated {Date}: {Inputs} new or changed captures read, {Rows} rows")]
    public static partial void PartitionBuilt(ILogger logger, string date, int inputs, long rows);

    [LoggerMessage(EventId = 45, Level = LogLevel.Debug, Message = "Aggregate step {Step} of {Date}: {Milliseconds} ms, {CpuMilliseconds} ms of the process's CPU; RSS {RssMiB} MiB, peak so far {PeakRssMiB} MiB, managed heap {ManagedHeapMiB} MiB committed")]
    public static partial void AggregateStep(ILogger logger, string date, string step, long milliseconds, long cpuMilliseconds, long rssMiB, long peakRssMiB, long managedHeapMiB);

    [LoggerMessage(EventId = 21, Level = LogLevel.Debug, Message = "Partition {Date} is up to date")]
    public static partial void PartitionUnchanged(ILogger logger, string date);

    [LoggerMessage(EventId = 22, Level = LogLevel.Debug, Message = "Partition {Date} is still open")]
    public static partial void PartitionOpen(ILogger logger, string date);

    [LoggerMessage(EventId = 23, Level = LogLevel.Error, Message = "Partition {Date} not aggregated: {Problem}")]
    public static partial void PartitionKeyMismatch(ILogger logger, string date, string problem);

    [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Retention removed raw capture {Sha256} of probe {ProbeId} ({Bytes} bytes); its packets file is {PacketsPath}")]
    public static partial void CaptureRemoved(ILogger logger, string sha256, string probeId, long bytes, string packetsPath);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "Retention keeps raw capture {Sha256} of probe {ProbeId}: {Reason}")]
    public static partial void CaptureKept(ILogger logger, string sha256, string probeId, string reason);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Cleanup removed {Files} temp files and {Folders} staging folders; {Abandoned} runs marked abandoned")]
    public static partial void CleanupRemoved(ILogger logger, int files, int folders, int abandoned);
    [LoggerMessage(EventId = 33, Level = LogLevel.Information, Message = "Cleanup removed {Files} connection fragment files of an older format ({Bytes} bytes), which this version never reads; the captures' connections are tracked from their stored captures")]
    public static partial void CleanupRemovedOutdatedFragments(ILogger logger, int files, long bytes);
    [LoggerMessage(EventId = 40, Level = LogLevel.Debug, Message = "Leased capture {Sha256} as {Consumer}, attempt {Attempt}")]
    public static partial void CaptureLeased(ILogger logger, string sha256, string consumer, int attempt);

    [LoggerMessage(EventId = 41, Level = LogLevel.Debug, Message = "Capture {Sha256} done ({Outcome}); queue ack held: {Acked}")]
    public static partial void CaptureCompleted(ILogger logger, string sha256, Sources.CaptureOutcome outcome, bool acked);

    [LoggerMessage(EventId = 42, Level = LogLevel.Warning, Message = "Lost the lease on capture {Sha256}: another worker has taken it over")]
    public static partial void LeaseLost(ILogger logger, string sha256);

    [LoggerMessage(EventId = 43, Level = LogLevel.Warning, Message = "Could not renew the lease on capture {Sha256}; trying again")]
    public static partial void LeaseRenewFailed(ILogger logger, Exception exception, string sha256);

    [LoggerMessage(EventId = 44, Level = LogLevel.Warning, Message = "Could not give back the lease on capture {Sha256}; it is redelivered when the lease runs out")]
    public static partial void LeaseReleaseFailed(ILogger logger, Exception exception, string sha256);
}

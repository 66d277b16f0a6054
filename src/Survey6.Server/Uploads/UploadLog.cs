using Microsoft.Extensions.Logging;

namespace Survey6.Server.Uploads;

internal static partial class UploadLog
{
    [LoggerMessage(100, LogLevel.Information, "Acknowledged {Sha256} from {ProbeId} at {Remote}: {Size} bytes, {Received} received in this call from offset {ResumedAt}, duplicate {Duplicate}")]
    public static partial void Acknowledged(ILogger logger, string sha256, string probeId, string remote, long size, long received, long resumedAt, bool duplicate);

    [LoggerMessage(101, LogLevel.Warning, "Upload from {ProbeId} at {Remote} refused: {Detail}")]
    public static partial void ProtocolViolation(ILogger logger, string probeId, string remote, string detail);

    [LoggerMessage(102, LogLevel.Information, "Upload of {Sha256} from {ProbeId} at {Remote} ended by the client after {Received} bytes; what arrived is kept for resuming")]
    public static partial void Interrupted(ILogger logger, string sha256, string probeId, string remote, long received);

    // Every attempt, with the trace, at debug only: UploadFailures logs a repeating failure once per condition.
    [LoggerMessage(103, LogLevel.Debug, "Upload of {Sha256} from {ProbeId} at {Remote} failed on the server; nothing was acknowledged")]
    public static partial void Failed(ILogger logger, Exception exception, string sha256, string probeId, string remote);

    [LoggerMessage(104, LogLevel.Information, "Upload store ready in {DataDirectory}: {Requeued} captures queued again, {Abandoned} abandoned uploads and {Leftovers} leftovers removed")]
    public static partial void Recovered(ILogger logger, string dataDirectory, int requeued, int abandoned, int leftovers);

    [LoggerMessage(105, LogLevel.Warning, "Sweeping abandoned partial uploads in {DataDirectory} failed; the next sweep tries again")]
    public static partial void SweepFailed(ILogger logger, Exception exception, string dataDirectory);

    [LoggerMessage(106, LogLevel.Error, "Uploads from {ProbeId} fail on the server: {Cause}; repeats are counted and logged every few minutes")]
    public static partial void FailingOnServer(ILogger logger, string probeId, string cause);

    [LoggerMessage(107, LogLevel.Error, "Uploads from {ProbeId} still fail on the server: {Failures} failures since {Since:u}, {Unlogged} not logged since the last line; {Cause}")]
    public static partial void StillFailingOnServer(ILogger logger, string probeId, long failures, DateTimeOffset since, long unlogged, string cause);

    [LoggerMessage(108, LogLevel.Information, "Uploads from {ProbeId} succeed again after {Failures} failures on the server")]
    public static partial void RecoveredOnServer(ILogger logger, string probeId, long failures);

    [LoggerMessage(109, LogLevel.Warning, "Server degraded: {Reason}")]
    public static partial void Degraded(ILogger logger, string reason);

    [LoggerMessage(110, LogLevel.Information, "Server no longer degraded by failing uploads: an upload from {ProbeId} was stored after {Failures} failures in a row")]
    public static partial void NoLongerDegraded(ILogger logger, long failures, string probeId);

    [LoggerMessage(111, LogLevel.Warning, "Could not record the upload failures in state.db for survey6 server probes: {Detail}")]
    public static partial void RecordFailed(ILogger logger, string detail);
}

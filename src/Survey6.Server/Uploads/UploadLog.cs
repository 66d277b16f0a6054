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

    [LoggerMessage(103, LogLevel.Error, "Upload of {Sha256} from {ProbeId} at {Remote} failed on the server; nothing was acknowledged")]
    public static partial void Failed(ILogger logger, Exception exception, string sha256, string probeId, string remote);

    [LoggerMessage(104, LogLevel.Information, "Upload store ready in {DataDirectory}: {Requeued} captures queued again, {Abandoned} abandoned uploads and {Leftovers} leftovers removed")]
    public static partial void Recovered(ILogger logger, string dataDirectory, int requeued, int abandoned, int leftovers);

    [LoggerMessage(105, LogLevel.Warning, "Sweeping abandoned partial uploads in {DataDirectory} failed; the next sweep tries again")]
    public static partial void SweepFailed(ILogger logger, Exception exception, string dataDirectory);
}

using Microsoft.Extensions.Logging;
using Survey6.Contracts;

namespace Survey6.Server.Storage;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Stored capture {Sha256} from probe {ProbeId}: {Size} bytes at {Path}")]
    public static partial void Stored(ILogger logger, string sha256, string probeId, long size, string path);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Capture {Sha256} from probe {ProbeId} is already stored")]
    public static partial void Duplicate(ILogger logger, string sha256, string probeId);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Upload of {Sha256} from probe {ProbeId} begins at {Offset} of {Size} bytes")]
    public static partial void Began(ILogger logger, string sha256, string probeId, long offset, long size);

    /// <summary>A warning for what a probe sent; debug for the server's own refusal (low disk), which its caller logs once per condition.</summary>
    [LoggerMessage(EventId = 4, Message = "Rejected upload of {Sha256} from probe {ProbeId}: {Rejection}, {Reason}")]
    public static partial void Rejected(ILogger logger, LogLevel level, string sha256, string probeId, UploadRejection rejection, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning,
        Message = "Discarding {Held} held bytes of {Sha256} from probe {ProbeId}: the upload now declares {Size} bytes, it began with {PreviousSize}")]
    public static partial void Restarted(ILogger logger, string sha256, string probeId, long held, long size, long? previousSize);

    // Debug: the exception goes on to the caller, which reports it (the upload service once per condition, recovery by failing the start).
    [LoggerMessage(EventId = 6, Level = LogLevel.Debug,
        Message = "Queueing capture {Sha256} from probe {ProbeId} failed; it stays stored and is offered again on the next upload attempt or recovery")]
    public static partial void SinkFailed(ILogger logger, Exception exception, string sha256, string probeId);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Recovery offered stored capture {Sha256} from probe {ProbeId} to the queue again")]
    public static partial void Requeued(ILogger logger, string sha256, string probeId);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Deleted the partial upload {Sha256} from probe {ProbeId}, untouched since {LastWrite}")]
    public static partial void Abandoned(ILogger logger, string sha256, string probeId, DateTimeOffset lastWrite);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Stored capture {Sha256} from probe {ProbeId} has no manifest")]
    public static partial void ManifestMissing(ILogger logger, string sha256, string probeId);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information,
        Message = "Recovery done: {Requeued} requeued, {Abandoned} abandoned uploads deleted, {Leftovers} leftovers removed, {Busy} busy")]
    public static partial void Recovered(ILogger logger, int requeued, int abandoned, int leftovers, int busy);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning,
        Message = "Deleted the partial upload {Sha256} from probe {ProbeId}, idle since {LastWrite}, to keep the probe within {Limit} partial uploads")]
    public static partial void Evicted(ILogger logger, string sha256, string probeId, DateTimeOffset lastWrite, int limit);
}

using Microsoft.Extensions.Logging;

namespace Survey6.Probe.Uplink;

internal static partial class UplinkLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Uploading the spool to {Server} as {ProbeId}; idle below {IdleBytesPerSecond} B/s for {QuietPeriod}, at most {MaxBytesPerSecond} B/s")]
    public static partial void UploaderStarted(ILogger logger, Uri server, string probeId, long idleBytesPerSecond, TimeSpan quietPeriod, long maxBytesPerSecond);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "Uploaded and removed {File} ({Bytes} bytes, duplicate {Duplicate})")]
    public static partial void FileUploaded(ILogger logger, string file, long bytes, bool duplicate);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Upload of {File} failed, kept for a retry in {Delay}: {Reason}")]
    public static partial void UploadFailed(ILogger logger, string file, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "{Files} spooled files wait for an idle link ({BytesPerSecond} B/s of other traffic)")]
    public static partial void Deferring(ILogger logger, int files, long bytesPerSecond);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "Files waited {MaxDeferral} for an idle link; uploading anyway at the rate cap")]
    public static partial void DeferralExpired(ILogger logger, TimeSpan maxDeferral);

    [LoggerMessage(EventId = 410, Level = LogLevel.Information, Message = "Control stream to {Server}: heartbeats every {Interval}")]
    public static partial void ControlStarted(ILogger logger, Uri server, TimeSpan interval);

    [LoggerMessage(EventId = 411, Level = LogLevel.Warning, Message = "Control stream ended ({Reason}); reconnecting in {Delay}")]
    public static partial void ControlDisconnected(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(EventId = 412, Level = LogLevel.Information, Message = "Command {CommandId} ({Kind}): ok {Ok}, {Result}")]
    public static partial void CommandExecuted(ILogger logger, string commandId, Survey6.Contracts.V1.CommandKind kind, bool ok, string result);

    [LoggerMessage(EventId = 414, Level = LogLevel.Warning, Message = "Leaving the C&C's new addresses out of the capture failed: {Reason}")]
    public static partial void OwnTrafficRefreshFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 415, Level = LogLevel.Warning, Message = "Uploads still failing: {Count} attempts failed since {Since:u} ({Unlogged} not logged); the last: {Reason}")]
    public static partial void UploadsStillFailing(ILogger logger, long count, DateTimeOffset since, long unlogged, string reason);

    [LoggerMessage(EventId = 416, Level = LogLevel.Information, Message = "Uploads succeed again after {Count} failed attempts")]
    public static partial void UploadsRecovered(ILogger logger, long count);

    [LoggerMessage(EventId = 417, Level = LogLevel.Warning, Message = "Upload of {File} failing, the uploader retries it: {Reason}")]
    public static partial void UploadAttemptFailed(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 413, Level = LogLevel.Error, Message = "The server refused this probe; the control stream stops: {Reason}")]
    public static partial void ControlRefused(ILogger logger, string reason);
}

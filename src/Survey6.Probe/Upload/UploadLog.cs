using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Survey6.Probe.Upload;

internal static partial class UploadLog
{
    [LoggerMessage(200, LogLevel.Information, "Uploaded {Path} ({Sha256}, {Size} bytes): {Sent} sent from offset {ResumedFrom} in {Attempts} attempts, duplicate {Duplicate}")]
    public static partial void Uploaded(ILogger logger, string path, string sha256, long size, long sent, long resumedFrom, int attempts, bool duplicate);

    [LoggerMessage(EventId = 201, Message = "Upload of {Path} failed ({Code}: {Detail}); attempt {Attempt} of {MaxAttempts}, retrying in {Delay}")]
    public static partial void Retrying(ILogger logger, LogLevel level, string path, StatusCode code, string detail, int attempt, int maxAttempts, TimeSpan delay);

    [LoggerMessage(202, LogLevel.Warning, "The server discarded its partial copy of {Path} ({Sha256}): the bytes it held did not match; sending the whole file again")]
    public static partial void Restarting(ILogger logger, string path, string sha256);
}

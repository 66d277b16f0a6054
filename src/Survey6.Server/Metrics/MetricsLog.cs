using Microsoft.Extensions.Logging;

namespace Survey6.Server.Metrics;

internal static partial class MetricsLog
{
    [LoggerMessage(201, LogLevel.Warning, "Metrics: could not read {What}")]
    public static partial void CollectFailed(ILogger logger, string what, Exception exception);
}

using Microsoft.Extensions.Logging;

namespace Survey6.Ingest;

internal static partial class Log
{
    // What an operation's outcome says, logged alike by every engine (SQLite, Redis).

    /// <summary>Logs whether an enqueue added <paramref name="item"/>; returns <paramref name="added"/>.</summary>
    public static bool Enqueue(ILogger logger, CaptureEnqueued item, bool added)
    {
        if (added)
            Enqueued(logger, item.Sha256, item.ProbeId);
        else
            AlreadyQueued(logger, item.Sha256);
        return added;
    }

    /// <summary>Logs whether <paramref name="lease"/> was still held when acked; returns <paramref name="held"/>.</summary>
    public static bool Ack(ILogger logger, IngestLease lease, bool held)
    {
        if (held)
            Acked(logger, lease.Item.Sha256, lease.Consumer);
        else
            LeaseLost(logger, lease.Consumer, lease.Item.Sha256, lease.Attempt);
        return held;
    }

    /// <summary><paramref name="lease"/> running until <paramref name="expires"/>, or null (logged) when it was lost.</summary>
    public static IngestLease? Renewal(ILogger logger, IngestLease lease, DateTimeOffset? expires)
    {
        if (expires is { } until)
            return lease with { LeaseExpiresAt = until };
        LeaseLost(logger, lease.Consumer, lease.Item.Sha256, lease.Attempt);
        return null;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Queued capture {Sha256} from probe {ProbeId}")]
    public static partial void Enqueued(ILogger logger, string sha256, string probeId);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Capture {Sha256} is already queued; not added again")]
    public static partial void AlreadyQueued(ILogger logger, string sha256);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Leased capture {Sha256} to {Consumer}, attempt {Attempt}")]
    public static partial void Leased(ILogger logger, string sha256, string consumer, int attempt);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Redelivering capture {Sha256} to {Consumer}, attempt {Attempt}: {LastError}")]
    public static partial void Redelivering(ILogger logger, string sha256, string consumer, int attempt, string lastError);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Capture {Sha256} done by {Consumer}")]
    public static partial void Acked(ILogger logger, string sha256, string consumer);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "{Consumer} lost its lease on capture {Sha256} (attempt {Attempt}); another consumer owns it now")]
    public static partial void LeaseLost(ILogger logger, string consumer, string sha256, int attempt);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Capture {Sha256} failed on attempt {Attempt}, retry in {RetryAfter}: {Reason}")]
    public static partial void Nacked(ILogger logger, string sha256, int attempt, TimeSpan retryAfter, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Error, Message = "Capture {Sha256} dead-lettered after {Attempts} attempts: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string sha256, int attempts, string reason);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Retry delay {Requested} for capture {Sha256} exceeds the lease time; Redis retries it after {Capped}")]
    public static partial void RetryDelayCapped(ILogger logger, string sha256, TimeSpan requested, TimeSpan capped);
}

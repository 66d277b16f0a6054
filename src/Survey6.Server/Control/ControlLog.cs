using Microsoft.Extensions.Logging;

namespace Survey6.Server.Control;

/// <summary>Counter names of the control stream, in <see cref="Diagnostics.ServerCounters"/>.</summary>
public static class ControlCounters
{
    public const string Connections = "control.connections";
    public const string Heartbeats = "control.heartbeats";
    /// <summary>Heartbeats acknowledged but not recorded: less than half a second after the previous one on the stream.</summary>
    public const string HeartbeatsThrottled = "control.heartbeats.throttled";
    public const string CommandsSent = "control.commands.sent";
    public const string CommandsSucceeded = "control.commands.ok";
    public const string CommandsFailed = "control.commands.failed";
    /// <summary>Results for unknown, foreign or already answered commands (repeats after a reconnect).</summary>
    public const string ResultsIgnored = "control.results.ignored";
    public const string StreamsClosed = "control.streams.closed";
    /// <summary>Heartbeats acknowledged but not stored: the write queue was full, the server was stopping, or the write failed.</summary>
    public const string HeartbeatsDropped = "control.heartbeats.dropped";
    /// <summary>Transactions the heartbeat writer committed.</summary>
    public const string HeartbeatBatches = "control.heartbeats.batches";
}

internal static partial class ControlLog
{
    [LoggerMessage(100, LogLevel.Information, "Probe {ProbeId} is {State} (was {Previous}){Reasons}")]
    public static partial void StateChanged(ILogger logger, string probeId, string previous, string state, string reasons);

    [LoggerMessage(101, LogLevel.Information, "Probe {ProbeId} opened its control stream from {Remote}")]
    public static partial void Connected(ILogger logger, string probeId, string remote);

    [LoggerMessage(102, LogLevel.Information, "Probe {ProbeId} closed its control stream")]
    public static partial void Disconnected(ILogger logger, string probeId);

    [LoggerMessage(103, LogLevel.Warning, "Closed the control stream of probe {ProbeId}: {Reason}")]
    public static partial void StreamClosed(ILogger logger, string probeId, string reason);

    [LoggerMessage(104, LogLevel.Information, "Sent {Kind} {CommandId} to probe {ProbeId}")]
    public static partial void CommandSent(ILogger logger, string kind, string commandId, string probeId);

    [LoggerMessage(105, LogLevel.Information, "Probe {ProbeId} executed {Kind} {CommandId}: {Message}")]
    public static partial void CommandSucceeded(ILogger logger, string probeId, string kind, string commandId, string message);

    [LoggerMessage(106, LogLevel.Warning, "Probe {ProbeId} failed {Kind} {CommandId}: {Message}")]
    public static partial void CommandFailed(ILogger logger, string probeId, string kind, string commandId, string message);

    [LoggerMessage(107, LogLevel.Error, "Probe health evaluation failed; retrying at the next interval")]
    public static partial void EvaluationFailed(ILogger logger, Exception exception);

    [LoggerMessage(108, LogLevel.Error, "Looking for commands and revocations in state.db failed; retrying")]
    public static partial void PollFailed(ILogger logger, Exception exception);


    [LoggerMessage(110, LogLevel.Error, "Delivering commands to probe {ProbeId} failed; closing its stream so it reconnects")]
    public static partial void DeliveryFailed(ILogger logger, string probeId, Exception exception);

    [LoggerMessage(111, LogLevel.Warning, "Heartbeat write queue full ({Capacity}): {Dropped} heartbeats acknowledged but not stored so far")]
    public static partial void HeartbeatsDropped(ILogger logger, int capacity, long dropped);

    [LoggerMessage(112, LogLevel.Error, "Writing {Count} heartbeats to state.db failed; they are acknowledged but not stored")]
    public static partial void HeartbeatWriteFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(113, LogLevel.Warning, "A heartbeat of probe {ProbeId} arrived while the server was stopping; acknowledged, not stored")]
    public static partial void HeartbeatAfterStop(ILogger logger, string probeId);
}

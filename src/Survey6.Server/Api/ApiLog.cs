using Microsoft.Extensions.Logging;

namespace Survey6.Server.Api;

internal static partial class ApiLog
{
    [LoggerMessage(101, LogLevel.Warning, "API call to {Path} from {Remote} refused: token {Reason}")]
    public static partial void Refused(ILogger logger, string path, string remote, string reason);

    [LoggerMessage(102, LogLevel.Information, "Join token {TokenId} created through the API by {Actor}")]
    public static partial void JoinTokenCreated(ILogger logger, string tokenId, string actor);

    [LoggerMessage(103, LogLevel.Information, "Join token {TokenId} revoked through the API by {Actor}")]
    public static partial void JoinTokenRevoked(ILogger logger, string tokenId, string actor);

    [LoggerMessage(104, LogLevel.Information, "Probe {ProbeId} revoked through the API by {Actor}: {Reason}")]
    public static partial void ProbeRevoked(ILogger logger, string probeId, string actor, string reason);
}

/// <summary>Event kinds the operator surface writes (alongside <see cref="Storage.EventKinds"/>).</summary>
public static class ApiEventKinds
{
    /// <summary>A call with a bad, revoked or expired API token (at most one per source and reason a minute).</summary>
    public const string ApiRefused = "api_refused";

    public const string JoinTokenCreated = "join_token_created";
    public const string JoinTokenRevoked = "join_token_revoked";
}

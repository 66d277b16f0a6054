namespace Survey6.Server.Api;

/// <summary>
/// What the API and the metrics read about probes. <see cref="StateDbProbeQueries"/> reads today's
/// tables; when heartbeats and health exist, the implementation fills <see cref="ProbeDto.State"/>,
/// <see cref="ProbeDto.StateReasons"/>, <see cref="ProbeDto.LastHeartbeat"/> and the history from
/// them, and the API does not change.
/// </summary>
public interface IProbeQueries
{
    /// <summary>One page of probes in <paramref name="sort"/> order; only those in <paramref name="state"/> if given.</summary>
    /// <exception cref="InvalidCursorException">The cursor is not one this list returned for this order.</exception>
    ValueTask<Page<ProbeDto>> ListAsync(string? state, Control.ProbeSort sort, PageRequest page, CancellationToken cancellationToken);

    /// <summary>Null if there is no such probe.</summary>
    ValueTask<ProbeDetailDto?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>The states the probe went through, newest first; null if there is no such probe.</summary>
    ValueTask<Page<ProbeHistoryEntryDto>?> GetHistoryAsync(string id, PageRequest page, CancellationToken cancellationToken);

    /// <summary>How many probes are in each state; every state of the design's vocabulary is present.</summary>
    ValueTask<IReadOnlyDictionary<string, long>> CountByStateAsync(CancellationToken cancellationToken);
}

public enum ProbeRevokeOutcome
{
    NotFound,
    Revoked,
    AlreadyRevoked,
}

/// <summary>
/// Operator actions on probes. The control stream will add suspend and resume here, and close a
/// revoked probe's stream.
/// </summary>
public interface IProbeCommands
{
    /// <summary>Sets the probe's state to revoked and revokes every certificate it holds.</summary>
    ValueTask<ProbeRevokeOutcome> RevokeAsync(string id, string reason, string actor, string remote, CancellationToken cancellationToken);
}

/// <summary>
/// Stored captures for the API. <see cref="CaptureDirectoryUploadQueries"/> reads the capture
/// store's manifests until the upload service keeps a table of uploads.
/// </summary>
public interface IUploadQueries
{
    /// <summary>Newest first; only <paramref name="probeId"/>'s if given.</summary>
    ValueTask<Page<UploadDto>> ListAsync(string? probeId, PageRequest page, CancellationToken cancellationToken);
}

/// <summary>The probe states of the design, in its order.</summary>
public static class ProbeStateNames
{
    public static readonly IReadOnlyList<string> All = ["pending", "healthy", "degraded", "suspended", "offline", "inactive", "revoked"];
}

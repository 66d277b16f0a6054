using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Options;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>Rates derived from the last two heartbeats (server clock).</summary>
public sealed record ProbeRates(double PacketsPerSecond, double DropRatio, double UploadBytesPerSecond);

/// <summary>
/// A probe's health as of <see cref="EvaluatedAt"/>: the state is evaluated at read time with the
/// same rules the server's evaluator applies, so it is right even when no server is running.
/// </summary>
public sealed record ProbeHealth(
    string ProbeId,
    string Hostname,
    IReadOnlyDictionary<string, string> Labels,
    string State,
    IReadOnlyList<HealthReason> Reasons,
    DateTimeOffset EvaluatedAt,
    DateTimeOffset JoinedAt,
    DateTimeOffset? StateSince,
    DateTimeOffset? FirstHeartbeatAt,
    DateTimeOffset? LastHeartbeatAt,
    TimeSpan HeartbeatInterval,
    TimeSpan? ClockSkew,
    TimeSpan? RoundTrip,
    string? ReportedState,
    string ReportedReason,
    bool OperatorSuspended,
    ProbeRates Rates,
    Heartbeat? LastHeartbeat)
{
    /// <summary>How long ago the last heartbeat arrived; null if it never did.</summary>
    public TimeSpan? LastHeartbeatAge => LastHeartbeatAt is { } at ? EvaluatedAt - at : null;

    /// <summary>Whether the probe has its control stream open to this process; null when asked outside the server (the CLI).</summary>
    public bool? Connected { get; init; }

    public string SoftwareVersion => LastHeartbeat?.SoftwareVersion ?? "";

    public long? PolicyVersion => LastHeartbeat?.PolicyVersion;
}

/// <summary>
/// Read side of probe health for the CLI, the JSON API and the web UI: current state with reasons,
/// the last heartbeat, and per-minute history. Registered in the server; the CLI builds one over
/// state.db with <see cref="ProbeHealthQuery(StateDatabase, TimeProvider, IOptions{HealthOptions}, IOptions{PolicyOptions}, ProbeConnections?)"/>.
/// </summary>
public sealed class ProbeHealthQuery(
    StateDatabase database,
    TimeProvider time,
    IOptions<HealthOptions> health,
    IOptions<PolicyOptions> policy,
    ProbeConnections? connections = null)
{
    /// <summary>In the server: waits for acknowledged heartbeats still queued for state.db, so reads see them.</summary>
    internal ProbeHealthTracker? Tracker { get; init; }

    public IReadOnlyList<ProbeHealth> List()
    {
        Tracker?.WaitUntilStored();
        using var connection = database.Open();
        var now = time.GetUtcNow();
        return StatusRows.ReadAll(connection, null, exceptRevoked: false).Select(r => ToHealth(r, now)).ToList();
    }

    public ProbeHealth? Get(string probeId)
    {
        Tracker?.WaitUntilStored();
        using var connection = database.Open();
        return StatusRows.Read(connection, null, probeId) is { } row ? ToHealth(row, time.GetUtcNow()) : null;
    }

    /// <summary>Per-minute rollups in [<paramref name="from"/>, <paramref name="to"/>), oldest first; kept Server:Health:HistoryRetention.</summary>
    public IReadOnlyList<ProbeHistoryMinute> History(string probeId, DateTimeOffset from, DateTimeOffset to)
    {
        Tracker?.WaitUntilStored();
        using var connection = database.Open();
        return StatusRows.ReadMinutes(connection, probeId, from, to);
    }

    /// <summary>
    /// One page of the fleet in <paramref name="sort"/> order, only the probes <paramref name="filter"/> keeps; the
    /// counts per state and the labels cover the whole fleet. Keyset-paged like the API's other lists.
    /// </summary>
    /// <exception cref="Api.InvalidCursorException">The cursor is not one this list returned for this order.</exception>
    public ProbeListing ListPage(ProbeSort sort, Func<ProbeHealth, bool>? filter, Api.PageRequest page)
    {
        Tracker?.WaitUntilStored();
        using var connection = database.Open();
        var now = time.GetUtcNow();
        var all = StatusRows.ReadAll(connection, null, exceptRevoked: false).Select(r => ToHealth(r, now)).ToList();
        return ProbeOrdering.List(all, sort, filter, page);
    }

    private ProbeHealth ToHealth(ProbeStatusRow row, DateTimeOffset now)
    {
        var (state, reasons) = ProbeHealthRules.Evaluate(row, now, health.Value, policy.Value.HeartbeatInterval);
        return new ProbeHealth(
            row.ProbeId, row.Hostname, row.Labels, state, reasons, now, row.JoinedAt, row.StateSince, row.FirstHeartbeatAt,
            row.LastHeartbeatAt, row.HeartbeatInterval ?? policy.Value.HeartbeatInterval, row.ClockSkew, row.RoundTrip, row.ReportedState,
            row.ReportedReason, row.OperatorSuspended, new ProbeRates(row.PacketsPerSecond, row.DropRatio, row.UploadBytesPerSecond), row.LastHeartbeat)
        {
            Connected = connections?.IsConnected(row.ProbeId),
        };
    }
}

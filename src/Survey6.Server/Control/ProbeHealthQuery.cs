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
    /// <summary>In the server: the writer whose queued heartbeats each read awaits first, so reads see every acknowledged one.</summary>
    internal HeartbeatWriter? Writer { get; init; }

    public async ValueTask<IReadOnlyList<ProbeHealth>> ListAsync(CancellationToken cancellationToken = default)
    {
        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
        using var connection = database.Open();
        var now = time.GetUtcNow();
        return StatusRows.ReadAll(connection, null, exceptRevoked: false).Select(r => ToHealth(r, now)).ToList();
    }

    public async ValueTask<ProbeHealth?> GetAsync(string probeId, CancellationToken cancellationToken = default)
    {
        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
        using var connection = database.Open();
        return StatusRows.Read(connection, null, probeId) is { } row ? ToHealth(row, time.GetUtcNow()) : null;
    }

    /// <summary>Per-minute rollups in [<paramref name="from"/>, <paramref name="to"/>), oldest first; kept Server:Health:HistoryRetention.</summary>
    public async ValueTask<IReadOnlyList<ProbeHistoryMinute>> HistoryAsync(string probeId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
        using var connection = database.Open();
        return StatusRows.ReadMinutes(connection, probeId, from, to);
    }

    /// <summary>
    /// One page of the fleet in <paramref name="sort"/> order, only the probes <paramref name="filter"/> keeps; the
    /// counts per state and the labels cover the whole fleet. Keyset-paged like the API's other lists.
    /// </summary>
    /// <exception cref="Api.InvalidCursorException">The cursor is not one this list returned for this order.</exception>
    public async ValueTask<ProbeListing> ListPageAsync(ProbeSort sort, Func<ProbeHealth, bool>? filter, Api.PageRequest page, CancellationToken cancellationToken = default)
    {
        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
        using var connection = database.Open();
        var now = time.GetUtcNow();
        var all = StatusRows.ReadAll(connection, null, exceptRevoked: false).Select(r => ToHealth(r, now)).ToList();
        return ProbeOrdering.List(all, sort, filter, page);
    }

    /// <summary>
    /// Awaits the heartbeat writer (in the server; the CLI has none). If it times out or has stopped,
    /// the read goes on with what state.db holds: a little stale beats no answer.
    /// </summary>
    private async ValueTask CatchUpAsync(CancellationToken cancellationToken)
    {
        if (Writer is { } writer)
            await writer.WaitUntilStoredAsync(cancellationToken).ConfigureAwait(false);
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

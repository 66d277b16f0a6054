using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Api;

/// <summary>
/// <see cref="IProbeQueries"/> over state.db: probes, certificates and events, with the state, its
/// reasons and the last heartbeat derived by <see cref="ProbeHealthQuery"/> (the same rules the
/// server's evaluator applies). The history is made of the events that set a state.
/// </summary>
public sealed class StateDbProbeQueries(StateDatabase database, ProbeStore probes, ProbeHealthQuery health) : IProbeQueries
{
    private static readonly JsonParser FactsParser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    public async ValueTask<Page<ProbeDto>> ListAsync(string? state, ProbeSort sort, PageRequest page, CancellationToken cancellationToken)
    {
        var listing = await health.ListPageAsync(sort, state is null ? null : h => string.Equals(h.State, state, StringComparison.Ordinal), page, cancellationToken)
            .ConfigureAwait(false);
        // Only the page's probes are read in full (facts, certificate); a probe removed in between is left out.
        var items = listing.Page.Items
            .Select(h => probes.Get(h.ProbeId) is { } record ? ToDto(record, ParseFacts(record.FactsJson), h) : null)
            .OfType<ProbeDto>().ToList();
        return new Page<ProbeDto>(items, listing.Page.NextCursor);
    }

    public async ValueTask<ProbeDetailDto?> GetAsync(string id, CancellationToken cancellationToken)
    {
        if (probes.Get(id) is not { } probe)
            return null;
        var facts = ParseFacts(probe.FactsJson);
        var summary = ToDto(probe, facts, await health.GetAsync(id, cancellationToken).ConfigureAwait(false));
        return new ProbeDetailDto
        {
            Id = summary.Id,
            State = summary.State,
            StateReasons = summary.StateReasons,
            LastHeartbeat = summary.LastHeartbeat,
            Hostname = summary.Hostname,
            Labels = summary.Labels,
            Location = summary.Location,
            Version = summary.Version,
            CertNotAfter = summary.CertNotAfter,
            CertSerial = summary.CertSerial,
            JoinedAt = summary.JoinedAt,
            JoinedFrom = summary.JoinedFrom,
            TokenId = summary.TokenId,
            LeftAt = summary.LeftAt,
            LeaveReason = summary.LeaveReason,
            Facts = facts is null ? null : new HostFactsDto(
                facts.Hostname, facts.Os, facts.Kernel, facts.SoftwareVersion,
                facts.Interfaces.Select(i => new InterfaceDto(i.Name, i.Mac, [.. i.Addresses])).ToList()),
            Certificates = Certificates(id),
        };
    }

    public ValueTask<Page<ProbeHistoryEntryDto>?> GetHistoryAsync(string id, PageRequest page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(page);
        var before = PageCursor.DecodeId(page.Cursor);
        if (probes.Get(id) is null)
            return ValueTask.FromResult<Page<ProbeHistoryEntryDto>?>(null);

        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, at, kind, detail FROM events
            WHERE probe_id = $probe AND kind IN ($joined, $left, $revoked) AND ($before IS NULL OR id < $before)
            ORDER BY id DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$probe", id);
        command.Parameters.AddWithValue("$joined", EventKinds.ProbeJoined);
        command.Parameters.AddWithValue("$left", EventKinds.ProbeLeft);
        command.Parameters.AddWithValue("$revoked", EventKinds.ProbeRevoked);
        command.Parameters.AddWithValue("$before", (object?)before ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", page.Limit + 1);
        using var reader = command.ExecuteReader();
        var rows = new List<ProbeHistoryEntryDto>();
        while (reader.Read())
        {
            var kind = reader.GetString(2);
            var detail = reader.GetString(3);
            var joined = kind == EventKinds.ProbeJoined;
            rows.Add(new ProbeHistoryEntryDto(
                DbTime.Parse(reader.GetString(1)),
                joined ? ProbeStates.Pending : ProbeStates.Revoked,
                joined ? null : [kind == EventKinds.ProbeLeft ? "left: " + detail : detail],
                reader.GetInt64(0)));
        }

        return ValueTask.FromResult<Page<ProbeHistoryEntryDto>?>(PageCursor.Make(rows, page.Limit, r => PageCursor.Encode(r.EventId!.Value)));
    }

    public async ValueTask<IReadOnlyDictionary<string, long>> CountByStateAsync(CancellationToken cancellationToken)
    {
        var counts = ProbeStateNames.All.ToDictionary(s => s, _ => 0L, StringComparer.Ordinal);
        foreach (var probe in await health.ListAsync(cancellationToken).ConfigureAwait(false))
            counts[probe.State] = counts.GetValueOrDefault(probe.State) + 1;
        return counts;
    }

    internal static ProbeDto ToDto(ProbeRecord probe, HostFacts? facts, ProbeHealth? health) => new()
    {
        Id = probe.Id,
        State = health?.State ?? probe.State,
        StateReasons = health is { Reasons.Count: > 0 } ? health.Reasons.Select(r => r.ToString()).ToList()
            : probe.State == ProbeStates.Revoked && !string.IsNullOrEmpty(probe.LeaveReason) ? [probe.LeaveReason] : null,
        LastHeartbeat = health?.LastHeartbeatAt,
        Hostname = probe.Hostname,
        Labels = probe.Labels,
        Location = Location(facts),
        Version = NullIfEmpty(facts?.SoftwareVersion),
        CertNotAfter = probe.CertificateNotAfter,
        CertSerial = probe.CertificateSerial,
        JoinedAt = probe.JoinedAt,
        JoinedFrom = probe.JoinedFrom,
        TokenId = probe.TokenId,
        LeftAt = probe.LeftAt,
        LeaveReason = probe.LeaveReason,
    };

    private List<CertificateDto> Certificates(string probeId)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT serial, issued_at, not_after, revoked_at FROM certificates WHERE probe_id = $probe ORDER BY issued_at DESC, serial";
        command.Parameters.AddWithValue("$probe", probeId);
        using var reader = command.ExecuteReader();
        var certificates = new List<CertificateDto>();
        while (reader.Read())
        {
            certificates.Add(new CertificateDto(
                reader.GetString(0), DbTime.Parse(reader.GetString(1)), DbTime.Parse(reader.GetString(2)), DbTime.ParseNullable(reader.GetValue(3))));
        }

        return certificates;
    }

    /// <summary>The location a probe gave at join, as the API and <c>server probes --json</c> show it.</summary>
    internal static LocationDto? Location(HostFacts? facts) => facts?.Location is { } l
        ? new LocationDto(l.HasLatitude ? l.Latitude : null, l.HasLongitude ? l.Longitude : null, NullIfEmpty(l.Country), NullIfEmpty(l.City))
        : null;

    /// <summary>The facts stored at join (protobuf JSON); null if unreadable, which only a hand-edited database would cause.</summary>
    internal static HostFacts? ParseFacts(string json)
    {
        try
        {
            return FactsParser.Parse<HostFacts>(json);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
        catch (InvalidJsonException)
        {
            return null;
        }
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;
}

/// <summary><see cref="IProbeCommands"/> over state.db, through the one <see cref="ProbeRevoker"/>.</summary>
public sealed class StateDbProbeCommands(ProbeRevoker revoker) : IProbeCommands
{
    public ValueTask<ProbeRevokeOutcome> RevokeAsync(string id, string reason, string actor, string remote, CancellationToken cancellationToken) =>
        ValueTask.FromResult(revoker.Revoke(id, reason, actor, remote));
}

/// <summary>The events table, newest first, keyset-paged by id.</summary>
public sealed class EventQueries(StateDatabase database)
{
    public Page<EventDto> List(string? probeId, string? kind, PageRequest page)
    {
        ArgumentNullException.ThrowIfNull(page);
        var before = PageCursor.DecodeId(page.Cursor);
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, at, kind, probe_id, remote, detail FROM events
            WHERE ($probe IS NULL OR probe_id = $probe) AND ($kind IS NULL OR kind = $kind) AND ($before IS NULL OR id < $before)
            ORDER BY id DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$probe", (object?)probeId ?? DBNull.Value);
        command.Parameters.AddWithValue("$kind", (object?)kind ?? DBNull.Value);
        command.Parameters.AddWithValue("$before", (object?)before ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", page.Limit + 1);
        using var reader = command.ExecuteReader();
        var rows = new List<EventDto>();
        while (reader.Read())
            rows.Add(Read(reader));
        return PageCursor.Make(rows, page.Limit, e => PageCursor.Encode(e.Id));
    }

    private static EventDto Read(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        DbTime.Parse(reader.GetString(1)),
        reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        reader.GetString(5));
}

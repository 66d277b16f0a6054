using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Survey6.Ingest;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Repository;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;

namespace Survey6.Server.Web;

/// <summary>A probe as the fleet page and the map show it: its health, where it is, its newest upload.</summary>
public sealed record WebProbe(ProbeHealth Health, LocationDto? Location, DateTimeOffset? LastUpload)
{
    public string Id => Health.ProbeId;
}

/// <summary>One page of the fleet as the fleet page shows it, with the whole fleet's counts and labels in <see cref="Listing"/>.</summary>
public sealed record FleetView(
    ProbeListing Listing, IReadOnlyList<WebProbe> Probes, FleetFilter Filter, ProbeSort Sort, PageRequest Page, string? NewestVersion, DateTimeOffset Now);

/// <summary>What the server has received, for the data page.</summary>
public sealed record UploadTotals(long Captures, long Bytes, long Duplicates, long CapturesLastDay, long Probes, DateTimeOffset? Newest);

/// <summary>
/// The reads behind the web pages, over state.db and the services the server already has. Nothing
/// here writes; actions go through <see cref="ProbeCommands"/> and <see cref="TokenStore"/>.
/// </summary>
public sealed class WebData(
    StateDatabase database,
    ProbeStore probes,
    ProbeHealthQuery health,
    EventQueries events,
    UploadRecords uploads,
    TimeProvider time,
    IServiceProvider services)
{
    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>The newest survey6-probe version the server's apt repository serves, if it serves one.</summary>
    public string? NewestProbeVersion() =>
        services.GetService<AptRepository>() is { } repository
            ? AptRepository.Newest(repository.List()).GetValueOrDefault(AptRepositoryHosting.ProbePackage)
            : null;

    public async Task<IReadOnlyList<WebProbe>> FleetAsync(CancellationToken cancellationToken)
    {
        var healths = await health.ListAsync(cancellationToken).ConfigureAwait(false);
        var locations = probes.List().ToDictionary(p => p.Id, p => Location(p.FactsJson), StringComparer.Ordinal);
        var lastUploads = LastUploads();
        return healths
            .Select(h => new WebProbe(h, locations.GetValueOrDefault(h.ProbeId), lastUploads.TryGetValue(h.ProbeId, out var at) ? at : null))
            .OrderBy(p => p.Health.Hostname, StringComparer.Ordinal).ThenBy(p => p.Id, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// One page of the fleet, filtered and sorted over the whole fleet; the counts and labels cover every probe. Only the
    /// page's probes get their place and last upload, unless the search needs every place.
    /// </summary>
    /// <exception cref="InvalidCursorException">The cursor is not one this list returned for this order.</exception>
    public async Task<FleetView> FleetPageAsync(FleetFilter filter, ProbeSort sort, PageRequest page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var everyPlace = filter.SearchesText ? probes.List().ToDictionary(p => p.Id, p => Location(p.FactsJson), StringComparer.Ordinal) : null;
        var listing = await health.ListPageAsync(sort, filter.IsEmpty ? null : h => filter.Matches(h, everyPlace?.GetValueOrDefault(h.ProbeId)), page,
            cancellationToken).ConfigureAwait(false);
        var lastUploads = LastUploads();
        var items = listing.Page.Items.Select(h => new WebProbe(
            h,
            everyPlace is null ? probes.Get(h.ProbeId) is { } record ? Location(record.FactsJson) : null : everyPlace.GetValueOrDefault(h.ProbeId),
            lastUploads.TryGetValue(h.ProbeId, out var at) ? at : null)).ToList();
        return new FleetView(listing, items, filter, sort, page, NewestProbeVersion(), Now);
    }

    public async Task<WebProbe?> ProbeAsync(string id, CancellationToken cancellationToken)
    {
        if (await health.GetAsync(id, cancellationToken).ConfigureAwait(false) is not { } h)
            return null;
        var record = probes.Get(id);
        var recent = uploads.Recent(1, id);
        DateTimeOffset? last = recent.Count > 0 ? recent[0].ReceivedAt : null;
        return new WebProbe(h, record is null ? null : Location(record.FactsJson), last);
    }

    /// <summary>Per-minute rollups of the last <paramref name="span"/>, oldest first.</summary>
    public ValueTask<IReadOnlyList<ProbeHistoryMinute>> HistoryAsync(string id, TimeSpan span, CancellationToken cancellationToken)
    {
        var now = Now;
        return health.HistoryAsync(id, now - span, now.AddMinutes(1), cancellationToken);
    }

    public IReadOnlyList<EventDto> Events(string? probeId, int limit) => events.List(probeId, null, new PageRequest(limit, null)).Items;

    public IReadOnlyList<UploadRecord> Uploads(string? probeId, int limit) => uploads.Recent(limit, probeId);

    public UploadTotals Totals()
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT COUNT(*) FILTER (WHERE duplicate = 0), COALESCE(SUM(size_bytes) FILTER (WHERE duplicate = 0), 0),
                   COUNT(*) FILTER (WHERE duplicate = 1), COUNT(*) FILTER (WHERE duplicate = 0 AND received_at >= $since),
                   COUNT(DISTINCT probe_id), MAX(received_at)
            FROM uploads
            """;
        command.Parameters.AddWithValue("$since", DbTime.ToText(Now.AddDays(-1)));
        using var reader = command.ExecuteReader();
        reader.Read();
        return new UploadTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
            DbTime.ParseNullable(reader.GetValue(5)));
    }

    /// <summary>The ingest queue's figures; null when the server has no queue or it cannot be reached.</summary>
    public async Task<(IngestQueueStats? Stats, string? Error)> IngestAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<IIngestQueue>() is not { } queue)
            return (null, null);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            return (await queue.GetStatsAsync(timeout.Token).ConfigureAwait(false), null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // A queue that is down must not take the page with it; say so instead.
            return (null, e.Message);
        }
    }

    private Dictionary<string, DateTimeOffset> LastUploads()
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT probe_id, MAX(received_at) FROM uploads GROUP BY probe_id";
        using var reader = command.ExecuteReader();
        var last = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        while (reader.Read())
            last[reader.GetString(0)] = DbTime.Parse(reader.GetString(1));
        return last;
    }

    private static LocationDto? Location(string factsJson) =>
        StateDbProbeQueries.ParseFacts(factsJson)?.Location is { } l && (l.HasLatitude || l.Country.Length > 0 || l.City.Length > 0)
            ? new LocationDto(l.HasLatitude ? l.Latitude : null, l.HasLongitude ? l.Longitude : null, l.Country.Length == 0 ? null : l.Country, l.City.Length == 0 ? null : l.City)
            : null;

    internal static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

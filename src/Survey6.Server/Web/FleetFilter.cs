using System.Globalization;
using Microsoft.AspNetCore.Http;
using Survey6.Server.Api;
using Survey6.Server.Control;

namespace Survey6.Server.Web;

/// <summary>The fleet filter as given in the query string; empty values mean "any".</summary>
public sealed record FleetFilter(string? State, string? Label, string? Search)
{
    public bool IsEmpty => string.IsNullOrEmpty(State) && string.IsNullOrEmpty(Label) && string.IsNullOrWhiteSpace(Search);

    /// <summary>Whether the search needs each probe's place, which lives in its host facts rather than its health.</summary>
    public bool SearchesText => !string.IsNullOrWhiteSpace(Search);

    public bool Matches(ProbeHealth h, LocationDto? location)
    {
        ArgumentNullException.ThrowIfNull(h);
        if (!string.IsNullOrEmpty(State) && h.State != State)
            return false;
        if (!string.IsNullOrEmpty(Label) && !h.Labels.Any(l => l.Key + "=" + l.Value == Label))
            return false;
        return !SearchesText || SearchText(h, location).Contains(Search!.Trim(), StringComparison.OrdinalIgnoreCase);
    }

    private static string SearchText(ProbeHealth h, LocationDto? location) =>
        string.Join(' ', h.Hostname, h.ProbeId, WebFormat.Place(location), h.SoftwareVersion, string.Join(' ', h.Labels.Select(l => l.Key + "=" + l.Value)));
}

/// <summary>The fleet page's query string: filter, order, page size and cursor.</summary>
public static class FleetQuery
{
    /// <summary>Probes per page unless <c>?limit=</c> asks otherwise (up to <see cref="MaxPageSize"/>).</summary>
    public const int DefaultPageSize = 100;

    public const int MaxPageSize = 1000;

    /// <summary>The fleet's default order: by host name.</summary>
    public static readonly ProbeSort DefaultSort = new(ProbeSortKey.Name);

    /// <summary>The fleet page's address for this filter, order and page; defaults are left out.</summary>
    public static string Url(FleetFilter filter, ProbeSort sort, string? cursor, int limit)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var query = new List<KeyValuePair<string, string?>>();
        if (!string.IsNullOrEmpty(filter.State))
            query.Add(new("state", filter.State));
        if (!string.IsNullOrEmpty(filter.Label))
            query.Add(new("label", filter.Label));
        if (filter.SearchesText)
            query.Add(new("q", filter.Search));
        if (sort != DefaultSort)
            query.Add(new("sort", sort.ToString()));
        if (limit != DefaultPageSize)
            query.Add(new("limit", limit.ToString(CultureInfo.InvariantCulture)));
        if (cursor is not null)
            query.Add(new("cursor", cursor));
        return QueryString.Create(query) is { HasValue: true } q ? "/" + q.Value : "/";
    }
}

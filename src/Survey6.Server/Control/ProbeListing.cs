using System.Globalization;
using Survey6.Server.Api;

namespace Survey6.Server.Control;

/// <summary>What a probe list can be ordered by; each order ends with the probe id so it is total.</summary>
public enum ProbeSortKey
{
    Name,
    State,
    LastHeartbeat,
    Version,
    CaptureRate,
    Drops,
    Joined,
}

/// <summary>
/// An order of the probe list as the API and the fleet page spell it in <c>?sort=</c>: a key name
/// (<c>name</c>, <c>state</c>, <c>last_heartbeat</c>, <c>version</c>, <c>capture_rate</c>, <c>drops</c>,
/// <c>joined</c>), with a leading <c>-</c> for descending.
/// </summary>
public readonly record struct ProbeSort(ProbeSortKey Key, bool Descending = false)
{
    public static readonly IReadOnlyList<(ProbeSortKey Key, string Name)> Names =
    [
        (ProbeSortKey.Name, "name"), (ProbeSortKey.State, "state"), (ProbeSortKey.LastHeartbeat, "last_heartbeat"),
        (ProbeSortKey.Version, "version"), (ProbeSortKey.CaptureRate, "capture_rate"), (ProbeSortKey.Drops, "drops"),
        (ProbeSortKey.Joined, "joined"),
    ];

    /// <summary>The order <paramref name="text"/> names; false for a name that is not one of <see cref="Names"/>.</summary>
    public static bool TryParse(string text, out ProbeSort sort)
    {
        ArgumentNullException.ThrowIfNull(text);
        var descending = text.StartsWith('-');
        var name = descending ? text[1..] : text;
        foreach (var (key, known) in Names)
        {
            if (known == name)
            {
                sort = new ProbeSort(key, descending);
                return true;
            }
        }

        sort = default;
        return false;
    }

    /// <summary>The same key the other way round.</summary>
    public ProbeSort Reversed => this with { Descending = !Descending };

    public override string ToString()
    {
        var key = Key;
        return (Descending ? "-" : "") + Names.First(n => n.Key == key).Name;
    }
}

/// <summary>
/// One page of probes in the asked order, with what the whole fleet holds: counts per state, every
/// label, how many probes the filter matched, and where among them the page starts (0-based).
/// </summary>
public sealed record ProbeListing(
    Page<ProbeHealth> Page,
    int Start,
    int Matching,
    int Total,
    IReadOnlyDictionary<string, int> CountsByState,
    IReadOnlyList<string> Labels);

/// <summary>
/// Keyset paging over evaluated health. The state is derived at read time (it moves with the clock), so
/// SQL cannot order or filter by it: the fleet is evaluated whole, then sorted and cut in memory. The
/// cursor carries the last item's sort key and id, so a page that follows stays right while probes join.
/// </summary>
internal static class ProbeOrdering
{
    /// <summary>A sort value: numeric keys compare by <see cref="Number"/>, textual ones by <see cref="Text"/> (ordinal).</summary>
    private readonly record struct Key(double Number, string Text, string Id);

    public static ProbeListing List(IReadOnlyList<ProbeHealth> all, ProbeSort sort, Func<ProbeHealth, bool>? filter, PageRequest page)
    {
        ArgumentNullException.ThrowIfNull(page);
        var after = page.Cursor is null ? (Key?)null : Decode(page.Cursor, sort);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var labels = new SortedSet<string>(StringComparer.Ordinal);
        var matching = new List<(Key Key, ProbeHealth Health)>();
        foreach (var probe in all)
        {
            counts[probe.State] = counts.GetValueOrDefault(probe.State) + 1;
            foreach (var label in probe.Labels)
                labels.Add(label.Key + "=" + label.Value);
            if (filter is null || filter(probe))
                matching.Add((KeyOf(probe, sort.Key), probe));
        }

        var direction = sort.Descending ? -1 : 1;
        matching.Sort((a, b) => direction * Compare(a.Key, b.Key));
        var start = 0;
        if (after is { } cursor)
        {
            while (start < matching.Count && direction * Compare(matching[start].Key, cursor) <= 0)
                start++;
        }

        var rows = matching.Skip(start).Take(page.Limit + 1).ToList();
        var cut = PageCursor.Make(rows, page.Limit, r => Encode(r.Key, sort));
        var items = cut.Items.Select(r => r.Health).ToList();
        return new ProbeListing(new Page<ProbeHealth>(items, cut.NextCursor), start, matching.Count, all.Count, counts, [.. labels]);
    }

    private static Key KeyOf(ProbeHealth probe, ProbeSortKey key) => key switch
    {
        ProbeSortKey.Name => new Key(0, probe.Hostname, probe.ProbeId),
        ProbeSortKey.State => new Key(StateRank(probe.State), "", probe.ProbeId),
        // Zero-padded ticks order like the times; never (empty) comes first.
        ProbeSortKey.LastHeartbeat => new Key(0, probe.LastHeartbeatAt is { } at ? Ticks(at) : "", probe.ProbeId),
        ProbeSortKey.Version => new Key(0, probe.SoftwareVersion, probe.ProbeId),
        ProbeSortKey.CaptureRate => new Key(probe.LastHeartbeat is null ? -1 : probe.Rates.PacketsPerSecond, "", probe.ProbeId),
        ProbeSortKey.Drops => new Key(probe.LastHeartbeat is null ? -1 : probe.Rates.DropRatio, "", probe.ProbeId),
        ProbeSortKey.Joined => new Key(0, Ticks(probe.JoinedAt), probe.ProbeId),
        _ => throw new ArgumentOutOfRangeException(nameof(key)),
    };

    private static string Ticks(DateTimeOffset at) => at.UtcTicks.ToString("D19", CultureInfo.InvariantCulture);

    /// <summary>The design's order of states (<see cref="ProbeStateNames.All"/>); a state it does not name comes last.</summary>
    private static int StateRank(string state)
    {
        for (var i = 0; i < ProbeStateNames.All.Count; i++)
        {
            if (ProbeStateNames.All[i] == state)
                return i;
        }

        return ProbeStateNames.All.Count;
    }

    private static int Compare(Key a, Key b)
    {
        var c = a.Number.CompareTo(b.Number);
        if (c == 0)
            c = string.CompareOrdinal(a.Text, b.Text);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    private static string Encode(Key key, ProbeSort sort) =>
        PageCursor.Encode(sort.ToString(), key.Number.ToString("R", CultureInfo.InvariantCulture), key.Text, key.Id);

    /// <summary>A cursor made for another order would start the page at a meaningless place: refused.</summary>
    private static Key Decode(string cursor, ProbeSort sort)
    {
        var parts = PageCursor.Decode(cursor, 4)!;
        if (parts[0] != sort.ToString()
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            throw new InvalidCursorException();
        return new Key(number, parts[2], parts[3]);
    }
}

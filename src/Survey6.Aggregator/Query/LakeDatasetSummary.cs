using System.Data.Common;
using System.Globalization;
using DuckDB.NET.Data;
using Survey6.Aggregator.Storage;
using Survey6.Data;
using Survey6.Data.Views;

namespace Survey6.Aggregator.Query;

/// <summary>
/// <see cref="IDatasetSummarySource"/> over the Parquet lake (<c>DATA/lake</c>, or <c>Aggregator:LakeDirectory</c>:
/// <see cref="DataLayout.Lake"/>), read through <see cref="LakeQuery.Read{T}"/> with the aggregator's own DuckDB views,
/// for the C&amp;C's data page (registered by <see cref="AggregatorViewsServiceCollectionExtensions.AddSurvey6AggregatorViews"/>). The aggregate datasets are used
/// when they exist; before the first aggregate run the figures come from the packets dataset. A result
/// is kept for <see cref="CacheFor"/> so that reloading the page does not rescan the lake.
/// </summary>
public sealed class LakeDatasetSummary(DataLayout layout, TimeProvider time) : IDatasetSummarySource, IDisposable
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(2);
    private const int Top = 10;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private (DateTimeOffset At, DatasetSummary? Summary)? _cached;

    public string LakeDirectory => layout.Lake;

    public async ValueTask<DatasetSummary?> GetAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = time.GetUtcNow();
            if (_cached is { } cached && now - cached.At < CacheFor)
                return cached.Summary;
            // DuckDB calls block; keep them off the request thread.
            var summary = await Task.Run(Read, cancellationToken).ConfigureAwait(false);
            _cached = (now, summary);
            return summary;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    private DatasetSummary? Read()
    {
        if (!Directory.Exists(LakeDirectory))
            return null;
        return LakeQuery.Read(LakeDirectory, Summarise);
    }

    private static DatasetSummary? Summarise(DuckDBConnection connection, IReadOnlyList<string> views)
    {
        if (views.Count == 0)
            return null;
        var has = new HashSet<string>(views, StringComparer.Ordinal);
        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var view in views)
            rows[view] = Scalar(connection, $"SELECT COUNT(*) FROM \"{view}\"");

        var prefixes = has.Contains(LakeLayout.Prefixes)
            ? Ranking(connection, $"SELECT prefix, CAST(SUM(packets_as_src + packets_as_dst) AS BIGINT) AS n FROM {LakeLayout.Prefixes} WHERE prefix_len = 48 GROUP BY prefix ORDER BY n DESC, prefix LIMIT {Top}")
            : has.Contains(LakeLayout.Packets)
                ? Ranking(connection, $"SELECT p, COUNT(*) AS n FROM (SELECT ipv6_prefix(src, 48) AS p FROM {LakeLayout.Packets} WHERE src IS NOT NULL UNION ALL SELECT ipv6_prefix(dst, 48) FROM {LakeLayout.Packets} WHERE dst IS NOT NULL) WHERE p IS NOT NULL GROUP BY p ORDER BY n DESC, p LIMIT {Top}")
                : [];
        var iid = has.Contains(LakeLayout.Addresses)
            ? Ranking(connection, $"SELECT COALESCE(iid_class, 'none') AS c, COUNT(DISTINCT address) AS n FROM {LakeLayout.Addresses} GROUP BY c ORDER BY n DESC, c")
            : [];
        var dns = has.Contains(LakeLayout.Dns)
            ? Ranking(connection, $"SELECT qname, CAST(SUM(messages) AS BIGINT) AS n FROM {LakeLayout.Dns} WHERE qname IS NOT NULL AND qname <> '' GROUP BY qname ORDER BY n DESC, qname LIMIT {Top}")
            : has.Contains(LakeLayout.Packets)
                ? Ranking(connection, $"SELECT dns_qname, COUNT(*) AS n FROM {LakeLayout.Packets} WHERE dns_qname IS NOT NULL AND dns_qname <> '' GROUP BY dns_qname ORDER BY n DESC, dns_qname LIMIT {Top}")
                : [];
        return new DatasetSummary(rows, prefixes, iid, dns);
    }

    private static long Scalar(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static List<KeyValuePair<string, long>> Ranking(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var items = new List<KeyValuePair<string, long>>();
        while (reader.Read())
            items.Add(new(reader.IsDBNull(0) ? "" : Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture)!, Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture)));
        return items;
    }
}

using DuckDB.NET.Data;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Query;

/// <summary>
/// DuckDB over the lake for ad-hoc SQL: every dataset that has files becomes a view of the same name (Hive
/// partition columns <c>date</c>, and <c>probe</c> for the per-capture datasets, included), and the
/// <c>ipv6_*</c> functions are available.
/// </summary>
public static class LakeQuery
{
    public static DuckDBConnection Open(string lakeRoot, out IReadOnlyList<string> views)
    {
        var lake = new LakeLayout(lakeRoot);
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        try
        {
            Ipv6Functions.Register(connection);
            views = RegisterViews(connection, lake);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public static IReadOnlyList<string> RegisterViews(DuckDBConnection connection, LakeLayout lake)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(lake);
        var views = new List<string>();
        foreach (var dataset in LakeLayout.AllDatasets)
        {
            var folder = lake.Dataset(dataset);
            if (!Directory.Exists(folder))
                continue;
            bool perCapture = dataset is LakeLayout.Packets or LakeLayout.Captures;
            var glob = perCapture ? Path.Combine(folder, "*", "*", "*.parquet") : Path.Combine(folder, "*", "*.parquet");
            var any = Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories).Any(f => !Path.GetFileName(f).StartsWith('.'));
            if (!any)
                continue;
            using var command = connection.CreateCommand();
            command.CommandText = $"CREATE OR REPLACE VIEW {dataset} AS SELECT * FROM read_parquet({AggregateSql.Quote(glob)}, hive_partitioning = true, union_by_name = true)";
            command.ExecuteNonQuery();
            views.Add(dataset);
        }
        return views;
    }
}

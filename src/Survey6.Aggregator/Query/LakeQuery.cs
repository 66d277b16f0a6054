using System.Data.Common;
using DuckDB.NET.Data;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Query;

/// <summary>
/// DuckDB over the lake for ad-hoc SQL: every dataset that has files becomes a view of the same name (Hive
/// partition columns <c>date</c>, and <c>probe</c> for the per-capture datasets, included), and the
/// <c>ipv6_*</c> functions are available. The session's time zone is UTC.
/// </summary>
public static class LakeQuery
{
    /// <summary>How many times <see cref="Read{T}"/> opens the lake before it lets a swap error through.</summary>
    internal const int MaxAttempts = 4;

    /// <summary>
    /// Opens the lake, runs <paramref name="read"/> on it and returns what it gives. When the aggregator replaced a
    /// partition under the read (<see cref="ReplacedWhileRead"/>) and <paramref name="mayRetry"/> allows it (a caller
    /// that already printed rows must not print them twice), the lake is opened again and the read run again, up to
    /// <see cref="MaxAttempts"/> times; any other error, or the last, goes to the caller.
    /// </summary>
    /// <param name="read">The query; it gets the connection and the views registered.</param>
    /// <param name="mayRetry">Whether a failed read may be run again; always, when null.</param>
    public static T Read<T>(string lakeRoot, Func<DuckDBConnection, IReadOnlyList<string>, T> read, Func<bool>? mayRetry = null)
    {
        ArgumentNullException.ThrowIfNull(read);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var connection = Open(lakeRoot, out var views);
                return read(connection, views);
            }
            catch (DbException e) when (attempt < MaxAttempts && ReplacedWhileRead(e) && (mayRetry?.Invoke() ?? true))
            {
                // The aggregator replaces a partition by renaming a new one into place (DurableFiles.ReplaceDirectory);
                // a read that listed the old file and opens it after the swap reads a footer and data of different
                // files, or finds it gone. Asked again, DuckDB lists the new partition and reads it whole.
                Thread.Sleep(TimeSpan.FromMilliseconds(200 * attempt));
            }
        }
    }

    /// <summary>
    /// Whether DuckDB failed because a file it listed was replaced or removed while it read (Parquet's
    /// <c>TProtocolException</c> on a footer that no longer matches, or the file or every file of a glob gone).
    /// </summary>
    internal static bool ReplacedWhileRead(DbException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.Message.Contains("TProtocolException", StringComparison.Ordinal)
            || e.Message.Contains("No such file or directory", StringComparison.Ordinal)
            || e.Message.Contains("No files found that match the pattern", StringComparison.Ordinal);
    }

    public static DuckDBConnection Open(string lakeRoot, out IReadOnlyList<string> views)
    {
        var lake = new LakeLayout(lakeRoot);
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        try
        {
            Ipv6Functions.Register(connection);
            // The lake's times are UTC instants; shown, truncated to a day or an hour, and parsed in UTC whatever the host's zone.
            using (var zone = connection.CreateCommand())
            {
                zone.CommandText = "SET TimeZone = 'UTC'";
                zone.ExecuteNonQuery();
            }
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
            var glob = LakeLayout.HasProbeFolders(dataset) ? Path.Combine(folder, "*", "*", "*.parquet") : Path.Combine(folder, "*", "*.parquet");
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

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// Stage <c>aggregate</c>: for each closed date whose packets changed since it was last built, runs the clean step
/// and every dataset query in DuckDB over that date's packets files, writes each dataset's partition into
/// <c>LAKE/.staging</c>, then swaps it into place. A partition is thus replaced whole or not at all, and a
/// rebuild from the same packets gives the same rows.
/// </summary>
public sealed class AggregateStage(RunLedger ledger, IOptions<AggregatorOptions> options, TimeProvider time, ILogger<AggregateStage> logger)
{
    private readonly AggregatorOptions _options = options.Value;

    public Task RunAsync(StageRun run, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var lake = new LakeLayout(_options.Layout.Lake);
        // Leftovers of a crashed build are never read, but they take space; this run starts clean.
        var staging = Path.Combine(lake.Staging, "aggregate");
        if (Directory.Exists(staging))
            Directory.Delete(staging, recursive: true);
        string? keyId;
        using (var anonymiser = AnonymisationKey.FromOptions(_options))
            keyId = anonymiser?.KeyId;
        var mismatched = new List<string>();

        foreach (var date in lake.PacketDates())
        {
            ct.ThrowIfCancellationRequested();
            var dateText = date.ToString(LakeLayout.DateFormat, CultureInfo.InvariantCulture);
            if (!_options.IncludeOpenPartitions && !IsClosed(date))
            {
                Log.PartitionOpen(logger, dateText);
                continue;
            }
            var inputs = PacketFiles(lake, date);
            if (inputs.Count == 0)
                continue;
            var fingerprint = Fingerprint(lake, inputs);
            var state = ledger.GetPartition(date);
            if (state is not null && state.Fingerprint == fingerprint
                && LakeLayout.AggregateDatasets.All(d => File.Exists(Path.Combine(lake.DatePartition(d, date), LakeLayout.PartitionFile))))
            {
                Log.PartitionUnchanged(logger, dateText);
                continue;
            }
            if (KeyMismatch(lake, date, keyId) is { } problem)
            {
                // Mixing anonymised and raw (or differently keyed) addresses would give joins that mean nothing.
                Log.PartitionKeyMismatch(logger, dateText, problem);
                mismatched.Add(dateText + ": " + problem);
                continue;
            }
            var rows = Build(lake, date, keyId, run, ct);
            foreach (var input in inputs)
                run.Input(input);
            ledger.SetPartition(date, fingerprint, inputs.Count, JsonSerializer.Serialize(rows), run.RunId);
            long total = rows.Values.Sum();
            Log.PartitionBuilt(logger, dateText, inputs.Count, total);
        }
        if (mismatched.Count > 0)
            throw new InvalidOperationException("Not aggregated, packets files disagree with Aggregator:Anonymisation (to re-parse, remove the lake and the ledger): " + string.Join("; ", mismatched));
        return Task.CompletedTask;
    }

    /// <summary>A date is closed once the grace period after its end has passed.</summary>
    public bool IsClosed(DateOnly date)
    {
        var end = new DateTimeOffset(date.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        return time.GetUtcNow() >= end + _options.PartitionGrace;
    }

    /// <summary>
    /// Null when every packets file of the date was written with the configured anonymisation key (or all without one
    /// when anonymisation is off); else what differs.
    /// </summary>
    private string? KeyMismatch(LakeLayout lake, DateOnly date, string? keyId)
    {
        var glob = AggregateSql.Quote(Path.Combine(lake.DatePartition(LakeLayout.Packets, date), "*", "*.parquet"));
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT k, count(*) FROM (
                SELECT f.file_name, m.k
                FROM (SELECT DISTINCT file_name FROM parquet_file_metadata({glob})) f
                LEFT JOIN (SELECT file_name, decode(value) AS k FROM parquet_kv_metadata({glob})
                           WHERE decode(key) = {AggregateSql.Quote(AnonymisationMetadata.KeyIdKey)}) m USING (file_name))
            GROUP BY k ORDER BY k NULLS FIRST
            """;
        using var reader = command.ExecuteReader();
        var problems = new List<string>();
        while (reader.Read())
        {
            var found = reader.IsDBNull(0) ? null : reader.GetString(0);
            if (found != keyId)
                problems.Add($"{reader.GetInt64(1)} files {(found is null ? "not anonymised" : "anonymised with key " + found)}");
        }
        return problems.Count == 0 ? null : string.Join(", ", problems) + (keyId is null ? " while anonymisation is off" : " while the key is " + keyId);
    }

    private SortedDictionary<string, long> Build(LakeLayout lake, DateOnly date, string? keyId, StageRun run, CancellationToken ct)
    {
        var staged = Path.Combine(lake.Staging, "aggregate", run.RunId, LakeLayout.DatePart(date));
        Directory.CreateDirectory(staged);
        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        try
        {
            using (var connection = OpenDuckDb(lake, _options))
            {
                Execute(connection, AggregateSql.Clean(Path.Combine(lake.DatePartition(LakeLayout.Packets, date), "*", "*.parquet")), ct);
                Execute(connection, AggregateSql.AddressTable(keyId is not null), ct);
                var keyValues = keyId is null ? "" : $", KV_METADATA {{{AggregateSql.Quote(AnonymisationMetadata.KeyIdKey)}: {AggregateSql.Quote(keyId)}}}";
                var capturesGlob = Path.Combine(lake.DatePartition(LakeLayout.Captures, date), "*", "*.parquet");
                foreach (var dataset in LakeLayout.AggregateDatasets)
                {
                    ct.ThrowIfCancellationRequested();
                    var query = dataset switch
                    {
                        LakeLayout.Flows => AggregateSql.Flows,
                        LakeLayout.Addresses => AggregateSql.Addresses,
                        LakeLayout.Prefixes => AggregateSql.Prefixes,
                        LakeLayout.Dns => AggregateSql.Dns,
                        LakeLayout.Icmpv6 => AggregateSql.Icmpv6,
                        LakeLayout.Icmpv6Routers => AggregateSql.Icmpv6Routers,
                        LakeLayout.Summary => AggregateSql.Summary(capturesGlob),
                        _ => throw new InvalidOperationException("unknown dataset " + dataset),
                    };
                    var folder = Path.Combine(staged, dataset);
                    Directory.CreateDirectory(folder);
                    var file = Path.Combine(folder, LakeLayout.PartitionFile);
                    rows[dataset] = Execute(connection, $"COPY ({query}) TO {AggregateSql.Quote(file)} (FORMAT parquet, COMPRESSION zstd{keyValues})", ct);
                }
            }

            foreach (var dataset in LakeLayout.AggregateDatasets)
            {
                var folder = Path.Combine(staged, dataset);
                var data = Path.Combine(folder, LakeLayout.PartitionFile);
                using (var handle = File.OpenHandle(data, FileMode.Open, FileAccess.ReadWrite))
                    RandomAccess.FlushToDisk(handle);
                var target = lake.DatePartition(dataset, date);
                DurableFiles.ReplaceDirectory(folder, target);
                run.Output(Path.Combine(target, LakeLayout.PartitionFile), rows[dataset]);
            }
        }
        finally
        {
            var runFolder = Path.Combine(lake.Staging, "aggregate", run.RunId);
            if (Directory.Exists(runFolder))
                Directory.Delete(runFolder, recursive: true);
        }
        return rows;
    }

    /// <summary>A DuckDB connection set up for the lake: thread and memory limits, spilling into staging, the address functions.</summary>
    public static DuckDBConnection OpenDuckDb(LakeLayout lake, AggregatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(options);
        var spill = Path.Combine(lake.Staging, "duckdb");
        Directory.CreateDirectory(spill);
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        Ipv6Functions.Register(connection);
        Execute(connection, $"""
            SET threads = {options.DuckDbThreads};
            SET memory_limit = {AggregateSql.Quote(options.DuckDbMemoryLimit)};
            SET temp_directory = {AggregateSql.Quote(spill)};
            SET preserve_insertion_order = true;
            """, CancellationToken.None);
        return connection;
    }

    private static long Execute(DuckDBConnection connection, string sql, CancellationToken ct)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var registration = ct.Register(() => command.Cancel());
        return command.ExecuteNonQuery();
    }

    private static List<string> PacketFiles(LakeLayout lake, DateOnly date)
    {
        var folder = lake.DatePartition(LakeLayout.Packets, date);
        var files = Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .ToList();
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Names and sizes of a date's packets files: packets files are named by capture, so this changes exactly when the inputs do.</summary>
    private static string Fingerprint(LakeLayout lake, IReadOnlyList<string> files)
    {
        var text = new StringBuilder();
        foreach (var file in files)
            text.Append(Path.GetRelativePath(lake.Root, file)).Append('\t').Append(new FileInfo(file).Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

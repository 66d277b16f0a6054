using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Survey6.Data;

namespace Survey6.Server.Web;

public sealed record PipelineRun(string RunId, string Stage, DateTimeOffset StartedAt, TimeSpan? Duration, string Status, long Inputs, long Outputs, long Rows, string? Error);

/// <summary>Per stage: its newest run and how many runs ended in each status.</summary>
public sealed record PipelineStage(string Stage, PipelineRun Last, IReadOnlyDictionary<string, long> RunsByStatus);

public sealed record ProblemCapture(string Sha256, string ProbeId, string Status, int Attempts, string? Reason, DateTimeOffset UpdatedAt);

/// <summary>What the aggregator's run ledger says, as the data page shows it.</summary>
public sealed record PipelineView(
    IReadOnlyList<PipelineStage> Stages,
    IReadOnlyList<PipelineRun> RecentRuns,
    IReadOnlyDictionary<string, long> CapturesByStatus,
    IReadOnlyList<ProblemCapture> Problems,
    IReadOnlyDictionary<string, long> RowsPerTable,
    int Partitions);

/// <summary>
/// Reads the aggregator's SQLite run ledger (<c>DATA/aggregator.db</c> or <c>Aggregator:LedgerPath</c>,
/// docs/datasets.md) read-only. The aggregator may run in another process; the ledger is its record, so the
/// server reads the file rather than asking a service. Null when there is no ledger yet.
/// </summary>
public sealed class AggregatorLedgerReader(DataLayout layout)
{
    public string LedgerPath => layout.Ledger;

    public PipelineView? Read(int recentRuns = 20, int problems = 20)
    {
        if (!File.Exists(LedgerPath))
            return null;
        var builder = new SqliteConnectionStringBuilder { DataSource = LedgerPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false };
        using var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        if (!HasTable(connection, "runs"))
            return null;

        var runs = Runs(connection, "SELECT run_id, stage, started_at, duration_ms, status, inputs, outputs, rows, error FROM runs ORDER BY started_at DESC LIMIT $n", recentRuns);
        var stages = new List<PipelineStage>();
        foreach (var stage in Strings(connection, "SELECT DISTINCT stage FROM runs ORDER BY stage"))
        {
            var last = Runs(connection, "SELECT run_id, stage, started_at, duration_ms, status, inputs, outputs, rows, error FROM runs WHERE stage = $s ORDER BY started_at DESC LIMIT 1", 1, stage)[0];
            stages.Add(new PipelineStage(stage, last, Counts(connection, "SELECT status, COUNT(*) FROM runs WHERE stage = $s GROUP BY status", stage)));
        }

        var captures = Counts(connection, "SELECT status, COUNT(*) FROM captures GROUP BY status", null);
        var problemList = new List<ProblemCapture>();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT sha256, probe_id, status, attempts, reason, updated_at FROM captures WHERE status <> 'parsed' ORDER BY updated_at DESC LIMIT $n";
            command.Parameters.AddWithValue("$n", problems);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                problemList.Add(new ProblemCapture(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4), Time(reader.GetString(5))));
            }
        }

        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var partitions = 0;
        foreach (var json in Strings(connection, "SELECT rows_json FROM partitions"))
        {
            partitions++;
            AddRows(rows, json);
        }

        return new PipelineView(stages, runs, captures, problemList, rows, partitions);
    }

    private static void AddRows(SortedDictionary<string, long> rows, string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return;
            foreach (var table in document.RootElement.EnumerateObject())
            {
                if (table.Value.ValueKind == JsonValueKind.Number && table.Value.TryGetInt64(out var n))
                    rows[table.Name] = rows.GetValueOrDefault(table.Name) + n;
            }
        }
        catch (JsonException)
        {
            // A row count the page cannot read is left out; the ledger itself stays the record.
        }
    }

    private static bool HasTable(SqliteConnection connection, string name)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $n";
        command.Parameters.AddWithValue("$n", name);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
    }

    private static List<PipelineRun> Runs(SqliteConnection connection, string sql, int limit, string? stage = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$n", limit);
        command.Parameters.AddWithValue("$s", (object?)stage ?? DBNull.Value);
        using var reader = command.ExecuteReader();
        var runs = new List<PipelineRun>();
        while (reader.Read())
        {
            runs.Add(new PipelineRun(reader.GetString(0), reader.GetString(1), Time(reader.GetString(2)),
                reader.IsDBNull(3) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(3)), reader.GetString(4),
                reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.IsDBNull(8) ? null : reader.GetString(8)));
        }

        return runs;
    }

    private static Dictionary<string, long> Counts(SqliteConnection connection, string sql, string? stage)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$s", (object?)stage ?? DBNull.Value);
        using var reader = command.ExecuteReader();
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.Read())
            counts[reader.GetString(0)] = reader.GetInt64(1);
        return counts;
    }

    private static List<string> Strings(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
            values.Add(reader.GetString(0));
        return values;
    }

    private static DateTimeOffset Time(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}

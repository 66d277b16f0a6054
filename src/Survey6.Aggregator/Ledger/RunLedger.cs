using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Sources;
using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Ledger;

/// <summary>State of one capture in the ledger.</summary>
public sealed record CaptureState(
    string Sha256, string ProbeId, DateOnly Date, string CapturePath, string? ManifestPath, string Status, int Attempts,
    string? Reason, long? Frames, string? OutputPath, DateTimeOffset UpdatedAt, DateTimeOffset? NextAttemptAt)
{
    public PendingCapture ToPending() => new(Sha256, ProbeId, Date, CapturePath, ManifestPath);
}

/// <summary>One stage run as recorded.</summary>
public sealed record RunRecord(
    string RunId, string Stage, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, long? DurationMs, string Status,
    long Inputs, long Outputs, long Rows, string? Error);

/// <summary>Per stage: its newest run and how many of its runs ended in each status.</summary>
public sealed record StageRuns(string Stage, RunRecord Last, IReadOnlyDictionary<string, long> RunsByStatus);

/// <summary>What the aggregate stage last built for a date.</summary>
public sealed record PartitionState(DateOnly Date, string Fingerprint, int Inputs, string RowsJson, DateTimeOffset BuiltAt, string RunId)
{
    /// <summary>
    /// <see cref="RowsJson"/> read back: rows per table, as the aggregate stage wrote them. A count that cannot be
    /// read is left out (the ledger itself stays the record).
    /// </summary>
    public IReadOnlyDictionary<string, long> Rows()
    {
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(RowsJson);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return rows;
            foreach (var table in document.RootElement.EnumerateObject())
            {
                if (table.Value.ValueKind == JsonValueKind.Number && table.Value.TryGetInt64(out var n))
                    rows[table.Name] = n;
            }
        }
        catch (JsonException)
        {
            // Left out, as above.
        }

        return rows;
    }
}

/// <summary>
/// The aggregator's SQLite ledger (<c>DATA/aggregator.db</c>, WAL): every stage run with its inputs, outputs,
/// rows, duration, status and error, and the processing state of every capture and every aggregated date.
/// Connections are short-lived and pooled, so the ledger can be used from any thread.
/// </summary>
public sealed class RunLedger
{
    public const string Parsed = "parsed";
    public const string Failed = "failed";
    public const string Quarantined = "quarantined";

    private readonly string _connectionString;
    private readonly TimeProvider _time;

    public RunLedger(IOptions<AggregatorOptions> options, TimeProvider time)
        : this(options.Value.Layout.Ledger, time)
    {
    }

    public RunLedger(string path, TimeProvider time)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = time;
        // Its folder is usually the data directory: if missing, it is made owner-only, as the C&C would.
        SecureFiles.CreateOwnerOnlyDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Pooling = true, DefaultTimeout = 30 }.ToString();
        SqliteMigrator.Migrate(Path, _connectionString, LedgerMigrations.Steps, LedgerMigrations.AdoptUserVersion, _time);
    }

    private RunLedger(string path, string connectionString, TimeProvider time)
    {
        Path = path;
        _connectionString = connectionString;
        _time = time;
    }

    /// <summary>
    /// The ledger at <paramref name="path"/> for reading only, as a process that does not run the aggregator reads it
    /// (the C&amp;C's data page): nothing is created or migrated. Null while there is no ledger there yet, or its
    /// first schema step is not in place.
    /// </summary>
    public static RunLedger? OpenReadOnly(string path, TimeProvider time)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            return null;
        // Not pooled: a reader that looks now and then keeps no handle on the aggregator's file.
        var connectionString = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ToString();
        var ledger = new RunLedger(full, connectionString, time);
        using var c = ledger.Open();
        // A ledger from before the shared migration scheme has its tables but no schema_version until the aggregator
        // next starts; its tables are what is read.
        return SqliteMigrator.HasTable(c, null, "runs") ? ledger : null;
    }

    public string Path { get; }

    public int SchemaVersion
    {
        get
        {
            using var c = Open();
            return SqliteMigrator.CurrentVersion(c);
        }
    }

    // --- runs ---

    public string StartRun(string stage)
    {
        var runId = Guid.CreateVersion7(_time.GetUtcNow()).ToString("N");
        using var c = Open();
        Execute(c, "INSERT INTO runs (run_id, stage, started_at, status, host, pid) VALUES ($id, $stage, $at, 'running', $host, $pid)",
            ("$id", runId), ("$stage", stage), ("$at", Format(_time.GetUtcNow())), ("$host", Environment.MachineName), ("$pid", Environment.ProcessId));
        return runId;
    }

    public void FinishRun(string runId, string status, long inputs, long outputs, long rows, string? error)
    {
        using var c = Open();
        var now = _time.GetUtcNow();
        var started = Scalar<string>(c, "SELECT started_at FROM runs WHERE run_id = $id", ("$id", runId));
        long? duration = started is null ? null : (long)(now - Parse(started)).TotalMilliseconds;
        Execute(c, """
            UPDATE runs SET finished_at = $at, duration_ms = $ms, status = $status, inputs = $in, outputs = $out, rows = $rows, error = $error
            WHERE run_id = $id
            """,
            ("$id", runId), ("$at", Format(now)), ("$ms", duration), ("$status", status), ("$in", inputs), ("$out", outputs), ("$rows", rows), ("$error", error));
    }

    public void AddRunFile(string runId, string direction, string path, long? rows)
    {
        using var c = Open();
        Execute(c, "INSERT OR REPLACE INTO run_files (run_id, direction, path, rows) VALUES ($id, $dir, $path, $rows)",
            ("$id", runId), ("$dir", direction), ("$path", path), ("$rows", rows));
    }

    /// <summary>Marks runs still 'running' as abandoned. Only called while holding the stage lock, when none can be running.</summary>
    public int AbandonRunningRuns(string exceptRunId)
    {
        using var c = Open();
        return Execute(c, "UPDATE runs SET status = 'abandoned', finished_at = $at, error = coalesce(error, 'process ended during the run') WHERE status = 'running' AND run_id <> $id",
            ("$at", Format(_time.GetUtcNow())), ("$id", exceptRunId));
    }

    /// <summary>Forgets successful runs that found nothing to do (a scheduled parse every minute makes many), once older than <paramref name="before"/>.</summary>
    public int PruneIdleRuns(DateTimeOffset before)
    {
        using var c = Open();
        return Execute(c, """
            DELETE FROM runs WHERE status = 'succeeded' AND inputs = 0 AND outputs = 0 AND started_at < $before
              AND run_id NOT IN (SELECT run_id FROM run_files)
            """, ("$before", Format(before)));
    }

    public IReadOnlyList<RunRecord> RecentRuns(int max)
    {
        using var c = Open();
        using var cmd = Command(c, $"SELECT {RunColumns} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT $max", ("$max", max));
        using var r = cmd.ExecuteReader();
        var runs = new List<RunRecord>();
        while (r.Read())
            runs.Add(ReadRun(r));
        return runs;
    }

    private const string RunColumns = "run_id, stage, started_at, finished_at, duration_ms, status, inputs, outputs, rows, error";

    private static RunRecord ReadRun(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), Parse(r.GetString(2)), r.IsDBNull(3) ? null : Parse(r.GetString(3)),
        r.IsDBNull(4) ? null : r.GetInt64(4), r.GetString(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.IsDBNull(9) ? null : r.GetString(9));

    /// <summary>Every stage that has run, by name: its newest run and its runs counted by status.</summary>
    public IReadOnlyList<StageRuns> Stages()
    {
        using var c = Open();
        var stages = new List<string>();
        using (var cmd = Command(c, "SELECT DISTINCT stage FROM runs ORDER BY stage"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
                stages.Add(r.GetString(0));
        }

        var list = new List<StageRuns>();
        foreach (var stage in stages)
        {
            RunRecord? last = null;
            using (var cmd = Command(c, $"SELECT {RunColumns} FROM runs WHERE stage = $s ORDER BY started_at DESC, run_id DESC LIMIT 1", ("$s", stage)))
            using (var r = cmd.ExecuteReader())
            {
                if (r.Read())
                    last = ReadRun(r);
            }

            var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
            using (var cmd = Command(c, "SELECT status, count(*) FROM runs WHERE stage = $s GROUP BY status", ("$s", stage)))
            using (var r = cmd.ExecuteReader())
            {
                while (r.Read())
                    counts[r.GetString(0)] = r.GetInt64(1);
            }

            // A stage's runs pruned between the two queries: it is left out until it runs again.
            if (last is not null)
                list.Add(new StageRuns(stage, last, counts));
        }

        return list;
    }

    public IReadOnlyList<(string Direction, string Path, long? Rows)> RunFiles(string runId)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT direction, path, rows FROM run_files WHERE run_id = $id ORDER BY direction, path", ("$id", runId));
        using var r = cmd.ExecuteReader();
        var files = new List<(string, string, long?)>();
        while (r.Read())
            files.Add((r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetInt64(2)));
        return files;
    }

    // --- captures ---

    public HashSet<string> KnownCaptures()
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT sha256 FROM captures");
        using var r = cmd.ExecuteReader();
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (r.Read())
            set.Add(r.GetString(0));
        return set;
    }

    public CaptureState? GetCapture(string sha256)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE sha256 = $sha", ("$sha", sha256)).FirstOrDefault();
    }

    public IReadOnlyList<CaptureState> Captures(string? status = null)
    {
        using var c = Open();
        return status is null ? ReadCaptures(c, "ORDER BY capture_date, probe_id, sha256") : ReadCaptures(c, "WHERE status = $s ORDER BY capture_date, probe_id, sha256", ("$s", status));
    }

    /// <summary>Parsed captures whose last parse was at or before <paramref name="cutoff"/>, oldest first (retention).</summary>
    public IReadOnlyList<CaptureState> ParsedBefore(DateTimeOffset cutoff)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status = 'parsed' AND updated_at <= $cutoff ORDER BY updated_at, sha256", ("$cutoff", Format(cutoff)));
    }

    /// <summary>The <paramref name="max"/> captures most recently failed or quarantined, newest first.</summary>
    public IReadOnlyList<CaptureState> Problems(int max)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status <> 'parsed' ORDER BY updated_at DESC, sha256 LIMIT $max", ("$max", max));
    }

    /// <summary>Failed captures whose back-off has run out, oldest first.</summary>
    public IReadOnlyList<CaptureState> DueRetries(DateTimeOffset now)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status = 'failed' AND (next_attempt_at IS NULL OR next_attempt_at <= $now) ORDER BY next_attempt_at, sha256", ("$now", Format(now)));
    }

    public IReadOnlyDictionary<string, long> CaptureCounts()
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT status, count(*) FROM captures GROUP BY status");
        using var r = cmd.ExecuteReader();
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal) { [Parsed] = 0, [Failed] = 0, [Quarantined] = 0 };
        while (r.Read())
            counts[r.GetString(0)] = r.GetInt64(1);
        return counts;
    }

    /// <summary>Records the outcome of one attempt at a capture (upsert; attempts are counted by the caller).</summary>
    public void RecordCapture(PendingCapture capture, string status, int attempts, string? reason, long? frames, string? outputPath, DateTimeOffset? nextAttemptAt, string runId)
    {
        using var c = Open();
        var now = Format(_time.GetUtcNow());
        Execute(c, """
            INSERT INTO captures (sha256, probe_id, capture_date, capture_path, manifest_path, status, attempts, reason, frames, output_path,
                                  first_attempt_at, updated_at, next_attempt_at, last_run_id)
            VALUES ($sha, $probe, $date, $path, $manifest, $status, $attempts, $reason, $frames, $out, $now, $now, $next, $run)
            ON CONFLICT (sha256) DO UPDATE SET
                probe_id = excluded.probe_id, capture_date = excluded.capture_date, capture_path = excluded.capture_path,
                manifest_path = excluded.manifest_path, status = excluded.status, attempts = excluded.attempts, reason = excluded.reason,
                frames = excluded.frames, output_path = excluded.output_path, updated_at = excluded.updated_at,
                next_attempt_at = excluded.next_attempt_at, last_run_id = excluded.last_run_id
            """,
            ("$sha", capture.Sha256), ("$probe", capture.ProbeId), ("$date", capture.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            ("$path", capture.CapturePath), ("$manifest", capture.ManifestPath), ("$status", status), ("$attempts", attempts),
            ("$reason", reason), ("$frames", frames), ("$out", outputPath), ("$now", now),
            ("$next", nextAttemptAt is { } n ? Format(n) : null), ("$run", runId));
    }

    // --- partitions ---

    public PartitionState? GetPartition(DateOnly date)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT fingerprint, inputs, rows_json, built_at, run_id FROM partitions WHERE date = $d", ("$d", FormatDate(date)));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new PartitionState(date, r.GetString(0), r.GetInt32(1), r.GetString(2), Parse(r.GetString(3)), r.GetString(4)) : null;
    }

    public IReadOnlyList<PartitionState> Partitions()
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT date, fingerprint, inputs, rows_json, built_at, run_id FROM partitions ORDER BY date");
        using var r = cmd.ExecuteReader();
        var list = new List<PartitionState>();
        while (r.Read())
        {
            list.Add(new PartitionState(
                DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(1), r.GetInt32(2), r.GetString(3), Parse(r.GetString(4)), r.GetString(5)));
        }
        return list;
    }

    public void SetPartition(DateOnly date, string fingerprint, int inputs, string rowsJson, string runId)
    {
        using var c = Open();
        Execute(c, """
            INSERT INTO partitions (date, fingerprint, inputs, rows_json, built_at, run_id) VALUES ($d, $f, $i, $rows, $at, $run)
            ON CONFLICT (date) DO UPDATE SET fingerprint = excluded.fingerprint, inputs = excluded.inputs, rows_json = excluded.rows_json,
                built_at = excluded.built_at, run_id = excluded.run_id
            """,
            ("$d", FormatDate(date)), ("$f", fingerprint), ("$i", inputs), ("$rows", rowsJson), ("$at", Format(_time.GetUtcNow())), ("$run", runId));
    }

    // --- plumbing ---

    private SqliteConnection Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        Execute(c, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000");
        return c;
    }

    private static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    private static int Execute(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        return cmd.ExecuteNonQuery();
    }

    private static T? Scalar<T>(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture);
    }

    private static List<CaptureState> ReadCaptures(SqliteConnection c, string where, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, $"""
            SELECT sha256, probe_id, capture_date, capture_path, manifest_path, status, attempts, reason, frames, output_path, updated_at, next_attempt_at
            FROM captures {where}
            """, parameters);
        using var r = cmd.ExecuteReader();
        var list = new List<CaptureState>();
        while (r.Read())
        {
            list.Add(new CaptureState(
                r.GetString(0), r.GetString(1), DateOnly.ParseExact(r.GetString(2), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5), r.GetInt32(6), r.IsDBNull(7) ? null : r.GetString(7),
                r.IsDBNull(8) ? null : r.GetInt64(8), r.IsDBNull(9) ? null : r.GetString(9), Parse(r.GetString(10)),
                r.IsDBNull(11) ? null : Parse(r.GetString(11))));
        }
        return list;
    }

    // Fixed-width UTC text sorts in time order, so SQL comparisons on it work.
    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static string FormatDate(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}

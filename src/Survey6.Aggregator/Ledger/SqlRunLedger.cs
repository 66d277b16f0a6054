using System.Data.Common;
using System.Globalization;
using Survey6.Aggregator.Sources;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// The ledger's statements, written once for both stores: standard SQL that SQLite and PostgreSQL read alike
/// (<c>@name</c> parameters, <c>ON CONFLICT ... DO UPDATE</c>, times as fixed-width UTC text), over the schema both
/// get from <see cref="LedgerMigrations"/>. A store supplies its connections (<see cref="Open"/>). Connections are
/// short-lived and pooled, so the ledger can be used from any thread.
/// </summary>
public abstract class SqlRunLedger : IRunLedger
{
    public const string Parsed = "parsed";
    public const string Failed = "failed";
    public const string Quarantined = "quarantined";

    protected SqlRunLedger(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Time = time;
    }

    protected TimeProvider Time { get; }

    public abstract string Location { get; }

    public abstract int SchemaVersion { get; }

    // --- runs ---

    public string StartRun(string stage)
    {
        var runId = Guid.CreateVersion7(Time.GetUtcNow()).ToString("N");
        using var c = Open();
        Execute(c, "INSERT INTO runs (run_id, stage, started_at, status, host, pid) VALUES (@id, @stage, @at, 'running', @host, @pid)",
            ("@id", runId), ("@stage", stage), ("@at", Format(Time.GetUtcNow())), ("@host", Environment.MachineName), ("@pid", Environment.ProcessId));
        return runId;
    }

    public void FinishRun(string runId, string status, long inputs, long outputs, long rows, string? error)
    {
        using var c = Open();
        var now = Time.GetUtcNow();
        var started = Scalar<string>(c, "SELECT started_at FROM runs WHERE run_id = @id", ("@id", runId));
        long? duration = started is null ? null : (long)(now - Parse(started)).TotalMilliseconds;
        Execute(c, """
            UPDATE runs SET finished_at = @at, duration_ms = @ms, status = @status, inputs = @in, outputs = @out, rows = @rows, error = @error
            WHERE run_id = @id
            """,
            ("@id", runId), ("@at", Format(now)), ("@ms", duration), ("@status", status), ("@in", inputs), ("@out", outputs), ("@rows", rows), ("@error", error));
    }

    public void AddRunFile(string runId, string direction, string path, long? rows)
    {
        using var c = Open();
        Execute(c, "INSERT INTO run_files (run_id, direction, path, rows) VALUES (@id, @dir, @path, @rows) ON CONFLICT (run_id, direction, path) DO UPDATE SET rows = excluded.rows",
            ("@id", runId), ("@dir", direction), ("@path", path), ("@rows", rows));
    }

    /// <summary>Marks runs still 'running' as abandoned. Only called while holding the stage lock, when none can be running.</summary>
    public int AbandonRunningRuns(string exceptRunId)
    {
        using var c = Open();
        return Execute(c, "UPDATE runs SET status = 'abandoned', finished_at = @at, error = coalesce(error, 'process ended during the run') WHERE status = 'running' AND run_id <> @id",
            ("@at", Format(Time.GetUtcNow())), ("@id", exceptRunId));
    }

    /// <summary>Forgets successful runs that found nothing to do (a scheduled parse every minute makes many), once older than <paramref name="before"/>.</summary>
    public int PruneIdleRuns(DateTimeOffset before)
    {
        using var c = Open();
        return Execute(c, """
            DELETE FROM runs WHERE status = 'succeeded' AND inputs = 0 AND outputs = 0 AND started_at < @before
              AND run_id NOT IN (SELECT run_id FROM run_files)
            """, ("@before", Format(before)));
    }

    public IReadOnlyList<RunRecord> RecentRuns(int max)
    {
        using var c = Open();
        using var cmd = Command(c, $"SELECT {RunColumns} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT @max", ("@max", max));
        using var r = cmd.ExecuteReader();
        var runs = new List<RunRecord>();
        while (r.Read())
            runs.Add(ReadRun(r));
        return runs;
    }

    private const string RunColumns = "run_id, stage, started_at, finished_at, duration_ms, status, inputs, outputs, rows, error";

    private static RunRecord ReadRun(DbDataReader r) => new(
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
            using (var cmd = Command(c, $"SELECT {RunColumns} FROM runs WHERE stage = @s ORDER BY started_at DESC, run_id DESC LIMIT 1", ("@s", stage)))
            using (var r = cmd.ExecuteReader())
            {
                if (r.Read())
                    last = ReadRun(r);
            }

            var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
            using (var cmd = Command(c, "SELECT status, count(*) FROM runs WHERE stage = @s GROUP BY status", ("@s", stage)))
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
        using var cmd = Command(c, "SELECT direction, path, rows FROM run_files WHERE run_id = @id ORDER BY direction, path", ("@id", runId));
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
        return ReadCaptures(c, "WHERE sha256 = @sha", ("@sha", sha256)).FirstOrDefault();
    }

    public IReadOnlyList<CaptureState> Captures(string? status = null)
    {
        using var c = Open();
        return status is null ? ReadCaptures(c, "ORDER BY capture_date, probe_id, sha256") : ReadCaptures(c, "WHERE status = @s ORDER BY capture_date, probe_id, sha256", ("@s", status));
    }

    /// <summary>Parsed captures whose last parse was at or before <paramref name="cutoff"/>, oldest first (retention).</summary>
    public IReadOnlyList<CaptureState> ParsedBefore(DateTimeOffset cutoff)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status = 'parsed' AND updated_at <= @cutoff ORDER BY updated_at, sha256", ("@cutoff", Format(cutoff)));
    }

    /// <summary>The <paramref name="max"/> captures most recently failed or quarantined, newest first.</summary>
    public IReadOnlyList<CaptureState> Problems(int max)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status <> 'parsed' ORDER BY updated_at DESC, sha256 LIMIT @max", ("@max", max));
    }

    /// <summary>Failed captures whose back-off has run out, oldest first.</summary>
    public IReadOnlyList<CaptureState> DueRetries(DateTimeOffset now)
    {
        using var c = Open();
        return ReadCaptures(c, "WHERE status = 'failed' AND (next_attempt_at IS NULL OR next_attempt_at <= @now) ORDER BY next_attempt_at, sha256", ("@now", Format(now)));
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
        var now = Format(Time.GetUtcNow());
        Execute(c, """
            INSERT INTO captures (sha256, probe_id, capture_date, capture_path, manifest_path, status, attempts, reason, frames, output_path,
                                  first_attempt_at, updated_at, next_attempt_at, last_run_id)
            VALUES (@sha, @probe, @date, @path, @manifest, @status, @attempts, @reason, @frames, @out, @now, @now, @next, @run)
            ON CONFLICT (sha256) DO UPDATE SET
                probe_id = excluded.probe_id, capture_date = excluded.capture_date, capture_path = excluded.capture_path,
                manifest_path = excluded.manifest_path, status = excluded.status, attempts = excluded.attempts, reason = excluded.reason,
                frames = excluded.frames, output_path = excluded.output_path, updated_at = excluded.updated_at,
                next_attempt_at = excluded.next_attempt_at, last_run_id = excluded.last_run_id
            """,
            ("@sha", capture.Sha256), ("@probe", capture.ProbeId), ("@date", capture.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            ("@path", capture.CapturePath), ("@manifest", capture.ManifestPath), ("@status", status), ("@attempts", attempts),
            ("@reason", reason), ("@frames", frames), ("@out", outputPath), ("@now", now),
            ("@next", nextAttemptAt is { } n ? Format(n) : null), ("@run", runId));
    }

    // --- partitions ---

    public PartitionState? GetPartition(DateOnly date)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT fingerprint, inputs, rows_json, built_at, run_id FROM partitions WHERE date = @d", ("@d", FormatDate(date)));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new PartitionState(date, r.GetString(0), Convert.ToInt32(r.GetInt64(1), CultureInfo.InvariantCulture), r.GetString(2), Parse(r.GetString(3)), r.GetString(4)) : null;
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
                DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(1), Convert.ToInt32(r.GetInt64(2), CultureInfo.InvariantCulture), r.GetString(3), Parse(r.GetString(4)), r.GetString(5)));
        }
        return list;
    }

    public void SetPartition(DateOnly date, string fingerprint, int inputs, string rowsJson, string runId)
    {
        using var c = Open();
        Execute(c, """
            INSERT INTO partitions (date, fingerprint, inputs, rows_json, built_at, run_id) VALUES (@d, @f, @i, @rows, @at, @run)
            ON CONFLICT (date) DO UPDATE SET fingerprint = excluded.fingerprint, inputs = excluded.inputs, rows_json = excluded.rows_json,
                built_at = excluded.built_at, run_id = excluded.run_id
            """,
            ("@d", FormatDate(date)), ("@f", fingerprint), ("@i", inputs), ("@rows", rowsJson), ("@at", Format(Time.GetUtcNow())), ("@run", runId));
    }

    // --- plumbing ---

    /// <summary>A new open connection to the store; disposed by the caller.</summary>
    protected abstract DbConnection Open();

    protected static DbCommand Command(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = cmd.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(parameter);
        }
        return cmd;
    }

    protected static int Execute(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        return cmd.ExecuteNonQuery();
    }

    protected static T? Scalar<T>(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture);
    }

    private static List<CaptureState> ReadCaptures(DbConnection c, string where, params (string Name, object? Value)[] parameters)
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
                r.IsDBNull(4) ? null : r.GetString(4), r.GetString(5), Convert.ToInt32(r.GetInt64(6), CultureInfo.InvariantCulture), r.IsDBNull(7) ? null : r.GetString(7),
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

using Survey6.Aggregator.Sources;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// The aggregator's run ledger: every stage run with its inputs, outputs, rows, duration, status and error, and the
/// processing state of every capture and every aggregated date. Two stores share one schema and one set of
/// statements (<see cref="SqlRunLedger"/>): embedded SQLite, <c>DATA/aggregator.db</c> (<see cref="RunLedger"/>, the
/// default), and PostgreSQL (<see cref="PostgresRunLedger"/>, when <c>Aggregator:Ledger:ConnectionString</c> is set) for
/// workers on several hosts. Safe to use from any thread.
/// </summary>
public interface IRunLedger
{
    /// <summary>Where the ledger is, for people: a file path, or <c>postgresql://HOST:PORT/DATABASE</c> (never a password).</summary>
    string Location { get; }

    /// <summary>The highest schema step applied.</summary>
    int SchemaVersion { get; }

    string StartRun(string stage);

    void FinishRun(string runId, string status, long inputs, long outputs, long rows, string? error);

    void AddRunFile(string runId, string direction, string path, long? rows);

    /// <summary>Marks runs still 'running' as abandoned. Only called while holding the stage lock exclusively, when none can be running.</summary>
    int AbandonRunningRuns(string exceptRunId);

    /// <summary>Forgets successful runs that found nothing to do (a scheduled parse every minute makes many), once older than <paramref name="before"/>.</summary>
    int PruneIdleRuns(DateTimeOffset before);

    IReadOnlyList<RunRecord> RecentRuns(int max);

    /// <summary>Every stage that has run, by name: its newest run and its runs counted by status.</summary>
    IReadOnlyList<StageRuns> Stages();

    IReadOnlyList<(string Direction, string Path, long? Rows)> RunFiles(string runId);

    HashSet<string> KnownCaptures();

    CaptureState? GetCapture(string sha256);

    IReadOnlyList<CaptureState> Captures(string? status = null);

    /// <summary>Parsed captures whose last parse was at or before <paramref name="cutoff"/>, oldest first (retention).</summary>
    IReadOnlyList<CaptureState> ParsedBefore(DateTimeOffset cutoff);

    /// <summary>The <paramref name="max"/> captures most recently failed or quarantined, newest first.</summary>
    IReadOnlyList<CaptureState> Problems(int max);

    /// <summary>Failed captures whose back-off has run out, oldest first.</summary>
    IReadOnlyList<CaptureState> DueRetries(DateTimeOffset now);

    IReadOnlyDictionary<string, long> CaptureCounts();

    /// <summary>Records the outcome of one attempt at a capture (upsert; attempts are counted by the caller).</summary>
    void RecordCapture(PendingCapture capture, string status, int attempts, string? reason, long? frames, string? outputPath, DateTimeOffset? nextAttemptAt, string runId);

    PartitionState? GetPartition(DateOnly date);

    IReadOnlyList<PartitionState> Partitions();

    void SetPartition(DateOnly date, string fingerprint, int inputs, string rowsJson, string runId);
}
